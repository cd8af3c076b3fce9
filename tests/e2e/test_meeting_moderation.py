"""A host moderates a negotiation in Chromium (issue #10): newcomers wait in the lobby until the
host admits them; the host mutes the buyer's microphone and the exhibitor's page stops
receiving it while the buyer's own page cannot unmute (until the host allows it); a floor with
a 5 s time box ends with the speaker muted; a removed buyer's media stop within 1 s and their
rejoin is refused. Screenshots go to ``$FAIRWIRE_LIVE_SCREENSHOTS`` (default
``/tmp/c9/shots``)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from browser import NewPage
from playwright.async_api import Dialog, Page, expect
from room_page import inbound
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path(os.environ.get("FAIRWIRE_LIVE_SCREENSHOTS", "/tmp/c9/shots"))
ROOM = "valve-talks"


async def shot(page: Page, name: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def open_page(new_page: NewPage, server: FairwireServer, identity: str, role: str,
                    name: str, lang: str = "en") -> Page:
    page = await new_page()
    page.on("dialog", lambda dialog: asyncio.ensure_future(_accept(dialog)))
    token = await server.token(ROOM, identity, role, name=name)
    await page.goto(server.room_url(ROOM, token, lang=lang))
    return page


async def _accept(dialog: Dialog) -> None:
    await dialog.accept()


async def audio_received(page: Page) -> int:
    return int((await inbound(page))["audio"])


async def audio_flows(page: Page) -> bool:
    before = await audio_received(page)
    await asyncio.sleep(1.0)
    return await audio_received(page) > before + 10


async def test_a_host_runs_the_lobby_mutes_gives_the_floor_and_removes(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id=ROOM, name="Valve price talk", kind="meeting",
                             owner="valve-co", lobby=True)
    host = await open_page(new_page, server, "host-zhao", "host", "Zhao (host)")
    await host.wait_for_function("() => window.fairwire.state === 'joined'")
    await expect(host.locator("#meeting-panel")).to_be_visible()

    # The meeting's owner (the exhibitor) moderates too and comes straight in; the buyer waits
    # in the lobby until the host lets them in.
    exhibitor = await open_page(new_page, server, "valve-co", "exhibitor", "Valve Co")
    await exhibitor.wait_for_function("() => window.fairwire.state === 'joined'")
    buyer = await open_page(new_page, server, "buyer-li", "buyer", "Li Wei", lang="zh")
    await buyer.wait_for_function("() => window.fairwire.state === 'lobby'")
    await expect(buyer.locator("#lobby-panel")).to_be_visible()
    await expect(buyer.locator("#room-body")).to_be_hidden()
    await shot(buyer, "meeting-lobby-zh")
    await expect(host.locator("#meeting-waiting li")).to_have_count(1)
    await shot(host, "meeting-host-lobby")
    await host.locator("#meeting-waiting li[data-identity='buyer-li']").get_by_role(
        "button", name="Admit").click()
    await buyer.wait_for_function("() => window.fairwire.state === 'joined'")

    # Both go live; the exhibitor hears the buyer.
    await exhibitor.click("#go-live")
    await buyer.click("#go-live")
    await exhibitor.wait_for_function(
        "() => window.fairwire.subscriberPc?.connectionState === 'connected'", timeout=20_000)
    async with asyncio.timeout(20):
        while not await audio_flows(exhibitor):
            pass

    # The host mutes the buyer's microphone: forwarding stops at once.
    buyer_row = host.locator("#participants li[data-identity='buyer-li']")
    await buyer_row.get_by_role("button", name="Mute mic").click()
    await expect(buyer.locator("#meeting-self .meeting-muted")).to_be_visible()
    await asyncio.sleep(0.5)
    assert not await audio_flows(exhibitor)
    # The buyer's own page cannot unmute: the server refuses it.
    refused = await buyer.evaluate(
        "() => window.fairwire.request('set-muted', {kind: 'audio', muted: false})"
        ".then(() => 'ok', (e) => e.code)")
    assert refused == "muted_by_moderator"
    # Their own microphone button says so, and asks the host instead of unmuting.
    await expect(buyer.locator("#toggle-mic")).to_have_text("申请打开麦克风")
    await buyer.locator("#toggle-mic").click()
    await expect(buyer_row.locator(".chip-ask")).to_be_visible()
    await shot(buyer, "meeting-muted-zh")
    await shot(host, "meeting-host-asked")
    await buyer_row.get_by_role("button", name="Allow mic").click()
    async with asyncio.timeout(10):
        while not await audio_flows(exhibitor):
            pass

    # A raised hand, the floor for 5 s, then the speaker is muted.
    await buyer.locator("#raise-hand").click()
    await expect(host.locator("#meeting-hands li[data-identity='buyer-li']")).to_be_visible()
    await host.fill("#meeting-floor-seconds", "5")
    # Timed from the click: the banner's appearance and the screenshot take part of the 5 s.
    started = time.monotonic()
    await host.locator("#meeting-hands li[data-identity='buyer-li']").get_by_role(
        "button", name="Give the floor").click()
    await expect(exhibitor.locator("#floor-banner")).to_contain_text("Li Wei has the floor")
    await shot(exhibitor, "meeting-floor")
    await exhibitor.wait_for_function(
        "() => document.getElementById('floor-banner').hidden", timeout=10_000)
    assert 4.8 <= time.monotonic() - started <= 8.0
    await expect(buyer.locator("#meeting-self .meeting-muted[data-kind='audio']")).to_be_visible()
    await asyncio.sleep(0.5)
    assert not await audio_flows(exhibitor)

    # Removed: the buyer's media stop within 1 s and the same link cannot come back.
    await buyer_row.get_by_role("button", name="Remove").click()
    await buyer.wait_for_function("() => window.fairwire.state === 'error'")
    assert await buyer.evaluate("window.fairwire.error.code") == "removed"
    await exhibitor.wait_for_function(
        "() => !window.fairwire.participants.some((p) => p.identity === 'buyer-li')",
        timeout=1_000)
    await buyer.reload()
    await buyer.wait_for_function("() => window.fairwire.state === 'error'")
    assert await buyer.evaluate("window.fairwire.error.code") == "removed"
    await shot(buyer, "meeting-removed-zh")
