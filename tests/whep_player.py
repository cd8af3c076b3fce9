"""A WHEP player for interop tests: aiortc watches a room and decodes what it receives.

Encoders we did not write (FFmpeg, GStreamer, libdatachannel) publish over WHIP; this player
is the viewer that proves their media went through the SFU: it posts a WHEP offer (retrying
while the node answers 409 because the encoder is still connecting), then counts decoded video
frames by size and audio frames until it has seen enough. Its codec table is the node's
(every H.264 profile browsers decode): aiortc alone offers only Constrained Baseline and
Baseline, though its decoder (FFmpeg's) takes them all.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from sfu import _aiortc_compat as compat


@dataclass
class Watched:
    """What the player decoded: video frame sizes with their counts, audio frame count."""

    video_sizes: Counter[tuple[int, int]] = field(default_factory=Counter)
    audio_frames: int = 0
    answer: str = ""
    # Seconds from the answer being applied to the first decoded video frame.
    first_video_frame_after: float | None = None

    @property
    def video_frames(self) -> int:
        return sum(self.video_sizes.values())


async def watch(
    base_url: str, room: str, token: str, *, video_frames: int = 30, audio_frames: int = 0,
    audio: bool = True, timeout: float = 20.0, publisher: str | None = None,
) -> Watched:
    """Play ``room`` over WHEP until ``video_frames`` and ``audio_frames`` were decoded.

    Raises TimeoutError (with what was seen so far in the message) when they do not arrive.
    """
    watched = Watched()
    answered = time.monotonic()
    compat.register_forwarded_codecs()
    pc = RTCPeerConnection()
    tasks: list[asyncio.Task[None]] = []

    def on_track(track: MediaStreamTrack) -> None:
        async def consume() -> None:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                if track.kind == "video":
                    if watched.first_video_frame_after is None:
                        watched.first_video_frame_after = time.monotonic() - answered
                    watched.video_sizes[(frame.width, frame.height)] += 1  # type: ignore[union-attr]
                else:
                    watched.audio_frames += 1

        tasks.append(asyncio.ensure_future(consume()))

    pc.on("track", on_track)
    pc.addTransceiver("video", direction="recvonly")
    if audio:
        pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    url = f"{base_url}/whep/{room}" + (f"?publisher={publisher}" if publisher else "")
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(timeout):
            while not watched.answer:
                async with http.post(
                    url, data=pc.localDescription.sdp,
                    headers={"Content-Type": "application/sdp",
                             "Authorization": f"Bearer {token}"},
                ) as response:
                    if response.status == 201:
                        watched.answer = await response.text()
                    elif response.status == 409:  # the encoder is still connecting
                        await asyncio.sleep(0.2)
                    else:
                        raise AssertionError(
                            f"WHEP {response.status}: {await response.text()}")
            answered = time.monotonic()
            await pc.setRemoteDescription(RTCSessionDescription(watched.answer, "answer"))
            while (watched.video_frames < video_frames
                   or watched.audio_frames < audio_frames):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise TimeoutError(
            f"after {timeout} s the player decoded {dict(watched.video_sizes)} video frames "
            f"and {watched.audio_frames} audio frames") from None
    finally:
        for task in tasks:
            task.cancel()
        await pc.close()
    return watched
