"""A/V sync of a recording (issue #12): FFmpeg publishes over WHIP a clip whose picture flashes
white and whose sound beeps at the same instants (every 2 s, both on the encoder's clock); in
the replay, each flash and its beep are within 40 ms of each other."""

from __future__ import annotations

import asyncio
import io
import math
import struct
import time
from array import array
from itertools import pairwise
from pathlib import Path

import aiohttp
import av
from ffmpeg_whip import AUDIO_RATE, FPS, HEIGHT, WIDTH, X264_BASELINE, FfmpegEncoder
from server_process import start_server, stop_server

MARK_EVERY_FRAMES = 2 * FPS  # a flash and a beep every 2 s
BEEP_SAMPLES = AUDIO_RATE // 20  # 50 ms of 1 kHz
SYNC_TOLERANCE_S = 0.040


def flash(index: int) -> av.VideoFrame:
    """Dark grey, and white on each mark's frame."""
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    luma = 235 if index % MARK_EVERY_FRAMES == MARK_EVERY_FRAMES // 2 else 40
    frame.planes[0].update(bytes([luma]) * frame.planes[0].buffer_size)
    for plane in frame.planes[1:]:
        plane.update(bytes([128]) * plane.buffer_size)
    return frame


def beep(start: int, samples: int) -> bytes:
    """Silence, and 1 kHz from each mark's instant for 50 ms."""
    period = MARK_EVERY_FRAMES * AUDIO_RATE // FPS
    offset = period // 2  # the mark frame's instant: frame MARK_EVERY_FRAMES // 2
    out = bytearray()
    for n in range(start, start + samples):
        into = (n - offset) % period
        value = int(12000 * math.sin(2 * math.pi * 1000 * n / AUDIO_RATE)) if (
            n >= offset and into < BEEP_SAMPLES) else 0
        out += struct.pack("<hh", value, value)
    return bytes(out)


def marks(replay: bytes) -> tuple[list[float], list[float]]:
    """Times (s) of the white frames and of the beeps' onsets in the replay."""
    flashes: list[float] = []
    beeps: list[float] = []
    with av.open(io.BytesIO(replay)) as container:
        for frame in container.decode(video=0):
            luma = bytes(frame.planes[0])
            if sum(luma[:: 64]) / len(luma[:: 64]) > 150 and frame.time is not None:
                flashes.append(frame.time)
    with av.open(io.BytesIO(replay)) as container:
        silent_since = 0.0
        for frame in container.decode(audio=0):
            if frame.time is None:
                continue
            samples = array("f", bytes(frame.planes[0]))  # fltp: the left channel
            for n, value in enumerate(samples):
                at = frame.time + n / frame.sample_rate
                if abs(value) > 0.1:
                    if at - silent_since > 0.5:  # a new beep after silence
                        beeps.append(at)
                    silent_since = at
    return flashes, beeps


async def test_a_flash_and_its_beep_are_recorded_within_40_ms(tmp_path: Path) -> None:
    av.logging.set_level(av.logging.ERROR)
    server = start_server(tmp_path)
    try:
        await server.create_room(id="sync-line", name="Sync check", kind="livestream",
                                 status="live", owner="sync-owner")
        token = await server.token("sync-line", "sync-owner", "exhibitor")
        (tmp_path / "ffmpeg").mkdir()
        encoder = FfmpegEncoder(f"{server.url}/whip/sync-line", token, tmp_path / "ffmpeg",
                                X264_BASELINE, seconds=9, picture=flash, sound=beep)
        encoder.start()
        await asyncio.to_thread(encoder.join, 30)
        await server.set_status("sync-line", "ended")
        auth = {"Authorization": f"Bearer {server.api_key}"}
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 20
            while True:
                async with http.get(f"{server.url}/api/replays", headers=auth) as response:
                    replays = (await response.json())["replays"]
                if replays or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert replays, server.log()
            async with http.get(server.url + replays[0]["playback_url"]) as response:
                replay = await response.read()
    finally:
        stop_server(server)
    flashes, beeps = await asyncio.to_thread(marks, replay)
    assert len(flashes) >= 3, (flashes, beeps)
    offsets = []
    for at in flashes:
        nearest = min(beeps, key=lambda b: abs(b - at))
        offsets.append(nearest - at)
    print(f"A/V offsets of {len(offsets)} marks (audio - video, ms):",
          [round(o * 1000, 1) for o in offsets])
    assert all(abs(o) <= SYNC_TOLERANCE_S for o in offsets), offsets
    # The marks are 2 s apart in the replay as they were at the encoder.
    assert all(abs((b - a) - 2.0) < SYNC_TOLERANCE_S for a, b in pairwise(flashes))
