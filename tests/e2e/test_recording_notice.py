"""Everyone in a recorded room is told (issue #12): a meeting whose record flag a host turns on
shows a recording notice on every participant's page at once, and it goes when recording
stops; a recorded livestream says so beside its LIVE badge."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest
from browser import NewPage
from playwright.async_api import Page
from room_page import open_room
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path(os.environ.get("FAIRWIRE_LIVE_SCREENSHOTS", "/tmp/c9/shots"))
NOTICE_SHOWN = ("() => !document.getElementById('recording-notice').hidden"
                " && !document.getElementById('recording-chip').hidden")
NOTICE_GONE = ("() => document.getElementById('recording-notice').hidden"
               " && document.getElementById('recording-chip').hidden")


async def patch_room(server: FairwireServer, room: str, body: dict[str, object]) -> None:
    async with aiohttp.ClientSession() as http, http.patch(
            f"{server.url}/api/rooms/{room}", json=body,
            headers={"Authorization": f"Bearer {server.api_key}"}) as response:
        assert response.status == 200, await response.text()


async def shot(page: Page, name: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_every_participant_sees_while_a_meeting_is_recorded(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id="valve-deal", name="Valve price talk", kind="meeting",
                             owner="valve-co")
    exhibitor = await open_room(new_page, server, "valve-deal", "valve-co", "exhibitor",
                                name="Valve Co")
    buyer = await open_room(new_page, server, "valve-deal", "buyer-li", "buyer", name="Li Wei",
                            lang="zh")
    host = await open_room(new_page, server, "valve-deal", "host-zhao", "host", name="Zhao")
    for page in (exhibitor, buyer, host):
        assert await page.evaluate(NOTICE_GONE)  # meetings are not recorded by default
    # The record grant (hosts hold it) starts recording; the others have no such button.
    assert not await exhibitor.is_visible("#record-toggle")
    assert not await buyer.is_visible("#record-toggle")
    assert await host.inner_text("#record-toggle") == "Start recording"
    await host.click("#record-toggle")
    for page in (exhibitor, buyer, host):
        await page.wait_for_function(NOTICE_SHOWN)
    assert await host.inner_text("#record-toggle") == "Stop recording"
    assert "being recorded" in await exhibitor.inner_text("#recording-notice")
    assert "正在录制" in await buyer.inner_text("#recording-notice")
    assert await buyer.inner_text("#recording-chip") == "录制中"
    await shot(exhibitor, "meeting-recorded-en")
    await shot(buyer, "meeting-recorded-zh")

    await shot(host, "meeting-recorded-host")
    await host.click("#record-toggle")
    for page in (exhibitor, buyer, host):
        await page.wait_for_function(NOTICE_GONE)
    # The operator's API does the same.
    await patch_room(server, "valve-deal", {"record": True})
    await buyer.wait_for_function(NOTICE_SHOWN)


async def test_a_recorded_live_says_so_beside_its_badge(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id="pump-show", name="Pump show", kind="livestream",
                             status="live")  # livestreams are recorded by default
    viewer = await open_room(new_page, server, "pump-show", "visitor-9", "visitor")
    await viewer.wait_for_function(
        "() => !document.getElementById('recording-chip').hidden")
    assert await viewer.evaluate("document.getElementById('recording-notice').hidden")
    assert "replay" in (await viewer.get_attribute("#recording-chip", "title") or "")
