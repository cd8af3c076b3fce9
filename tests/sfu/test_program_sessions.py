"""The program with real peer connections in one process: two aiortc publishers, a viewer of
the program that follows switches without a new offer."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack
from test_sessions import Clients, Viewer

from sfu.program import ProgramError
from sfu.sessions import Publication, Publisher, Selection, Sfu, Subscriber


class SmallCamera(VideoStreamTrack):
    """A second camera, 320x240, so that a viewer sees which source is on air."""

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=320, height=240)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts, frame.time_base = pts, Fraction(time_base)
        return frame


async def publish(sfu: Sfu, clients: Clients, identity: str, camera: VideoStreamTrack,
                  source: str, *, audio: bool = False, codec: str | None = None
                  ) -> Publisher:
    pc = clients.pc()
    video = pc.addTransceiver(camera, direction="sendonly")
    if codec is not None:
        video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                   if c.mimeType == codec])
    if audio:
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    publisher = sfu.room("r").publisher(identity)
    sources = [source, "microphone"] if audio else [source]
    answer = await publisher.answer(pc.localDescription.sdp, sources)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return publisher


def video_of(publisher: Publisher) -> Publication:
    return next(p for p in publisher.publications.values() if p.kind == "video")


class ProgramViewer(Viewer):
    def __init__(self, sfu: Sfu, clients: Clients) -> None:
        super().__init__(sfu, clients, "viewer")
        self.subscriber.selection = Selection(program=True)
        self.offers = 0

    async def renegotiate(self, subscriber: Subscriber) -> None:
        self.offers += 1
        await super().renegotiate(subscriber)

    async def inbound_video_ssrcs(self) -> set[int]:
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.kind == "video")
        stats = await receiver.getStats()
        return {s.ssrc for s in stats.values() if s.type == "inbound-rtp"}


async def wait_size(viewer: Viewer, size: tuple[int, int], frames: int = 5) -> None:
    """Wait for decoded frames of ``size`` (the other source's frames may come first)."""
    viewer.frame_sizes.clear()
    for _ in range(20):
        await viewer.wait_frames("video", frames)
        if size in viewer.frame_sizes:
            viewer.frame_sizes.clear()
            await viewer.wait_frames("video", frames)
            assert viewer.frame_sizes == {size}, viewer.frame_sizes
            return
    raise AssertionError(f"never saw {size}: {viewer.frame_sizes}")


async def test_a_program_viewer_follows_switches_without_renegotiating(
    sfu: Sfu, clients: Clients
) -> None:
    room = sfu.room("r")
    changes: list[dict[str, str | None]] = []

    async def changed(changed_room: object) -> None:
        changes.append(room.program.to_dict())

    sfu.on_program(changed)
    presenter = await publish(sfu, clients, "acme", VideoStreamTrack(), "camera", audio=True)
    camera = video_of(presenter)
    microphone = next(p for p in presenter.publications.values() if p.kind == "audio")
    assert changes[-1] == {"video": camera.id, "audio": microphone.id}  # on air by themselves
    viewer = ProgramViewer(sfu, clients)
    await viewer.start()
    assert "a=msid:program " in viewer.pc.remoteDescription.sdp
    await wait_size(viewer, (640, 480))
    await viewer.wait_frames("audio", 10)
    ssrcs = await viewer.inbound_video_ssrcs()
    encoder = video_of(await publish(sfu, clients, "line", SmallCamera(), "encoder"))
    assert room.program.to_dict()["video"] == camera.id  # a later source waits
    for on_air, size in ((encoder, (320, 240)), (camera, (640, 480)), (encoder, (320, 240))):
        assert await room.program.choose(video=on_air.id)
        await wait_size(viewer, size)
        await viewer.wait_frames("audio", 10)  # the microphone stayed on air
    assert viewer.offers == 0  # no renegotiation: one offer at the start, none since
    assert await viewer.inbound_video_ssrcs() == ssrcs
    receiver = next(t.receiver for t in viewer.pc.getTransceivers() if t.kind == "video")
    inbound = next(s for s in (await receiver.getStats()).values() if s.type == "inbound-rtp")
    assert inbound.packetsLost <= 5  # the numbering continued across three switches
    assert changes[-1] == {"video": encoder.id, "audio": microphone.id}
    assert sfu.stats()["downtracks"] == 2


async def test_a_source_in_another_codec_is_refused_and_an_unpublished_one_leaves_silence(
    sfu: Sfu, clients: Clients
) -> None:
    room = sfu.room("r")
    presenter = await publish(sfu, clients, "acme", VideoStreamTrack(), "camera")
    viewer = ProgramViewer(sfu, clients)
    await viewer.start()
    await viewer.wait_frames("video", 5)
    h264 = video_of(await publish(sfu, clients, "line", SmallCamera(), "encoder",
                                  codec="video/H264"))
    with pytest.raises(ProgramError) as refused:
        await room.program.choose(video=h264.id)
    assert refused.value.code == "codec_mismatch"
    assert "video/VP8" in refused.value.message and "H264" in refused.value.message
    assert room.program.to_dict()["video"] == video_of(presenter).id
    await wait_size(viewer, (640, 480))
    # The camera goes: the program is silent, its track stays; a new camera goes on air.
    await presenter.close()
    assert room.program.to_dict() == {"video": None, "audio": None}
    assert viewer.offers == 0
    again = await publish(sfu, clients, "acme", SmallCamera(), "camera")
    assert room.program.to_dict()["video"] == video_of(again).id
    await wait_size(viewer, (320, 240))
    assert viewer.offers == 0


async def test_a_viewer_of_an_empty_program_gets_its_offer_when_a_source_goes_on_air(
    sfu: Sfu, clients: Clients
) -> None:
    viewer = ProgramViewer(sfu, clients)
    assert await viewer.subscriber.create_offer() is None  # nothing to receive yet
    await publish(sfu, clients, "acme", VideoStreamTrack(), "camera", audio=True)
    pc: RTCPeerConnection = viewer.pc
    await viewer.wait_frames("video", 5)
    await viewer.wait_frames("audio", 5)
    assert viewer.offers >= 1
    assert pc.remoteDescription is not None and "a=msid:program " in pc.remoteDescription.sdp


async def test_a_viewer_of_the_publications_moves_to_the_program(
    sfu: Sfu, clients: Clients
) -> None:
    room = sfu.room("r")
    await publish(sfu, clients, "acme", VideoStreamTrack(), "camera", audio=True)
    line = video_of(await publish(sfu, clients, "line", SmallCamera(), "encoder"))
    viewer = Viewer(sfu, clients, "viewer")
    await viewer.start()
    await viewer.wait_frames("video", 10)
    assert len(viewer.subscriber.bindings) == 3  # every publication
    viewer.subscriber.select(Selection(program=True, kinds=frozenset({"video"})))
    await room.program.choose(video=line.id)
    await wait_size(viewer, (320, 240))
    assert [feed.id for feed in viewer.subscriber.bindings] == ["program-video"]
    assert all(not p.stream.downtracks for p in room.publications)  # let go of the others
