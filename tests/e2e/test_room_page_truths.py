"""What people see on the room page (issue #8), in a real Chromium against the real server.

One's own camera is on one's own stage while live; a muted microphone and a camera turned off
show on everyone's page; the link's language is the page's language unless the person chose
one; an unknown room says so; a guest watches a public livestream without a link; a host
invites a buyer on stage, who goes live and is taken off again. Each test asserts what a person
sees (text, visible elements) and, where media flows, decoded frames.

Screenshots go to ``$FAIRWIRE_SCREENSHOTS`` (default ``/tmp/fairwire-shots``).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from browser import NewPage
from playwright.async_api import Page, expect
from room_page import first_media_ms, inbound, open_room
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path(os.environ.get("FAIRWIRE_SCREENSHOTS", "/tmp/fairwire-shots"))

# A tile's <video> shows moving pictures: it has a size and its clock runs.
PLAYING_JS = """(selector) => { const v = document.querySelector(selector);
  return !!v && v.videoWidth > 0 && v.currentTime > 0; }"""

# Video frames decoded so far for one participant's tile (its own receiver), or -1.
TILE_FRAMES_JS = """async (identity) => {
  const video = document.querySelector(`#tiles [data-identity='${identity}'] video`);
  const pc = window.fairwire.subscriberPc;
  if (!video || !video.srcObject || !pc) return -1;
  const track = video.srcObject.getVideoTracks()[0];
  if (!track) return -1;
  let frames = 0;
  (await pc.getStats(track)).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return frames;
}"""

NO_TILE_JS = "(identity) => !document.querySelector(`#tiles [data-identity='${identity}']`)"


async def shot(page: Page, name: str) -> None:
    # Playwright makes the directory.
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def joined(page: Page) -> None:
    await page.wait_for_function("() => window.fairwire && window.fairwire.state === 'joined'")


async def failed(page: Page) -> dict[str, Any]:
    await page.wait_for_function("() => window.fairwire && window.fairwire.state === 'error'")
    error: dict[str, Any] = await page.evaluate("window.fairwire.error")
    return error


async def go_live(page: Page, button: str = "Go live") -> None:
    await page.get_by_role("button", name=button).click()
    await page.wait_for_function("() => window.fairwire.publishing === true")
    await page.wait_for_function(
        "() => window.fairwire.publisherPc.connectionState === 'connected'")


async def tile_frames(page: Page, identity: str) -> int:
    frames: int = await page.evaluate(TILE_FRAMES_JS, identity)
    return frames


async def decodes_tile(page: Page, identity: str, timeout: float = 15.0) -> None:
    """The tile of ``identity`` plays, and its frame count keeps growing."""
    await page.wait_for_function(PLAYING_JS, arg=f"#tiles [data-identity='{identity}'] video",
                                 timeout=timeout * 1000)
    before = await tile_frames(page, identity)
    deadline = time.monotonic() + timeout
    after = before
    while after < before + 10 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        after = await tile_frames(page, identity)
    assert before > 0 and after >= before + 10, (identity, before, after)


async def test_own_camera_is_a_tile_on_ones_own_stage_while_live(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "own-tile-booth"
    await server.create_room(id=room, name="Ningbo Pumps · Booth 7", kind="livestream",
                             category="Machinery", status="live", owner="ningbo-pumps")
    page = await open_room(new_page, server, room, "ningbo-pumps", "exhibitor", name="Li Wei")
    viewer = await open_room(new_page, server, room, "walk-in", "visitor", name="Walk-in visitor")

    # Live, but nobody on air yet.
    for p in (page, viewer):
        await expect(p.locator("#room-status")).to_have_text("Starting soon")
        await expect(p.locator("#stage-empty")).to_be_visible()
    await shot(page, "own-tile-before-en")

    await go_live(page)
    own = page.locator("#tiles [data-self]")
    await expect(own).to_be_visible()
    await expect(own.locator(".tile-name")).to_have_text("Li Wei (you)")
    await expect(own.locator(".tile-badge")).to_have_text("You are live")
    await page.wait_for_function(PLAYING_JS, arg="#tiles [data-self] video")
    await expect(page.locator("#stage-empty")).to_be_hidden()
    await expect(page.locator("#room-status")).to_have_text("LIVE")
    # Nothing of one's own comes back through the server: the tile is the local camera.
    assert await page.locator("#tiles [data-identity='ningbo-pumps']").count() == 0

    # The viewer decodes the booth and sees it on air too.
    await first_media_ms(viewer)
    await decodes_tile(viewer, "ningbo-pumps")
    await expect(viewer.locator("#room-status")).to_have_text("LIVE")
    await expect(viewer.locator("#stage-empty")).to_be_hidden()
    await shot(page, "own-tile-live-en")
    await shot(viewer, "own-tile-viewer-en")

    await page.get_by_role("button", name="中文").click()
    await expect(own.locator(".tile-name")).to_have_text("Li Wei（我）")
    await expect(page.locator("#room-status")).to_have_text("直播中")
    await shot(page, "own-tile-live-zh")
    await page.get_by_role("button", name="English").click()

    # Stopping takes the tile away; the owner may end the livestream, the viewer may not.
    await page.get_by_role("button", name="Stop").click()
    await expect(own).to_have_count(0)
    await expect(viewer.locator("#end-live")).to_be_hidden()
    await page.get_by_role("button", name="End live").click()
    dialog = page.locator("#end-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("heading")).to_have_text("End this livestream?")
    await shot(page, "end-live-confirm-en")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    assert await page.evaluate("window.fairwire.state") == "joined"

    await page.get_by_role("button", name="End live").click()
    await dialog.get_by_role("button", name="End live").click()
    for p in (page, viewer):
        assert (await failed(p))["code"] == "room_ended"
        await expect(p.locator("#error-message")).to_contain_text("This session has ended")
        await expect(p.locator("#room-status")).to_have_text("Ended")
    await shot(viewer, "ended-viewer-en")


async def test_muted_microphone_and_camera_off_show_on_a_viewers_page(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "mute-booth"
    await server.create_room(id=room, name="Suzhou Silk · Weaving line", kind="livestream",
                             status="live", owner="suzhou-silk")
    exhibitor = await open_room(new_page, server, room, "suzhou-silk", "exhibitor",
                                name="Zhang Min")
    viewer = await open_room(new_page, server, room, "buyer-watch", "buyer", name="Carlos Pérez")
    await go_live(exhibitor)
    await first_media_ms(viewer)
    tile = viewer.locator("#tiles [data-identity='suzhou-silk']")
    row = viewer.locator("#participants li[data-identity='suzhou-silk']")
    await decodes_tile(viewer, "suzhou-silk")
    await expect(tile.locator(".tile-mic-off")).to_be_hidden()
    await expect(tile.get_by_text("Camera off")).to_be_hidden()

    # Microphone off: a struck-through microphone on the tile and in the list.
    await exhibitor.get_by_role("button", name="Mute microphone").click()
    await expect(tile.get_by_role("img", name="Microphone off")).to_be_visible()
    await expect(row.get_by_role("img", name="Microphone off")).to_be_visible()
    await expect(exhibitor.locator("#tiles [data-self] .tile-mic-off")).to_be_visible()
    await expect(exhibitor.get_by_role("button", name="Unmute microphone")).to_be_visible()

    # Camera off: initials and name instead of a black picture.
    await exhibitor.get_by_role("button", name="Turn camera off").click()
    await expect(tile.get_by_text("Camera off")).to_be_visible()
    await expect(tile.locator(".tile-avatar")).to_have_text("ZM")
    await expect(tile.locator(".tile-off-name")).to_have_text("Zhang Min")
    await expect(tile.locator("video")).to_be_hidden()
    await expect(row.get_by_role("img", name="Camera off")).to_be_visible()
    await expect(exhibitor.locator("#tiles [data-self]").get_by_text("Camera off")).to_be_visible()
    await expect(viewer.locator("#stage-empty")).to_be_hidden()
    await shot(viewer, "muted-viewer-en")
    await shot(exhibitor, "muted-self-en")
    await viewer.get_by_role("button", name="中文").click()
    await expect(tile.get_by_text("摄像头已关闭")).to_be_visible()
    await expect(tile.get_by_role("img", name="麦克风已关闭")).to_be_visible()
    await shot(viewer, "muted-viewer-zh")
    await viewer.get_by_role("button", name="English").click()

    # Back on: the picture returns and plays, the muted microphone goes.
    await exhibitor.get_by_role("button", name="Turn camera on").click()
    await expect(tile.get_by_text("Camera off")).to_be_hidden()
    await expect(tile.locator("video")).to_be_visible()
    await decodes_tile(viewer, "suzhou-silk")
    await exhibitor.get_by_role("button", name="Unmute microphone").click()
    await expect(tile.locator(".tile-mic-off")).to_be_hidden()
    await expect(row.locator(".icon")).to_have_count(0)
    tracks = await viewer.evaluate(
        "window.fairwire.participants.find((p) => p.identity === 'suzhou-silk').tracks")
    assert tracks and all(t.get("muted") is False for t in tracks), tracks


async def test_the_links_language_is_the_pages_unless_the_person_chose_one(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "zh-booth"
    await server.create_room(id=room, name="杭州丝绸 · 展位 12", kind="livestream",
                             status="live", owner="hz-silk")
    token = await server.token(room, "hz-silk", "exhibitor", name="王芳", language="zh-CN")
    page = await new_page(locale="en-US")
    await page.goto(f"{server.url}/room/{room}?token={token}")
    await joined(page)
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.get_by_role("button", name="开始直播")).to_be_visible()
    await expect(page.locator("#participant-count")).to_have_text("台上 1 人")
    await expect(page.locator("#room-status")).to_have_text("即将开始")
    await expect(page.get_by_role("button", name="中文")).to_have_attribute("aria-pressed", "true")
    await shot(page, "language-from-token-zh")

    # ?lang= is the person's choice: it wins over the link's language.
    host = await server.token(room, "hz-host", "host", name="陈梅", language="zh-CN")
    chosen = await new_page(locale="en-US")
    await chosen.goto(f"{server.url}/room/{room}?token={host}&lang=en")
    await joined(chosen)
    await expect(chosen.get_by_role("button", name="Go live")).to_be_visible()

    # So does the switcher's stored choice, on the next visit too.
    await page.get_by_role("button", name="English").click()
    await expect(page.get_by_role("button", name="Go live")).to_be_visible()
    await page.reload()
    await joined(page)
    await expect(page.get_by_role("button", name="Go live")).to_be_visible()
    await expect(page.locator("#participant-count")).to_have_text("2 on stage")


async def test_an_unknown_room_says_it_does_not_exist(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id="real-hall", name="Real hall", kind="livestream", status="live")
    await server.create_room(id="private-talks", name="Private talks", kind="meeting",
                             status="live")
    real = await server.token("real-hall", "bob", "visitor", name="Bob")
    private = await server.token("private-talks", "eve", "buyer", name="Eve")

    # A mistyped room with a good link of another room: the room is unknown, not the link.
    page = await new_page()
    await page.goto(f"{server.url}/room/no-such-hall?token={real}&lang=en")
    assert (await failed(page))["code"] == "room_not_found"
    message = page.locator("#error-message")
    await expect(message).to_contain_text("This room does not exist")
    await expect(message).not_to_contain_text("another room")
    await expect(page.get_by_role("link", name="Back to the programme")).to_be_visible()
    await shot(page, "unknown-room-en")

    # A link of one existing room opened at another: that is still told as such.
    page = await new_page()
    await page.goto(f"{server.url}/room/real-hall?token={private}&lang=en")
    assert (await failed(page))["code"] == "wrong_room"
    await expect(page.locator("#error-message")).to_contain_text("for another room")

    # Without a link, a private room and an unknown one look the same.
    for room, lang, text in (("private-talks", "en", "does not exist or is private"),
                             ("nowhere-at-all", "zh", "该房间不存在或不公开")):
        page = await new_page()
        await page.goto(f"{server.url}/room/{room}?lang={lang}")
        assert (await failed(page))["code"] == "room_not_found"
        await expect(page.locator("#error-message")).to_contain_text(text)
    await shot(page, "unknown-room-guest-zh")


async def test_a_guest_watches_a_public_livestream_without_a_link(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "open-stream"
    await server.create_room(id=room, name="Opening keynote", kind="livestream", status="live")
    host = await open_room(new_page, server, room, "keynote-host", "host", name="Mei Chen")
    await go_live(host)

    guest = await new_page()
    await guest.goto(f"{server.url}/room/{room}?lang=en")
    await joined(guest)
    watching = guest.locator("#guest-watching")
    await expect(watching).to_have_text(re.compile(r"^Watching as Guest \d+$"))
    await first_media_ms(guest)
    await decodes_tile(guest, "keynote-host")
    await expect(guest.locator("#room-status")).to_have_text("LIVE")
    # Guests watch: no broadcast controls.
    await expect(guest.locator("#publish-panel")).to_be_hidden()
    me = await guest.evaluate("window.fairwire.self")
    assert me["guest"] is True and "publish" not in me["grants"], me
    assert await guest.evaluate("window.fairwire.guest") is True
    assert await guest.evaluate("typeof window.fairwire.credential") == "string"
    await shot(guest, "guest-watching-en")

    # A reload is the same guest.
    await guest.reload()
    await joined(guest)
    assert (await guest.evaluate("window.fairwire.self.identity")) == me["identity"]
    await expect(watching).to_have_text(f"Watching as {me['name']}")

    # A name of one's own, without a prompt.
    await guest.get_by_role("button", name="Change name").click()
    name_input = guest.get_by_role("textbox", name="Your name")
    await expect(name_input).to_have_value(me["name"])
    await shot(guest, "guest-rename-en")
    await name_input.fill("Anna Schmidt")
    await guest.get_by_role("button", name="Save").click()
    await expect(watching).to_have_text("Watching as Anna Schmidt")
    await joined(guest)
    assert (await guest.evaluate("window.fairwire.self.name")) == "Anna Schmidt"
    await first_media_ms(guest)
    await decodes_tile(guest, "keynote-host")
    stats = await inbound(guest)
    assert stats["frames"] > 0 and stats["width"] > 0, stats
    await guest.get_by_role("button", name="中文").click()
    await expect(watching).to_have_text("正在以“Anna Schmidt”的身份观看")
    await shot(guest, "guest-watching-zh")
    # The host counts one viewer: the renamed guest took the first one's place.
    await expect(host.locator("#audience")).to_contain_text("1 watching", timeout=10_000)


async def test_a_host_invites_a_buyer_on_stage_and_takes_them_off_again(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "stage-show"
    await server.create_room(id=room, name="Buyer Q&A · Textiles", kind="livestream",
                             status="live", owner="suzhou-textiles")
    host = await open_room(new_page, server, room, "expo-host", "host", name="Mei Chen")
    buyer = await open_room(new_page, server, room, "anna-buyer", "buyer", name="Anna Schmidt")
    viewer = await open_room(new_page, server, room, "walk-in", "visitor", name="Walk-in visitor")
    guest = await new_page()
    await guest.goto(f"{server.url}/room/{room}?lang=en")
    await joined(guest)
    guest_identity = await guest.evaluate("window.fairwire.self.identity")
    # In a livestream a buyer watches until invited.
    await expect(buyer.locator("#go-live")).to_be_hidden()
    await host.wait_for_function("() => window.fairwire.audience?.current === 3")

    # The host invites the buyer from the Viewers panel; guests are never offered.
    await host.get_by_role("button", name="Viewers").click()
    panel = host.locator("#viewers-panel")
    await expect(panel.locator("#viewers-list li[data-identity]")).to_have_count(3)
    anna = panel.locator("li[data-identity='anna-buyer']")
    await expect(anna.get_by_role("button", name="Invite on stage")).to_be_visible()
    await expect(panel.locator("li[data-identity='walk-in']").get_by_role(
        "button", name="Invite on stage")).to_be_visible()
    await expect(panel.locator(f"li[data-identity='{guest_identity}'] button")).to_have_count(0)
    await shot(host, "stage-viewers-en")
    await anna.get_by_role("button", name="Invite on stage").click()
    await expect(anna.get_by_text("Invited")).to_be_visible()

    # The buyer is asked, and accepts.
    invitation = buyer.locator("#stage-invitation")
    await expect(invitation).to_be_visible()
    await expect(invitation.get_by_role("heading")).to_have_text("You are invited on stage")
    await shot(buyer, "stage-invitation-en")
    await invitation.get_by_role("button", name="Accept").click()
    await expect(invitation).to_be_hidden()
    await expect(buyer.get_by_role("button", name="Go live")).to_be_visible()
    await expect(buyer.get_by_role("button", name="Step down")).to_be_visible()
    assert "publish" in await buyer.evaluate("window.fairwire.self.grants")
    assert await host.evaluate("window.fairwire.stage") == {"anna-buyer": "on"}
    await panel.get_by_role("button", name="Close").click()

    # On air: the viewer decodes the buyer's camera.
    await go_live(buyer)
    await expect(buyer.locator("#tiles [data-self]")).to_be_visible()
    await first_media_ms(viewer)
    await decodes_tile(viewer, "anna-buyer")
    await expect(viewer.locator("#tiles [data-identity='anna-buyer'] .tile-name")).to_have_text(
        "Anna Schmidt")
    await decodes_tile(guest, "anna-buyer")
    listed = host.locator("#participants li[data-identity='anna-buyer']")
    await expect(listed.locator(".badge-live")).to_be_visible(timeout=10_000)
    await shot(host, "stage-on-host-en")
    await shot(viewer, "stage-on-viewer-en")

    # The host takes her off: her broadcast stops, the viewer's tile goes.
    await listed.get_by_role("button", name="Remove from stage").click()
    await viewer.wait_for_function(NO_TILE_JS, arg="anna-buyer", timeout=10_000)
    await guest.wait_for_function(NO_TILE_JS, arg="anna-buyer", timeout=10_000)
    await buyer.wait_for_function("() => window.fairwire.publishing === false")
    await expect(buyer.locator("#tiles [data-self]")).to_have_count(0)
    await expect(buyer.locator("#go-live")).to_be_hidden()
    await expect(buyer.locator("#stage-notice")).to_have_text("You are no longer on stage.")
    assert "publish" not in await buyer.evaluate("window.fairwire.self.grants")
    await expect(listed).to_have_count(0, timeout=10_000)
    assert await host.evaluate("window.fairwire.stage") == {}
    await shot(buyer, "stage-off-buyer-en")

    # The visitor declines: the host may ask again.
    await viewer.get_by_role("button", name="中文").click()
    await host.get_by_role("button", name="Viewers").click()
    walk_in = panel.locator("li[data-identity='walk-in']")
    await walk_in.get_by_role("button", name="Invite on stage").click()
    visitor_invitation = viewer.locator("#stage-invitation")
    await expect(visitor_invitation.get_by_role("heading")).to_have_text("邀请您上台")
    await shot(viewer, "stage-invitation-zh")
    await visitor_invitation.get_by_role("button", name="谢绝").click()
    await expect(visitor_invitation).to_be_hidden()
    await expect(walk_in.get_by_role("button", name="Invite on stage")).to_be_visible()
    await expect(viewer.locator("#go-live")).to_be_hidden()


# Wraps the socket's `auth` so that the test sees which token each connect attempt offers.
SPY_AUTH_JS = """() => {
  const socket = window.fairwire.socket;
  window.__offered = [];
  if (socket.__spied) return;
  socket.__spied = true;
  const auth = socket.auth;
  socket.auth = (cb) => auth((data) => { window.__offered.push(data.token); cb(data); });
}"""

CLAIMS_JS = """(jwt) => JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")))"""


async def link(server: FairwireServer, room: str, identity: str, role: str,
               name: str) -> dict[str, Any]:
    """``POST /api/tokens`` (API key): the whole answer, with ``token_id`` for revoking."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.url}/api/tokens",
                     headers={"Authorization": f"Bearer {server.api_key}"},
                     json={"room": room, "identity": identity, "role": role, "name": name}
                     ) as response,
    ):
        assert response.status == 200, await response.text()
        data: dict[str, Any] = await response.json()
        return data


async def test_the_page_reconnects_with_its_session_credential_and_ends_when_the_link_is_withdrawn(
    fairwire_server_factory: Callable[..., FairwireServer], new_page: NewPage
) -> None:
    server = fairwire_server_factory(FAIRWIRE_SESSION_TTL="30")
    room = "cred-booth"
    await server.create_room(id=room, name="Credential booth", kind="livestream", status="live",
                             owner="cred-exhibitor")
    issued = await link(server, room, "cred-exhibitor", "exhibitor", "Li Wei")
    page = await new_page()
    await page.goto(server.room_url(room, issued["token"], lang="en"))
    await joined(page)

    # The page holds a session credential of its own, not the link.
    credential = await page.evaluate("window.fairwire.credential")
    assert credential != issued["token"]
    claims = await page.evaluate(CLAIMS_JS, credential)
    assert claims["use"] == "session" and claims["sub"] == "cred-exhibitor", claims

    # A dropped connection comes back with it.
    await page.evaluate(SPY_AUTH_JS)
    assert await page.evaluate("(ms) => window.fairwire._dropConnectionFor(ms)", 300)
    await page.wait_for_function("() => window.__offered.length >= 1")
    await joined(page)
    offered = await page.evaluate("window.__offered")
    assert offered[0] == credential, "reconnected without the session credential"

    # A credential the server refuses: once more with the link, and the page is back.
    await page.evaluate("""() => { const socket = window.fairwire.socket;
        const forged = {token: "not.a.credential", expires_in: 100,
                        expires_at: Date.now() / 1000 + 1e6};
        for (const h of socket.listeners("credential")) h(forged); }""")
    await page.evaluate(SPY_AUTH_JS)
    assert await page.evaluate("(ms) => window.fairwire._dropConnectionFor(ms)", 300)
    await page.wait_for_function("() => window.__offered.length >= 2", timeout=10_000)
    await joined(page)
    offered = await page.evaluate("window.__offered")
    assert offered[:2] == ["not.a.credential", issued["token"]], offered
    await expect(page.get_by_role("button", name="Go live")).to_be_visible()

    # The organiser withdraws the link: the page ends and says so.
    async with (
        aiohttp.ClientSession() as session,
        session.delete(f"{server.url}/api/tokens/{issued['token_id']}",
                       headers={"Authorization": f"Bearer {server.api_key}"}) as response,
    ):
        assert response.status == 204, await response.text()
    error = await page.wait_for_function(
        "() => window.fairwire.state === 'error' && window.fairwire.error", timeout=20_000)
    assert (await error.json_value())["code"] == "token_revoked"
    await expect(page.locator("#error-message")).to_contain_text(
        "This link was withdrawn by the organiser")
    await expect(page.get_by_role("button", name="Try again")).to_be_hidden()
    await shot(page, "link-withdrawn-en")
    # Opening it again says the same.
    await page.reload()
    assert (await failed(page))["code"] == "token_revoked"
    await page.get_by_role("button", name="中文").click()
    await expect(page.locator("#error-message")).to_contain_text("该链接已被主办方撤回")


async def test_too_many_guests_from_one_network_wait_and_retry(
    fairwire_server_factory: Callable[..., FairwireServer], new_page: NewPage
) -> None:
    server = fairwire_server_factory(FAIRWIRE_GUEST_TOKENS_PER_MINUTE="1")
    room = "busy-stream"
    await server.create_room(id=room, name="Busy stream", kind="livestream", status="live")
    first = await new_page()
    await first.goto(f"{server.url}/room/{room}?lang=en")
    await joined(first)
    second = await new_page()
    await second.goto(f"{server.url}/room/{room}?lang=en")
    notice = second.locator("#connection")
    await expect(notice).to_contain_text(
        "Too many visitors from your network right now, retrying")
    assert await second.evaluate("window.fairwire.state") == "connecting"
    await shot(second, "guest-busy-en")
