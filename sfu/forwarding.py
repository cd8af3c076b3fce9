"""The forwarding path, without I/O: a source stream fans packets out to its down-tracks.

A :class:`SourceStream` is one published track as it arrives (after SRTP unprotect and
parsing). A :class:`DownTrack` is that track as one subscriber receives it: its own SSRC,
payload type, header extensions, sequence and timestamp space. Sending is a callable passed
in (protect + ``sendto`` in production, a list in tests), and time is passed in as
milliseconds, so everything here is tested directly.

Per forwarded packet and subscriber the work is: keyframe gate check, sequence/timestamp
rewrite, one header+payload copy, send. No parsing, no awaits, no logging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sfu.codecs import keyframe_detector
from sfu.history import PacketHistory
from sfu.keyframes import KeyframeGate, PliThrottle
from sfu.nack import NackResponder
from sfu.rtp import RtpHeaderTemplate, one_byte_extensions, rtx_payload
from sfu.sender_report import SenderReportTranslator
from sfu.sequencer import StreamRewriter

# RFC 8843 §15 / RFC 8285: the extension that names the m-line (BUNDLE demultiplexing).
MID_EXTENSION_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
# Half a second of subscriber work between event-loop turns (160 subscribers × ~12 packets).
FANOUT_SENDS_PER_TURN = 2000

SendPacket = Callable[[bytearray], bool]


class PacketObserver(Protocol):
    """Something that consumes a published track's packets (the recorder, for one)."""

    def on_packet(
        self, sequence_number: int, timestamp: int, marker: bool, payload: bytes,
        keyframe: bool, now_ms: int,
    ) -> None: ...


class DownTrack:
    """One subscriber's view of one published track."""

    __slots__ = (
        "_gate",
        "_nack",
        "_rtx_seq",
        "_rtx_template",
        "_send",
        "_template",
        "kind",
        "octets",
        "packets",
        "retransmitted",
        "rewriter",
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
        rtx_payload_type: int | None = None,
        rtx_ssrc: int | None = None,
        initial_sequence_number: int = 0,
        initial_timestamp: int = 0,
        initial_rtx_sequence_number: int = 0,
    ) -> None:
        extensions = (
            one_byte_extensions([(mid_extension_id, mid.encode())])
            if mid and mid_extension_id
            else b""
        )
        self.kind = kind
        self.ssrc = ssrc
        self._template = RtpHeaderTemplate(payload_type, ssrc, extensions)
        self._rtx_template = (
            RtpHeaderTemplate(rtx_payload_type, rtx_ssrc, extensions)
            if rtx_payload_type is not None and rtx_ssrc is not None
            else None
        )
        self._rtx_seq = initial_rtx_sequence_number
        self._send = send
        self.rewriter = StreamRewriter(clock_rate, initial_sequence_number, initial_timestamp)
        # Video starts on a keyframe: a decoder given a delta frame first shows garbage.
        self._gate = KeyframeGate() if kind == "video" else None
        self._nack = NackResponder()
        self.packets = 0
        self.octets = 0
        self.retransmitted = 0

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._gate is not None and not self._gate.is_open

    def forward(
        self, seq: int, ts: int, marker: bool, payload: bytes, keyframe: bool, now_ms: int
    ) -> None:
        gate = self._gate
        if gate is not None and not gate.accept(keyframe):
            return
        mapped = self.rewriter.rewrite(seq, ts, now_ms)
        if mapped is None:
            return
        if self._send(self._template.build(marker, mapped[0], mapped[1], payload)):
            self.packets += 1
            self.octets += len(payload)

    def switch_source(self) -> None:
        """The source behind this track changes: continue the numbering, wait for a keyframe."""
        self.rewriter.switch_source()
        if self._gate is not None:
            self._gate.reset()

    def resend(self, lost: list[int], history: PacketHistory, now_ms: int) -> int:
        """Answer a NACK (RFC 4585 §6.2.1) from the history, as RTX when negotiated (RFC 4588)."""
        sent = 0
        rewriter = self.rewriter
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
            if self._rtx_template is not None:
                packet = self._rtx_template.build(
                    stored.marker, self._rtx_seq, out_ts, rtx_payload(out_seq, stored.payload)
                )
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            else:
                packet = self._template.build(stored.marker, out_seq, out_ts, stored.payload)
            if self._send(packet):
                sent += 1
        self.retransmitted += sent
        return sent


class SourceStream:
    """One published track: history for NACKs, PLI throttle, and its down-tracks."""

    __slots__ = (
        "_detect_keyframe",
        "_downtracks",
        "_fanout_work",
        "_observers",
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
        # A tuple, rebuilt on (rare) membership changes, is the fastest thing to iterate.
        self._downtracks: tuple[DownTrack, ...] = ()
        self._observers: tuple[PacketObserver, ...] = ()
        self._fanout_work = 0
        self.received = 0

    @property
    def downtracks(self) -> tuple[DownTrack, ...]:
        return self._downtracks

    def on_packet(
        self, ssrc: int, seq: int, ts: int, marker: bool, payload: bytes, now_ms: int
    ) -> None:
        if ssrc != self.ssrc:
            if self.ssrc is not None:
                # The publisher restarted its stream: history and offsets start over.
                self.history.clear()
                for downtrack in self._downtracks:
                    downtrack.switch_source()
            self.ssrc = ssrc
        self.received += 1
        self.history.put(seq, ts, marker, payload, now_ms)
        keyframe = self.kind == "video" and self._detect_keyframe(payload)
        if keyframe:
            self.pli.keyframe_received(now_ms)
        for downtrack in self._downtracks:
            downtrack.forward(seq, ts, marker, payload, keyframe, now_ms)
        for observer in self._observers:
            observer.on_packet(seq, ts, marker, payload, keyframe, now_ms)
        self._fanout_work += len(self._downtracks)

    def take_yield_turn(self) -> bool:
        """True when enough fan-out work was done that the event loop deserves a turn."""
        if self._fanout_work >= FANOUT_SENDS_PER_TURN:
            self._fanout_work = 0
            return True
        return False

    def add(self, downtrack: DownTrack) -> None:
        self._downtracks = (*self._downtracks, downtrack)

    def remove(self, downtrack: DownTrack) -> None:
        self._downtracks = tuple(d for d in self._downtracks if d is not downtrack)

    def add_observer(self, observer: PacketObserver) -> None:
        self._observers = (*self._observers, observer)

    def remove_observer(self, observer: PacketObserver) -> None:
        self._observers = tuple(o for o in self._observers if o is not observer)

    def needs_keyframe(self) -> bool:
        return any(d.waiting_for_keyframe for d in self._downtracks)

    def request_keyframe(self, now_ms: int) -> bool:
        """A subscriber wants a keyframe: True when a PLI should go upstream now.

        When False, a pending request may still be due later: see ``pli.next_due_ms()``.
        """
        return self.kind == "video" and self.pli.request(now_ms)
