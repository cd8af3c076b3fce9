"""The schedule page (``/schedule``) in Chromium against the real server: livestreams by day (in
the viewer's time zone) and category, live now first, the category filter, both languages; and
a self-started live going on air from its studio link."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from browser import NewPage
from playwright.async_api import Page, expect
from server_process import FairwireServer

# One Chromium for the session: these tests run in the session loop (see tests/browser.py).
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path("/tmp/c9/shots")
ZONE = "Asia/Shanghai"


def at(day: date, hour: int, minute: int = 0, zone: str = ZONE) -> float:
    """UNIX seconds of a wall-clock time on ``day`` in ``zone``."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone)).timestamp()


async def shot(page: Page, name: str) -> None:
    # Playwright makes the directory. From the top: the sticky top bar stays at the top.
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"schedule-{name}.png"), full_page=True)


async def call(server: FairwireServer, method: str, path: str, token: str | None = None,
               body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token or server.api_key}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.url + path, json=body, headers=headers) as response,
    ):
        data: dict[str, Any] = await response.json()
        return response.status, data


def watch_errors(page: Page) -> list[str]:
    """Script errors and console errors (a CSP refusal is one) the page reports."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


async def schedule_page(new_page: NewPage, server: FairwireServer, query: str = "",
                        zone: str = ZONE) -> tuple[Page, list[str]]:
    page = await new_page(timezone_id=zone)
    errors = watch_errors(page)
    await page.goto(f"{server.url}/schedule{query}")
    await page.wait_for_function("() => window.fairwireSchedule.rooms !== null")
    return page, errors


# Lines whose time runs into their name (a long range that does not wrap).
OVERLAPS_JS = """() => [...document.querySelectorAll('.schedule-item')].filter((item) => {
  const time = item.querySelector('.schedule-time').getBoundingClientRect();
  const main = item.querySelector('.schedule-main').getBoundingClientRect();
  return time.right > main.left;
}).map((item) => item.dataset.roomId)"""


async def overlapping(page: Page) -> list[str]:
    ids: list[str] = await page.evaluate(OVERLAPS_JS)
    return ids


async def days_shown(page: Page) -> list[dict[str, Any]]:
    days: list[dict[str, Any]] = await page.evaluate("window.fairwireSchedule.days")
    return days


async def test_the_schedule_groups_lives_by_day_and_category_with_live_now_first(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    today = datetime.now(ZoneInfo(ZONE)).date()
    tomorrow = today + timedelta(days=1)
    for fields in [
        dict(id="cnc-morning", name="CNC machining centre tour", category="Machinery",
             scheduled_start=at(today, 9), scheduled_end=at(today, 10)),
        dict(id="pumps-afternoon", name="Ningbo pumps under load", category="Machinery",
             scheduled_start=at(today, 15), scheduled_end=at(today, 16, 30)),
        dict(id="silk-noon", name="Silk weaving, loom to bolt", category="Textiles",
             scheduled_start=at(today, 12), scheduled_end=at(today, 13),
             languages=["zh-CN", "en"]),
        dict(id="no-category", name="Welcome from the organisers",
             scheduled_start=at(today, 8, 30)),
        dict(id="dyeing-tomorrow", name="Natural dyeing workshop", category="Textiles",
             scheduled_start=at(tomorrow, 10), scheduled_end=at(tomorrow, 11)),
        dict(id="lathe-tomorrow", name="Five-axis lathe demo", category="Machinery",
             scheduled_start=at(tomorrow, 9, 30)),
        dict(id="soon-live", name="Injection moulding line", category="Machinery",
             status="live", scheduled_start=at(today, 0, 5)),
        # Not on the schedule: private, a meeting, next month, untimed.
        dict(id="buyers-only", name="Buyers only preview", category="Machinery",
             scheduled_start=at(today, 11), visibility="private"),
        dict(id="deal-room", name="Deal room", kind="meeting", visibility="public",
             scheduled_start=at(today, 11)),
        dict(id="next-month", name="Next month", scheduled_start=at(today + timedelta(30), 9)),
        dict(id="untimed", name="Some day"),
    ]:
        fields.setdefault("kind", "livestream")
        await server.create_room(**fields)
    ended = await server.create_room(id="ended-today", name="Opening ceremony",
                                     kind="livestream", category="Textiles", status="live")
    await server.set_status("ended-today", "ended")
    # It took place now: before or after the silk weaving at noon.
    textiles_today = [room for _, room in sorted([(at(today, 12), "silk-noon"),
                                                  (ended["started_at"], "ended-today")])]

    # An exhibitor whose link carries start-live starts a live of their own and goes on air
    # from the studio link the answer gives.
    await server.create_room(id="acme-booth", name="ACME booth", kind="livestream",
                             owner="acme", scheduled_start=at(today + timedelta(20), 9))
    link = await server.token("acme-booth", "acme", "exhibitor", name="ACME Tools",
                              grants=["publish", "subscribe", "start-live"])
    status, live = await call(server, "POST", "/api/rooms", link,
                              {"name": "ACME after-show factory tour", "category": "Machinery"})
    assert status == 201, live
    assert live["owner"] == "acme" and live["kind"] == "livestream"
    studio = await new_page()
    await studio.goto(live["studio_url"] + "&lang=en")
    await studio.wait_for_function("() => window.fairwire && window.fairwire.state === 'joined'")
    assert (await studio.evaluate("window.fairwire.self"))["identity"] == "acme"
    await studio.get_by_role("button", name="Go live").click()
    await studio.wait_for_function("() => window.fairwire.publishing === true")
    deadline = time.monotonic() + 10
    while True:
        status, body = await call(server, "GET", f"/api/rooms/{live['id']}")
        if body.get("on_air"):
            break
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)

    page, errors = await schedule_page(new_page, server, "?lang=en")
    assert await page.evaluate("window.fairwireSchedule.timeZone") == ZONE
    await expect(page.locator("h1")).to_have_text("Livestream schedule")
    await expect(page).to_have_title("Fairwire · Livestream schedule")
    await expect(page.locator("#timezone")).to_contain_text(ZONE)

    # Live now: on air first, then open but not broadcasting yet.
    live_now = page.locator("#live-now")
    await expect(live_now.locator("h2")).to_have_text("Live now")
    cards = live_now.locator(".room-card")
    await expect(cards).to_have_count(2)
    assert await cards.evaluate_all("cs => cs.map(c => c.dataset.roomId)") == [live["id"],
                                                                              "soon-live"]
    await expect(cards.nth(0).locator(".badge")).to_have_text("LIVE")
    await expect(cards.nth(1).locator(".badge")).to_have_text("Starting soon")
    await expect(live_now.locator("#live-now-count")).to_have_text("1 on air · 1 starting soon")
    await expect(cards.nth(0).locator("a")).to_have_attribute("href", f"/room/{live['id']}")

    # Then by day in Shanghai, by category within a day (Other last), by time within one.
    key_today, key_tomorrow = today.isoformat(), tomorrow.isoformat()
    assert await days_shown(page) == [
        {"day": key_today, "categories": [
            {"category": "Machinery", "rooms": ["cnc-morning", "pumps-afternoon"]},
            {"category": "Textiles", "rooms": textiles_today},
            {"category": "", "rooms": ["no-category"]},
        ]},
        {"day": key_tomorrow, "categories": [
            {"category": "Machinery", "rooms": ["lathe-tomorrow"]},
            {"category": "Textiles", "rooms": ["dyeing-tomorrow"]},
        ]},
    ]
    days = page.locator("section.schedule-day")
    await expect(days).to_have_count(2)
    first = page.locator(f"section.schedule-day[data-day='{key_today}']")
    await expect(first.locator(".schedule-day-relative")).to_have_text("Today")
    await expect(first.locator(".schedule-day-date")).to_contain_text(
        today.strftime("%B"))
    second = page.locator(f"section.schedule-day[data-day='{key_tomorrow}']")
    await expect(second.locator(".schedule-day-relative")).to_have_text("Tomorrow")
    await expect(first.locator(".schedule-category-title")).to_have_text(
        ["Machinery", "Textiles", "Other"])
    cnc = first.locator("[data-room-id='cnc-morning']")
    await expect(cnc.locator(".schedule-time")).to_have_text(re.compile(r"^0?9:00.*10:00"))
    await expect(cnc.locator(".badge")).to_have_text("Scheduled")
    await expect(cnc.locator("a")).to_have_attribute("href", "/room/cnc-morning")
    await expect(first.locator("[data-room-id='ended-today'] .badge")).to_have_text("Ended")
    await expect(first.locator("[data-room-id='silk-noon'] .schedule-language")).to_have_text(
        "Chinese · English")
    for hidden in ("buyers-only", "deal-room", "next-month", "untimed", "acme-booth"):
        assert await page.locator(f"[data-room-id='{hidden}']").count() == 0, hidden
    assert await overlapping(page) == []
    await shot(page, "en")

    # The category filter narrows both parts and stays in the address.
    filters = page.locator("#filters button")
    await expect(filters).to_have_text(["All categories", "Machinery", "Textiles", "Other"])
    await page.get_by_role("button", name="Textiles").click()
    await expect(page.get_by_role("button", name="Textiles")).to_have_attribute(
        "aria-pressed", "true")
    assert "category=Textiles" in page.url
    await expect(live_now).to_be_hidden()
    assert [day["categories"] for day in await days_shown(page)] == [
        [{"category": "Textiles", "rooms": textiles_today}],
        [{"category": "Textiles", "rooms": ["dyeing-tomorrow"]}],
    ]
    await shot(page, "filtered")
    await page.reload()
    await page.wait_for_function("() => window.fairwireSchedule.rooms !== null")
    assert len(await days_shown(page)) == 2
    await expect(page.locator(".schedule-category-title")).to_have_text(["Textiles", "Textiles"])
    await page.get_by_role("button", name="All categories").click()
    await expect(cards).to_have_count(2)
    assert "category" not in page.url

    # A click anywhere on a line (here on its time) opens the room.
    await page.locator("[data-room-id='silk-noon']").click(position={"x": 30, "y": 20})
    await page.wait_for_url(f"{server.url}/room/silk-noon")
    assert errors == []

    # Chinese, in place and from the address.
    page, errors = await schedule_page(new_page, server, "?lang=zh")
    await expect(page.locator("h1")).to_have_text("直播时间表")
    await expect(page.locator("#live-now h2")).to_have_text("正在直播")
    await expect(page.locator("#live-now .room-card .badge")).to_have_text(["直播中", "即将开始"])
    await expect(page.locator(".schedule-day-relative")).to_have_text(["今天", "明天"])
    zh_first = page.locator(f"section.schedule-day[data-day='{key_today}']")
    await expect(zh_first.locator(".schedule-category-title")).to_have_text(
        ["Machinery", "Textiles", "其他"])
    await expect(zh_first.locator(".schedule-day-date")).to_contain_text(f"{today.month}月")
    await expect(zh_first.locator("[data-room-id='cnc-morning'] .badge")).to_have_text("预告")
    await expect(zh_first.locator("[data-room-id='silk-noon'] .schedule-language")).to_have_text(
        "中文 · 英语")
    await expect(zh_first.locator("[data-room-id='ended-today'] .badge")).to_have_text("已结束")
    await expect(page.locator("#filters button").first).to_have_text("全部行业")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await shot(page, "zh")
    await page.get_by_role("button", name="English").click()
    await expect(page.locator(".schedule-day-relative")).to_have_text(["Today", "Tomorrow"])
    assert errors == []

    # Another time zone, other days: 09:30 tomorrow in Shanghai is 17:30 (or 16:30) the day
    # before in Los Angeles, whose "today" may be another day than Shanghai's.
    zone = "America/Los_Angeles"
    page, errors = await schedule_page(new_page, server, "?lang=en", zone=zone)
    await expect(page.locator("#timezone")).to_contain_text(zone)
    shown = {day["day"]: [room for group in day["categories"] for room in group["rooms"]]
             for day in await days_shown(page)}
    for room_id, start in [("lathe-tomorrow", at(tomorrow, 9, 30)),
                           ("cnc-morning", at(today, 9))]:
        local_day = datetime.fromtimestamp(start, ZoneInfo(zone)).date().isoformat()
        los_angeles_today = datetime.now(ZoneInfo(zone)).date().isoformat()
        if local_day >= los_angeles_today:
            assert room_id in shown[local_day], (room_id, shown)
    # 15:00-16:30 in Shanghai is 23:00-00:30 (or 00:00-01:30) in Los Angeles: a range over
    # midnight names the other day's date, and wraps rather than running into the name.
    start, end = (datetime.fromtimestamp(at(today, hour, minute), ZoneInfo(zone))
                  for hour, minute in ((15, 0), (16, 30)))
    listed = [day for day, rooms in shown.items() if "pumps-afternoon" in rooms]
    if start.date() != end.date() and listed:
        # Listed under one day (its start's, or today's if it began yesterday), it names the
        # other one.
        other = end if listed[0] == start.date().isoformat() else start
        pumps = page.locator("[data-room-id='pumps-afternoon'] .schedule-time")
        await expect(pumps).to_contain_text(other.strftime("%b ") + str(other.day))
    assert await overlapping(page) == []
    await shot(page, "los-angeles")
    assert errors == []

    status, body = await call(server, "PATCH", f"/api/rooms/{live['id']}",
                              live["studio_link"]["token"], {"status": "ended"})
    assert status == 200, body


async def test_the_programme_links_to_the_schedule(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    page = await new_page(timezone_id=ZONE)
    errors = watch_errors(page)
    await page.goto(server.url + "/?lang=zh")
    link = page.locator("header.topbar a.topbar-link")
    await expect(link).to_have_text("直播时间表")
    await page.get_by_role("button", name="English").click()
    await expect(link).to_have_text("Schedule")
    await shot(page, "programme-link")
    await link.click()
    await page.wait_for_url(server.url + "/schedule")
    await page.wait_for_function("() => window.fairwireSchedule.rooms !== null")
    await expect(page.locator("header.topbar a[aria-current='page']")).to_have_text("Schedule")
    await page.locator("header.topbar a.topbar-link", has_text="Programme").click()
    await page.wait_for_url(server.url + "/")
    assert errors == []


async def test_the_console_issues_exhibitor_links_that_may_start_lives(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id="globex-booth", name="Globex booth", kind="livestream",
                             owner="globex")
    page = await new_page()
    errors = watch_errors(page)
    await page.goto(f"{server.url}/console?lang=en")
    await page.fill("#credential", server.api_key)
    await page.click("#signin-submit")
    await page.wait_for_function(
        "() => window.fairwireConsole.signedIn && window.fairwireConsole.rooms !== null")
    await page.evaluate("location.hash = '#/room/globex-booth'")
    await page.wait_for_function(
        "() => { const c = window.fairwireConsole;"
        " return c.room && c.room.id === 'globex-booth'; }")
    box = page.get_by_label("May start their own lives")
    await expect(box).to_be_visible()  # the studio link is the first choice
    await expect(box).not_to_be_checked()
    await page.click("#presets [data-preset='viewer']")
    await expect(box).to_be_hidden()
    await page.click("#presets [data-preset='studio']")
    await box.check()
    await shot(page, "console-start-live")
    await page.click("#link-submit")
    await page.wait_for_function("() => window.fairwireConsole.lastLink !== null")
    issued = await page.evaluate("window.fairwireConsole.lastLink")
    status, room = await call(server, "POST", "/api/rooms", issued["token"],
                              {"name": "Globex night shift"})
    assert status == 201, room
    assert room["owner"] == "globex" and room["studio_url"]
    await expect(box).not_to_be_checked()

    # Unticked, the exhibitor's link starts nothing.
    await page.click("#link-submit")
    await page.wait_for_function(
        "(id) => window.fairwireConsole.lastLink.token_id !== id", arg=issued["token_id"])
    plain = await page.evaluate("window.fairwireConsole.lastLink")
    status, body = await call(server, "POST", "/api/rooms", plain["token"], {"name": "No"})
    assert status == 403 and body["error"]["code"] == "missing_grant"

    await page.get_by_role("button", name="中文").click()
    await expect(page.get_by_label("可自行开播")).to_be_visible()
    assert errors == []
