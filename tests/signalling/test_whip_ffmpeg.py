"""Interoperability: FFmpeg's own WHIP client publishes, an aiortc WHEP player watches.

Constrained Baseline is what browsers send; High (CABAC, 8x8 transforms) is what x264 at its
usual presets, OBS and hardware encoders send: the node forwards it untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
import av
import pytest
from ffmpeg_whip import HEIGHT, WIDTH, X264_BASELINE, X264_HIGH, FfmpegEncoder
from server_process import FairwireServer
from whep_player import watch

from config import load_config
from rooms import Role, RoomKind
from rooms.model import Room
from sfu import _aiortc_compat as compat
from signalling.app import create_app
from signalling.keys import SFU, STORE, TOKENS


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


async def test_an_ffmpeg_publisher_outlives_consent_freshness(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FFmpeg's WHIP muxer never answers consent checks once connected; its authenticated
    media keeps the session (it was cut after ~35 s, six unanswered checks). The timeouts are
    shortened (aioice's own too, which would cut it in 1.5 s) so that the encoder outlives
    several of them in seconds. The node runs in this
    process to shorten them; FFmpeg runs in another, since PyAV holds the GIL while it opens
    the WHIP session over HTTP to this very event loop."""
    monkeypatch.setattr(compat, "CONSENT_INTERVAL_S", 0.25)
    monkeypatch.setattr(compat, "CONSENT_TIMEOUT_S", 1.5)
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.25)
    app = create_app(load_config(environ={"FAIRWIRE_API_KEY": "k" * 20,
                                          "FAIRWIRE_DATA_DIR": str(tmp_path / "data")}))
    await app[STORE].create_room(Room(id="mixer", name="Mixer", kind=RoomKind.LIVESTREAM))
    client = await aiohttp_client(app)
    token = app[TOKENS].issue_link(room="mixer", identity="mixer-encoder", name="Mixer",
                                   role=Role.EXHIBITOR).token
    script = (
        "import sys, pathlib, av; sys.path.insert(0, sys.argv[1]);"
        "from ffmpeg_whip import FfmpegEncoder, X264_BASELINE;"
        "av.logging.set_level(av.logging.ERROR);"
        "e = FfmpegEncoder(sys.argv[2], sys.argv[3], pathlib.Path(sys.argv[4]),"
        " dict(X264_BASELINE), seconds=6); e.start(); e.join()")
    encoder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(Path(__file__).parent.parent),
        str(client.make_url("/whip/mixer")), token, str(tmp_path),
        stderr=asyncio.subprocess.PIPE)
    published = []
    while encoder.returncode is None:
        published.append(app[SFU].stats()["publications"])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(encoder.wait(), 0.5)
    _, errors = await encoder.communicate()
    assert encoder.returncode == 0, errors.decode(errors="replace")
    assert published.count(2) >= 8, published  # video and audio, through three timeouts


@pytest.fixture(autouse=True)
def _quiet_ffmpeg() -> None:
    av.logging.set_level(av.logging.ERROR)
