"""Who is speaking, in Chromium (issue #10): in a meeting, the exhibitor's microphone (Chromium's
fake device beeps twice a second) makes its tile ringed and "Speaking" shown beside it in the
people list, on the buyer's page, the host's and its own; the buyer, live with the microphone
off, is not; when the exhibitor turns the microphone off, every page clears within 3 s.
Screenshots go to ``$FAIRWIRE_LIVE_SCREENSHOTS`` (default ``/tmp/c9/shots``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from browser import NewPage
from playwright.async_api import Page, expect
from room_page import open_room
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path(os.environ.get("FAIRWIRE_LIVE_SCREENSHOTS", "/tmp/c9/shots"))
ROOM = "valve-speakers"
EXHIBITOR_SPEAKS = (
    "() => window.fairwireSpeakers.dominant === 'valve-co'"
    " && window.fairwireSpeakers.speaking.join() === 'valve-co'")
SPEAKING = re.compile(r"\btile-speaking\b")
DOMINANT = re.compile(r"\btile-speaking tile-dominant\b")
NOBODY_SPEAKS = "() => window.fairwireSpeakers.speaking.length === 0"


async def shot(page: Page, name: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_every_page_of_a_meeting_rings_the_one_who_speaks(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id=ROOM, name="Valve price talk", kind="meeting", owner="valve-co")
    host = await open_room(new_page, server, ROOM, "host-zhao", "host", name="Zhao (host)")
    exhibitor = await open_room(new_page, server, ROOM, "valve-co", "exhibitor",
                                name="Valve Co")
    buyer = await open_room(new_page, server, ROOM, "buyer-li", "buyer", name="Li Wei",
                            lang="zh")
    await buyer.click("#go-live")
    await buyer.wait_for_function("() => window.fairwire.publishing")
    await buyer.click("#toggle-mic")  # live, microphone off: its beeps are silence
    await expect(buyer.locator("#toggle-mic")).to_have_attribute("aria-pressed", "true")
    await exhibitor.click("#go-live")
    pages = (host, exhibitor, buyer)
    for page in pages:
        await page.wait_for_function(EXHIBITOR_SPEAKS, timeout=20_000)

    # The buyer's page and the host's: the exhibitor's tile has the strong ring, the
    # buyer's (on the host's page) none, and the people list says who speaks.
    for page, speaking in ((host, "Speaking"), (buyer, "正在发言")):
        tile = page.locator("#tiles .tile[data-identity='valve-co']")
        await expect(tile).to_have_class(DOMINANT)
        await expect(page.locator("#tiles .tile-speaking")).to_have_count(1)
        row = page.locator("#participants li[data-identity='valve-co']")
        await expect(row.locator(".speaking-indicator")).to_have_text(speaking)
        await expect(page.locator("#participants .speaking-indicator")).to_have_count(1)
    ring = await host.locator("#tiles .tile[data-identity='valve-co']").evaluate(
        "(tile) => [getComputedStyle(tile).outlineStyle, getComputedStyle(tile).boxShadow]")
    assert ring[0] == "solid" and "rgb(23, 178, 106) 0px 0px 0px 5px" in ring[1]
    await expect(host.locator("#tiles .tile[data-identity='buyer-li']")).not_to_have_class(
        SPEAKING)
    # Its own page: one's own tile is ringed too.
    await expect(exhibitor.locator("#tiles .tile[data-self='true']")).to_have_class(DOMINANT)
    await shot(host, "speakers-host")
    await shot(buyer, "speakers-buyer-zh")

    # Microphone off: nobody speaks, on every page, once 1.5 s of silence are over.
    await exhibitor.click("#toggle-mic")
    for page in pages:
        await page.wait_for_function(NOBODY_SPEAKS, timeout=3_000)
        await expect(page.locator("#tiles .tile-speaking")).to_have_count(0)
        await expect(page.locator("#participants .speaking-indicator")).to_have_count(0)
