"""Interoperability: libdatachannel publishes H.264 over WHIP, an aiortc WHEP player decodes it.

libdatachannel is the WebRTC stack inside OBS Studio's WHIP output. The publisher is
``tests/interop/datachannel/whip_publisher.mjs`` on its Node bindings (``node-datachannel``, pinned
in that folder's lock file, installed there with ``npm ci`` when missing or older than the lock):
it offers one sendonly H.264 track (packetization-mode 1, ECDSA DTLS certificate: libdatachannel's
default), packetizes an Annex-B file with libdatachannel's own H.264 packetizer, sender reports and
NACK responder, loops it in real time and ends the session with DELETE.

libdatachannel keeps one ``a=fingerprint`` of a description (with several in the first
m-section, the last) and may start DTLS as soon as ICE connects, before it has stored the answer;
then it hashes the peer's certificate with its default, SHA-256, and refuses it ("DTLS alert:
unknown CA") unless the fingerprint it kept is SHA-256. The test checks that for the WHIP answer
too, since the handshake itself fails only when that race is lost.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import av
import pytest
from server_process import REPO, FairwireServer
from whep_player import Watched, watch

PUBLISHER_DIR = REPO / "tests" / "interop" / "datachannel"
PUBLISHER = PUBLISHER_DIR / "whip_publisher.mjs"
INSTALLED_STAMP = PUBLISHER_DIR / "node_modules" / ".fairwire-installed"
NPM_TIMEOUT = 300.0

WIDTH, HEIGHT = 640, 360
FPS = 30
FRAMES = 90  # 3 s, three GOPs; the publisher loops it
PUBLISH_SECONDS = 6
ROOM = "packaging-line"


def _stale(stamp: Path, *inputs: Path) -> bool:
    if not stamp.exists():
        return True
    installed = stamp.stat().st_mtime
    return any(path.stat().st_mtime > installed for path in inputs)


@pytest.fixture(scope="module")
def node() -> str:
    """``node``, with the publisher's packages installed from its lock file."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(f"{'node' if node is None else 'npm'} is missing: apt-get install npm",
                    pytrace=False)
    if _stale(INSTALLED_STAMP, PUBLISHER_DIR / "package.json",
              PUBLISHER_DIR / "package-lock.json"):
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PUBLISHER_DIR,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=NPM_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci in {PUBLISHER_DIR} failed ({result.returncode}):\n"
                        f"{result.stdout}", pytrace=False)
        INSTALLED_STAMP.touch()
    return node


def write_h264(path: Path) -> None:
    """A 640x360 H.264 constrained-baseline Annex-B stream: moving stripes, an IDR every 30."""
    ramp = bytes(i % 256 for i in range(4 * WIDTH + 1024))
    with av.open(str(path), "w", format="h264") as output:
        stream = output.add_stream("libx264", rate=FPS, options={
            "profile": "baseline", "preset": "ultrafast", "bf": "0", "g": "30"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(FRAMES):
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            for number, plane in enumerate(frame.planes):
                rows = HEIGHT if number == 0 else HEIGHT // 2
                step = 3 if number == 0 else 1 + number
                plane.update(b"".join(
                    ramp[(row * step + index * 4) % 1024:][:plane.line_size]
                    for row in range(rows)))
            frame.pts = index
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def printed_answer(output: str) -> str:
    """The SDP answer the publisher printed after ``answer:``."""
    lines = output.splitlines()
    marker = "whip-publisher: answer:"
    if marker not in lines:
        return ""
    answer: list[str] = []
    for line in lines[lines.index(marker) + 1:]:
        if line.startswith("whip-publisher:"):
            break
        answer.append(line)
    return "\n".join(answer)


def fingerprint_libdatachannel_checks(sdp: str) -> str | None:
    """The hash of the one ``a=fingerprint`` libdatachannel (0.24) keeps from a description.

    The first one it meets, except that each one in the first m-section replaces it: with
    several there, the last one wins.
    """
    kept: str | None = None
    section = -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            section += 1
        elif line.startswith("a=fingerprint:") and (kept is None or section == 0):
            kept = line.removeprefix("a=fingerprint:").split(" ", 1)[0].lower()
    return kept


async def test_libdatachannel_publishes_h264_over_whip_and_a_whep_player_decodes_it(
    fairwire_server: FairwireServer, node: str, tmp_path: Path
) -> None:
    server = fairwire_server
    await server.create_room(id=ROOM, name="Packaging line", kind="livestream", status="live")
    encoder_token = await server.token(ROOM, "obs-encoder", "exhibitor", name="OBS encoder")
    viewer_token = await server.token(ROOM, "viewer", "visitor", name="Viewer")
    h264 = tmp_path / "stripes.h264"
    await asyncio.to_thread(write_h264, h264)

    process = await asyncio.create_subprocess_exec(
        node, str(PUBLISHER), "--url", f"{server.url}/whip/{ROOM}", "--token", encoder_token,
        "--h264", str(h264), "--fps", str(FPS), "--seconds", str(PUBLISH_SECONDS),
        cwd=PUBLISHER_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    communication = asyncio.ensure_future(process.communicate())
    watched: Watched | None = None
    problems: list[str] = []
    try:
        try:
            watched = await watch(server.url, ROOM, viewer_token, video_frames=30, audio=False,
                                  timeout=PUBLISH_SECONDS + 4)
        except (TimeoutError, AssertionError) as exc:
            problems.append(f"the WHEP player failed: {exc}")
        # The publisher sends for PUBLISH_SECONDS after connecting, then DELETEs and exits.
        grace = 2 if problems else PUBLISH_SECONDS + 10
        done, _ = await asyncio.wait({communication}, timeout=grace)
        if not done:
            problems.append("the publisher did not exit")
    finally:
        if process.returncode is None:
            process.kill()
        output_bytes, _ = await communication
    output = output_bytes.decode(errors="replace")
    if process.returncode != 0:
        problems.append(f"the publisher exited with {process.returncode}")
    answer = printed_answer(output)
    kept = fingerprint_libdatachannel_checks(answer)
    if answer and kept != "sha-256":
        # libdatachannel starts DTLS as soon as ICE connects, which can be before it has stored
        # the answer; it then hashes the peer's certificate with its default, SHA-256, and fails
        # the handshake ("DTLS alert: unknown CA") when the fingerprint it kept is another hash.
        problems.append(
            f"the WHIP answer's fingerprint that libdatachannel keeps (the last one of the first "
            f"m-section) is {kept}, not sha-256: the DTLS handshake fails whenever ICE connects "
            f"before libdatachannel has stored the answer")

    def report() -> str:
        return ("\n".join(problems) + f"\n--- publisher output ---\n{output}\n"
                f"--- server log (tail) ---\n{_tail(server.log())}")

    assert not problems, report()
    assert watched is not None
    assert "H264/90000" in watched.answer, report()
    assert watched.video_frames >= 30, report()
    assert set(watched.video_sizes) == {(WIDTH, HEIGHT)}, (watched.video_sizes, report())
