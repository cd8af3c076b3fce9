"""Appointments in Chromium (issue #10, §5.3.1): a buyer in Berlin watching an exhibitor's
livestream books a slot with the exhibitor from the people list; the exhibitor's page in
Shanghai (in Chinese) is told at once, accepts it in its agenda and adds it to its calendar;
both agendas show it, each in its own time zone; a second slot at the same time is refused.
Screenshots go to ``$FAIRWIRE_LIVE_SCREENSHOTS`` (default ``/tmp/c9/shots``)."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from browser import NewPage
from playwright.async_api import Page, expect
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path(os.environ.get("FAIRWIRE_LIVE_SCREENSHOTS", "/tmp/c9/shots"))
BERLIN = ZoneInfo("Europe/Berlin")
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def open_room(new_page: NewPage, server: FairwireServer, identity: str, role: str,
                    name: str, zone: str, locale: str, lang: str) -> Page:
    page = await new_page(timezone_id=zone, locale=locale)
    token = await server.token("valve-booth", identity, role, name=name)
    await page.goto(server.room_url("valve-booth", token, lang=lang))
    await page.wait_for_function("() => window.fairwire && window.fairwire.state === 'joined'")
    return page


async def test_a_buyer_books_an_exhibitor_who_accepts_and_both_agendas_show_it(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id="valve-booth", name="Valve Co booth", kind="livestream",
                             status="live", owner="valve-co")
    exhibitor = await open_room(new_page, server, "valve-co", "exhibitor", "Valve Co",
                                "Asia/Shanghai", "zh-CN", "zh")
    buyer = await open_room(new_page, server, "buyer-anna", "buyer", "Anna Schmidt",
                            "Europe/Berlin", "en-GB", "en")

    # Tomorrow at 10:00 in Berlin, for an hour: 17:00 or 16:00 in Shanghai, by the season.
    day = (datetime.now(BERLIN) + timedelta(days=1)).date()
    start = datetime(day.year, day.month, day.day, 10, 0, tzinfo=BERLIN)
    in_shanghai = start.astimezone(SHANGHAI)
    shanghai_clock = f"{in_shanghai:%H:%M}–{in_shanghai + timedelta(hours=1):%H:%M}"

    await buyer.get_by_role("button", name="Book a meeting with Valve Co").click()
    form = buyer.locator("#booking-panel")
    await expect(form).to_be_visible()
    await buyer.fill("#booking-date", day.isoformat())
    await buyer.fill("#booking-time", "10:00")
    await buyer.select_option("#booking-duration", "60")
    await buyer.fill("#booking-subject", "GX-40 valves: pricing for 500 units")
    await shot(buyer, "agenda-buyer-booking-en")
    await buyer.get_by_role("button", name="Propose time").click()
    await expect(form).to_be_hidden()
    await expect(buyer.locator(".agenda-toast")).to_contain_text("Proposal sent to Valve Co")

    # The exhibitor's page hears it at once: a toast and a count on "日程" (Agenda).
    await expect(exhibitor.locator(".agenda-toast")).to_contain_text("Anna Schmidt")
    await expect(exhibitor.locator("#agenda-count")).to_have_text("1")
    await exhibitor.click("#agenda-button")
    item = exhibitor.locator("#agenda-list .agenda-item")
    await expect(item).to_have_count(1)
    await expect(item.locator(".agenda-when")).to_contain_text(shanghai_clock)
    await expect(item.locator(".agenda-status")).to_have_text("待确认")
    await shot(exhibitor, "agenda-exhibitor-proposal-zh")
    await exhibitor.get_by_role("button", name="接受预约").click()
    await expect(item.locator(".agenda-status")).to_have_text("已接受")
    await expect(exhibitor.locator("#agenda-count")).to_be_hidden()
    async with exhibitor.expect_download() as download_info:
        await item.get_by_role("button", name="添加到日历").click()
    download = await download_info.value
    assert download.suggested_filename.endswith(".ics")
    calendar = (await asyncio.to_thread(Path(await download.path()).read_bytes)).decode()
    assert calendar.startswith("BEGIN:VCALENDAR\r\n") and "STATUS:CONFIRMED" in calendar
    assert f"DTSTART:{start.astimezone(ZoneInfo('UTC')):%Y%m%dT%H%M%SZ}" in calendar
    await shot(exhibitor, "agenda-exhibitor-accepted-zh")

    # The buyer is told, and the agenda shows it accepted at 10:00 Berlin time.
    await expect(buyer.locator(".agenda-toast").last).to_contain_text("Valve Co accepted")
    await buyer.click("#agenda-button")
    mine = buyer.locator("#agenda-list .agenda-item")
    await expect(mine.locator(".agenda-status")).to_have_text("Accepted")
    await expect(mine.locator(".agenda-when")).to_contain_text("10:00–11:00")
    await expect(buyer.locator("#agenda-zone")).to_have_text("Times in Europe/Berlin")
    await shot(buyer, "agenda-buyer-accepted-en")
    entries = await buyer.evaluate("window.fairwireAgenda.appointments")
    assert entries[0]["start"] == int(start.timestamp())
    assert entries[0]["start_local"] == start.isoformat()

    # Half an hour later the exhibitor is busy: the proposal is refused, saying so.
    await buyer.get_by_role("button", name="Done").click()
    await buyer.get_by_role("button", name="Book a meeting with Valve Co").click()
    await buyer.fill("#booking-date", day.isoformat())
    await buyer.fill("#booking-time", "10:30")
    await buyer.get_by_role("button", name="Propose time").click()
    await expect(buyer.locator("#booking-error")).to_have_text(
        "That time overlaps an accepted appointment")
    await shot(buyer, "agenda-buyer-overlap-en")
