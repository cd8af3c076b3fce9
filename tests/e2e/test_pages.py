"""The web pages in a real browser against the real server: programme, presence, errors."""

from __future__ import annotations

import time

import pytest
from browser import NewPage
from playwright.async_api import Page, expect
from server_process import FairwireServer

from rooms import Role
from signalling.auth import TokenIssuer

# One Chromium for the session: these tests run in the session loop (see tests/browser.py).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def joined(page: Page) -> None:
    await page.wait_for_function(
        "() => window.fairwire && window.fairwire.state === 'joined'", timeout=15_000
    )


async def participant_names(page: Page) -> list[str]:
    names: list[str] = await page.evaluate("window.fairwire.participants.map(p => p.name).sort()")
    return names


async def test_index_lists_rooms_by_category_in_both_languages(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(
        id="machinery-live",
        name="CNC line tour",
        kind="livestream",
        category="Machinery",
        status="live",
    )
    await server.create_room(
        id="textiles-later",
        name="Silk weaving demo",
        kind="livestream",
        category="Textiles",
        scheduled_start=time.time() + 86_400,
    )
    # Meetings are private unless made public: a private one is listed to nobody.
    await server.create_room(id="no-category", name="Buyer meeting", kind="meeting",
                             visibility="public")
    await server.create_room(id="private-talk", name="Private talk", kind="meeting")
    ended = await server.create_room(
        id="old-stream",
        name="Opening ceremony",
        kind="livestream",
        category="Machinery",
        status="live",
    )
    await server.set_status(ended["id"], "ended")

    page = await new_page()
    await page.goto(server.url + "/?lang=en")
    machinery = page.locator("section.category[data-category='Machinery']")
    await expect(machinery.locator("h2")).to_have_text("Machinery")
    live_card = machinery.locator("[data-room-id='machinery-live']")
    # Open (status live) but nobody broadcasts yet: "Starting soon", not LIVE.
    await expect(live_card.locator(".badge-soon")).to_have_text("Starting soon")
    assert await live_card.locator(".badge-live").count() == 0
    await expect(live_card.locator(".chip")).to_have_text("Livestream")
    textiles = page.locator("section.category[data-category='Textiles']")
    scheduled = textiles.locator("[data-room-id='textiles-later']")
    await expect(scheduled).to_contain_text("Silk weaving demo")
    await expect(scheduled.locator(".room-time")).to_contain_text("Starts")
    other = page.locator("section.category[data-category='']")
    await expect(other.locator("h2")).to_have_text("Other")
    await expect(other).to_contain_text("Meeting")
    # Live categories come first; ended rooms are collapsed under "Past".
    order = await page.locator("section.category h2").all_inner_texts()
    assert order == ["Machinery", "Textiles", "Other"]
    assert await machinery.locator("[data-room-id='old-stream']").count() == 0
    assert await page.locator("[data-room-id='private-talk']").count() == 0
    past = page.locator("details#past")
    await expect(past.locator("summary")).to_contain_text("Past")
    assert await past.get_attribute("open") is None
    await expect(past.locator("[data-room-id='old-stream']")).to_be_attached()
    await page.screenshot(path="/tmp/index.png", full_page=True)

    await page.goto(server.url + "/?lang=zh")
    await expect(machinery.locator(".badge-soon")).to_have_text("即将开始")
    await expect(live_card.locator(".chip")).to_have_text("直播")
    await expect(other.locator("h2")).to_have_text("其他")
    await expect(other).to_contain_text("洽谈")
    await expect(past.locator("summary")).to_contain_text("往届回放")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

    # The switcher changes the language in place and remembers it.
    await page.get_by_role("button", name="English").click()
    await expect(machinery.locator(".badge-soon")).to_have_text("Starting soon")
    await page.goto(server.url + "/")
    await expect(machinery.locator(".badge-soon")).to_have_text("Starting soon")


async def test_presence_two_people_see_each_other(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = await server.create_room(
        id="booth-42",
        name="Ningbo Pumps · Booth 42",
        kind="meeting",
        category="Machinery",
        status="live",
    )
    exhibitor = await server.token(room["id"], "li.wei", "exhibitor", name="Li Wei")
    buyer = await server.token(room["id"], "anna", "buyer", name="Anna Schmidt")

    first = await new_page()
    await first.goto(server.room_url(room["id"], exhibitor, lang="en"))
    await joined(first)
    second = await new_page()
    await second.goto(server.room_url(room["id"], buyer, lang="zh"))
    await joined(second)

    for page in (first, second):
        await page.wait_for_function("() => window.fairwire.participants.length === 2")
        assert await participant_names(page) == ["Anna Schmidt", "Li Wei"]
    # Both follow the room's event log: the first page saw Anna arrive as a delta.
    seq: int = await first.evaluate("window.fairwire.seq")
    assert seq >= 2 and await second.evaluate("window.fairwire.seq") == seq
    await expect(first.locator("#participant-count")).to_have_text("2 here")
    await expect(second.locator("#participant-count")).to_have_text("2 人在线")
    await expect(first.locator("#participants li")).to_have_count(2)
    await expect(first.locator("#room-name")).to_have_text("Ningbo Pumps · Booth 42")
    await expect(first.locator("#participants li[data-identity='anna'] .role-badge")).to_have_text(
        "Buyer"
    )
    await expect(second.locator("#participants li[data-identity='anna'] .role-badge")).to_have_text(
        "采购商"
    )
    await expect(
        second.locator("#participants li[data-identity='li.wei'] .role-badge")
    ).to_have_text("展商")
    # Both may publish: the "Go live" button is offered.
    await expect(first.get_by_role("button", name="Go live")).to_be_visible()
    await expect(second.get_by_role("button", name="开始直播")).to_be_visible()
    self_info = await first.evaluate("window.fairwire.self")
    assert self_info["identity"] == "li.wei" and "publish" in self_info["grants"]
    await first.screenshot(path="/tmp/room.png", full_page=True)

    await second.close()
    await first.wait_for_function("() => window.fairwire.participants.length === 1", timeout=5_000)
    assert await participant_names(first) == ["Li Wei"]
    assert await first.evaluate("window.fairwire.seq") == seq + 1
    await expect(first.locator("#participants li")).to_have_count(1)


async def test_forged_and_unknown_room_tokens_show_errors(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = await server.create_room(id="hall-b", name="Hall B", kind="livestream")
    forged = TokenIssuer("not-the-server-secret-" + "x" * 32, 3600).issue_link(
        room=room["id"], identity="mallory", name="Mallory", role=Role.HOST
    ).token
    page = await new_page()
    await page.goto(server.room_url(room["id"], forged, lang="en"))
    await page.wait_for_function("() => window.fairwire.state === 'error'")
    error = await page.evaluate("window.fairwire.error")
    assert error["code"] == "invalid_token"
    await expect(page.locator("#error-panel")).to_be_visible()
    await expect(page.locator("#error-message")).to_contain_text("not valid")
    await page.screenshot(path="/tmp/room-error.png")

    # A correctly signed token for a room that does not exist.
    unknown = TokenIssuer(server.jwt_secret, 3600).issue_link(
        room="no-such-room", identity="bob", name="Bob", role=Role.VISITOR
    ).token
    page = await new_page()
    await page.goto(server.room_url("no-such-room", unknown, lang="zh"))
    await page.wait_for_function("() => window.fairwire.state === 'error'")
    error = await page.evaluate("window.fairwire.error")
    assert error["code"] == "room_not_found"
    await expect(page.locator("#error-message")).to_contain_text("房间不存在")

    # No token for a private room: the page asks for a guest link, which a private room does
    # not give (nor says it exists). Public rooms without a token: test_room_page_truths.py.
    meeting = await server.create_room(id="hall-c", name="Hall C deal", kind="meeting")
    page = await new_page()
    await page.goto(f"{server.url}/room/{meeting['id']}?lang=en")
    await page.wait_for_function("() => window.fairwire.state === 'error'")
    assert (await page.evaluate("window.fairwire.error"))["code"] == "room_not_found"
    await expect(page.locator("#error-message")).to_contain_text("private")
