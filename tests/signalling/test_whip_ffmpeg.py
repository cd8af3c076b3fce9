"""Interoperability: FFmpeg's own WHIP client publishes, an aiortc WHEP player watches.

Constrained Baseline is what browsers send; High (CABAC, 8x8 transforms) is what x264 at its
usual presets, OBS and hardware encoders send: the node forwards it untouched.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import av
import pytest
from ffmpeg_whip import HEIGHT, WIDTH, X264_BASELINE, X264_HIGH, FfmpegEncoder
from server_process import FairwireServer
from whep_player import watch


@pytest.mark.parametrize(("x264", "profile"), [(X264_BASELINE, "baseline"),
                                                (X264_HIGH, "high")], ids=["baseline", "high"])
async def test_ffmpeg_publishes_over_whip_and_a_whep_player_decodes_it(
    fairwire_server: FairwireServer, tmp_path: Path, x264: dict[str, str], profile: str
) -> None:
    server = fairwire_server
    room = f"press-line-{profile}"
    await server.create_room(id=room, name="Press line", kind="livestream", status="live")
    encoder_token = await server.token(room, "line-encoder", "exhibitor", name="Line encoder")
    viewer_token = await server.token(room, "viewer", "visitor", name="Viewer")
    encoder = FfmpegEncoder(f"{server.url}/whip/{room}", encoder_token, tmp_path, x264)
    encoder.start()
    try:
        watched = await watch(server.url, room, viewer_token, video_frames=30, audio_frames=20)
        assert "H264/90000" in watched.answer
        assert set(watched.video_sizes) == {(WIDTH, HEIGHT)}
        # Operators see what the encoder sends: the participant's track and /metrics.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/metrics") as response:
                metrics = await response.text()
        assert (f'fairwire_published_tracks{{codec="H264",kind="video",profile="{profile}"}} '
                '1.0') in metrics
    finally:
        encoder.join()


async def test_a_late_viewer_starts_on_the_next_keyframe_of_an_encoder_that_ignores_pli(
    fairwire_server: FairwireServer, tmp_path: Path
) -> None:
    """A muxer cannot make its encoder produce a keyframe: FFmpeg's WHIP output sends what it
    is given, here a keyframe every 3 s. The node's PLI goes unanswered and the viewer waits
    for the next keyframe, then decodes clean frames (never a delta frame first)."""
    server = fairwire_server
    room = "kiln-camera"
    await server.create_room(id=room, name="Kiln camera", kind="livestream", status="live")
    encoder_token = await server.token(room, "kiln-encoder", "exhibitor")
    viewer_token = await server.token(room, "late-viewer", "visitor")
    encoder = FfmpegEncoder(f"{server.url}/whip/{room}", encoder_token, tmp_path,
                            X264_BASELINE | {"g": "90"}, seconds=10)
    encoder.start()
    try:
        early = await watch(server.url, room, viewer_token, video_frames=1, audio=False)
        await asyncio.sleep(1.0)  # now between two keyframes
        late = await watch(server.url, room, viewer_token, video_frames=30, audio=False)
        assert late.first_video_frame_after is not None
        assert late.first_video_frame_after < 3.5, late  # within one keyframe interval
        assert set(late.video_sizes) == set(early.video_sizes) == {(WIDTH, HEIGHT)}
    finally:
        encoder.join()


@pytest.fixture(autouse=True)
def _quiet_ffmpeg() -> None:
    av.logging.set_level(av.logging.ERROR)
