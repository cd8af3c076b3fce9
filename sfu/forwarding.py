"""The forwarding path, without I/O: a source stream fans packets out to its down-tracks.

A :class:`SourceStream` is one published track as it arrives (after SRTP unprotect and
parsing). A :class:`DownTrack` is that track as one subscriber receives it. Down-tracks that
negotiated the same outgoing stream (SSRC, payload type, header extensions: all subscribers
the server offered to, since the SSRC is chosen per publication) share an
:class:`OutboundStream`: the sequence/timestamp rewrite and the packet are made once per
incoming packet, and per subscriber only SRTP protect and ``sendto`` remain. Sending is a
callable per subscriber passed in (protect + ``sendto`` in production, a list in tests), and
how a stream's packet reaches all of its subscribers is a :class:`Fanout` (one call each by
default; one batch for the kernel in production); time is passed in as milliseconds, so
everything here is tested directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sfu.codecs import keyframe_detector
from sfu.history import PacketHistory
from sfu.keyframes import PliThrottle
from sfu.nack import NackResponder
from sfu.rtp import (
    AUDIO_LEVEL_MASK,
    AUDIO_LEVEL_SILENCE,
    ONE_BYTE_EXTENSION_MAX_ID,
    RTP_SEQ_MASK,
    RtpHeaderTemplate,
    one_byte_extensions,
    rtx_payload,
)
from sfu.sender_report import SenderReportTranslator
from sfu.sequencer import StreamRewriter

# RFC 8843 §15 / RFC 8285: the extension that names the m-line (BUNDLE demultiplexing).
MID_EXTENSION_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
# Subscriber sends between event-loop turns: about 3 ms of work, so that a keyframe burst to
# hundreds of subscribers never holds signalling up for long.
FANOUT_SENDS_PER_TURN = 400

SendPacket = Callable[[bytearray], bool]


class Fanout(Protocol):
    """How one outgoing stream's packet reaches the subscribers receiving it."""

    def set(self, targets: tuple[SendPacket, ...]) -> None:
        """The subscribers receiving now changed (rare: joins, leaves, keyframes)."""

    def send(self, packet: bytearray) -> int:
        """Send ``packet`` to every target; the number of sends that failed."""


class SendEach:
    """A :class:`Fanout` that calls each subscriber's send: the reference behaviour."""

    __slots__ = ("_targets",)

    def __init__(self) -> None:
        self._targets: tuple[SendPacket, ...] = ()

    def set(self, targets: tuple[SendPacket, ...]) -> None:
        self._targets = targets

    def send(self, packet: bytearray) -> int:
        failed = 0
        for send in self._targets:
            # One subscriber's failure (a closed transport, a packet too long for it) is
            # counted and costs the others nothing: they and the publisher's ingress go on.
            try:
                if not send(packet):
                    failed += 1
            except Exception:
                failed += 1
        return failed


FanoutFactory = Callable[[], Fanout]
_NO_AUDIO_LEVEL = AUDIO_LEVEL_MASK + 1  # quieter than every level: the first one replaces it


class PacketObserver(Protocol):
    """Something that consumes a published track's packets (the recorder, for one), and its
    publisher's sender reports (to place them on a wall clock, RFC 3550 §6.4.1)."""

    def on_packet(
        self, sequence_number: int, timestamp: int, marker: bool, payload: bytes,
        keyframe: bool, now_ms: int,
    ) -> None: ...

    def on_sender_report(self, ntp: int, rtp_ts: int, now_ms: int) -> None: ...


class DownTrack:
    """One subscriber's view of one published track."""

    __slots__ = (
        "_clock_rate",
        "_initial",
        "_nack",
        "_rtx_seq",
        "_rtx_template",
        "audio_level_id",
        "extension_block",
        "kind",
        "new_fanout",
        "outbound",
        "payload_type",
        "retransmitted",
        "rtx_payload_type",
        "rtx_ssrc",
        "send",
        "ssrc",
    )

    def __init__(
        self,
        *,
        kind: str,
        clock_rate: int,
        payload_type: int,
        ssrc: int,
        send: SendPacket,
        mid: str | None = None,
        mid_extension_id: int | None = None,
        audio_level_extension_id: int | None = None,
        rtx_payload_type: int | None = None,
        rtx_ssrc: int | None = None,
        initial_sequence_number: int = 0,
        initial_timestamp: int = 0,
        initial_rtx_sequence_number: int = 0,
        new_fanout: FanoutFactory = SendEach,
    ) -> None:
        self.kind = kind
        self.new_fanout = new_fanout
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.rtx_payload_type = rtx_payload_type if rtx_ssrc is not None else None
        self.rtx_ssrc = rtx_ssrc
        elements: list[tuple[int, bytes]] = []
        # Audio carries the publisher's level (RFC 6464) where the subscriber negotiated it;
        # first in the block, so that its place is the same whatever the mid.
        self.audio_level_id = (
            audio_level_extension_id
            if kind == "audio" and audio_level_extension_id is not None
            and 1 <= audio_level_extension_id <= ONE_BYTE_EXTENSION_MAX_ID
            else None
        )
        if self.audio_level_id is not None:
            elements.append((self.audio_level_id, bytes([AUDIO_LEVEL_SILENCE])))
        if mid and mid_extension_id:
            elements.append((mid_extension_id, mid.encode()))
        self.extension_block = one_byte_extensions(elements)
        self.send = send
        self._clock_rate = clock_rate
        self._initial = (initial_sequence_number, initial_timestamp)
        self._rtx_seq = initial_rtx_sequence_number
        # Made on the first NACK: most subscribers never send one.
        self._nack: NackResponder | None = None
        self._rtx_template: RtpHeaderTemplate | None = None
        self.outbound: OutboundStream | None = None
        self.retransmitted = 0

    @property
    def key(self) -> tuple[int, int, int | None, bytes]:
        """Down-tracks with equal keys put identical packets on the wire."""
        return (self.ssrc, self.payload_type, self.rtx_payload_type, self.extension_block)

    @property
    def rewriter(self) -> StreamRewriter:
        assert self.outbound is not None, "the down-track is not attached to a source"
        return self.outbound.rewriter

    @property
    def waiting_for_keyframe(self) -> bool:
        return self.outbound is not None and self in self.outbound.waiting

    def new_outbound(self) -> OutboundStream:
        return OutboundStream(
            RtpHeaderTemplate(self.payload_type, self.ssrc, self.extension_block,
                              self.audio_level_id),
            StreamRewriter(self._clock_rate, *self._initial),
            gated=self.kind == "video",
            fanout=self.new_fanout(),
        )

    def resend(self, lost: list[int], history: PacketHistory, now_ms: int) -> int:
        """Answer a NACK (RFC 4585 §6.2.1) from the history, as RTX when negotiated (RFC 4588)."""
        outbound = self.outbound
        if outbound is None:
            return 0
        if self._nack is None:
            self._nack = NackResponder()
        rewriter = outbound.rewriter
        sent = 0
        for out_seq in lost:
            source_seq = rewriter.source_sequence(out_seq)
            if source_seq < 0:
                continue
            stored = history.get(source_seq, now_ms)
            if stored is None or not self._nack.should_resend(out_seq, now_ms):
                continue
            out_ts = rewriter.translate_timestamp(stored.timestamp)
            if out_ts is None:
                continue
            if self.rtx_payload_type is not None and self.rtx_ssrc is not None:
                if self._rtx_template is None:
                    self._rtx_template = RtpHeaderTemplate(
                        self.rtx_payload_type, self.rtx_ssrc, self.extension_block,
                        self.audio_level_id)
                packet = self._rtx_template.build(
                    stored.marker, self._rtx_seq, out_ts, rtx_payload(out_seq, stored.payload)
                )
                self._rtx_seq = (self._rtx_seq + 1) & RTP_SEQ_MASK
            else:
                packet = outbound.template.build(stored.marker, out_seq, out_ts, stored.payload)
            if self.send(packet):
                sent += 1
        self.retransmitted += sent
        return sent


class OutboundStream:
    """One outgoing RTP stream and the down-tracks that receive exactly it."""

    __slots__ = (
        "_fanout", "_targets", "failed", "gated", "members", "octets", "packets", "rewriter",
        "template", "waiting",
    )

    def __init__(self, template: RtpHeaderTemplate, rewriter: StreamRewriter, gated: bool,
                 fanout: Fanout | None = None) -> None:
        self.template = template
        self.rewriter = rewriter
        self.gated = gated
        self._fanout = SendEach() if fanout is None else fanout
        # Subscribers receiving now, as their send callables (what the fan-out is given), and
        # those waiting for a keyframe before their first packet.
        self._targets: tuple[SendPacket, ...] = ()
        self.waiting: list[DownTrack] = []
        self.members: tuple[DownTrack, ...] = ()  # every down-track, receiving or waiting
        self.packets = 0
        self.octets = 0
        self.failed = 0  # sends that a subscriber's transport refused or raised on

    @property
    def targets(self) -> tuple[SendPacket, ...]:
        return self._targets

    @targets.setter
    def targets(self, targets: tuple[SendPacket, ...]) -> None:
        self._targets = targets
        self._fanout.set(targets)

    def add(self, downtrack: DownTrack) -> None:
        downtrack.outbound = self
        self.members = (*self.members, downtrack)
        if self.gated:
            # Video starts on a keyframe: a decoder given a delta frame first shows garbage.
            self.waiting.append(downtrack)
        else:
            self.targets = (*self.targets, downtrack.send)

    def remove(self, downtrack: DownTrack) -> None:
        downtrack.outbound = None
        self.members = tuple(d for d in self.members if d is not downtrack)
        if downtrack in self.waiting:
            self.waiting.remove(downtrack)
        self.targets = tuple(t for t in self.targets if t is not downtrack.send)

    @property
    def empty(self) -> bool:
        return not (self.targets or self.waiting)

    def switch_source(self) -> None:
        """The source behind the stream changes (a publisher's restart, a program switch):
        continue the numbering; video waits for a keyframe of the new source."""
        self.rewriter.switch_source()
        if self.gated:
            self.targets = ()
            self.waiting = list(self.members)

    def send(
        self, seq: int, ts: int, marker: bool, payload: bytes, keyframe: bool, now_ms: int,
        audio_level: int = -1,
    ) -> int:
        """Forward one packet (with its RFC 6464 byte, -1 for none); returns the number of
        subscribers it was sent to."""
        if self.waiting and keyframe:
            self.targets = (*self.targets, *(d.send for d in self.waiting))
            self.waiting = []
        targets = self._targets
        if not targets:
            return 0
        mapped = self.rewriter.rewrite(seq, ts, now_ms)
        if mapped is None:
            return 0
        packet = self.template.build(marker, mapped[0], mapped[1], payload, audio_level)
        failed = self._fanout.send(packet)
        if failed:
            self.failed += failed
        self.packets += 1
        self.octets += len(payload)
        return len(targets)


class SourceStream:
    """One published track: history for NACKs, PLI throttle, and its outgoing streams.

    Its own outgoing streams are made for its down-tracks (:meth:`add`); others are only fed
    for as long as they are attached (:meth:`attach`): a program's, which moves from source to
    source and keeps its numbering.
    """

    __slots__ = (
        "_attached",
        "_detect_keyframe",
        "_downtracks",
        "_fanout",
        "_fanout_work",
        "_held",
        "_loudest",
        "_observed_by",
        "_observers",
        "_outbound",
        "clock_rate",
        "history",
        "kind",
        "mime_type",
        "pli",
        "received",
        "sender_reports",
        "ssrc",
    )

    def __init__(
        self,
        *,
        kind: str,
        mime_type: str,
        clock_rate: int,
        history_size: int = 1024,
        history_max_age_ms: int = 3000,
        pli_interval_ms: int = 500,
    ) -> None:
        self.kind = kind
        self.mime_type = mime_type
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self.history = PacketHistory(history_size, history_max_age_ms)
        self.pli = PliThrottle(pli_interval_ms)
        self.sender_reports = SenderReportTranslator(clock_rate)
        self._detect_keyframe = keyframe_detector(mime_type)
        self._downtracks: tuple[DownTrack, ...] = ()
        self._outbound: dict[tuple[int, int, int | None, bytes], OutboundStream] = {}
        self._attached: tuple[OutboundStream, ...] = ()
        # Tuples, rebuilt on (rare) membership changes, are the fastest thing to iterate:
        # every outgoing stream, own and attached, in the one the packet loop reads.
        self._fanout: tuple[OutboundStream, ...] = ()
        # What the packet loop feeds: every observer, or none while the track is held.
        self._observers: tuple[PacketObserver, ...] = ()
        self._observed_by: tuple[PacketObserver, ...] = ()
        self._held = False
        self._fanout_work = 0
        # The loudest RFC 6464 level (-dBov) since take_audio_level(), _NO_AUDIO_LEVEL for none.
        self._loudest = _NO_AUDIO_LEVEL
        self.received = 0

    @property
    def downtracks(self) -> tuple[DownTrack, ...]:
        """The down-tracks of this track's own outgoing streams (not of attached ones)."""
        return self._downtracks

    @property
    def outbound_streams(self) -> list[OutboundStream]:
        return [*self._outbound.values(), *self._attached]

    @property
    def send_failures(self) -> int:
        """Sends to subscribers that failed, over the outgoing streams that exist now."""
        return sum(o.failed for o in self.outbound_streams)

    @property
    def held(self) -> bool:
        return self._held

    def hold(self) -> None:
        """Forward nothing of this track (a moderator muted it) until :meth:`release`: the
        packet loop's tuples are emptied, so a held track costs no more than one nobody
        watches. Its history still fills (NACKs of packets sent before stay answerable)."""
        self._held = True
        self._refan()

    def release(self) -> None:
        """Forward again. Each outgoing stream continues its numbering over the gap (no
        subscriber asks for what was held back) and video resumes on a keyframe: the caller
        asks the publisher for one."""
        if not self._held:
            return
        self._held = False
        for outbound in self.outbound_streams:
            outbound.switch_source()
        self._refan()

    def take_audio_level(self) -> int:
        """The loudest audio level (RFC 6464: -dBov, 0 loudest, 127 silence) of the packets
        since the last call, or -1 when none carried one. Read a few times a second (active
        speaker detection), so that the packet loop keeps one comparison per packet."""
        loudest = self._loudest
        self._loudest = _NO_AUDIO_LEVEL
        return -1 if loudest == _NO_AUDIO_LEVEL else loudest

    def on_packet(
        self, ssrc: int, seq: int, ts: int, marker: bool, payload: bytes, now_ms: int,
        audio_level: int = -1,
    ) -> None:
        """One packet of the track; ``audio_level`` is its RFC 6464 byte (-1: none)."""
        if ssrc != self.ssrc:
            if self.ssrc is not None:
                # The publisher restarted its stream: history and offsets start over.
                self.history.clear()
                for outbound in self._fanout:
                    outbound.switch_source()
            self.ssrc = ssrc
        self.received += 1
        self.history.put(seq, ts, marker, payload, now_ms)
        keyframe = self.kind == "video" and self._detect_keyframe(payload)
        if keyframe:
            self.pli.keyframe_received(now_ms)
        if audio_level >= 0 and (audio_level & AUDIO_LEVEL_MASK) < self._loudest:
            self._loudest = audio_level & AUDIO_LEVEL_MASK
        sent = 0
        for outbound in self._fanout:
            sent += outbound.send(seq, ts, marker, payload, keyframe, now_ms, audio_level)
        self._fanout_work += sent
        for observer in self._observers:
            observer.on_packet(seq, ts, marker, payload, keyframe, now_ms)

    def take_yield_turn(self) -> bool:
        """True when enough fan-out work was done that the event loop deserves a turn."""
        if self._fanout_work >= FANOUT_SENDS_PER_TURN:
            self._fanout_work = 0
            return True
        return False

    def _refan(self) -> None:
        held = self._held
        self._fanout = () if held else (*self._outbound.values(), *self._attached)
        self._observers = () if held else self._observed_by

    def add(self, downtrack: DownTrack) -> None:
        key = downtrack.key
        outbound = self._outbound.get(key)
        if outbound is None:
            outbound = self._outbound[key] = downtrack.new_outbound()
            self._refan()
        outbound.add(downtrack)
        self._downtracks = (*self._downtracks, downtrack)

    def remove(self, downtrack: DownTrack) -> None:
        outbound = downtrack.outbound
        if outbound is not None and outbound in self._outbound.values():
            outbound.remove(downtrack)
            if outbound.empty:
                # A later subscriber starts a fresh stream: nobody receives this one now.
                del self._outbound[next(k for k, o in self._outbound.items() if o is outbound)]
                self._refan()
        self._downtracks = tuple(d for d in self._downtracks if d is not downtrack)

    def attach(self, outbound: OutboundStream) -> None:
        """Feed ``outbound`` too, an outgoing stream that is not this track's own (a
        program's). The caller switches its source (:meth:`OutboundStream.switch_source`)."""
        if outbound not in self._attached:
            self._attached = (*self._attached, outbound)
            self._refan()

    def detach(self, outbound: OutboundStream) -> None:
        """Stop feeding an attached outgoing stream."""
        if outbound in self._attached:
            self._attached = tuple(o for o in self._attached if o is not outbound)
            self._refan()

    def on_sender_report(self, ntp: int, rtp_ts: int, now_ms: int) -> None:
        """The publisher's sender report for this stream (64-bit NTP, RTP timestamp)."""
        self.sender_reports.on_publisher_report(ntp, rtp_ts, now_ms)
        for observer in self._observers:
            observer.on_sender_report(ntp, rtp_ts, now_ms)

    def add_observer(self, observer: PacketObserver) -> None:
        self._observed_by = (*self._observed_by, observer)
        self._refan()

    def remove_observer(self, observer: PacketObserver) -> None:
        self._observed_by = tuple(o for o in self._observed_by if o is not observer)
        self._refan()

    def needs_keyframe(self) -> bool:
        return any(o.waiting for o in self._fanout)

    def request_keyframe(self, now_ms: int) -> bool:
        """A subscriber wants a keyframe: True when a PLI should go upstream now.

        When False, a pending request may still be due later: see ``pli.next_due_ms()``.
        """
        return self.kind == "video" and self.pli.request(now_ms)
