"""A livestream from Chromium becomes a replay (issue #12): 10 s live from the studio page, a
viewer's question during it, the live ends; the replay lasts 10 s (PyAV), and the replay page
plays it in Chromium, seeks to 5 s and plays on, and a click on the question jumps to the
moment it was asked. Screenshots go to ``$FAIRWIRE_LIVE_SCREENSHOTS`` (default
``/tmp/c9/shots``)."""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from browser import NewPage
from playwright.async_api import Page, expect
from room_page import open_room
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path(os.environ.get("FAIRWIRE_LIVE_SCREENSHOTS", "/tmp/c9/shots"))
LIVE_SECONDS = 10.0


async def shot(page: Page, name: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def replays(server: FairwireServer) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(
            f"{server.url}/api/replays",
            headers={"Authorization": f"Bearer {server.api_key}"}) as response:
        assert response.status == 200
        found: list[dict[str, Any]] = (await response.json())["replays"]
        return found


async def playing_from(page: Page, at_least: float) -> None:
    """The replay's video plays on from ``at_least`` seconds (currentTime advances)."""
    await page.wait_for_function(
        "(t) => { const v = document.getElementById('replay-video');"
        " return !v.paused && v.readyState >= 3 && v.currentTime >= t; }",
        arg=at_least, timeout=15_000)
    before = await page.evaluate("document.getElementById('replay-video').currentTime")
    await asyncio.sleep(1.0)
    after = await page.evaluate("document.getElementById('replay-video').currentTime")
    assert after > before + 0.5, (before, after)


async def test_a_live_from_the_studio_is_a_replay_that_plays_and_seeks(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "pumps-replay"
    await server.create_room(id=room, name="Ningbo Pumps · QJ-200 tour", kind="livestream",
                             status="live", owner="ningbo-pumps", category="Machinery")
    studio = await open_room(new_page, server, room, "ningbo-pumps", "exhibitor", name="Li Wei")
    viewer = await open_room(new_page, server, room, "anna-buyer", "buyer", name="Anna Schmidt")
    await studio.get_by_role("button", name="Go live").click()
    await studio.wait_for_function(
        "() => window.fairwire.publisherPc?.connectionState === 'connected'")
    started = time.monotonic()
    await asyncio.sleep(3.0)
    question = "Which seals does the QJ-200 use for hot water?"
    await viewer.get_by_role("textbox", name="Your question").fill(question)
    await viewer.get_by_role("button", name="Ask", exact=True).click()
    await expect(studio.locator("#questions .question-text")).to_have_text([question])
    await asyncio.sleep(1.0)
    # Pinned over the video: a chapter of the replay, from the moment it was pinned.
    await studio.get_by_role("button", name="Pin over video").click()
    await expect(viewer.locator("#pinned .pinned-text")).to_have_text(question)
    await asyncio.sleep(max(0.0, LIVE_SECONDS - (time.monotonic() - started)))
    await server.set_status(room, "ended")

    deadline = time.monotonic() + 20
    while not (found := await replays(server)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert len(found) == 1, server.log()
    replay = found[0]
    async with aiohttp.ClientSession() as http, http.get(
            server.url + replay["playback_url"]) as response:
        body = await response.read()
    with av.open(io.BytesIO(body)) as container:
        assert container.duration is not None
        duration = container.duration / 1e6
        assert container.streams.video and container.streams.audio
    print(f"replay of a {LIVE_SECONDS:.0f} s live: {duration:.2f} s, {len(body)} bytes")
    assert abs(duration - LIVE_SECONDS) <= 1.0, duration

    # The viewer's page says the live ended and offers its replay, opened with the same link.
    link = viewer.get_by_role("link", name="Watch the replay")
    await expect(link).to_be_visible(timeout=30_000)
    await shot(viewer, "room-ended-replay-en")
    await link.click()
    page = viewer
    await page.wait_for_url(f"**/replay/{replay['id']}?token=*")
    await page.wait_for_function("() => window.fairwireReplay?.state === 'ready'")
    token = await server.token(room, "anna-buyer", "buyer", name="Anna Schmidt")
    await expect(page.locator("#replay-title")).to_have_text("Ningbo Pumps · QJ-200 tour")
    await expect(page.locator("#replay-questions .replay-question-text")).to_have_text(
        [question])
    await page.evaluate("() => { const v = document.getElementById('replay-video');"
                        " v.muted = true; return v.play(); }")
    await playing_from(page, 0.5)
    await page.evaluate("document.getElementById('replay-video').currentTime = 5")
    await playing_from(page, 5.0)
    await shot(page, "replay-en")

    # The question's moment: ~3 s after the live began.
    await page.locator("#replay-questions button").click()
    moment = float(await page.locator("#replay-questions button").get_attribute("data-moment")
                   or "nan")
    assert 1.5 <= moment <= 5.0, moment
    at = await page.evaluate("document.getElementById('replay-video').currentTime")
    assert abs(at - moment) < 1.0, (at, moment)
    await expect(page.locator("#replay-questions li")).to_have_attribute("aria-current", "true")

    # The exhibitor by name, and the pinned question as a chapter after the start.
    await expect(page.locator("#replay-who")).to_have_text("by Li Wei")
    await expect(page.locator("#replay-chapter-list .replay-chapter-title")).to_have_text(
        ["Start", question])
    chapter = page.locator("#replay-chapter-list button").nth(1)
    pinned_at = float(await chapter.get_attribute("data-moment") or "nan")
    assert moment < pinned_at <= moment + 4.0, (moment, pinned_at)
    await page.locator("#replay-chapter-list button").first.click()
    await page.wait_for_function(
        "() => document.getElementById('replay-video').currentTime < 1.0")
    await chapter.click()
    await page.wait_for_function(
        "(t) => Math.abs(document.getElementById('replay-video').currentTime - t) < 1.0",
        arg=pinned_at)
    await expect(page.locator("#replay-chapter-list li").nth(1)).to_have_attribute(
        "aria-current", "true")
    await expect(page.locator("#replay-pinned-text")).to_have_text(question)
    cues = await page.evaluate("""() => {
        const track = document.querySelector('#replay-video track[kind=chapters]').track;
        track.mode = 'hidden';
        return new Promise((resolve) => setTimeout(() =>
            resolve([...track.cues].map((c) => c.text)), 500));
    }""")
    assert cues == ["Start", question], cues
    await page.get_by_role("button", name="中文").click()
    await expect(page.locator("#qa-title")).to_have_text("直播中的提问")
    await shot(page, "replay-zh")

    # The list of replays the link opens, by industry.
    await page.goto(f"{server.url}/replays?token={token}&lang=en")
    await page.wait_for_function("() => window.fairwireReplay.state === 'ready'")
    await expect(page.locator(".replay-group h2")).to_have_text(["Machinery"])
    card = page.get_by_role("link", name="Watch the replay of Ningbo Pumps · QJ-200 tour")
    await expect(card).to_be_visible()
    await shot(page, "replays-en")
    await card.click()
    await page.wait_for_function("() => window.fairwireReplay.state === 'ready'")
    await expect(page.locator("#replay-title")).to_have_text("Ningbo Pumps · QJ-200 tour")

    # Without a link: a clear word, no replay.
    stranger = await new_page()
    await stranger.goto(f"{server.url}/replay/{replay['id']}?lang=en")
    await expect(stranger.locator("#status")).to_contain_text("needs your access link")
