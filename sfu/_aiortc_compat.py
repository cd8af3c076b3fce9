"""Every use of aiortc's (and aioice's) private internals, in one place.

aiortc has no public hook for RTP-level forwarding. This module is the only one that touches
underscored or name-mangled attributes; :func:`check_internals` verifies that each one still
exists in the installed release and ``tests/sfu/test_aiortc_compat.py`` fails loudly when a
new aiortc changes them. aiortc is pinned to an exact version in pyproject.toml for that reason.

What is used, and why:

- ``RTCRtpReceiver._handle_rtp_packet`` is wrapped per instance: the SFU sees each incoming
  packet (after SRTP unprotect and parsing) and fans it out, then the original runs so that
  receiver reports, NACKs and REMB keep flowing upstream to the publisher.
- ``RTCRtpReceiver.__stop_decoder``: a forwarding receiver must not decode; aiortc starts a
  decoder thread in ``receive()``, which we stop on the first packet.
- ``RTCRtpReceiver._handle_rtcp_packet`` is wrapped to read the publisher's sender reports.
- ``RTCRtpReceiver._send_rtcp_pli`` asks the publisher for a keyframe.
- ``RTCRtpSender._handle_rtcp_packet`` is replaced per instance: NACK, PLI and FIR from a
  subscriber go to the SFU (the stock sender's history is empty: it never sent the packets).
- ``RTCRtpSender.__ntp_timestamp`` and friends feed the sender's RTCP SR loop.
- ``RTCRtpSender._ssrc``/``_rtx_ssrc``/``_stream_id`` and ``RTCRtpTransceiver._codecs``/
  ``_headerExtensions``: the negotiated outgoing stream.
- ``RTCDtlsTransport._tx_srtp``/``_state``, pylibsrtp ``Session._srtp``/``_cdata``/``_buffer``
  and aioice ``Connection._nominated``: protect and send a packet synchronously on the selected
  candidate pair, with no await and no allocation but the datagram per subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiortc
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    unwrap_rtx,
)
from pylibsrtp import SRTP_MAX_TRAILER_LEN
from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

PINNED_AIORTC = "1.16.0"

_srtp_protect = _srtp_lib.srtp_protect

# Incoming packet: (parsed packet, arrival time in ms) -> None, called synchronously.
IngressCallback = Callable[[RtpPacket, int], None]
# Publisher sender report: (ssrc, 64-bit NTP time, RTP timestamp).
SenderReportCallback = Callable[[int, int, int], None]

_SENDER_SR_FIELDS = (
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__packet_count",
    "_RTCRtpSender__octet_count",
)


def check_internals() -> list[str]:
    """Names of the internals this module needs that the installed aiortc lacks."""
    missing: list[str] = []

    def need(owner: object, name: str) -> None:
        if not hasattr(owner, name):
            missing.append(f"{getattr(owner, '__name__', owner)}.{name}")

    need(RTCRtpReceiver, "_handle_rtp_packet")
    need(RTCRtpReceiver, "_handle_rtcp_packet")
    need(RTCRtpReceiver, "_send_rtcp_pli")
    need(RTCRtpReceiver, "_set_rtcp_ssrc")
    need(RTCRtpReceiver, "_RTCRtpReceiver__stop_decoder")
    need(RTCRtpSender, "_handle_rtcp_packet")
    need(RTCRtpSender, "_run_rtp")
    need(RTCDtlsTransport, "_send_rtp")
    for name in ("_codecs", "_headerExtensions"):
        if name not in RTCRtpTransceiver.__init__.__code__.co_names:
            missing.append(f"RTCRtpTransceiver.{name}")
    sender_init = RTCRtpSender.__init__.__code__.co_names
    for name in (*_SENDER_SR_FIELDS, "_ssrc", "_rtx_ssrc", "_stream_id"):
        short = name.replace("_RTCRtpSender", "")
        if name not in sender_init and short not in sender_init:
            missing.append(f"RTCRtpSender.{name}")
    dtls_init = RTCDtlsTransport.__init__.__code__.co_names
    for name in ("_tx_srtp", "_state"):
        if name not in dtls_init:
            missing.append(f"RTCDtlsTransport.{name}")
    import aioice
    import pylibsrtp

    if "_nominated" not in aioice.Connection.__init__.__code__.co_names:
        missing.append("aioice.Connection._nominated")
    srtp_init = pylibsrtp.Session.__init__.__code__.co_names
    for name in ("_srtp", "_cdata", "_buffer"):
        if name not in srtp_init:
            missing.append(f"pylibsrtp.Session.{name}")
    need(_srtp_lib, "srtp_protect")
    return missing


def aiortc_version() -> str:
    return str(aiortc.__version__)


# -- publisher side -----------------------------------------------------------------------------


def install_ingress_hook(
    receiver: RTCRtpReceiver,
    on_packet: IngressCallback,
    on_sender_report: SenderReportCallback,
    yield_every: Callable[[], bool] | None = None,
) -> None:
    """Route every packet the receiver gets through ``on_packet`` before aiortc's own handling.

    The decoder thread is stopped on the first packet: aiortc starts it after the connection
    reports "connected", so stopping earlier would be undone. ``yield_every`` returning True
    makes the hook give the event loop a turn after fanning out, so that a burst (a keyframe
    of a hundred packets to many subscribers) cannot stall signalling.
    """
    original_rtp = receiver._handle_rtp_packet
    original_rtcp = receiver._handle_rtcp_packet
    stop_decoder: Callable[[], None] = receiver._RTCRtpReceiver__stop_decoder  # type: ignore[attr-defined]
    decoder_stopped = False

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        nonlocal decoder_stopped
        if not decoder_stopped:
            decoder_stopped = True
            stop_decoder()
        on_packet(packet, arrival_time_ms)
        await original_rtp(packet, arrival_time_ms)
        if yield_every is not None and yield_every():
            await asyncio.sleep(0)

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            info = packet.sender_info
            on_sender_report(packet.ssrc, info.ntp_timestamp, info.rtp_timestamp)
        await original_rtcp(packet)

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]
    receiver._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]


def unwrap_retransmission(packet: RtpPacket, apt: int, ssrc: int) -> RtpPacket:
    """RFC 4588 §4: the original packet inside an RTX packet."""
    return unwrap_rtx(packet, payload_type=apt, ssrc=ssrc)


def request_keyframe(receiver: RTCRtpReceiver, media_ssrc: int) -> Awaitable[None]:
    """Send a PLI (RFC 4585 §6.3.1) for ``media_ssrc`` to the publisher."""
    result: Awaitable[None] = receiver._send_rtcp_pli(media_ssrc)
    return result


def stop_receiver_decoder(receiver: RTCRtpReceiver) -> None:
    receiver._RTCRtpReceiver__stop_decoder()  # type: ignore[attr-defined]


# -- subscriber side ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NegotiatedStream:
    """What a subscriber's sender negotiated: the outgoing stream's identity on the wire."""

    ssrc: int
    rtx_ssrc: int
    payload_type: int
    rtx_payload_type: int | None
    mime_type: str
    clock_rate: int
    mid: str | None
    extension_ids: dict[str, int]


def negotiated_stream(transceiver: RTCRtpTransceiver) -> NegotiatedStream | None:
    """The sending side of ``transceiver`` once offer and answer are both applied."""
    codecs = getattr(transceiver, "_codecs", None)
    if not codecs:
        return None
    primary = codecs[0]
    rtx_pt = None
    for codec in codecs:
        if codec.mimeType.lower().endswith("/rtx") and codec.parameters.get("apt") == (
            primary.payloadType
        ):
            rtx_pt = codec.payloadType
            break
    extensions = {ext.uri: ext.id for ext in getattr(transceiver, "_headerExtensions", [])}
    sender = transceiver.sender
    return NegotiatedStream(
        ssrc=sender._ssrc,
        rtx_ssrc=sender._rtx_ssrc,
        payload_type=primary.payloadType,
        rtx_payload_type=rtx_pt,
        mime_type=primary.mimeType,
        clock_rate=primary.clockRate,
        mid=transceiver.mid,
        extension_ids=extensions,
    )


def set_sender_ssrcs(transceiver: RTCRtpTransceiver, ssrc: int, rtx_ssrc: int) -> None:
    """Choose the SSRCs a new sender announces (before the description that carries them).

    aiortc draws them at random when the sender is made; its receiver half sends RTCP with the
    sender's SSRC, so that follows too.
    """
    transceiver.sender._ssrc = ssrc
    transceiver.sender._rtx_ssrc = rtx_ssrc
    transceiver.receiver._set_rtcp_ssrc(ssrc)


def set_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """The msid stream id the subscriber sees (``event.streams[0].id`` in a browser)."""
    sender._stream_id = stream_id


def set_sender_report(
    sender: RTCRtpSender, ntp_timestamp: int, rtp_timestamp: int, packets: int, octets: int
) -> None:
    """Values for the sender's next RTCP SR (RFC 3550 §6.4.1): aiortc's SR loop reads them."""
    sender._RTCRtpSender__ntp_timestamp = ntp_timestamp  # type: ignore[attr-defined]
    sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
    sender._RTCRtpSender__packet_count = packets  # type: ignore[attr-defined]
    sender._RTCRtpSender__octet_count = octets  # type: ignore[attr-defined]


def install_feedback_hook(
    sender: RTCRtpSender,
    on_nack: Callable[[list[int]], None],
    on_keyframe_request: Callable[[], None],
) -> None:
    """Take NACK (RFC 4585 §6.2.1), PLI and FIR (RFC 5104 §4.3.1) away from the stock sender."""
    original = sender._handle_rtcp_packet
    ssrc = sender._ssrc

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            if packet.media_ssrc == ssrc:
                on_nack(packet.lost)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            on_keyframe_request()
        else:
            await original(packet)

    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]


class SrtpSink:
    """Protect and send RTP for one subscriber's DTLS transport, synchronously.

    This is the per-subscriber half of the fan-out, so it is kept to the bone: libsrtp's
    protect is called through pylibsrtp's cffi handle on the session's own buffer (pylibsrtp's
    ``Session.protect`` takes only ``bytes`` and allocates per call), and the datagram goes to
    the selected candidate pair's transport. Everything is looked up once, when the transport
    is first usable; until then (or after it closed) :meth:`send` drops the packet.
    One thread only: the buffer is shared with aiortc's own RTCP protection.
    """

    __slots__ = (
        "_addr", "_buffer", "_capacity", "_cdata", "_dtls", "_len_p", "_sendto", "_srtp",
        "sent_packets",
    )

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._srtp: Any = None
        self._cdata: Any = None
        self._buffer: Any = None
        self._capacity = 0
        self._len_p = _srtp_ffi.new("int *")
        self._sendto: Callable[[bytes, Any], None] | None = None
        self._addr: Any = None
        self.sent_packets = 0

    def _resolve(self) -> bool:
        dtls = self._dtls
        session = dtls._tx_srtp
        if dtls._state != DtlsState.CONNECTED or session is None:
            return False
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None or pair.protocol.transport is None:
            return False
        self._srtp = session._srtp[0]
        self._cdata = session._cdata
        self._buffer = session._buffer
        self._capacity = len(session._cdata) - SRTP_MAX_TRAILER_LEN
        self._sendto = pair.protocol.transport.sendto
        self._addr = pair.remote_addr
        return True

    def send(self, packet: bytes | bytearray) -> bool:
        srtp = self._srtp
        if srtp is None:
            if not self._resolve():
                return False
            srtp = self._srtp
        size = len(packet)
        if size > self._capacity:
            return False
        buffer = self._buffer
        buffer[0:size] = packet
        len_p = self._len_p
        len_p[0] = size
        if _srtp_protect(srtp, self._cdata, len_p):
            return False
        try:
            self._sendto(buffer[0 : len_p[0]], self._addr)  # type: ignore[misc]
        except (OSError, AttributeError, RuntimeError):
            self.close()
            return False
        self.sent_packets += 1
        return True

    @property
    def ready(self) -> bool:
        return self._srtp is not None or self._resolve()

    def close(self) -> None:
        self._srtp = None
        self._sendto = None
        self._addr = None


class IdleTrack(MediaStreamTrack):
    """The track behind a forwarding sender: it never yields a frame.

    aiortc's sender loop awaits ``recv()`` forever and so costs nothing; a sender without a
    track would instead poll every 20 ms. Packets reach the subscriber through
    :class:`SrtpSink`, bypassing the encoder path entirely.
    """

    def __init__(self, kind: str, track_id: str) -> None:
        super().__init__()
        self.kind = kind
        self._id = track_id
        self._ended = asyncio.Event()

    async def recv(self) -> Any:
        await self._ended.wait()
        raise MediaStreamError

    def stop(self) -> None:
        self._ended.set()
        super().stop()


def cancel_quietly(task: asyncio.Future[Any] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(Exception):
            task.exception()


# -- codecs and candidates ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NegotiatedCodec:
    mime_type: str
    clock_rate: int
    parameters: dict[str, Any]
    payload_type: int
    rtx_payload_type: int | None


def _is_rtx(codec: Any) -> bool:
    return str(codec.mimeType).lower().endswith("/rtx")


def _restrict(transceiver: RTCRtpTransceiver, primary: Any) -> NegotiatedCodec:
    codecs = transceiver._codecs
    rtx = next(
        (c for c in codecs if _is_rtx(c) and c.parameters.get("apt") == primary.payloadType),
        None,
    )
    transceiver._codecs = [primary] if rtx is None else [primary, rtx]
    return NegotiatedCodec(
        mime_type=primary.mimeType,
        clock_rate=primary.clockRate,
        parameters=dict(primary.parameters),
        payload_type=primary.payloadType,
        rtx_payload_type=None if rtx is None else rtx.payloadType,
    )


def keep_first_codec(transceiver: RTCRtpTransceiver) -> NegotiatedCodec | None:
    """Answering a publisher: accept only its preferred codec (and its RTX), so that every
    packet of the track has one payload type and subscribers can be offered exactly that."""
    primary = next((c for c in getattr(transceiver, "_codecs", []) if not _is_rtx(c)), None)
    return None if primary is None else _restrict(transceiver, primary)


def keep_codec(transceiver: RTCRtpTransceiver, mime_type: str, parameters: dict[str, Any]) -> bool:
    """Answering a player: keep only the publication's codec; False if the offer lacks it."""
    primary = next(
        (c for c in getattr(transceiver, "_codecs", [])
         if not _is_rtx(c) and c.mimeType.lower() == mime_type.lower()
         and dict(c.parameters) == parameters),
        None,
    )
    if primary is None:
        return False
    _restrict(transceiver, primary)
    return True


def prefer_codec(
    transceiver: RTCRtpTransceiver, mime_type: str, parameters: dict[str, Any]
) -> None:
    """Offering to a subscriber: offer only the publication's codec (and RTX)."""
    capabilities = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    chosen = [
        c for c in capabilities
        if (c.mimeType.lower() == mime_type.lower() and dict(c.parameters) == parameters)
        or _is_rtx(c)
    ]
    if not any(not _is_rtx(c) for c in chosen):
        raise ValueError(f"{mime_type} is not a codec this server can send")
    transceiver.setCodecPreferences(chosen)


def add_ice_candidate(pc: Any, candidate: Any) -> Awaitable[None]:
    """A trickled remote candidate (RTCIceCandidateInit as JSON: candidate, sdpMid, ...)."""
    from aiortc.sdp import candidate_from_sdp

    if not isinstance(candidate, dict):
        raise ValueError("candidate must be an object")
    line = candidate.get("candidate")
    if not isinstance(line, str):
        raise ValueError("candidate.candidate must be a string")
    if not line:
        result: Awaitable[None] = pc.addIceCandidate(None)  # end of candidates
        return result
    if line.startswith("candidate:"):
        line = line[len("candidate:"):]
    parsed = candidate_from_sdp(line)
    parsed.sdpMid = candidate.get("sdpMid")
    parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
    if parsed.sdpMid is None and parsed.sdpMLineIndex is None:
        parsed.sdpMLineIndex = 0
    result = pc.addIceCandidate(parsed)
    return result
