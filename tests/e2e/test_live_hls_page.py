"""Viewers fall back to live HLS (issue #12): an encoder publishes H.264 over WHIP (FFmpeg); a
viewer whose network blocks UDP (relay-only ICE and no TURN server: WebRTC cannot connect)
watches the live's HLS in Chromium (hls.js); a host sends every viewer to HLS from the studio
and back, and a real-time viewer follows both switches. Screenshots go to
``$FAIRWIRE_LIVE_SCREENSHOTS`` (default ``/tmp/c9/shots``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import av
import pytest
from browser import NewPage
from ffmpeg_whip import HEIGHT, WIDTH, X264_BASELINE, FfmpegEncoder
from playwright.async_api import Page
from room_page import open_room
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path(os.environ.get("FAIRWIRE_LIVE_SCREENSHOTS", "/tmp/c9/shots"))

# A network that lets no UDP through and offers no TURN relay: ICE gathers nothing.
NO_UDP = """(() => {
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = function (config) {
    return new Native({ ...(config || {}), iceServers: [], iceTransportPolicy: "relay" });
  };
  window.RTCPeerConnection.prototype = Native.prototype;
})();"""

HLS_PLAYING = """(reason) => {
  const h = window.fairwireHls, v = document.getElementById('hls-video');
  return h.mode === 'hls' && h.reason === reason && h.playing && v.videoWidth > 0
    && v.currentTime > 0.5 && !document.getElementById('hls-view').hidden;
}"""

TILE_PLAYING = """() => {
  const v = document.querySelector('#tiles video');
  return window.fairwireHls.mode === 'webrtc' && v && v.videoWidth > 0 && v.currentTime > 0
    && !document.getElementById('tiles').hidden
    && window.fairwire.subscriberPc && window.fairwire.subscriberPc.connectionState === 'connected';
}"""


async def shot(page: Page, name: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def hls_frames_advance(page: Page) -> None:
    quality = "document.getElementById('hls-video').getVideoPlaybackQuality().totalVideoFrames"
    before = await page.evaluate(quality)
    time_before = await page.evaluate("document.getElementById('hls-video').currentTime")
    await asyncio.sleep(1.5)
    assert await page.evaluate(quality) > before + 20
    assert await page.evaluate("document.getElementById('hls-video').currentTime") > (
        time_before + 1.0)


async def test_viewers_watch_live_hls_when_webrtc_fails_or_the_host_sends_them(
    fairwire_server: FairwireServer, new_page: NewPage, tmp_path: Path
) -> None:
    av.logging.set_level(av.logging.ERROR)
    server = fairwire_server
    room = "press-hls"
    await server.create_room(id=room, name="Press line (HLS)", kind="livestream",
                             status="live", owner="press-co", record=False)
    publisher = await server.token(room, "press-co", "exhibitor", name="Press Co")
    encoder = FfmpegEncoder(f"{server.url}/whip/{room}", publisher, tmp_path, X264_BASELINE,
                            seconds=50)
    encoder.start()
    try:
        # Behind a firewall: WebRTC cannot connect, the page plays HLS within ~10 s.
        blocked = await new_page()
        await blocked.add_init_script(NO_UDP)
        token = await server.token(room, "buyer-blocked", "visitor", name="Blocked Buyer")
        await blocked.goto(server.room_url(room, token, lang="en"))
        await blocked.wait_for_function(HLS_PLAYING, arg="failed", timeout=40_000)
        assert await blocked.evaluate("document.getElementById('hls-video').videoHeight") == (
            HEIGHT)
        await hls_frames_advance(blocked)
        url = await blocked.evaluate("window.fairwireHls.url")
        assert f"/hls/{room}/s/" in url and url.endswith("/index.m3u8")
        notice = await blocked.inner_text("#hls-notice")
        assert "could not be made from your network" in notice
        assert await blocked.is_visible("#hls-realtime")
        await shot(blocked, "hls-fallback-network")

        # A viewer in real time, and a host in the studio who sends viewers to HLS.
        viewer = await open_room(new_page, server, room, "buyer-rt", "visitor", lang="zh")
        await viewer.wait_for_function(TILE_PLAYING, timeout=20_000)
        studio = await open_room(new_page, server, room, "host-lin", "host", name="Lin (host)")
        await studio.wait_for_selector("#delivery-panel:not([hidden])")
        assert await studio.inner_text("#delivery-toggle") == "Move the audience to HLS"
        await studio.click("#delivery-toggle")
        await viewer.wait_for_function(HLS_PLAYING, arg="host", timeout=20_000)
        await hls_frames_advance(viewer)
        assert "主办方已将观众切换到 HLS" in await viewer.inner_text("#hls-notice")
        assert not await viewer.is_visible("#hls-realtime")  # the host decides, not the viewer
        assert await viewer.evaluate("window.fairwire.subscriberPc") is None  # WebRTC closed
        await studio.wait_for_function(
            "() => document.getElementById('delivery-toggle').textContent"
            " === 'Bring the audience back to real time'")
        # The studio stays in real time: its own view never switches.
        assert await studio.evaluate("window.fairwireHls.mode") == "webrtc"
        await studio.wait_for_function(
            "() => { const v = document.querySelector('#tiles video');"
            " return v && v.videoWidth > 0; }")
        await shot(viewer, "hls-by-host-zh")
        await shot(studio, "hls-studio-delivery")

        await studio.click("#delivery-toggle")
        await viewer.wait_for_function(TILE_PLAYING, timeout=20_000)
        assert await viewer.evaluate("document.querySelector('#tiles video').videoWidth") == (
            WIDTH)
        # The blocked viewer stays on HLS (its network has not changed) and still plays.
        assert await blocked.evaluate("window.fairwireHls.mode") == "hls"
        await hls_frames_advance(blocked)
    finally:
        await asyncio.to_thread(encoder.join, 90)
