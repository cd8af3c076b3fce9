"""One-to-one messages in Chromium (issue #10): a buyer watching a livestream writes to the
exhibitor on stage, who is not there; when the exhibitor opens a page later, in another room,
the unread count shows, the message reads, the count goes, and the reply reaches the buyer's
page at once. Screenshots go to ``$FAIRWIRE_LIVE_SCREENSHOTS`` (default ``/tmp/c9/shots``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser import NewPage
from playwright.async_api import Page, expect
from room_page import open_room
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path(os.environ.get("FAIRWIRE_LIVE_SCREENSHOTS", "/tmp/c9/shots"))


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_a_message_waits_for_the_exhibitor_and_the_reply_arrives_at_once(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id="gear-booth", name="Gearbox booth", kind="livestream",
                             status="live", owner="gear-co")
    await server.create_room(id="gear-talk", name="Gearbox talk", kind="meeting")
    # The buyer opens a conversation with the exhibitor listed on the page, who then leaves.
    exhibitor = await open_room(new_page, server, "gear-booth", "gear-co", "exhibitor",
                                name="Gear Co")
    buyer = await open_room(new_page, server, "gear-booth", "buyer-anna", "buyer",
                            name="Anna Schmidt")
    await buyer.get_by_role("button", name="Write to Gear Co").click()
    await expect(buyer.locator("#messages-panel")).to_be_visible()
    await exhibitor.close()
    await buyer.wait_for_function(
        "() => !window.fairwire.participants.some((p) => p.identity === 'gear-co')")
    await buyer.fill("#dm-text", "Do you ship the GX-40 to Hamburg?")
    await buyer.click("#dm-send")
    await expect(buyer.locator("#dm-messages .dm-text")).to_have_text(
        ["Do you ship the GX-40 to Hamburg?"])
    await shot(buyer, "messages-buyer-en")

    # Later, in another room: the count is there before anything is opened.
    back = await open_room(new_page, server, "gear-talk", "gear-co", "exhibitor",
                           name="Gear Co", lang="zh")
    await expect(back.locator("#messages-count")).to_have_text("1")
    await back.click("#messages-button")
    await expect(back.locator("#dm-messages .dm-text")).to_have_text(
        ["Do you ship the GX-40 to Hamburg?"])
    await expect(back.locator("#messages-count")).to_be_hidden()
    await shot(back, "messages-exhibitor-zh")
    await back.fill("#dm-text", "Yes, weekly, by rail and sea.")
    await back.press("#dm-text", "Enter")

    # The buyer's page has it at once, in the open conversation.
    await expect(buyer.locator("#dm-messages .dm-text")).to_have_text(
        ["Do you ship the GX-40 to Hamburg?", "Yes, weekly, by rail and sea."])
    read = await buyer.evaluate("window.fairwireMessages.unread")
    assert read == {}
