"""Live HLS while an H.264 live is on air: FFmpeg publishes over WHIP, the node serves HLS that
PyAV plays over HTTP while the live runs, with immutable segments behind signed links, and the
live's replay is an MP4 afterwards."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
from ffmpeg_whip import X264_BASELINE, FfmpegEncoder
from server_process import FairwireServer, start_server, stop_server


async def _entry(http: aiohttp.ClientSession, server: FairwireServer, room: str,
                 token: str | None) -> aiohttp.ClientResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.get(f"{server.url}/hls/{room}/index.m3u8", headers=headers,
                          allow_redirects=False)


def _play(url: str, frames: int) -> dict[str, Any]:
    """Open the live playlist as a player would and decode ``frames`` video frames."""
    counts = {"video": 0, "audio": 0}
    size = None
    with av.open(url, options={"live_start_index": "-3"}, timeout=10) as container:
        for packet in container.demux():
            for frame in packet.decode():
                counts[packet.stream.type] += 1
                if isinstance(frame, av.VideoFrame):
                    size = (frame.width, frame.height)
            if counts["video"] >= frames:
                break
    return {**counts, "size": size}


async def test_an_h264_live_is_served_as_live_hls_while_it_runs(tmp_path: Path) -> None:
    av.logging.set_level(av.logging.ERROR)
    server = start_server(tmp_path)
    try:
        await server.create_room(id="press-line", name="Press line", kind="livestream",
                                 status="live", owner="line-owner", category="machinery")
        await server.create_room(id="other-line", name="Other", kind="livestream")
        publisher = await server.token("press-line", "line-owner", "exhibitor")
        viewer = await server.token("press-line", "buyer-1", "visitor")
        stranger = await server.token("other-line", "buyer-2", "visitor")
        (tmp_path / "ffmpeg").mkdir()
        encoder = FfmpegEncoder(f"{server.url}/whip/press-line", publisher, tmp_path / "ffmpeg",
                                X264_BASELINE, seconds=24)
        async with aiohttp.ClientSession() as http:
            response = await _entry(http, server, "press-line", viewer)
            assert response.status == 404  # nothing on air yet
            assert (await response.json())["error"]["code"] == "hls_not_on_air"
            encoder.start()
            deadline = time.monotonic() + 20
            while (response := await _entry(http, server, "press-line", viewer)).status == 404:
                assert time.monotonic() < deadline, server.log()
                await asyncio.sleep(0.25)
            assert response.status == 302, await response.text()
            location = response.headers["Location"]
            assert re.fullmatch(r"/hls/press-line/s/\d+\.[0-9a-f]{64}/index\.m3u8", location)

            # The same access rules as watching: a token of this room with `subscribe`.
            assert (await _entry(http, server, "press-line", None)).status == 401
            assert (await _entry(http, server, "press-line", stranger)).status == 403
            head, signature, tail = location.rsplit("/", 2)
            expires, digest = signature.split(".")
            flipped = ("1" if digest[0] == "0" else "0") + digest[1:]
            forged = f"{head}/{expires}.{flipped}/{tail}"
            refused = await http.get(server.url + forged)
            assert refused.status == 403
            assert (await refused.json())["error"]["code"] == "invalid_signature"

            async with http.get(server.url + location) as playlist:
                assert playlist.status == 200
                assert playlist.headers["Content-Type"] == "application/vnd.apple.mpegurl"
                assert playlist.headers["Cache-Control"] == "public, max-age=1"
                text = await playlist.text()
            assert "#EXT-X-TARGETDURATION:2" in text and "#EXT-X-ENDLIST" not in text
            assert "#EXT-X-PROGRAM-DATE-TIME:" in text and '#EXT-X-MAP:URI="p0-init.mp4"' in text
            first = next(line for line in text.splitlines() if line.endswith(".m4s"))
            segment_url = server.url + location.rsplit("/", 1)[0] + "/" + first
            async with http.get(segment_url) as segment:
                assert segment.status == 200
                assert segment.headers["Cache-Control"] == "public, max-age=86400, immutable"
                digest = hashlib.sha256(await segment.read()).hexdigest()

            # PyAV plays the live playlist over HTTP while the live runs.
            seen = await asyncio.to_thread(_play, server.url + location, 90)
            assert seen["video"] >= 90 and seen["audio"] > 0, seen
            assert seen["size"] == (640, 360)
            assert encoder.running()

            async with http.get(segment_url) as again:  # later: the same bytes
                assert hashlib.sha256(await again.read()).hexdigest() == digest

            await server.set_status("press-line", "ended")
            deadline = time.monotonic() + 10
            while True:
                async with http.get(server.url + location) as playlist:
                    text = await playlist.text()
                if "#EXT-X-ENDLIST" in text:
                    break
                assert time.monotonic() < deadline, text
                await asyncio.sleep(0.25)
            async with http.get(f"{server.url}/metrics") as response:
                metrics = await response.text()
            assert re.search(r'fairwire_live_hls\{what="started"\} 1\.0', metrics), metrics
            assert re.search(r'fairwire_live_hls\{what="streams"\} 0\.0', metrics)

            # The live is also a replay, an MP4 (H.264 + Opus in CMAF segments).
            auth = {"Authorization": f"Bearer {server.api_key}"}
            deadline = time.monotonic() + 20
            while True:
                async with http.get(f"{server.url}/api/replays?room=press-line",
                                    headers=auth) as response:
                    replays = (await response.json())["replays"]
                if replays or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.25)
            assert replays and replays[0]["playback_url"].endswith("replay.mp4"), replays
            assert {t["codec"] for t in replays[0]["tracks"]} == {"h264", "opus"}
    finally:
        stop_server(server)
