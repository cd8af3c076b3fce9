"""Several sources, one program, over socket.io against a real server (in-process, loopback):
the owner publishes camera and microphone from aiortc, a second source comes over WHIP from a
publisher we did not write (GStreamer's webrtcbin, FFmpeg's WHIP muxer), and a viewer of the
program keeps decoding across switches without a new offer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from socketio_media import Participant

from config import load_config
from rooms import Role, RoomKind
from rooms.model import Room
from signalling.app import create_app
from signalling.keys import STORE, TOKENS

ServerFactory = Callable[..., Awaitable[TestServer]]
ENV = {"FAIRWIRE_API_KEY": "test-api-key-of-some-length", "FAIRWIRE_DATA_DIR": "/tmp/fw",
       "FAIRWIRE_CLOCK_SKEW": "0"}
SYSTEM_PYTHON = "/usr/bin/python3"
TESTS = Path(__file__).resolve().parent.parent
GST_PUBLISHER = TESTS / "interop" / "gst_whip_publisher.py"
CAMERA = (640, 480)  # aiortc's fake camera
ENCODER = (640, 360)  # what both WHIP publishers send


class Studio(Participant):
    """A participant whose decoded video frame sizes tell which source is on air, and who
    publishes H.264 when asked (as the studio does when the room's encoders send H.264)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sizes: list[tuple[int, int]] = []

    def _on_track(self, track: MediaStreamTrack) -> None:
        async def consume() -> None:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                self.frames[track.kind] += 1
                if track.kind == "video":
                    self.sizes.append((frame.width, frame.height))  # type: ignore[union-attr]

        self.tasks.append(asyncio.ensure_future(consume()))

    async def publish_h264(self) -> dict[str, Any]:
        pc = RTCPeerConnection()
        video = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        # Constrained Baseline, packetization mode 1: what browsers send.
        video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                   if c.mimeType == "video/H264"
                                   and c.parameters.get("profile-level-id") == "42e01f"
                                   and c.parameters.get("packetization-mode") == "1"])
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        reply: dict[str, Any] = await self.sio.call("publish", {
            "type": "offer", "sdp": pc.localDescription.sdp,
            "sources": ["camera", "microphone"]})
        assert "sdp" in reply, reply
        await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        self.sending = pc
        return reply

    async def wait_size(self, size: tuple[int, int], frames: int = 10) -> None:
        """Decoded frames of ``size`` keep coming (the other source's may come first)."""
        async with asyncio.timeout(12):
            while True:
                start = len(self.sizes)
                await self.wait_frames("video", frames)
                if set(self.sizes[start:]) == {size}:
                    return

    async def inbound_video(self) -> tuple[set[int], int]:
        """The SSRCs video arrives with, and the packets reported lost."""
        assert self.receiving is not None
        receiver = next(t.receiver for t in self.receiving.getTransceivers()
                        if t.kind == "video")
        inbound = [s for s in (await receiver.getStats()).values() if s.type == "inbound-rtp"]
        return {s.ssrc for s in inbound}, sum(s.packetsLost for s in inbound)

    def program_events(self) -> list[dict[str, Any]]:
        return [data["program"] for event, data in self.events
                if event == "room-event" and data["type"] == "program"]

    def published(self, identity: str, kind: str) -> dict[str, Any] | None:
        return next((data["track"] for event, data in self.events
                     if event == "track-published" and data["identity"] == identity
                     and data["track"]["kind"] == kind), None)


@pytest.fixture
async def booth(aiohttp_server: ServerFactory) -> TestServer:
    server = await aiohttp_server(create_app(load_config(environ=ENV)))
    await server.app[STORE].create_room(  # type: ignore[index]
        Room(id="booth", name="Booth", kind=RoomKind.LIVESTREAM, owner="acme"))
    return server


@pytest.fixture
async def people() -> AsyncIterator[list[Studio]]:
    made: list[Studio] = []
    yield made
    for person in made:
        await person.close()


def token(server: TestServer, identity: str, role: Role) -> str:
    return server.app[TOKENS].issue_link(  # type: ignore[index]
        room="booth", identity=identity, name=identity.title(), role=role).token


async def until(check: Callable[[], Any], seconds: float = 12) -> Any:
    async with asyncio.timeout(seconds):
        while not (found := check()):
            await asyncio.sleep(0.02)
    return found


FFMPEG_RUNNER = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import av
from ffmpeg_whip import FfmpegEncoder
av.logging.set_level(av.logging.ERROR)
encoder = FfmpegEncoder(sys.argv[2], sys.argv[3], Path(sys.argv[4]), seconds=float(sys.argv[5]))
encoder.start()
encoder.join(60)
"""


async def ffmpeg_whip(booth: TestServer, identity: str, directory: Path, seconds: float
                      ) -> asyncio.subprocess.Process:
    """tests/ffmpeg_whip.py's encoder in a process of its own: PyAV holds the GIL while
    libavformat's WHIP muxer waits for the node's HTTP answer, which would stall a node
    running in this process."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", FFMPEG_RUNNER, str(TESTS),
        str(booth.make_url("/whip/booth")), token(booth, identity, Role.HOST), str(directory),
        str(seconds), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def gst_whip(booth: TestServer, identity: str, codec: str, seconds: float
                   ) -> asyncio.subprocess.Process:
    """tests/interop/gst_whip_publisher.py (GStreamer's webrtcbin) with Debian's Python."""
    return await asyncio.create_subprocess_exec(
        SYSTEM_PYTHON, str(GST_PUBLISHER), "--url", str(booth.make_url("/whip/booth")),
        "--token", token(booth, identity, Role.HOST), "--codec", codec,
        "--seconds", str(seconds), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def finish(process: asyncio.subprocess.Process, *, kill: bool) -> str:
    """Wait for (or end) a publisher process; its output, for a failure's message."""
    if kill and process.returncode is None:
        process.kill()
    try:
        async with asyncio.timeout(30):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        stdout, stderr = await process.communicate()
    return f"--- stdout\n{stdout.decode(errors='replace')}--- stderr\n" + stderr.decode(
        errors="replace")


async def on_air_with_viewer(booth: TestServer, people: list[Studio], *, h264: bool = False
                             ) -> tuple[Studio, Studio, dict[str, Any]]:
    """The owner publishes camera and microphone (on air by themselves); a buyer watches the
    program. Returns both and the owner's join acknowledgement."""
    owner = Studio(booth, "acme", Role.EXHIBITOR, room="booth")
    viewer = Studio(booth, "buyer", Role.BUYER, room="booth")
    people += [owner, viewer]
    joined = await owner.connect()
    assert joined["program"] == {"video": None, "audio": None}
    if h264:
        await owner.publish_h264()
    else:
        assert "sdp" in await owner.publish(sources=["camera", "microphone"])
    camera = await until(lambda: owner.published("acme", "video"))
    microphone = await until(lambda: owner.published("acme", "audio"))
    await until(lambda: {"video": camera["id"], "audio": microphone["id"]}
                in owner.program_events())
    viewer_joined = await viewer.connect()
    assert viewer_joined["program"] == {"video": camera["id"], "audio": microphone["id"]}
    reply = await viewer.subscribe(program=True)
    assert "sdp" in reply and "a=msid:program " in reply["sdp"], reply
    await viewer.wait_size(CAMERA)
    await viewer.wait_frames("audio", 10)
    return owner, viewer, {"camera": camera["id"], "microphone": microphone["id"]}


async def test_a_whip_encoder_goes_on_air_and_back_while_the_viewer_keeps_decoding(
    booth: TestServer, people: list[Studio]
) -> None:
    """GStreamer's webrtcbin sends VP8 + Opus over WHIP, like the owner's aiortc camera: the
    program switches to it and back; the viewer's video never stops, no new offer comes, the
    SSRC stays and no packet counts as lost (the numbering continued)."""
    owner, viewer, ids = await on_air_with_viewer(booth, people)
    offers = viewer.offers
    ssrcs, _ = await viewer.inbound_video()
    encoder = await gst_whip(booth, "press-line", "vp8", seconds=10)
    try:
        line = await until(lambda: owner.published("press-line", "video"))
        assert line["codec"] == "VP8" and line["source"] == "encoder"
        line_audio = await until(lambda: owner.published("press-line", "audio"))
        assert owner.program_events()[-1]["video"] == ids["camera"]  # a later source waits

        switched = await owner.sio.call("program-set", {"video": line["id"]})
        assert switched == {"program": {"video": line["id"], "audio": ids["microphone"]}}
        await viewer.wait_size(ENCODER)  # the encoder's picture ...
        await viewer.wait_frames("audio", 10)  # ... with the presenter's voice
        await until(lambda: viewer.program_events()[-1]["video"] == line["id"])

        back = await owner.sio.call("program-set", {"video": ids["camera"]})
        assert back["program"]["video"] == ids["camera"]
        await viewer.wait_size(CAMERA)

        # The encoder's own audio on air too, then its picture once more.
        both = await owner.sio.call("program-set", {"video": line["id"],
                                                    "audio": line_audio["id"]})
        assert both == {"program": {"video": line["id"], "audio": line_audio["id"]}}
        await viewer.wait_size(ENCODER)
        await viewer.wait_frames("audio", 10)

        # A viewer may not switch; nothing changes.
        refused = await viewer.sio.call("program-set", {"video": ids["camera"]})
        assert refused["error"]["code"] == "forbidden", refused
        await viewer.wait_size(ENCODER)

        assert viewer.offers == offers  # no renegotiation, no reload
        after, lost = await viewer.inbound_video()
        assert after == ssrcs
        assert lost <= 5, lost
    except BaseException:
        print(await finish(encoder, kill=True))
        raise
    await finish(encoder, kill=False)
    # The encoder is gone: the program's video is silent until the owner picks another.
    await until(lambda: viewer.program_events()[-1] == {"video": None, "audio": None})
    again = await owner.sio.call("program-set", {"video": ids["camera"],
                                                 "audio": ids["microphone"]})
    assert again["program"] == {"video": ids["camera"], "audio": ids["microphone"]}
    await viewer.wait_size(CAMERA)
    await viewer.wait_frames("audio", 10)
    assert viewer.offers == offers


async def test_a_source_in_another_codec_is_refused_and_nothing_changes(
    booth: TestServer, people: list[Studio], tmp_path: Path
) -> None:
    """FFmpeg's WHIP muxer sends H.264 while the program's viewers negotiated VP8."""
    owner, viewer, ids = await on_air_with_viewer(booth, people)
    events = len(viewer.program_events())
    ffmpeg = await ffmpeg_whip(booth, "press-line", tmp_path, seconds=10)
    try:
        line = await until(lambda: owner.published("press-line", "video"))
        assert line["codec"] == "H264"
        refused = await owner.sio.call("program-set", {"video": line["id"]})
        assert refused["error"]["code"] == "codec_mismatch", refused
        message = refused["error"]["message"]
        assert "H264" in message and "VP8" in message and "transcoded" in message
        bad = await owner.sio.call("program-set", {"video": ids["microphone"]})
        assert bad["error"]["code"] == "invalid_field"
        unknown = await owner.sio.call("program-set", {"video": "no-such-track"})
        assert unknown["error"]["code"] == "track_not_found"
        await viewer.wait_size(CAMERA)  # still the camera
        assert len(viewer.program_events()) == events
        rejoined = await owner.sio.call("join", {})
        assert rejoined["program"] == {"video": ids["camera"], "audio": ids["microphone"]}
    except BaseException:
        print(await finish(ffmpeg, kill=True))
        raise
    await finish(ffmpeg, kill=True)


async def test_an_h264_studio_switches_to_an_h264_encoder_of_its_profile_only(
    booth: TestServer, people: list[Studio], tmp_path: Path
) -> None:
    """The studio publishes H.264 Constrained Baseline, as GStreamer's encoder on the line
    does: that one goes on air and back. FFmpeg's x264 sends (unconstrained) Baseline, which
    a Constrained Baseline decoder need not take: refused."""
    owner, viewer, ids = await on_air_with_viewer(booth, people, h264=True)
    camera = await until(lambda: owner.published("acme", "video"))
    assert (camera["codec"], camera["profile"]) == ("H264", "constrained-baseline")
    offers = viewer.offers
    gstreamer = await gst_whip(booth, "press-line", "h264", seconds=10)
    ffmpeg = await ffmpeg_whip(booth, "kiln-line", tmp_path, seconds=10)
    try:
        line = await until(lambda: owner.published("press-line", "video"))
        assert (line["codec"], line["profile"]) == ("H264", "constrained-baseline")
        switched = await owner.sio.call("program-set", {"video": line["id"]})
        assert switched["program"]["video"] == line["id"], switched
        await viewer.wait_size(ENCODER)
        back = await owner.sio.call("program-set", {"video": ids["camera"]})
        assert back["program"]["video"] == ids["camera"]
        await viewer.wait_size(CAMERA)
        kiln = await until(lambda: owner.published("kiln-line", "video"))
        assert (kiln["codec"], kiln["profile"]) == ("H264", "baseline")
        refused = await owner.sio.call("program-set", {"video": kiln["id"]})
        assert refused["error"]["code"] == "codec_mismatch", refused
        assert "constrained-baseline" in refused["error"]["message"]
        await viewer.wait_size(CAMERA)
        assert viewer.offers == offers
    except BaseException:
        print(await finish(gstreamer, kill=True), await finish(ffmpeg, kill=True))
        raise
    await finish(gstreamer, kill=True)
    await finish(ffmpeg, kill=True)


async def test_only_moderators_switch_and_only_in_livestreams(
    booth: TestServer, people: list[Studio]
) -> None:
    host = Studio(booth, "mod", Role.HOST, room="booth")
    other = Studio(booth, "rival", Role.EXHIBITOR, room="booth")  # not the owner
    people += [host, other]
    await host.connect()
    await other.connect()
    refused = await other.sio.call("program-set", {"video": "x"})
    assert refused["error"]["code"] == "forbidden"
    nothing = await host.sio.call("program-set", {"video": "x"})
    assert nothing["error"]["code"] == "track_not_found"  # allowed, but nothing is published
    for bad in ({}, {"video": 3}, {"video": None}, {"camera": "x"}, "x"):
        reply = await host.sio.call("program-set", bad)
        assert reply["error"]["code"] == "invalid_field", (bad, reply)
    assert (await host.sio.call("subscribe", {"program": True, "identities": ["acme"]})
            )["error"]["code"] == "invalid_field"
    await booth.app[STORE].create_room(  # type: ignore[index]
        Room(id="talks", name="Talks", kind=RoomKind.MEETING))
    meeting_host = Studio(booth, "mod", Role.HOST, room="talks")
    people.append(meeting_host)
    assert (await meeting_host.connect())["program"] is None
    reply = await meeting_host.sio.call("program-set", {"video": "x"})
    assert reply["error"]["code"] == "not_a_livestream"


class ScreenTrack(VideoStreamTrack):
    """A shared screen: aiortc's test picture at another size than the camera's."""

    async def recv(self) -> Any:
        frame = await super().recv()
        return frame.reformat(width=SCREEN[0], height=SCREEN[1])


SCREEN = (800, 448)


async def test_a_screen_share_joins_the_live_connection_and_leaves_it(
    booth: TestServer, people: list[Studio]
) -> None:
    """The studio adds a screen to its publishing connection (``publish-update``): it is a
    source like any other, goes on air while the camera and microphone flow on, and when the
    sharing stops it is unpublished and the program's video goes silent for the owner to
    choose again. The viewer never gets a new offer."""
    owner, viewer, ids = await on_air_with_viewer(booth, people)
    offers = viewer.offers
    pc = owner.sending
    assert pc is not None
    screen = pc.addTransceiver(ScreenTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    reply = await owner.sio.call("publish-update", {
        "type": "offer", "sdp": pc.localDescription.sdp,
        "sources": ["camera", "microphone", "screen"]})
    assert "sdp" in reply, reply
    await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
    shared = await until(lambda: next(
        (data["track"] for event, data in owner.events if event == "track-published"
         and data["track"]["source"] == "screen"), None))
    assert owner.program_events()[-1]["video"] == ids["camera"]  # the camera stays on air
    switched = await owner.sio.call("program-set", {"video": shared["id"]})
    assert switched["program"] == {"video": shared["id"], "audio": ids["microphone"]}
    await viewer.wait_size(SCREEN)
    await viewer.wait_frames("audio", 10)

    # Sharing stops: the m-section goes inactive, the screen is unpublished.
    screen.direction = "inactive"
    await pc.setLocalDescription(await pc.createOffer())
    reply = await owner.sio.call("publish-update", {"type": "offer",
                                                    "sdp": pc.localDescription.sdp})
    assert "sdp" in reply, reply
    await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
    await until(lambda: any(event == "track-unpublished" and data["track_id"] == shared["id"]
                            for event, data in owner.events))
    await until(lambda: viewer.program_events()[-1]["video"] is None)
    back = await owner.sio.call("program-set", {"video": ids["camera"]})
    assert back["program"]["video"] == ids["camera"]
    await viewer.wait_size(CAMERA)
    assert viewer.offers == offers

    # Not publishing: nothing to update.
    await owner.sio.call("unpublish", {})
    refused = await owner.sio.call("publish-update", {"type": "offer",
                                                      "sdp": pc.localDescription.sdp})
    assert refused["error"]["code"] == "not_publishing", refused
