"""Interoperability: GStreamer's webrtcbin publishes over WHIP, an aiortc WHEP player watches.

The publisher is ``tests/interop/gst_whip_publisher.py``, run with Debian's ``/usr/bin/python3``
(python3-gi and the GStreamer typelibs are Debian packages, not in the venv). webrtcbin makes
its own DTLS certificate, a self-signed RSA-2048 one, which is what a stock GStreamer encoder
presents to the node; the three cases cover the node as DTLS client (the default ``actpass``
offer) and as DTLS server (``a=setup:active``), VP8 and H.264, and MTU-sized RTP packets.
"""

from __future__ import annotations

import asyncio
import functools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from server_process import FairwireServer
from whep_player import Watched, watch

SYSTEM_PYTHON = "/usr/bin/python3"
PUBLISHER = Path(__file__).resolve().parent.parent / "interop" / "gst_whip_publisher.py"
# What the publisher needs from Debian (bookworm, GStreamer 1.22), by what it uses:
# Gst/GstSdp/GstWebRTC typelibs; webrtcbin, dtls, srtp (bad); nicesrc/nicesink (nice);
# rtpbin, vp8enc, rtpvp8pay, rtph264pay (good); x264enc (ugly); opusenc, videotestsrc, audiotestsrc,
# videoconvert, audioconvert, audioresample (base).
APT_PACKAGES = (
    "python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 "
    "gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad "
    "gstreamer1.0-plugins-ugly gstreamer1.0-nice"
)
ELEMENTS = (
    "webrtcbin rtpbin dtlssrtpenc srtpenc nicesink videotestsrc audiotestsrc videoconvert "
    "audioconvert audioresample vp8enc rtpvp8pay x264enc rtph264pay opusenc rtpopuspay"
)
PROBE = f"""
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import Gst, GstSdp, GstWebRTC
Gst.init(None)
missing = [name for name in {ELEMENTS!r}.split() if Gst.ElementFactory.find(name) is None]
if missing:
    raise SystemExit("missing GStreamer elements: " + " ".join(missing))
"""

WIDTH, HEIGHT = 640, 360
SECONDS = 6  # how long the publisher sends once connected: enough for 30 frames after a join
PLAYER_TIMEOUT = 12.0


@functools.cache
def gstreamer_problem() -> str:
    """Why the system Python cannot run the publisher ("" when it can); probed once."""
    try:
        probe = subprocess.run([SYSTEM_PYTHON, "-c", PROBE], capture_output=True, text=True,
                               timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if probe.returncode == 0:
        return ""
    lines = probe.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {probe.returncode}"


def require_gstreamer() -> None:
    """Fail (not skip) the test with the packages to install when GStreamer is missing."""
    if problem := gstreamer_problem():
        pytest.fail(f"{SYSTEM_PYTHON} cannot run GStreamer's webrtcbin ({problem}); install: "
                    f"apt-get install -y {APT_PACKAGES}", pytrace=False)


@dataclass
class Run:
    """One publisher run and what the player saw meanwhile."""

    watched: Watched | None
    player_error: BaseException | None
    returncode: int | None
    stdout: str
    stderr: str
    server_log: str

    def report(self) -> str:
        log_tail = "\n".join(self.server_log.splitlines()[-40:])
        return (f"player: {self.player_error or self.watched}\n"
                f"publisher exited {self.returncode}\n--- publisher stdout\n{self.stdout}"
                f"--- publisher stderr\n{self.stderr}--- server log (tail)\n{log_tail}")

    def max_rtp_bytes(self) -> int:
        found = re.search(r"^max-rtp-bytes (\d+)$", self.stdout, re.MULTILINE)
        return int(found.group(1)) if found else 0


async def publish_and_watch(server: FairwireServer, room: str, *options: str) -> Run:
    """Run the GStreamer publisher into ``room`` while the WHEP player watches it."""
    require_gstreamer()
    await server.create_room(id=room, name=f"GStreamer {room}", kind="livestream",
                             status="live")
    encoder_token = await server.token(room, "gst-encoder", "exhibitor", name="GStreamer")
    viewer_token = await server.token(room, "viewer", "visitor", name="Viewer")
    process = await asyncio.create_subprocess_exec(
        SYSTEM_PYTHON, str(PUBLISHER), "--url", f"{server.url}/whip/{room}",
        "--token", encoder_token, "--seconds", str(SECONDS), *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    publisher = asyncio.ensure_future(process.communicate())
    player = asyncio.ensure_future(watch(server.url, room, viewer_token, video_frames=30,
                                         audio_frames=10, timeout=PLAYER_TIMEOUT))
    watched: Watched | None = None
    player_error: BaseException | None = None
    try:
        await asyncio.wait({publisher, player}, return_when=asyncio.FIRST_COMPLETED)
        if not player.done() and process.returncode != 0:
            # A publisher that gave up (DTLS failed, say) ends the wait at once, not after the
            # player's whole timeout; one that ended cleanly leaves the player to time out
            # with what it decoded so far in its message.
            player.cancel()
        await asyncio.wait({player})  # let it close its peer connection
        if player.cancelled():
            player_error = RuntimeError("the publisher failed before the player saw enough")
        elif player.exception() is not None:
            player_error = player.exception()  # reported with the publisher's output
        else:
            watched = player.result()
        try:
            async with asyncio.timeout(SECONDS + 15):
                await asyncio.shield(publisher)
        except TimeoutError:
            process.kill()  # its output so far still ends up in the report
        stdout, stderr = await publisher
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return Run(watched, player_error, process.returncode, stdout.decode(errors="replace"),
               stderr.decode(errors="replace"), server.log())


def assert_played(run: Run) -> Watched:
    """The publisher ended cleanly and the player decoded 640x360 video and audio."""
    assert run.returncode == 0, run.report()
    assert run.watched is not None, run.report()
    assert run.watched.video_frames >= 30, run.report()
    assert set(run.watched.video_sizes) == {(WIDTH, HEIGHT)}, run.report()
    assert run.watched.audio_frames > 0, run.report()
    return run.watched


async def test_vp8_and_opus_with_the_node_as_dtls_client(
    fairwire_server: FairwireServer,
) -> None:
    run = await publish_and_watch(fairwire_server, "gst-vp8", "--codec", "vp8")
    watched = assert_played(run)
    assert "VP8/90000" in watched.answer
    # actpass offered, the node answers active (RFC 8842 §5.2): the node is the DTLS client
    # and webrtcbin's RSA certificate is the server's.
    assert "answer a=setup:active" in run.stdout, run.report()


async def test_h264_constrained_baseline_with_mtu_sized_packets(
    fairwire_server: FairwireServer,
) -> None:
    run = await publish_and_watch(fairwire_server, "gst-h264", "--codec", "h264",
                                  "--mtu", "1400")
    watched = assert_played(run)
    assert "H264/90000" in watched.answer
    # 640x360 keyframes fragment into full FU-A packets: packets of ~1400 bytes were sent and
    # still the player decoded every frame size it saw, so the SFU forwarded them.
    assert run.max_rtp_bytes() > 1300, run.report()


async def test_vp8_with_the_node_as_dtls_server(fairwire_server: FairwireServer) -> None:
    run = await publish_and_watch(fairwire_server, "gst-active", "--codec", "vp8",
                                  "--setup", "active")
    assert_played(run)
    assert "offer a=setup:active" in run.stdout, run.report()
    assert "answer a=setup:passive" in run.stdout, run.report()
