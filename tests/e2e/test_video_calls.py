"""Video calls in Chromium (issue #10): a buyer watching a booth calls its exhibitor, whose
page rings; a declined call is told to the caller and listed for both; an accepted one takes
both pages into a private meeting where each decodes the other's video and a shared screen
shows beside the sharer's camera; a host joins, and the
guest the buyer's link lets in waits in the lobby until the host admits them. Screenshots go to
``$FAIRWIRE_LIVE_SCREENSHOTS`` (default ``/tmp/c9/shots``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser import NewPage
from playwright.async_api import Page, expect
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path(os.environ.get("FAIRWIRE_LIVE_SCREENSHOTS", "/tmp/c9/shots"))
BOOTH = "pump-booth"


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


async def open_page(new_page: NewPage, server: FairwireServer, room: str, identity: str,
                    role: str, name: str, lang: str = "en") -> Page:
    page = await new_page()
    token = await server.token(room, identity, role, name=name)
    await page.goto(server.room_url(room, token, lang=lang))
    await page.wait_for_function("() => window.fairwire && window.fairwire.state === 'joined'")
    return page


async def decodes_video(page: Page) -> None:
    await page.wait_for_function(
        "() => window.fairwire.subscriberPc?.connectionState === 'connected'", timeout=20_000)
    await page.wait_for_function("""async () => {
        let frames = 0;
        (await window.fairwire.subscriberPc.getStats()).forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
        });
        return frames > 10;
    }""", timeout=20_000, polling=250)


async def test_a_call_rings_is_declined_then_accepted_into_a_meeting_with_a_guest(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id=BOOTH, name="Ningbo Pumps, hall 5", kind="livestream",
                             owner="ningbo-pumps")
    exhibitor = await open_page(new_page, server, BOOTH, "ningbo-pumps", "exhibitor",
                                "Ningbo Pumps")
    buyer = await open_page(new_page, server, BOOTH, "buyer-ana", "buyer", "Ana Silva")
    call_button = buyer.get_by_role("button", name="Video call with Ningbo Pumps")

    # The first call is declined: the buyer is told, and both list it.
    await call_button.click()
    await expect(buyer.locator("#call-bar")).to_contain_text("Calling Ningbo Pumps")
    await expect(exhibitor.locator("#call-ringing")).to_be_visible()
    await expect(exhibitor.locator("#call-ringing")).to_contain_text("Ana Silva is calling you")
    await expect(exhibitor.locator("#call-ringing")).to_contain_text("Ningbo Pumps, hall 5")
    await shot(exhibitor, "call-ringing")
    await shot(buyer, "call-calling")
    await exhibitor.get_by_role("button", name="Decline call").click()
    await expect(exhibitor.locator("#call-ringing")).to_be_hidden()
    await expect(buyer.locator("#call-bar")).to_contain_text("Ningbo Pumps declined your call")
    await shot(buyer, "call-declined")
    for page in (buyer, exhibitor):
        await page.locator("#calls-button").click()
        await expect(page.locator("#calls-list .calls-declined")).to_have_count(1)
    await shot(exhibitor, "calls-list")
    await exhibitor.evaluate("window.FairwireI18n.setLang('zh')")  # the dialog is modal
    await expect(exhibitor.locator("#calls-list .calls-declined")).to_contain_text("已拒绝")
    await shot(exhibitor, "calls-list-zh")
    await exhibitor.evaluate("window.FairwireI18n.setLang('en')")
    for page in (buyer, exhibitor):
        await page.locator("#calls-done").click()

    # The reverse: the exhibitor calls a viewer from the Viewers panel; the buyer's page rings
    # and the exhibitor hangs up before an answer.
    await exhibitor.get_by_role("button", name="Viewers").click()
    await exhibitor.get_by_role("button", name="Video call with Ana Silva").click()
    await expect(buyer.locator("#call-ringing")).to_contain_text("Ningbo Pumps is calling you")
    await exhibitor.get_by_role("button", name="Close").click()
    await exhibitor.get_by_role("button", name="Hang up").click()
    await expect(buyer.locator("#call-ringing")).to_be_hidden()

    # The second is accepted: both pages go into a private meeting of their own.
    await call_button.click()
    await expect(exhibitor.locator("#call-ringing")).to_be_visible()
    await exhibitor.get_by_role("button", name="Join call").click()
    for page in (buyer, exhibitor):
        # The page leaves the booth for the meeting: a new document, a new window.fairwire.
        await page.wait_for_url(lambda url: f"/room/{BOOTH}?" not in url, timeout=10_000)
        await page.wait_for_function(
            "() => window.fairwire?.state === 'joined'"
            " && window.fairwire.room?.kind === 'meeting'")
    meeting = await buyer.evaluate("window.fairwire.room.id")
    assert await exhibitor.evaluate("window.fairwire.room.id") == meeting
    assert await buyer.evaluate("window.fairwire.room.visibility") == "private"
    await buyer.click("#go-live")
    await exhibitor.click("#go-live")
    await decodes_video(buyer)
    await decodes_video(exhibitor)
    await shot(buyer, "call-meeting")

    # The buyer shares a price list: a tile of its own beside the camera, for the exhibitor.
    await buyer.get_by_role("button", name="Share screen").click()
    screen = exhibitor.locator(".tile-screen[data-identity='buyer-ana~screen']")
    await expect(screen).to_contain_text("Ana Silva’s screen", timeout=15_000)
    await exhibitor.wait_for_function(
        "() => document.querySelector('.tile-screen video')?.videoWidth > 0", timeout=15_000)
    await expect(exhibitor.locator(".tile[data-identity='buyer-ana']")).to_be_visible()
    await shot(exhibitor, "call-meeting-screen")
    await buyer.get_by_role("button", name="Stop sharing screen").click()
    await expect(screen).to_have_count(0, timeout=10_000)

    # A host joins; the buyer (the meeting's owner) makes a guest link; the guest waits in the
    # lobby until the host admits them.
    host = await open_page(new_page, server, meeting, "host-zhao", "host", "Zhao (host)")
    await buyer.locator("#calls-button").click()
    await buyer.fill("#calls-guest-name", "Mr Chen")
    await buyer.get_by_role("button", name="Create guest link").click()
    await expect(buyer.locator("#calls-guest-link")).to_be_visible()
    await shot(buyer, "call-guest-link")
    url = await buyer.input_value("#calls-guest-url")
    guest = await new_page()
    await guest.goto(url)
    await guest.wait_for_function("() => window.fairwire.state === 'lobby'")
    await expect(host.locator("#meeting-waiting li[data-identity^='guest-']")).to_have_count(1)
    await host.locator("#meeting-waiting li[data-identity^='guest-']").get_by_role(
        "button", name="Admit").click()
    await guest.wait_for_function("() => window.fairwire.state === 'joined'")
    await expect(host.locator("#participants li")).to_have_count(4)
    await shot(host, "call-meeting-host")
