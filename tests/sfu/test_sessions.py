"""The SFU with real peer connections in one process: aiortc clients publish and subscribe."""

from __future__ import annotations

import asyncio
import gc
import re
import resource
from collections.abc import AsyncIterator, Callable

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtcpRrPacket, RtcpRtpfbPacket, RtpPacket
from aiortc.sdp import SessionDescription
from tone import ToneTrack

from sfu.codecs import CodecFormat
from sfu.sessions import MediaSettings, Publisher, SdpError, Sfu, Subscriber


class Clients:
    """Client peer connections made by a test, all closed at its end."""

    def __init__(self) -> None:
        self.pcs: list[RTCPeerConnection] = []
        self.tasks: list[asyncio.Task[None]] = []

    def pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection()
        self.pcs.append(pc)
        return pc

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for pc in self.pcs:
            await pc.close()


@pytest.fixture(params=[True, False], ids=["native-batch", "python-batch"])
async def sfu(request: pytest.FixtureRequest) -> AsyncIterator[Sfu]:
    # Every forwarding test runs on both batch senders: the native one and its reference.
    instance = Sfu(MediaSettings(native_batch=request.param))
    yield instance
    await instance.close()


async def publish(sfu: Sfu, clients: Clients, identity: str = "alice",
                  video_codec: str | None = None, audio: bool = True) -> tuple[
                      RTCPeerConnection, Publisher]:
    pc = clients.pc()
    video = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    if video_codec is not None:
        video.setCodecPreferences([
            c for c in RTCRtpSender.getCapabilities("video").codecs
            if c.mimeType == video_codec
        ])
    if audio:
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    publisher = sfu.room("r").publisher(identity)
    answer = await publisher.answer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return pc, publisher


class Viewer:
    """A subscribing client that decodes what it receives and counts frames per kind."""

    def __init__(self, sfu: Sfu, clients: Clients, identity: str = "bob") -> None:
        self.pc = clients.pc()
        self.clients = clients
        self.frames = {"audio": 0, "video": 0}
        self.frame_sizes: set[tuple[int, int]] = set()
        self.ended: list[str] = []
        self.subscriber = sfu.room("r").subscriber(identity, on_negotiation_needed=self.renegotiate)
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.clients.tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                self.ended.append(track.kind)
                return
            self.frames[track.kind] += 1
            if track.kind == "video":
                self.frame_sizes.add((frame.width, frame.height))  # type: ignore[union-attr]

    async def renegotiate(self, subscriber: Subscriber) -> None:
        if self.pc.signalingState == "closed":
            return  # the test is over: its client went first
        offer = await subscriber.create_offer()
        if offer is not None:
            await self._answer(offer)

    async def _answer(self, offer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.subscriber.apply_answer(self.pc.localDescription.sdp)

    async def start(self) -> None:
        offer = await self.subscriber.create_offer()
        assert offer is not None
        await self._answer(offer)

    async def wait_frames(self, kind: str, count: int, timeout: float = 10) -> None:
        start = self.frames[kind]
        async with asyncio.timeout(timeout):
            while self.frames[kind] < start + count:
                await asyncio.sleep(0.02)


async def test_published_audio_and_video_reach_a_subscriber(sfu: Sfu, clients: Clients) -> None:
    await publish(sfu, clients)
    viewer = Viewer(sfu, clients)
    await viewer.start()
    await viewer.wait_frames("video", 20)
    await viewer.wait_frames("audio", 20)
    assert viewer.frame_sizes == {(640, 480)}
    stats = sfu.stats()
    assert stats["publications"] == 2 and stats["downtracks"] == 2


async def test_h264_is_forwarded_as_h264(sfu: Sfu, clients: Clients) -> None:
    _, publisher = await publish(sfu, clients, video_codec="video/H264", audio=False)
    assert [p.codec for p in publisher.publications.values()] == ["H264"]
    viewer = Viewer(sfu, clients)
    await viewer.start()
    assert "H264/90000" in viewer.pc.remoteDescription.sdp
    assert "VP8" not in viewer.pc.remoteDescription.sdp
    await viewer.wait_frames("video", 10)


@pytest.mark.parametrize(("profile_level_id", "mode", "profile"), [
    ("640028", "1", "high"),  # High 4.0, as x264 "veryfast" and hardware encoders send
    ("4d0032", "1", "main"),
    ("42e01f", "1", "constrained-baseline"),
    ("42001e", "1", "baseline"),
    ("640c1f", "1", "constrained-high"),
    ("64001f", "0", "high"),  # single NAL unit mode, where the offer has only that
])
async def test_every_h264_profile_an_encoder_offers_is_forwarded_untouched(
    sfu: Sfu, clients: Clients, profile_level_id: str, mode: str, profile: str
) -> None:
    pc = clients.pc()
    video = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    video.setCodecPreferences([
        c for c in RTCRtpSender.getCapabilities("video").codecs
        if c.mimeType == "video/H264" and c.parameters.get("packetization-mode") == mode
        and str(c.parameters.get("profile-level-id"))[:4] == profile_level_id[:4]
    ])
    await pc.setLocalDescription(await pc.createOffer())
    # The encoder's own level, which the SFU's table does not list.
    offer = re.sub(r"profile-level-id=[0-9a-f]{6}", f"profile-level-id={profile_level_id}",
                   pc.localDescription.sdp)
    publisher = sfu.room("r").publisher("encoder")
    answer = await publisher.answer(offer)
    assert f"profile-level-id={profile_level_id}" in answer  # never asked to go lower
    assert f"packetization-mode={mode}" in answer
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    [publication] = publisher.publications.values()
    assert (publication.codec, publication.profile) == ("H264", profile)
    viewer = Viewer(sfu, clients)
    await viewer.start()
    offered = next(m for m in SessionDescription.parse(viewer.pc.remoteDescription.sdp).media
               if m.kind == "video").rtp.codecs
    formats = [CodecFormat.of(c.mimeType, c.parameters) for c in offered
               if c.mimeType != "video/rtx"]
    # The publisher's own format first, then those whose decoders take it (never another
    # codec, never a narrower profile).
    assert formats[0] == publication.format
    assert set(formats) <= set(publication.format.receivable_as())
    await viewer.wait_frames("video", 10)


async def test_an_h264_profile_browsers_cannot_decode_is_refused(sfu: Sfu, clients: Clients
                                                                 ) -> None:
    pc = clients.pc()
    video = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                               if c.mimeType == "video/H264"][:1])
    await pc.setLocalDescription(await pc.createOffer())
    high10 = re.sub(r"profile-level-id=[0-9a-f]{6}", "profile-level-id=6e001f",
                    pc.localDescription.sdp)
    with pytest.raises(SdpError) as refused:
        await sfu.room("r").publisher("encoder").answer(high10)
    # The operator learns what was offered and what would work.
    assert "video: H264 profile-level-id=6e001f" in str(refused.value)
    assert "high" in str(refused.value) and "VP8" in str(refused.value)


async def test_subscriber_is_renegotiated_as_tracks_come_and_go(
    sfu: Sfu, clients: Clients
) -> None:
    viewer = Viewer(sfu, clients)
    assert await viewer.subscriber.create_offer() is None  # nothing to receive yet
    _, publisher = await publish(sfu, clients)
    await viewer.wait_frames("video", 10)  # the offer came through on_negotiation_needed
    await publisher.close()

    def directions() -> list[str | None]:
        return [t.currentDirection for t in viewer.pc.getTransceivers()]

    async with asyncio.timeout(10):
        while directions() != ["inactive", "inactive"]:
            await asyncio.sleep(0.02)
    assert sfu.stats()["downtracks"] == 0
    frames = viewer.frames["video"]
    await asyncio.sleep(0.3)
    assert viewer.frames["video"] <= frames + 1  # at most one frame still in flight
    await publish(sfu, clients, identity="carol")
    await viewer.wait_frames("video", 10)


async def test_a_participant_never_receives_its_own_media(sfu: Sfu, clients: Clients) -> None:
    await publish(sfu, clients, identity="alice")
    own = sfu.room("r").subscriber("alice")
    assert await own.create_offer() is None


async def test_republishing_keeps_the_subscriber_stream_without_renegotiation(
    sfu: Sfu, clients: Clients
) -> None:
    first_pc, first = await publish(sfu, clients)
    viewer = Viewer(sfu, clients)
    await viewer.start()
    await viewer.wait_frames("video", 10)
    offers_before = viewer.pc.remoteDescription.sdp
    # An ICE restart: the publisher reconnects on a new peer connection.
    await first.close(keep_publications=True)
    await first_pc.close()
    pc = clients.pc()
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    second = sfu.room("r").publisher("alice")
    answer = await second.answer(pc.localDescription.sdp, replacing=first)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await viewer.wait_frames("video", 20)
    assert viewer.pc.remoteDescription.sdp == offers_before
    assert viewer.ended == []
    assert sfu.stats()["publications"] == 2


async def test_malformed_offers_are_refused(sfu: Sfu) -> None:
    room = sfu.room("r")
    no_media = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    for bad in ("", "hello", "v=0\r\nnonsense", no_media):
        publisher = room.publisher("x")
        with pytest.raises(SdpError):
            await publisher.answer(bad)
        await publisher.close()
    assert sfu.stats()["publishers"] == 0


async def test_a_client_that_goes_away_frees_its_server_side(sfu: Sfu, clients: Clients) -> None:
    pc, _ = await publish(sfu, clients)
    viewer = Viewer(sfu, clients)
    await viewer.start()
    await viewer.wait_frames("video", 5)
    await pc.close()
    await viewer.pc.close()
    async with asyncio.timeout(10):
        while sfu.stats()["publishers"] or sfu.stats()["subscribers"]:
            await asyncio.sleep(0.05)
    assert sfu.stats()["publications"] == 0


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def test_joining_and_leaving_200_times_leaves_nothing_behind(
    sfu: Sfu, clients: Clients
) -> None:
    """Subscribers come and go around one live publisher: no task, memory or state growth."""
    await publish(sfu, clients)
    room = sfu.room("r")

    async def cycle(i: int) -> None:
        pc = RTCPeerConnection()
        subscriber = room.subscriber(f"viewer-{i}")
        offer = await subscriber.create_offer()
        assert offer is not None
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await subscriber.apply_answer(pc.localDescription.sdp)
        async with asyncio.timeout(10):
            while not all(b.downtrack for b in subscriber.bindings.values()):
                await asyncio.sleep(0.01)
        await subscriber.close()
        await pc.close()

    for i in range(40):  # warm-up: caches, codec tables, allocator arenas
        await cycle(i)
    gc.collect()
    await asyncio.sleep(0.5)
    tasks_before, rss_before = len(asyncio.all_tasks()), rss_kib()
    for i in range(40, 240):
        await cycle(i)
    gc.collect()
    await asyncio.sleep(0.5)
    tasks_after, rss_after = len(asyncio.all_tasks()), rss_kib()
    assert room.subscribers == set()
    assert sfu.stats()["downtracks"] == 0
    assert tasks_after <= tasks_before
    # A leak of even one peer connection per cycle would be far above this (about 1 MB each).
    assert rss_after - rss_before < 20 * 1024, (rss_before, rss_after)


async def test_lost_packets_are_repaired_from_the_history(sfu: Sfu, clients: Clients) -> None:
    """Drop one packet in ten on the way to the subscriber: its NACKs bring them back as RTX."""
    _, publisher = await publish(sfu, clients, audio=False)
    viewer = Viewer(sfu, clients)
    await viewer.start()
    await viewer.wait_frames("video", 5)
    video = next(iter(publisher.publications.values()))
    (outbound,) = video.stream.outbound_streams
    (downtrack,) = video.stream.downtracks
    dropped = 0

    def lossy(send: Callable[[bytearray], bool]) -> Callable[[bytearray], bool]:
        count = 0

        def send_most(packet: bytearray) -> bool:
            nonlocal count, dropped
            count += 1
            if count % 10 == 0:
                dropped += 1
                return True
            return send(packet)
        return send_most

    outbound.targets = tuple(lossy(send) for send in outbound.targets)
    await viewer.wait_frames("video", 90)
    assert dropped >= 5
    assert downtrack.retransmitted >= dropped * 0.8, (dropped, downtrack.retransmitted)
    receiver_stats = await viewer.pc.getReceivers()[0].getStats()
    inbound = next(s for s in receiver_stats.values() if s.type == "inbound-rtp")
    assert inbound.packetsLost <= 2  # repaired: nothing stays missing


async def test_the_publishers_audio_level_reaches_subscribers_in_their_header_extension(
    sfu: Sfu, clients: Clients
) -> None:
    # RFC 6464: aiortc's sender writes the level of what it encodes when it was negotiated,
    # as browsers do; the SFU reads it on ingress and writes it into each forwarded packet.
    pc = clients.pc()
    microphone = ToneTrack(speaking=True)
    pc.addTransceiver(microphone, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    publisher = sfu.room("r").publisher("alice")
    answer = await publisher.answer(pc.localDescription.sdp)
    assert re.search(r"a=extmap:\d+ urn:ietf:params:rtp-hdrext:ssrc-audio-level", answer)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    viewer = Viewer(sfu, clients)
    offer = await viewer.subscriber.create_offer()
    assert offer is not None and "urn:ietf:params:rtp-hdrext:ssrc-audio-level" in offer
    await viewer._answer(offer)
    [receiver] = viewer.pc.getReceivers()
    levels: list[object] = []
    handle = receiver._handle_rtp_packet

    async def note_level(packet: RtpPacket, arrival_time_ms: int) -> None:
        levels.append(packet.extensions.audio_level)
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = note_level  # type: ignore[method-assign]
    await viewer.wait_frames("audio", 10)
    [publication] = publisher.publications.values()
    assert publication.stream.take_audio_level() in range(12, 19)  # about -15 dBov
    microphone.speaking = False
    async with asyncio.timeout(5):
        while (False, 127) not in levels:
            await asyncio.sleep(0.02)
    loud = {(False, level) for level in range(12, 19)}
    assert loud & set(levels) and set(levels) <= loud | {(False, 127)}


async def test_upstream_loss_is_nacked_and_reported_without_aiortcs_decoding_path(
    sfu: Sfu, clients: Clients
) -> None:
    """The forward-only receive path: a publisher whose packets go missing on the way in gets
    NACKs and receiver reports back; the receiver's jitter buffer never sees a packet."""
    pc, publisher = await publish(sfu, clients, audio=False)
    viewer = Viewer(sfu, clients)
    await viewer.start()
    await viewer.wait_frames("video", 5)
    video = next(iter(publisher.publications.values()))
    (sender,) = pc.getSenders()
    transport = sender.transport
    original_send = transport._send_rtp
    sent = 0
    dropped: set[int] = set()

    async def send_most(data: bytes) -> None:
        nonlocal sent
        if data[1] & 0x7F == video.payload_type:  # media, not RTX nor RTCP
            sent += 1
            if sent % 25 == 0:
                dropped.add(int.from_bytes(data[2:4], "big"))
                return
        await original_send(data)

    feedback: list[object] = []
    original_rtcp = sender._handle_rtcp_packet

    async def record_rtcp(packet: object) -> None:
        feedback.append(packet)
        await original_rtcp(packet)  # type: ignore[arg-type]

    transport._send_rtp = send_most  # type: ignore[method-assign]
    sender._handle_rtcp_packet = record_rtcp  # type: ignore[method-assign]
    await viewer.wait_frames("video", 60)
    nacked = {seq for packet in feedback if isinstance(packet, RtcpRtpfbPacket)
              for seq in packet.lost}
    assert dropped and nacked & dropped, (sorted(dropped), sorted(nacked))
    assert any(isinstance(packet, RtcpRrPacket) for packet in feedback)
    assert video.receiver is not None
    jitter_buffer = video.receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    assert jitter_buffer._origin is None  # nothing was depacketized or buffered
