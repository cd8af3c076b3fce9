"""Publishers, subscribers and rooms on aiortc peer connections: the thin async layer.

Media never goes through aiortc's track/encoder machinery on the forwarding path: a publisher's
receiver hands each packet to a :class:`~sfu.forwarding.SourceStream`, which writes rewritten
copies straight into every subscriber's SRTP transport. aiortc still does what it is good at:
SDP, ICE, DTLS, SRTP contexts, receiver reports, NACK generation and RTCP routing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from sfu import _aiortc_compat as compat
from sfu.batch_fanout import BatchedFanout
from sfu.batch_send import BatchSender, ReferenceBatchSender, open_batch_sender
from sfu.codecs import CodecFormat, H264Profile
from sfu.forwarding import MID_EXTENSION_URI, DownTrack, Fanout, SendEach, SourceStream
from sfu.history import PacketHistory
from sfu.ice_mux import MediaSocket
from sfu.program import KEEP, KINDS, Choice, ProgramSlot, ProgramState, ProgramTrack
from sfu.rtp import AUDIO_LEVEL_EXTENSION_URI
from sfu.sender_report import SenderReportTranslator

log = logging.getLogger(__name__)

NTP_EPOCH_OFFSET = 2208988800  # RFC 5905 §6: seconds from 1900-01-01 to 1970-01-01
SENDER_REPORT_INTERVAL = 1.0  # seconds; aiortc sends an SR every 0.5-1.5 s
ATTACH_RETRY_SECONDS = 0.05


def monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


def ntp_now() -> int:
    now = time.time() + NTP_EPOCH_OFFSET
    return (int(now) << 32) | int((now % 1) * (1 << 32))


# The sources a shared screen publishes, and the suffix of its MediaStream id (RFC 8830 msid).
SCREEN_SOURCES = frozenset({"screen", "screen-audio"})
SCREEN_STREAM_SUFFIX = "~screen"

class SdpError(ValueError):
    """The remote description cannot be used (malformed, or nothing we can receive)."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Which of a room's tracks a subscriber receives; None means no restriction.

    ``program``: the room's program instead of its publications, one video and one audio
    track that follow the program's switches (``kinds`` still narrows it).
    """

    identities: frozenset[str] | None = None
    track_ids: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    program: bool = False

    def includes(self, publication: Publication) -> bool:
        return not self.program and (
            (self.identities is None or publication.identity in self.identities)
            and (self.track_ids is None or publication.id in self.track_ids)
            and (self.kinds is None or publication.kind in self.kinds)
        )

    def includes_program(self, slot: ProgramSlot) -> bool:
        return self.program and (self.kinds is None or slot.kind in self.kinds)


class Feed(Protocol):
    """What a subscriber's sender carries: a publication, or a program slot."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def format(self) -> CodecFormat | None: ...

    @property
    def outbound_ssrc(self) -> int: ...

    @property
    def outbound_rtx_ssrc(self) -> int: ...

    @property
    def stream_id(self) -> str: ...

    def add_downtrack(self, downtrack: DownTrack) -> None: ...

    def remove_downtrack(self, downtrack: DownTrack) -> None: ...

    def packet_history(self) -> PacketHistory | None: ...

    def sender_report_timing(self) -> SenderReportTranslator | None: ...

    def request_keyframe(self) -> None: ...


class MediaEvents(Protocol):
    """What the SFU tells the signalling layer."""

    async def track_published(self, publication: Publication) -> None: ...

    async def track_unpublished(self, publication: Publication) -> None: ...


# Called after a room's program changed (room.program says what is on air now).
ProgramListener = Callable[["SfuRoom"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class MediaSettings:
    ice_servers: tuple[str, ...] = ()
    # The one UDP socket every peer connection uses (sfu.ice_mux); port 0: any free one.
    media_host: str = "0.0.0.0"
    media_port: int = 0
    # Protect and send each forwarded packet for all its subscribers in one native call
    # (sfu.batch_send); False, or the extension not built: the Python reference does it.
    native_batch: bool = True
    pli_interval_ms: int = 500
    history_size: int = 1024
    history_max_age_ms: int = 3000

    def rtc_configuration(self) -> RTCConfiguration:
        servers = [RTCIceServer(urls=url) for url in self.ice_servers]
        return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def _new_id() -> str:
    return secrets.token_hex(8)


async def _set_remote(pc: RTCPeerConnection, sdp: str, kind: str) -> None:
    if not isinstance(sdp, str) or not sdp.strip().startswith("v=0"):
        raise SdpError("not an SDP document (must start with v=0)")
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
    except Exception as exc:  # parse errors, and aiortc's InvalidStateError / InternalError
        raise SdpError(f"cannot use this SDP {kind}: {exc}") from None


FORWARDED_CODECS = (
    "VP8 or H.264 (" + ", ".join(p.value for p in H264Profile)
    + "; packetization-mode 0 or 1) video and Opus audio"
)


def _unsupported_codecs(offer_sdp: str) -> str:
    """The offered codecs of every m-section none of whose codecs can be forwarded."""
    try:
        media = SessionDescription.parse(offer_sdp).media
    except Exception:  # unparseable: the caller's error says so
        return ""
    described = []
    for section in media:
        if section.kind not in ("audio", "video"):
            continue
        codecs = [c for c in section.rtp.codecs if not c.mimeType.lower().endswith("/rtx")]
        if codecs and not any(compat.can_forward(section.kind, c) for c in codecs):
            described.append(f"{section.kind}: " + ", ".join(
                c.mimeType.split("/", 1)[-1] + "".join(
                    f" {k}={v}" for k, v in c.parameters.items() if k == "profile-level-id")
                for c in codecs))
    return "; ".join(described)


class Publication:
    """A published track: its source stream and where its packets come from."""

    def __init__(
        self, room: SfuRoom, publisher: Publisher, kind: str, source: str, settings: MediaSettings,
        codec: compat.NegotiatedCodec,
    ) -> None:
        self.id = _new_id()
        self.room = room
        self.publisher = publisher
        self.kind = kind
        self.source = source
        self.format = codec.format
        # The publisher turned this track off (camera off, microphone muted): others are told.
        self.muted = False
        self.stream = SourceStream(
            kind=kind, mime_type=codec.mime_type, clock_rate=codec.clock_rate,
            history_size=settings.history_size, history_max_age_ms=settings.history_max_age_ms,
            pli_interval_ms=settings.pli_interval_ms,
        )
        # Every subscriber's sender uses these SSRCs (they need only be unique within one
        # peer connection), so that one packet serves every subscriber of the track.
        self.outbound_ssrc = random.getrandbits(32)
        self.outbound_rtx_ssrc = random.getrandbits(32)
        self.receiver: RTCRtpReceiver | None = None
        self._payload_type = -1
        self._rtx_payload_type = -1
        self._pli_timer: asyncio.TimerHandle | None = None
        self._pli_tasks: set[asyncio.Task[None]] = set()

    @property
    def identity(self) -> str:
        return self.publisher.identity

    @property
    def mime_type(self) -> str:
        return self.format.mime_type

    @property
    def codec(self) -> str:
        return self.format.codec

    @property
    def profile(self) -> str:
        return self.format.profile_name

    @property
    def stream_id(self) -> str:
        """Each participant's camera and microphone arrive in one MediaStream named after them;
        a shared screen (and its sound) in another, ``{identity}~screen``, so that a page shows
        it beside the camera rather than instead of it ("~" is in no identity)."""
        if self.source in SCREEN_SOURCES:
            return self.identity + SCREEN_STREAM_SUFFIX
        return self.identity

    def add_downtrack(self, downtrack: DownTrack) -> None:
        self.stream.add(downtrack)

    def remove_downtrack(self, downtrack: DownTrack) -> None:
        self.stream.remove(downtrack)

    def packet_history(self) -> PacketHistory | None:
        return self.stream.history

    def sender_report_timing(self) -> SenderReportTranslator | None:
        return self.stream.sender_reports

    @property
    def payload_type(self) -> int:
        """The payload type the publisher sends this track with."""
        return self._payload_type

    def bind(self, receiver: RTCRtpReceiver, payload_type: int, rtx_payload_type: int | None
             ) -> None:
        """Take packets from ``receiver`` (a new one after an ICE restart re-publish)."""
        self.receiver = receiver
        self._payload_type = payload_type
        self._rtx_payload_type = -1 if rtx_payload_type is None else rtx_payload_type
        stream = self.stream
        compat.install_ingress_hook(
            receiver, self._on_rtp, self._on_sender_report, stream.take_yield_turn
        )

    def _on_rtp(self, packet: RtpPacket, arrival_time_ms: int) -> RtpPacket | None:
        """Forward one incoming packet; returns it as forwarded (a retransmission unwrapped),
        or None when it is not forwarded."""
        payload_type = packet.payload_type
        if payload_type == self._rtx_payload_type:
            if len(packet.payload) <= 2 or self.stream.ssrc is None:
                return None  # RTX padding used for bandwidth probing
            packet = compat.unwrap_retransmission(packet, self._payload_type, self.stream.ssrc)
        elif payload_type != self._payload_type:
            return None
        payload = packet.payload
        if not payload:
            return None  # padding-only probe
        stream = self.stream
        new_source = packet.ssrc != stream.ssrc and stream.ssrc is not None
        stream.on_packet(
            packet.ssrc, packet.sequence_number, packet.timestamp, bool(packet.marker),
            payload, monotonic_ms(), compat.received_audio_level(packet),
        )
        if new_source and stream.needs_keyframe():
            self.request_keyframe()  # the subscribers now wait for the new source's keyframe
        return packet

    def _on_sender_report(self, ssrc: int, ntp: int, rtp_timestamp: int) -> None:
        if ssrc == self.stream.ssrc:
            self.stream.on_sender_report(ntp, rtp_timestamp, monotonic_ms())

    def request_keyframe(self) -> None:
        """A subscriber needs a keyframe: PLI upstream now, or when the throttle allows."""
        if self.kind != "video":
            return
        now = monotonic_ms()
        if self.stream.request_keyframe(now):
            self._send_pli()
        else:
            self._schedule_pending_pli(now)

    def _schedule_pending_pli(self, now: int) -> None:
        due = self.stream.pli.next_due_ms()
        if due is None or self._pli_timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._pli_timer = loop.call_later(max(0, due - now) / 1000, self._pli_timer_fired)

    def _pli_timer_fired(self) -> None:
        self._pli_timer = None
        now = monotonic_ms()
        if self.stream.pli.due(now):
            self._send_pli()
        else:
            self._schedule_pending_pli(now)

    def _send_pli(self) -> None:
        receiver, ssrc = self.receiver, self.stream.ssrc
        if receiver is None or ssrc is None:
            return
        task = asyncio.ensure_future(compat.request_keyframe(receiver, ssrc))
        self._pli_tasks.add(task)
        task.add_done_callback(self._pli_tasks.discard)

    def close(self) -> None:
        if self._pli_timer is not None:
            self._pli_timer.cancel()
            self._pli_timer = None
        for task in self._pli_tasks:
            task.cancel()
        self.receiver = None


class Publisher:
    """One peer connection that sends media into a room (a browser, or a WHIP encoder)."""

    def __init__(
        self, room: SfuRoom, identity: str, *, on_closed: Callable[[Publisher], Awaitable[None]]
        | None = None,
    ) -> None:
        self.id = _new_id()
        self.room = room
        self.identity = identity
        self.publications: dict[RTCRtpTransceiver, Publication] = {}
        self.pc = compat.new_peer_connection(room.sfu.settings.rtc_configuration(),
                                             room.sfu.media_socket)
        self._on_closed = on_closed
        self._closed = False
        self.pc.on("connectionstatechange", self._on_connection_state)

    async def _on_connection_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed") and not self._closed:
            log.info("publisher %s in %s: connection %s", self.identity, self.room.id,
                     self.pc.connectionState)
            await self.close()

    async def answer(self, offer_sdp: str, sources: list[str] | None = None,
                     replacing: Publisher | None = None) -> str:
        """Apply the publisher's offer and return our answer (complete with candidates).

        A later offer on the same connection (renegotiation: a screen share added or
        stopped) publishes the m-sections it adds and unpublishes those it no longer sends
        on. ``sources`` name the offer's m-sections in order (camera, screen, ...).
        """
        pc = self.pc
        try:
            await _set_remote(pc, offer_sdp, "offer")
        except SdpError as exc:
            unsupported = _unsupported_codecs(offer_sdp)
            if unsupported:
                raise SdpError(
                    f"no codec of the offer can be forwarded ({unsupported}); this server "
                    f"takes {FORWARDED_CODECS}") from None
            raise exc from None
        media = SessionDescription.parse(offer_sdp).media
        mids = [m.rtp.muxId for m in media]
        sending = {m.rtp.muxId for m in media if m.direction in ("sendonly", "sendrecv")}
        stopped = [t for t in self.publications if t.mid not in sending]
        for transceiver, published in self.publications.items():
            if transceiver not in stopped and not compat.keep_payload_type(
                    transceiver, published.payload_type):
                raise SdpError(f"the offer changes the codec of the {published.kind} track "
                               f"it sends ({published.format}): unpublish first")
        new: list[Publication] = []
        reusable = list(replacing.publications.values()) if replacing else []
        for transceiver in pc.getTransceivers():
            if transceiver in self.publications or transceiver.receiver.track is None:
                continue
            if transceiver.direction not in ("recvonly", "sendrecv"):
                continue
            if transceiver.mid not in sending:
                continue
            negotiated = compat.keep_first_codec(pc, transceiver)
            if negotiated is None:
                continue
            transceiver.direction = "recvonly"
            index = mids.index(transceiver.mid)
            source = (sources[index] if sources and index < len(sources)
                      else "microphone" if transceiver.kind == "audio" else "camera")
            publication = next(
                (p for p in reusable if p.kind == transceiver.kind
                 and p.format == negotiated.format),
                None,
            )
            if publication is not None:
                # Same track after a re-publish: subscribers keep their stream; the new SSRC
                # switches the source behind it (continuous numbering, wait for a keyframe).
                reusable.remove(publication)
                assert replacing is not None
                del replacing.publications[next(
                    t for t, p in replacing.publications.items() if p is publication)]
                publication.publisher = self
            else:
                publication = Publication(
                    self.room, self, transceiver.kind, source, self.room.sfu.settings,
                    negotiated,
                )
                new.append(publication)
            publication.bind(transceiver.receiver, negotiated.payload_type,
                             negotiated.rtx_payload_type)
            self.publications[transceiver] = publication
        if not any(t not in stopped for t in self.publications):
            raise SdpError("the offer sends no audio or video that this server can receive")
        try:
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:
            raise SdpError(f"cannot answer this offer: {exc}") from None
        for transceiver in stopped:
            publication = self.publications.pop(transceiver)
            await self.room.remove_publication(publication)
            publication.close()
        if replacing is not None:
            await replacing.close()  # unpublishes the tracks this offer did not take over
        for publication in new:
            await self.room.add_publication(publication)
        for publication in self.publications.values():
            if publication not in new and publication.stream.outbound_streams:
                publication.request_keyframe()  # its viewers (program ones too) resume
        return str(pc.localDescription.sdp)

    async def add_ice_candidate(self, candidate: Any) -> None:
        await compat.add_ice_candidate(self.pc, candidate)

    async def _unpublish_all(self) -> None:
        publications = list(self.publications.values())
        self.publications.clear()
        for publication in publications:
            await self.room.remove_publication(publication)
            publication.close()

    async def close(self, *, keep_publications: bool = False) -> None:
        """Stop the connection. ``keep_publications`` leaves the tracks in the room for a
        successor (``answer(..., replacing=self)``) to take over; closing again without it
        unpublishes whatever was not taken."""
        if not keep_publications:
            await self._unpublish_all()
        if self._closed:
            await self.pc.close()  # a concurrent close may still be running: wait for it
            return
        self._closed = True
        await self.pc.close()
        self.room.publishers.discard(self)
        if self._on_closed is not None:
            await self._on_closed(self)


@dataclass(slots=True, eq=False)
class Binding:
    """A publication (or a program slot) as one subscriber's peer connection carries it."""

    feed: Feed
    transceiver: RTCRtpTransceiver
    track: compat.IdleTrack
    downtrack: DownTrack | None = None


class Subscriber:
    """One peer connection that receives a room's tracks (a browser, or a WHEP player)."""

    def __init__(
        self,
        room: SfuRoom,
        identity: str,
        *,
        selection: Selection | None = None,
        on_negotiation_needed: Callable[[Subscriber], Awaitable[None]] | None = None,
        on_closed: Callable[[Subscriber], Awaitable[None]] | None = None,
    ) -> None:
        self.id = _new_id()
        self.room = room
        self.identity = identity
        self.selection = selection or Selection()
        self.pc = compat.new_peer_connection(room.sfu.settings.rtc_configuration(),
                                             room.sfu.media_socket)
        self.bindings: dict[Feed, Binding] = {}
        self._sink: compat.SrtpSink | None = None
        self._on_negotiation_needed = on_negotiation_needed
        self._on_closed = on_closed
        self._closed = False
        self._attach_timer: asyncio.TimerHandle | None = None
        self._negotiating = asyncio.Lock()
        self._awaiting_answer = False
        self._renegotiate = False
        self._negotiation: asyncio.Future[None] | None = None
        self.pc.on("connectionstatechange", self._on_connection_state)

    @property
    def sent_packets(self) -> int:
        """RTP packets sent to this subscriber (retransmissions included)."""
        return 0 if self._sink is None else self._sink.sent_packets

    def wants(self, publication: Publication) -> bool:
        if publication.identity == self.identity:
            return False  # never loop a participant's own media back
        return self.selection.includes(publication)

    def _wanted(self) -> list[Feed]:
        """What this subscriber's offer should carry now."""
        if self.selection.program:
            # A slot is offered once it has a codec (something went on air once).
            return [slot for slot in self.room.program.slots.values()
                    if slot.format is not None and self.selection.includes_program(slot)]
        return [p for p in self.room.publications if self.wants(p)]

    def select(self, selection: Selection) -> None:
        """Receive another subset of the room's tracks (renegotiates)."""
        self.selection = selection
        self.changed()

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self._attach_pending()
        elif state in ("failed", "closed") and not self._closed:
            await self.close()

    # -- server offers (socket.io clients) ------------------------------------------------------

    async def create_offer(self) -> str | None:
        """An offer carrying every wanted publication; gone ones become inactive.

        None while there is nothing to receive yet: an SDP without media sections is useless
        (and browsers refuse aiortc's empty BUNDLE group); :meth:`changed` asks for an offer
        once something is published.
        """
        async with self._negotiating:
            if self._awaiting_answer:
                raise SdpError("an offer is already waiting for its answer")
            self._renegotiate = False
            wanted = self._wanted()
            for feed in wanted:
                if feed not in self.bindings:
                    self._add_binding(feed)
            if not self.pc.getTransceivers():
                return None
            for feed, binding in list(self.bindings.items()):
                if feed not in wanted:
                    self._deactivate(binding)
                    del self.bindings[feed]
            offer = await self.pc.createOffer()
            await self.pc.setLocalDescription(offer)
            self._awaiting_answer = True
            return str(self.pc.localDescription.sdp)

    def _add_binding(self, feed: Feed) -> Binding:
        codec_format = feed.format
        assert codec_format is not None, "only feeds with a codec are offered"
        track = compat.IdleTrack(feed.kind, feed.id)
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        compat.set_sender_ssrcs(transceiver, feed.outbound_ssrc, feed.outbound_rtx_ssrc)
        compat.set_stream_id(transceiver.sender, feed.stream_id)
        compat.prefer_codec(transceiver, codec_format)
        binding = Binding(feed, transceiver, track)
        self.bindings[feed] = binding
        return binding

    async def apply_answer(self, answer_sdp: str) -> None:
        async with self._negotiating:
            if not self._awaiting_answer:
                raise SdpError("no offer is waiting for an answer")
            await _set_remote(self.pc, answer_sdp, "answer")
            self._awaiting_answer = False
            self._attach_pending()
        self._renegotiate_if_needed()

    # -- client offers (WHEP players) -----------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        async with self._negotiating:
            await _set_remote(self.pc, offer_sdp, "offer")
            available = self._wanted()
            # The player's m-sections that accept media. (Not receiver.track: aiortc makes
            # one only for m-sections the remote *sends* on, never for a recvonly player.)
            receiving = {m.rtp.muxId for m in SessionDescription.parse(offer_sdp).media
                         if m.direction in ("recvonly", "sendrecv")}
            for transceiver in self.pc.getTransceivers():
                feed = next((f for f in available if f.kind == transceiver.kind), None)
                if feed is None or transceiver.mid not in receiving:
                    transceiver.direction = "inactive"
                    continue
                codec_format = feed.format
                assert codec_format is not None, "only feeds with a codec are wanted"
                if not compat.keep_codec(transceiver, codec_format):
                    raise SdpError(
                        f"the offer does not accept {codec_format}, "
                        f"the codec this {feed.kind} track is published in"
                    )
                available.remove(feed)
                track = compat.IdleTrack(feed.kind, feed.id)
                transceiver.sender.replaceTrack(track)
                compat.set_sender_ssrcs(transceiver, feed.outbound_ssrc, feed.outbound_rtx_ssrc)
                compat.set_stream_id(transceiver.sender, feed.stream_id)
                transceiver.direction = "sendonly"
                self.bindings[feed] = Binding(feed, transceiver, track)
            if not self.bindings:
                raise SdpError("nothing to play: no published track matches this offer")
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
            return str(self.pc.localDescription.sdp)

    # -- media ----------------------------------------------------------------------------------

    def _attach_pending(self) -> None:
        """Start forwarding to bindings whose transport is ready; retry shortly otherwise."""
        if self._closed:
            return
        pending = [b for b in self.bindings.values() if b.downtrack is None]
        if not pending:
            return
        sink = self._sink
        if sink is None:
            sink = self._sink = compat.SrtpSink(pending[0].transceiver.sender.transport)
        if not sink.ready or self._awaiting_answer:
            if self._attach_timer is None and not self._awaiting_answer:
                self._attach_timer = asyncio.get_running_loop().call_later(
                    ATTACH_RETRY_SECONDS, self._attach_timer_fired
                )
            return
        for binding in pending:
            self._attach(binding, sink)

    def _attach_timer_fired(self) -> None:
        self._attach_timer = None
        self._attach_pending()

    def _attach(self, binding: Binding, sink: compat.SrtpSink) -> None:
        negotiated = compat.negotiated_stream(binding.transceiver)
        if negotiated is None or binding.transceiver.currentDirection not in (
            "sendonly", "sendrecv"
        ):
            return
        feed = binding.feed
        downtrack = DownTrack(
            kind=feed.kind,
            clock_rate=negotiated.clock_rate,
            payload_type=negotiated.payload_type,
            ssrc=negotiated.ssrc,
            send=sink.send,
            new_fanout=self.room.sfu.new_fanout,
            mid=negotiated.mid,
            mid_extension_id=negotiated.extension_ids.get(MID_EXTENSION_URI),
            audio_level_extension_id=negotiated.extension_ids.get(AUDIO_LEVEL_EXTENSION_URI),
            rtx_payload_type=negotiated.rtx_payload_type,
            rtx_ssrc=negotiated.rtx_ssrc,
            initial_sequence_number=random.getrandbits(16),
            initial_timestamp=random.getrandbits(32),
            initial_rtx_sequence_number=random.getrandbits(16),
        )
        binding.downtrack = downtrack

        def on_nack(lost: list[int]) -> None:
            # A program slot's history is its on-air source's: looked up at each NACK.
            history = feed.packet_history()
            if history is not None:
                downtrack.resend(lost, history, monotonic_ms())

        compat.install_feedback_hook(binding.transceiver.sender, on_nack, feed.request_keyframe)
        feed.add_downtrack(downtrack)
        feed.request_keyframe()

    def _deactivate(self, binding: Binding) -> None:
        if binding.downtrack is not None:
            binding.feed.remove_downtrack(binding.downtrack)
            binding.downtrack = None
        binding.transceiver.direction = "inactive"
        binding.track.stop()

    def publication_removed(self, publication: Publication) -> None:
        binding = self.bindings.get(publication)
        if binding is None:
            return
        if binding.downtrack is not None:
            publication.remove_downtrack(binding.downtrack)
            binding.downtrack = None
        self.changed()

    def changed(self) -> None:
        """The room's publications changed: renegotiate if this subscriber is server-offered.

        Changes coalesce: while an offer is being made or waits for its answer, they are
        remembered and one more offer follows once the answer is in.
        """
        if self._on_negotiation_needed is None or self._closed:
            return
        if self._negotiation is not None or self._awaiting_answer:
            self._renegotiate = True
            return
        self._renegotiate = False
        self._negotiation = asyncio.ensure_future(self._request_negotiation())

    def _renegotiate_if_needed(self) -> None:
        if self._renegotiate and self._negotiation is None and not self._awaiting_answer:
            if self._offer_out_of_date():
                self.changed()
            else:
                self._renegotiate = False  # the last offer already covered the change

    def _offer_out_of_date(self) -> bool:
        wanted = self._wanted()
        return any(f not in self.bindings for f in wanted) or any(
            f not in wanted for f in self.bindings)

    async def _request_negotiation(self) -> None:
        try:
            if self._on_negotiation_needed is not None and not self._closed:
                await self._on_negotiation_needed(self)
        except Exception:
            log.exception("renegotiating subscriber %s failed", self.identity)
        finally:
            self._negotiation = None
            self._renegotiate_if_needed()

    def update_sender_reports(self, now_ms: int) -> None:
        ntp = ntp_now()
        for binding in self.bindings.values():
            downtrack = binding.downtrack
            if downtrack is None:
                continue
            outbound = downtrack.outbound
            if outbound is None:
                continue
            timing = binding.feed.sender_report_timing()
            translated = None if timing is None else timing.translate(outbound.rewriter, now_ms)
            if translated is None:
                last = outbound.rewriter.last_timestamp
                if last is None:
                    continue
                translated = (ntp, last)
            compat.set_sender_report(
                binding.transceiver.sender, translated[0], translated[1],
                outbound.packets, outbound.octets,
            )

    async def add_ice_candidate(self, candidate: Any) -> None:
        await compat.add_ice_candidate(self.pc, candidate)

    async def close(self) -> None:
        if self._closed:
            await self.pc.close()  # a concurrent close may still be running: wait for it
            return
        self._closed = True
        if self._attach_timer is not None:
            self._attach_timer.cancel()
        if self._negotiation is not None and self._negotiation is not asyncio.current_task():
            self._negotiation.cancel()
        for binding in self.bindings.values():
            if binding.downtrack is not None:
                binding.feed.remove_downtrack(binding.downtrack)
                binding.downtrack = None
        self.bindings.clear()
        if self._sink is not None:
            self._sink.close()
        await self.pc.close()
        self.room.subscribers.discard(self)
        if self._on_closed is not None:
            await self._on_closed(self)


def _program_track(publication: Publication) -> ProgramTrack:
    return ProgramTrack(publication.id, publication.kind, publication.source,
                        publication.format)


class RoomProgram:
    """A room's program: :class:`~sfu.program.ProgramState` decides what is on air, one
    :class:`~sfu.program.ProgramSlot` per kind carries it to the viewers that subscribed to
    the program (``Selection(program=True)``)."""

    def __init__(self, room: SfuRoom) -> None:
        self.room = room
        self.state = ProgramState()
        self.slots = {kind: ProgramSlot(kind, random.getrandbits(32), random.getrandbits(32))
                      for kind in KINDS}

    def to_dict(self) -> dict[str, str | None]:
        """``{video, audio}``: the ids of the publications on air, None for silence."""
        return self.state.ids()

    def _locked(self) -> dict[str, bool]:
        """Per kind: whether a viewer's connection negotiated the slot's codec."""
        return {kind: any(slot in subscriber.bindings for subscriber in self.room.subscribers)
                for kind, slot in self.slots.items()}

    async def published(self, publication: Publication) -> None:
        if self.state.published(_program_track(publication), locked=self._locked()):
            await self._apply()

    async def unpublished(self, publication: Publication) -> None:
        if self.state.unpublished(publication.id):
            await self._apply()

    async def choose(self, *, video: Choice = KEEP, audio: Choice = KEEP) -> bool:
        """Put these publications on air (None: silence; KEEP: unchanged). Raises
        :class:`~sfu.program.ProgramError` and changes nothing when it cannot."""
        changed = self.state.choose(video=video, audio=audio, locked=self._locked())
        if changed:
            await self._apply()
        return changed

    async def _apply(self) -> None:
        """Make the slots carry what the state says, then tell the listeners."""
        publications = {p.id: p for p in self.room.publications}
        offers_change = False
        for kind, slot in self.slots.items():
            track = self.state.on_air(kind)
            slot.switch(None if track is None else publications.get(track.id))
            codec_format = self.state.format(kind)
            if codec_format != slot.format:
                slot.format = codec_format  # only while no viewer negotiated the old one
                offers_change = True
        if offers_change:
            for subscriber in list(self.room.subscribers):
                if subscriber.selection.program:
                    subscriber.changed()
        log.info("program %s: video %s, audio %s", self.room.id, *self.state.ids().values())
        await self.room.sfu.program_changed(self.room)


class SfuRoom:
    def __init__(self, sfu: Sfu, room_id: str) -> None:
        self.sfu = sfu
        self.id = room_id
        self.publications: list[Publication] = []
        self.publishers: set[Publisher] = set()
        self.subscribers: set[Subscriber] = set()
        self.program = RoomProgram(self)

    def publisher(self, identity: str, on_closed: Callable[[Publisher], Awaitable[None]] | None
                  = None) -> Publisher:
        publisher = Publisher(self, identity, on_closed=on_closed)
        self.publishers.add(publisher)
        return publisher

    def subscriber(self, identity: str, **options: Any) -> Subscriber:
        subscriber = Subscriber(self, identity, **options)
        self.subscribers.add(subscriber)
        return subscriber

    async def add_publication(self, publication: Publication) -> None:
        self.publications.append(publication)
        for subscriber in list(self.subscribers):
            if subscriber.wants(publication):
                subscriber.changed()
        await self.sfu.events.track_published(publication)
        await self.program.published(publication)

    async def remove_publication(self, publication: Publication) -> None:
        if publication not in self.publications:
            return
        self.publications.remove(publication)
        for subscriber in list(self.subscribers):
            subscriber.publication_removed(publication)
        await self.program.unpublished(publication)  # before it closes: the slot lets go
        await self.sfu.events.track_unpublished(publication)

    @property
    def empty(self) -> bool:
        return not (self.publishers or self.subscribers or self.publications)

    async def close(self) -> None:
        for subscriber in list(self.subscribers):
            await subscriber.close()
        for publisher in list(self.publishers):
            await publisher.close()


class _NoEvents:
    async def track_published(self, publication: Publication) -> None:
        return None

    async def track_unpublished(self, publication: Publication) -> None:
        return None


@dataclass(eq=False)
class Sfu:
    """All media rooms of this node."""

    settings: MediaSettings = field(default_factory=MediaSettings)
    events: MediaEvents = field(default_factory=_NoEvents)
    rooms: dict[str, SfuRoom] = field(default_factory=dict)
    _report_task: asyncio.Task[None] | None = None
    _program_listeners: list[ProgramListener] = field(default_factory=list)
    media_socket: MediaSocket = field(init=False)
    _batch_sender: BatchSender | None = None

    def __post_init__(self) -> None:
        compat.register_forwarded_codecs()
        self.media_socket = MediaSocket(self.settings.media_host, self.settings.media_port)

    def new_fanout(self) -> Fanout:
        """How an outgoing stream of this node reaches its subscribers: one batch per packet
        on the shared socket (see :class:`sfu.batch_fanout.BatchedFanout`)."""
        sender = self._batch_sender
        if sender is None:
            fileno = self.media_socket.fileno
            if fileno < 0:
                return SendEach()  # no socket yet: nothing batchable to send to either
            if self.settings.native_batch:
                sender, line = open_batch_sender(fileno)
            else:
                sender, line = ReferenceBatchSender(fileno), "batch send: Python (configured)"
            log.info("%s", line)
            self._batch_sender = sender
        return BatchedFanout(sender, self.media_socket)

    async def start(self) -> None:
        """Bind the media port now (connections would otherwise bind it when first needed),
        so that a port in use stops the node at start-up."""
        await self.media_socket.open()

    def on_program(self, listener: ProgramListener) -> None:
        """Call ``listener`` each time a room's program changes (a choice, a track that went
        on air by itself, an on-air track unpublished)."""
        self._program_listeners.append(listener)

    async def program_changed(self, room: SfuRoom) -> None:
        for listener in list(self._program_listeners):
            try:
                await listener(room)
            except Exception:
                log.exception("program listener failed for room %s", room.id)

    def room(self, room_id: str) -> SfuRoom:
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = SfuRoom(self, room_id)
        if self._report_task is None:
            self._report_task = asyncio.ensure_future(self._report_loop())
        return room

    async def close_room(self, room_id: str) -> None:
        """End every publisher and subscriber of a room (the room ended)."""
        room = self.rooms.pop(room_id, None)
        if room is not None:
            await room.close()

    def forget_if_empty(self, room_id: str) -> None:
        room = self.rooms.get(room_id)
        if room is not None and room.empty:
            del self.rooms[room_id]

    async def _report_loop(self) -> None:
        # Once a second: sender reports for every forwarded stream (aiortc's own RTCP loop
        # sends them; refreshing per packet would cost on the fast path), and keyframe requests
        # for subscribers still waiting for one.
        while True:
            await asyncio.sleep(SENDER_REPORT_INTERVAL)
            now = monotonic_ms()
            for room in list(self.rooms.values()):
                for subscriber in list(room.subscribers):
                    subscriber.update_sender_reports(now)
                for publication in room.publications:
                    # A PLI is a datagram and may be lost: ask again while anyone still waits.
                    if publication.stream.needs_keyframe():
                        publication.request_keyframe()

    def stats(self) -> dict[str, int]:
        publications = [p for room in self.rooms.values() for p in room.publications]
        return {
            "rooms": len(self.rooms),
            "publishers": sum(len(room.publishers) for room in self.rooms.values()),
            "subscribers": sum(len(room.subscribers) for room in self.rooms.values()),
            "publications": len(publications),
            "downtracks": sum(len(p.stream.downtracks) for p in publications) + sum(
                len(slot.downtracks) for room in self.rooms.values()
                for slot in room.program.slots.values()),
            "packets_received": sum(p.stream.received for p in publications),
            "send_failures": sum(p.stream.send_failures for p in publications),
            "packets_oversized": sum(compat.oversized_packets_dropped(publisher.pc)
                                     for room in self.rooms.values()
                                     for publisher in room.publishers),
        }

    def published_formats(self) -> Counter[tuple[str, str, str]]:
        """Tracks published on this node by (kind, codec, profile)."""
        return Counter((p.kind, p.codec, p.profile)
                       for room in self.rooms.values() for p in room.publications)

    async def close(self) -> None:
        compat.cancel_quietly(self._report_task)
        self._report_task = None
        self._program_listeners.clear()  # shutting down: nobody is told what goes off air
        for room in list(self.rooms.values()):
            await room.close()
        self.rooms.clear()
        if self._batch_sender is not None:
            self._batch_sender.close()
            self._batch_sender = None
        self.media_socket.close()
