"""The host console (/console) in real Chromium against the real server, with the programme.

A host signs in with the API key, schedules a livestream and a meeting, hands out a studio link
and a meeting guest link; the exhibitor goes live from the studio link, a guest with no token
finds the LIVE card on the programme and watches; the private meeting is listed to nobody.
A host token signs in to its own room only; a revoked link shows as revoked; a key the server
refuses sends the console back to sign-in with the server's words.

Screenshots of every console state go to /tmp/c8/shots/console-*.png.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from browser import NewPage
from playwright.async_api import Page, expect
from room_page import first_media_ms
from server_process import FairwireServer

# One Chromium for the session: these tests run in the session loop (see tests/browser.py).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path("/tmp/c8/shots")
# The programme refreshes every 10 s; the console every 5 s.
PROGRAMME_REFRESH_MS = 25_000
CONSOLE_REFRESH_MS = 12_000


def payload(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (what a page reads)."""
    middle = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(middle + "=" * (-len(middle) % 4)))
    return claims


def token_of(url: str) -> str:
    return url.split("token=", 1)[1].split("&", 1)[0]


def local_input(seconds: float) -> str:
    """A datetime-local value in this machine's time zone (the browser's, too)."""
    return time.strftime("%Y-%m-%dT%H:%M", time.localtime(seconds))


SHOTS.mkdir(parents=True, exist_ok=True)


async def shot(page: Page, name: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"console-{name}.png"), full_page=True)


async def api(server: FairwireServer, method: str, path: str,
              credential: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.url + path, headers=headers) as response,
    ):
        body = await response.json() if response.status != 204 else None
        return response.status, body


async def sign_in(page: Page, server: FairwireServer, credential: str, lang: str = "en") -> None:
    await page.goto(f"{server.url}/console?lang={lang}")
    await expect(page.locator("#view-signin")).to_be_visible()
    await page.fill("#credential", credential)
    await page.click("#signin-submit")
    await page.wait_for_function(
        "() => window.fairwireConsole.signedIn && window.fairwireConsole.rooms !== null")


async def open_new_room_form(page: Page) -> None:
    await page.click("#new-room")
    await expect(page.locator("#view-form")).to_be_visible()
    await expect(page.locator("#form-heading")).to_have_text("New room")


async def submit_room(page: Page, room_id: str) -> dict[str, Any]:
    await page.click("#form-submit")
    await page.wait_for_function(
        "(id) => { const c = window.fairwireConsole;"
        " return c.view === 'room' && c.room && c.room.id === id; }", arg=room_id)
    room: dict[str, Any] = await page.evaluate("window.fairwireConsole.room")
    return room


async def issue_link(page: Page, preset: str, name: str | None = None,
                     ttl: str | None = None, language: str | None = None) -> dict[str, Any]:
    before = await page.evaluate(
        "window.fairwireConsole.lastLink && window.fairwireConsole.lastLink.token_id")
    await page.click(f"#presets [data-preset='{preset}']")
    if name is not None:
        await page.fill("#l-name", name)
    if ttl is not None:
        await page.select_option("#l-ttl", ttl)
    if language is not None:
        await page.select_option("#l-language", language)
    await page.click("#link-submit")
    await page.wait_for_function(
        "(before) => { const l = window.fairwireConsole.lastLink;"
        " return l && l.token_id !== before; }", arg=before)
    link: dict[str, Any] = await page.evaluate("window.fairwireConsole.lastLink")
    # The page shows the same link it keeps, ready to copy, and lists it as issued.
    await expect(page.locator("#link-url")).to_have_value(link["url"])
    listed = page.locator(f"#links-list [data-token-id='{link['token_id']}']")
    await expect(listed).to_have_attribute("data-state", "active")
    return link


async def test_host_schedules_rooms_sends_links_and_the_programme_shows_the_live_one(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    host = await new_page(permissions=["clipboard-read", "clipboard-write"])

    # Signed out: the sign-in form; a wrong key is refused in the server's words.
    await host.goto(f"{server.url}/console?lang=en")
    await expect(host.locator("#signin-heading")).to_have_text("Sign in to the host console")
    await expect(host.locator("#sign-out")).to_be_hidden()
    await shot(host, "signed-out-en")
    await host.fill("#credential", "not-the-key")
    await host.click("#signin-submit")
    await expect(host.locator("#signin-message")).to_contain_text("did not accept")
    assert (await host.evaluate("window.fairwireConsole.error"))["status"] == 401
    await shot(host, "signin-refused-en")

    await host.fill("#credential", server.api_key)
    await host.click("#signin-submit")
    await host.wait_for_function("() => window.fairwireConsole.rooms !== null")
    assert await host.evaluate("window.fairwireConsole.mode") == "operator"
    await expect(host.locator("#who")).to_have_text("Operator · all rooms")
    assert await host.evaluate("window.sessionStorage.getItem('fairwire.console.credential')") == (
        server.api_key)

    # A livestream with an owner, scheduled an hour from now.
    start = time.time() + 3600
    await open_new_room_form(host)
    await host.fill("#f-name", "CNC line tour · Booth 42")
    await host.fill("#f-id", "cnc-tour")
    await host.select_option("#f-kind", "livestream")
    await expect(host.locator("#f-lobby")).to_be_hidden()
    await host.fill("#f-category", "Machinery")
    await host.fill("#f-owner", "ningbo-pumps")
    await host.fill("#f-start", local_input(start))
    await host.fill("#f-end", local_input(start + 5400))
    await host.fill("#f-languages", "en, zh-CN")
    await expect(host.locator("#f-public")).to_be_checked()
    await expect(host.locator("#f-record")).to_be_checked()
    await shot(host, "create-en")
    live_room = await submit_room(host, "cnc-tour")
    assert live_room["kind"] == "livestream" and live_room["visibility"] == "public"
    assert live_room["owner"] == "ningbo-pumps" and live_room["category"] == "Machinery"
    assert live_room["languages"] == ["en", "zh-CN"] and live_room["record"] is True
    assert live_room["scheduled_start"] == int(start) // 60 * 60
    assert live_room["scheduled_end"] == int(start + 5400) // 60 * 60
    await expect(host.locator("#notice")).to_contain_text("created")
    await expect(host.locator("#room-badges [data-status]")).to_have_text("Scheduled")

    # The studio link is the owner's: identity fixed, exhibitor role.
    await expect(host.locator("#l-identity")).to_have_value("ningbo-pumps")
    studio = await issue_link(host, "studio", name="Li Wei", ttl="86400")
    claims = payload(studio["token"])
    assert claims["sub"] == "ningbo-pumps" and claims["role"] == "exhibitor"
    assert claims["room"] == "cnc-tour" and claims["name"] == "Li Wei"
    assert 86_000 < claims["exp"] - time.time() <= 86_400
    assert studio["url"].startswith(f"{server.url}/room/cnc-tour?token=")
    await host.click("#copy-link")
    await expect(host.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert await host.evaluate("navigator.clipboard.readText()") == studio["url"]
    await shot(host, "link-issued-en")

    # A meeting: private by default, a guest link for a buyer.
    await host.click("#room-back")
    await expect(host.locator("#view-list")).to_be_visible()
    await open_new_room_form(host)
    await host.fill("#f-name", "Pump pricing talk")
    await host.fill("#f-id", "pricing-talk")
    await host.select_option("#f-kind", "meeting")
    await host.fill("#f-owner", "ningbo-pumps")
    await expect(host.locator("#f-private")).to_be_checked()
    await expect(host.locator("#f-record")).not_to_be_checked()
    # A meeting's choice only, off unless asked (Anna below comes straight in).
    await expect(host.locator("#f-lobby")).to_be_visible()
    await expect(host.locator("#f-lobby")).not_to_be_checked()
    meeting = await submit_room(host, "pricing-talk")
    assert meeting["kind"] == "meeting" and meeting["visibility"] == "private"
    assert meeting["lobby"] is False
    await expect(host.locator("#presets [data-preset]")).to_have_count(3)  # exhibitor, guest, host
    guest_link = await issue_link(host, "guest", name="Anna Schmidt", language="zh-CN")
    claims = payload(guest_link["token"])
    assert claims["role"] == "buyer" and claims["room"] == "pricing-talk"
    assert claims["name"] == "Anna Schmidt" and claims["lang"] == "zh-CN"
    assert claims["sub"].startswith("anna-schmidt-")

    # The rooms, as the console lists them.
    await host.click("#room-back")
    await expect(host.locator("#rooms-body tr")).to_have_count(2)
    row = host.locator("#rooms-body tr[data-room-id='pricing-talk']")
    await expect(row.locator("[data-visibility]")).to_have_text("Private")
    await expect(row).to_contain_text("Meeting")

    # The exhibitor opens the studio link and goes live.
    exhibitor = await new_page()
    await exhibitor.goto(studio["url"])
    await exhibitor.wait_for_function("() => window.fairwire && window.fairwire.state === 'joined'")
    await exhibitor.click("#go-live")
    await exhibitor.wait_for_function("() => window.fairwire.publishing === true")
    # Publishing in a scheduled room opened it: LIVE in the console.
    live_row = host.locator("#rooms-body tr[data-room-id='cnc-tour']")
    await expect(live_row.locator("[data-status]")).to_have_text("LIVE", timeout=CONSOLE_REFRESH_MS)
    await expect(live_row.locator(".col-people")).to_have_text("1", timeout=CONSOLE_REFRESH_MS)
    await shot(host, "rooms-en")

    # A guest with no token: the programme, the LIVE card, the video.
    guest = await new_page()
    await guest.goto(f"{server.url}/?lang=en")
    card = guest.locator("[data-room-id='cnc-tour']")
    await expect(card.locator(".badge-live")).to_have_text("LIVE", timeout=PROGRAMME_REFRESH_MS)
    # The private meeting is listed to nobody without its token.
    listed = await guest.evaluate("window.fairwireIndex.rooms.map((r) => r.id)")
    assert "cnc-tour" in listed and "pricing-talk" not in listed
    assert await guest.locator("[data-room-id='pricing-talk']").count() == 0
    status, body = await api(server, "GET", "/api/rooms")
    assert status == 200 and [r["id"] for r in body["rooms"]] == ["cnc-tour"]
    await guest.screenshot(path=str(SHOTS / "programme-live-en.png"), full_page=True)
    await card.locator(".room-name a").click()
    await guest.wait_for_url(f"{server.url}/room/cnc-tour")
    await guest.wait_for_function("() => window.fairwire && window.fairwire.state === 'joined'",
                                  timeout=20_000)
    assert (await guest.evaluate("window.fairwire.self"))["role"] == "visitor"
    await first_media_ms(guest)

    # The meeting guest link opens the meeting for Anna (a buyer).
    anna = await new_page()
    await anna.goto(guest_link["url"])
    await anna.wait_for_function("() => window.fairwire && window.fairwire.state === 'joined'")
    anna_self = await anna.evaluate("window.fairwire.self")
    assert anna_self["role"] == "buyer" and anna_self["name"] == "Anna Schmidt"

    # The console shows who is in the livestream: the exhibitor, on air.
    await host.click("#rooms-body tr[data-room-id='cnc-tour'] .room-link")
    person = host.locator("#participants li[data-identity='ningbo-pumps']")
    await expect(person).to_be_visible(timeout=CONSOLE_REFRESH_MS)
    await expect(person.locator(".role-badge")).to_have_text("Exhibitor")
    await expect(person.locator(".on-air")).to_be_visible(timeout=CONSOLE_REFRESH_MS)
    people = await host.evaluate("window.fairwireConsole.participants.map((p) => p.identity)")
    assert "ningbo-pumps" in people
    await expect(host.locator("#room-badges [data-status]")).to_have_text("LIVE")
    await shot(host, "participants-en")

    # The same in Chinese, in place.
    await host.get_by_role("button", name="中文").click()
    await expect(host.locator("#room-badges [data-status]")).to_have_text("直播中")
    await expect(person.locator(".role-badge")).to_have_text("展商")
    await expect(host.locator("#participants-heading")).to_have_text("在场人员")
    await expect(host.locator("#presets [data-preset='studio']")).to_contain_text("直播间链接")
    await shot(host, "participants-zh")
    await host.click("#room-back")
    await expect(host.locator("#rooms-body tr[data-room-id='pricing-talk'] [data-visibility]")
                 ).to_have_text("私密")
    await shot(host, "rooms-zh")
    await host.click("#new-room")
    await expect(host.locator("#form-heading")).to_have_text("新建房间")
    await shot(host, "create-zh")

    # Edit: same fields but the kind; the programme follows.
    await host.goto(f"{server.url}/console#/room/cnc-tour/edit")
    await expect(host.locator("#f-kind")).to_be_disabled()
    await expect(host.locator("#f-name")).to_have_value("CNC line tour · Booth 42")
    await host.fill("#f-name", "CNC line tour · Hall 3")
    await host.click("#form-submit")
    await host.wait_for_function(
        "() => window.fairwireConsole.view === 'room'"
        " && window.fairwireConsole.room.name === 'CNC line tour · Hall 3'")
    status, body = await api(server, "GET", "/api/rooms/cnc-tour")
    assert body["name"] == "CNC line tour · Hall 3" and body["kind"] == "livestream"

    # Signing out forgets the key.
    await host.click("#sign-out")
    await expect(host.locator("#view-signin")).to_be_visible()
    await expect(host.locator("#signin-message")).to_contain_text("退出登录")
    kept = await host.evaluate("window.sessionStorage.getItem('fairwire.console.credential')")
    assert kept is None
    await shot(host, "signed-out-zh")


async def test_a_host_token_manages_its_own_room_and_revokes_a_link(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id="valves-live", name="Valve factory floor", kind="livestream",
                             category="Machinery", owner="zj-valves")
    await server.create_room(id="other-booth", name="Someone else's booth", kind="livestream")
    host_token = await server.token("valves-live", "mei.host", "host", name="Mei")
    host_url = f"{server.url}/room/valves-live?token={host_token}"

    # A host pastes the whole host link: the console takes its token, shows one room.
    page = await new_page()
    await sign_in(page, server, host_url)
    assert await page.evaluate("window.fairwireConsole.mode") == "host"
    await page.wait_for_function("() => window.fairwireConsole.view === 'room'"
                                 " && window.fairwireConsole.room"
                                 " && window.fairwireConsole.room.id === 'valves-live'")
    await expect(page.locator("#who")).to_contain_text("Host · Valve factory floor")
    await expect(page.locator("#room-back")).to_be_hidden()
    rooms = await page.evaluate("window.fairwireConsole.rooms.map((r) => r.id)")
    assert rooms == ["valves-live"]
    # No creating rooms, no host links: a host issues exhibitor, buyer and visitor links.
    await page.goto(f"{server.url}/console#/new")
    await page.wait_for_function("() => window.fairwireConsole.view === 'room'")
    await expect(page.locator("#presets [data-preset='host']")).to_have_count(0)
    await expect(page.locator("#presets [data-preset]")).to_have_count(3)
    await page.goto(f"{server.url}/console#/room/other-booth")
    await page.wait_for_function("() => window.fairwireConsole.roomId === 'valves-live'")

    viewer = await issue_link(page, "viewer", name="Tom Becker")
    assert payload(viewer["token"])["role"] == "visitor"
    item = page.locator(f"#links-list [data-token-id='{viewer['token_id']}']")
    await expect(item).to_contain_text("Tom Becker")
    await expect(item).to_contain_text("Active")
    # No clipboard (plain http on another host, or refused): the link is selected to copy by hand.
    await page.evaluate("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    await page.click("#copy-link")
    await expect(page.locator("#copy-status")).to_contain_text("press Ctrl+C")
    selected = await page.evaluate(
        "(() => { const i = document.getElementById('link-url');"
        " return i.value.slice(i.selectionStart, i.selectionEnd); })()")
    assert selected == viewer["url"]
    await shot(page, "host-en")

    # Revoke, confirming in the dialog: the list shows it revoked, the server agrees.
    await item.locator(".button-revoke").click()
    await expect(page.locator("#confirm")).to_be_visible()
    await expect(page.locator("#confirm-title")).to_have_text("Revoke the link for Tom Becker?")
    await shot(page, "revoke-confirm-en")
    await page.click("#confirm-cancel")
    await expect(page.locator("#confirm")).to_be_hidden()
    await expect(item).to_have_attribute("data-state", "active")
    await item.locator(".button-revoke").click()
    await page.click("#confirm-ok")
    await expect(item).to_have_attribute("data-state", "revoked")
    await expect(item.locator(".link-state")).to_have_text("Revoked")
    await expect(item.locator(".button-revoke")).to_have_count(0)
    await expect(page.locator("#notice")).to_contain_text("revoked")
    status, body = await api(server, "GET", "/api/rooms/valves-live/links", server.api_key)
    assert status == 200
    revoked = [link["revoked"] for link in body["links"] if link["token_id"] == viewer["token_id"]]
    assert revoked == [True]
    # Still revoked after the next refresh (the server's list, not just the page's).
    await page.wait_for_timeout(6000)
    await expect(item).to_have_attribute("data-state", "revoked")
    await shot(page, "revoked-en")

    # The operator withdraws the host's own link: at its next request the console signs out
    # and says why.
    status, body = await api(server, "GET", "/api/rooms/valves-live/links", server.api_key)
    [host_id] = [link["token_id"] for link in body["links"] if link["identity"] == "mei.host"]
    status, _ = await api(server, "DELETE", f"/api/tokens/{host_id}", server.api_key)
    assert status == 204
    await expect(page.locator("#view-signin")).to_be_visible(timeout=CONSOLE_REFRESH_MS)
    await expect(page.locator("#signin-message")).to_contain_text("signed out")
    error = await page.evaluate("window.fairwireConsole.error")
    assert error["status"] == 401 and error["code"] == "token_revoked", error
    await shot(page, "session-ended-en")


async def test_errors_are_shown_in_plain_words(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id="taken-id", name="Already here", kind="meeting")
    visitor_token = await server.token("taken-id", "someone", "visitor")

    page = await new_page()
    # A token that is not a host's is turned away before anything else.
    await page.goto(f"{server.url}/console?lang=en")
    await page.fill("#credential", visitor_token)
    await page.click("#signin-submit")
    await expect(page.locator("#signin-message")).to_contain_text("not a host")

    await sign_in(page, server, server.api_key)
    await open_new_room_form(page)
    await page.fill("#f-name", "Duplicate")
    await page.fill("#f-id", "taken-id")
    await page.click("#form-submit")
    await expect(page.locator("#form-error")).to_contain_text("Creating the room failed")
    error = await page.evaluate("window.fairwireConsole.error")
    assert error["status"] == 409, error
    await expect(page.locator("#form-error")).to_contain_text(error["message"])
    await shot(page, "create-error-en")
    # Checked on the page before sending: an end before the start.
    await page.fill("#f-id", "new-id")
    await page.fill("#f-start", local_input(time.time() + 7200))
    await page.fill("#f-end", local_input(time.time() + 3600))
    await page.click("#form-submit")
    await expect(page.locator("#form-error")).to_have_text("The end must be after the start.")
    await expect(page.locator("#f-end")).to_have_attribute("aria-invalid", "true")

    # Ending a room: confirmed, then no more links.
    await page.goto(f"{server.url}/console#/room/taken-id")
    await page.wait_for_function("() => window.fairwireConsole.room"
                                 " && window.fairwireConsole.room.id === 'taken-id'")
    await page.click("#room-end")
    await expect(page.locator("#confirm-title")).to_have_text("End “Already here”?")
    await page.click("#confirm-ok")
    await expect(page.locator("#room-badges [data-status]")).to_have_text("Ended")
    await expect(page.locator("#room-end")).to_be_hidden()
    await expect(page.locator("#link-submit")).to_be_disabled()
    status, body = await api(server, "GET", "/api/rooms/taken-id", server.api_key)
    assert status == 200 and body["status"] == "ended"
