"""A node killed mid-live (``kill -9``) keeps the show: FFmpeg publishes H.264 over WHIP, the
node is killed 8 s in, and the node that starts next finalises what was written into an MP4
replay with HLS that PyAV plays over HTTP."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import av
from ffmpeg_whip import X264_BASELINE, FfmpegEncoder
from server_process import start_server, stop_server


async def test_a_live_killed_mid_show_is_a_replay_after_the_restart(tmp_path: Path) -> None:
    av.logging.set_level(av.logging.ERROR)
    server = start_server(tmp_path)
    try:
        await server.create_room(id="press-line", name="Press line", kind="livestream",
                                 status="live", owner="line-owner", category="machinery")
        token = await server.token("press-line", "line-owner", "exhibitor")
        encoder = FfmpegEncoder(f"{server.url}/whip/press-line", token, tmp_path / "ffmpeg",
                                X264_BASELINE, seconds=30)
        (tmp_path / "ffmpeg").mkdir()
        encoder.start()
        recordings = server.data_dir / "recordings"
        deadline = time.monotonic() + 15
        while not any(recordings.glob("*/seg-*")) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # the first segment is written ~4 s into the live
        assert any(recordings.glob("*/seg-*")), server.log()
        await asyncio.sleep(4.5)
        server.process.kill()  # no shutdown, no finalisation
        server.process.wait()
    finally:
        stop_server(server)
    assert not list(recordings.glob("*/final.json"))

    again = start_server(tmp_path)  # the same data directory
    try:
        auth = {"Authorization": f"Bearer {again.api_key}"}
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 20  # recovery runs in the background of the start
            while True:
                async with http.get(f"{again.url}/api/replays", headers=auth) as response:
                    assert response.status == 200
                    listed = await response.json()
                if listed["replays"] or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert len(listed["replays"]) == 1, (listed, again.log())
            replay = listed["replays"][0]
            assert replay["room"] == "press-line" and replay["category"] == "machinery"
            assert replay["duration"] >= 6.0, replay
            assert replay["playback_url"].endswith("replay.mp4") and replay["hls_url"]
            async with http.get(again.url + replay["playback_url"]) as response:
                assert response.status == 200
                (tmp_path / "replay.mp4").write_bytes(await response.read())
        with av.open(str(tmp_path / "replay.mp4")) as container:
            assert container.streams.video[0].codec_context.name == "h264"
            assert container.streams.audio[0].codec_context.name == "opus"
            frames = sum(1 for _ in container.decode(video=0))
            assert frames >= 6 * 30 * 0.9, frames  # 6 s of 30 fps, playable
        # The same replay as HLS VOD, over HTTP with its signed relative URLs.
        with av.open(again.url + replay["hls_url"]) as hls:
            decoded = sum(1 for _ in hls.decode(video=0))
            assert decoded >= frames * 0.9, (decoded, frames)
    finally:
        stop_server(again)
