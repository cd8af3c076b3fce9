"""Every use of aiortc's (and aioice's) private internals, in one place.

aiortc has no public hook for RTP-level forwarding. This module is the only one that touches
underscored or name-mangled attributes; :func:`check_internals` verifies that each one still
exists in the installed release and ``tests/sfu/test_aiortc_compat.py`` fails loudly when a
new aiortc changes them. aiortc is pinned to an exact version in pyproject.toml for that reason.

What is used, and why:

- ``RTCRtpReceiver._handle_rtp_packet`` is replaced per instance: the SFU sees each incoming
  packet (after SRTP unprotect and parsing) and fans it out, then a forward-only copy of
  aiortc's receive path keeps receiver reports, NACKs and REMB flowing upstream to the
  publisher, from the receiver's private ``__codecs``, ``__remote_streams``, ``__rtx_ssrc``,
  ``__remote_bitrate_estimator``, ``__nack_generator`` and ``__rtcp_ssrc`` and its
  ``_send_rtcp``/``_send_rtcp_nack``; no depacketizer, jitter buffer or decoder queue.
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
- ``RTCPeerConnection.__certificates`` and ``RTCCertificate._create_ssl_context``: aiortc's DTLS
  offers only ECDHE-ECDSA cipher suites, so a peer acting as DTLS server with an RSA
  certificate (GStreamer's default) fails the handshake; our certificate offers RSA suites too.
- ``RTCPeerConnection.__createDtlsTransport`` and ``RTCDtlsTransport._setup_srtp``/``_rx_srtp``:
  pylibsrtp's sessions hold 1500 bytes with 144 kept for the trailer, so RTP packets over
  ~1356 bytes (x264's default 1400-byte MTU) cannot be sent, and a received datagram over
  1500 bytes raises ``ValueError``, which closes the DTLS transport and ends the publisher.
- ``aiortc.codecs.CODECS``: aiortc answers H.264 only in Constrained Baseline and Baseline
  (packetization mode 1), the profiles its encoder makes; a forwarding SFU decodes nothing
  and can take every profile browsers decode.
- ``RTCIceTransport._connection`` and aioice ``Connection.query_consent``/``build_request``/
  ``remote_password``: consent freshness (RFC 7675) that also counts authenticated media, see
  :func:`keep_consent`.
- ``RTCDtlsTransport._rtp_router``/``_rx_srtp``/``_state``: received SRTP is unprotected, parsed
  and routed to its receiver as the datagram arrives on the node's shared socket
  (:func:`_receive_media_now`, :mod:`sfu.ice_mux`), the way ``_recv_next`` does it a queue hop
  later.
- ``RTCDtlsTransport._rtp_header_extensions_map``: each transport reads received header
  extensions with :class:`IngressExtensions` instead of aiortc's reader, which raises out of
  its receive loop on an element of an unexpected length; ``aiortc.codecs.HEADER_EXTENSIONS``
  must offer and accept the audio level (RFC 6464) on audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import inspect
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aioice
import aioice.stun
import aiortc
import aiortc.codecs
import aiortc.rtcpeerconnection
import pylibsrtp
from aiortc import (
    RTCConfiguration,
    RTCDtlsTransport,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    clock,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsFingerprint
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters, RTCRtpParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensions,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    is_rtcp,
    pack_remb_fci,
    unwrap_rtx,
)
from aiortc.sdp import SessionDescription
from OpenSSL import SSL
from pylibsrtp import SRTP_MAX_TRAILER_LEN
from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

from sfu.codecs import CodecFormat
from sfu.ice_mux import MediaReceiver, MediaSocket, shared_socket
from sfu.remb import RembThrottle
from sfu.rtp import AUDIO_LEVEL_EXTENSION_URI, RTX_OSN_SIZE, audio_level, extension_value_at

PINNED_AIORTC = "1.16.0"

# The largest RTP packet taken in and sent out: one that fills a 1500-byte Ethernet MTU.
# A buffer also holds SRTP's trailer (RFC 3711 §3.1) and the original sequence number that
# RTX puts in front of a retransmitted payload (RFC 4588 §4).
MAX_RTP_PACKET_BYTES = 1500
SRTP_BUFFER_BYTES = MAX_RTP_PACKET_BYTES + RTX_OSN_SIZE + SRTP_MAX_TRAILER_LEN

# TLS 1.2 cipher suites for DTLS (RFC 8827 §6.5: peers' self-signed certificates are ECDSA or
# RSA). The suite's key type is the DTLS *server's*: as server with our ECDSA P-256
# certificate OpenSSL picks an ECDSA suite; as client we must also offer RSA suites for peers
# whose certificate is RSA. Forward secrecy (ECDHE) and AEAD first, as aiortc orders its own.
DTLS_CIPHER_SUITES = b":".join((
    b"ECDHE-ECDSA-AES128-GCM-SHA256", b"ECDHE-RSA-AES128-GCM-SHA256",
    b"ECDHE-ECDSA-AES256-GCM-SHA384", b"ECDHE-RSA-AES256-GCM-SHA384",
    b"ECDHE-ECDSA-CHACHA20-POLY1305", b"ECDHE-RSA-CHACHA20-POLY1305",
    b"ECDHE-ECDSA-AES128-SHA", b"ECDHE-RSA-AES128-SHA",
    b"ECDHE-ECDSA-AES256-SHA", b"ECDHE-RSA-AES256-SHA",
))

# Consent freshness (RFC 7675 §5.1): a check every 5 s (randomised by ±20 %, §5.1 step 1) and
# consent lost after 30 s with nothing that proves it (§5.1 step 4).
CONSENT_INTERVAL_S = 5.0
CONSENT_TIMEOUT_S = 30.0

# H.264 formats received and forwarded besides aiortc's own (Constrained Baseline and
# Baseline in packetization mode 1): every profile browsers decode, both packetization modes
# (RFC 6184 §6.2, §6.3). The level here is only what our offers to subscribers say; the
# answer to a publisher repeats the level it offered (see :func:`keep_first_codec`).
FORWARDED_H264_PROFILE_LEVEL_IDS = ("42e01f", "42001f", "4d001f", "64001f", "640c1f", "f4001f")

# abs-send-time (webrtc.org's extension): 24 bits of 6.18 fixed-point seconds. aiortc's receiver
# estimates the publisher's bandwidth from it (REMB, the only feedback aiortc gives).
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
ABS_SEND_TIME_LENGTH = 3
# The only fields of a received packet's HeaderExtensions that aiortc's receive path reads,
# and those the SFU reads: IngressExtensions fills exactly these.
RECEIVER_EXTENSION_FIELDS = frozenset({"abs_send_time"})
INGRESS_EXTENSION_FIELDS = frozenset({"abs_send_time", "audio_level"})

_srtp_protect = _srtp_lib.srtp_protect

# Incoming packet: (parsed packet, arrival time in ms) -> the packet as forwarded (the same
# one, or a retransmission unwrapped), or None when it was not forwarded; called synchronously.
IngressCallback = Callable[[RtpPacket, int], RtpPacket | None]
# Publisher sender report: (ssrc, 64-bit NTP time, RTP timestamp).
SenderReportCallback = Callable[[int, int, int], None]

# aiortc 1.16's receive path (RTCRtpReceiver._handle_rtp_packet), which _forward_only_receive
# mirrors minus the decoding: when aiortc changes it, read the new one and mirror it again.
RECEIVE_PATH_DIGEST = "4e54983d021a6336d80c29490f82f9a6dd531c0d3179b2daed818120c5ece238"
_RECEIVER_FIELDS = ("codecs", "remote_streams", "rtx_ssrc", "remote_bitrate_estimator",
                    "nack_generator", "rtcp_ssrc")

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
    need(RTCRtpReceiver, "_send_rtcp")
    need(RTCRtpReceiver, "_send_rtcp_nack")
    receiver_init = RTCRtpReceiver.__init__.__code__.co_names
    for name in ("_enabled", *(f"_RTCRtpReceiver__{field}" for field in _RECEIVER_FIELDS)):
        if name not in receiver_init:
            missing.append(f"RTCRtpReceiver.{name}")
    source = inspect.getsource(RTCRtpReceiver._handle_rtp_packet).encode()
    if hashlib.sha256(source).hexdigest() != RECEIVE_PATH_DIGEST:
        missing.append("RTCRtpReceiver._handle_rtp_packet as _forward_only_receive mirrors it")
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
    import pylibsrtp

    if "_nominated" not in aioice.Connection.__init__.__code__.co_names:
        missing.append("aioice.Connection._nominated")
    for name in ("query_consent", "build_request", "close"):
        need(aioice.Connection, name)
    if "query_consent" not in aioice.Connection.connect.__code__.co_names:
        missing.append("aioice.Connection.connect starts self.query_consent")
    if "remote_password" not in aioice.Connection.__init__.__code__.co_names:
        missing.append("aioice.Connection.remote_password")
    from aiortc.rtcicetransport import RTCIceTransport

    if "_connection" not in RTCIceTransport.__init__.__code__.co_names:
        missing.append("RTCIceTransport._connection")
    srtp_init = pylibsrtp.Session.__init__.__code__.co_names
    for name in ("_srtp", "_cdata", "_buffer"):
        if name not in srtp_init:
            missing.append(f"pylibsrtp.Session.{name}")
    need(_srtp_lib, "srtp_protect")
    need(RTCCertificate, "_create_ssl_context")
    for name in ("_key", "_cert"):
        if name not in RTCCertificate.__init__.__code__.co_names:
            missing.append(f"RTCCertificate.{name}")
    if "_RTCPeerConnection__certificates" not in RTCPeerConnection.__init__.__code__.co_names:
        missing.append("RTCPeerConnection.__certificates")
    need(RTCPeerConnection, "_RTCPeerConnection__createDtlsTransport")
    need(RTCDtlsTransport, "_setup_srtp")
    for name in ("_rx_srtp", "_tx_srtp"):
        if name not in RTCDtlsTransport._setup_srtp.__code__.co_names:
            missing.append(f"RTCDtlsTransport._setup_srtp sets {name}")
    if "_rx_srtp" not in RTCDtlsTransport._recv_next.__code__.co_names:
        missing.append("RTCDtlsTransport._recv_next reads _rx_srtp")
    if "_rtp_router" not in dtls_init:
        missing.append("RTCDtlsTransport._rtp_router")
    from aiortc.rtcdtlstransport import RtpRouter

    need(RtpRouter, "route_rtp")
    if "_rtp_header_extensions_map" not in dtls_init:
        missing.append("RTCDtlsTransport._rtp_header_extensions_map")
    if "_rtp_header_extensions_map" not in RTCDtlsTransport._handle_rtp_data.__code__.co_names:
        missing.append("RTCDtlsTransport._handle_rtp_data reads _rtp_header_extensions_map")
    fields = {f.name for f in dataclasses.fields(HeaderExtensions)}
    read = set(RTCRtpReceiver._handle_rtp_packet.__code__.co_names) & fields
    if not INGRESS_EXTENSION_FIELDS <= fields:
        missing.append("HeaderExtensions." + ", ".join(sorted(INGRESS_EXTENSION_FIELDS - fields)))
    if read != RECEIVER_EXTENSION_FIELDS:
        missing.append(f"RTCRtpReceiver._handle_rtp_packet reads extensions {sorted(read)}, "
                       f"IngressExtensions gives {sorted(RECEIVER_EXTENSION_FIELDS)}")
    audio_extensions = {e.uri for e in aiortc.codecs.HEADER_EXTENSIONS.get("audio", [])}
    if AUDIO_LEVEL_EXTENSION_URI not in audio_extensions:
        missing.append("aiortc.codecs.HEADER_EXTENSIONS['audio'] has the audio level")
    need(aiortc.rtcpeerconnection, "is_codec_compatible")
    if getattr(aiortc.rtcpeerconnection, "CODECS", None) is not aiortc.codecs.CODECS:
        missing.append("aiortc.rtcpeerconnection.CODECS is aiortc.codecs.CODECS")
    return missing


def aiortc_version() -> str:
    return str(aiortc.__version__)


# -- peer connections: DTLS and SRTP ------------------------------------------------------------


class ForwardingCertificate(RTCCertificate):
    """aiortc's ECDSA P-256 certificate, with a DTLS context that talks to RSA peers too,
    announced by one SHA-256 fingerprint, as browsers announce theirs.

    aiortc writes sha-256, sha-384 and sha-512 lines (RFC 8122 §5 allows several).
    libdatachannel (OBS's WebRTC stack) keeps only the last one it reads, yet may check the
    certificate against a SHA-256 digest when DTLS starts before the answer is applied (our
    ICE checks reach it first): it then refuses the handshake with "unknown CA".
    """

    def getFingerprints(self) -> list[RTCDtlsFingerprint]:
        return [f for f in super().getFingerprints() if f.algorithm == "sha-256"]

    def _create_ssl_context(self, srtp_profiles: list[Any]) -> SSL.Context:
        context: SSL.Context = super()._create_ssl_context(srtp_profiles)
        context.set_cipher_list(DTLS_CIPHER_SUITES)
        return context


class _BoundedUnprotect:
    """The receiving SRTP session, refusing datagrams larger than its buffer.

    pylibsrtp raises ``ValueError`` for those, which aiortc does not catch: its receive loop
    dies and the DTLS transport closes. ``pylibsrtp.Error`` is what aiortc drops and goes on.
    ``authenticated`` counts the packets that passed SRTP's authentication: proof that the
    peer holding the session's keys is still sending (see :func:`keep_consent`).
    """

    __slots__ = ("_session", "_unprotect", "_unprotect_rtcp", "authenticated", "oversized")

    def __init__(self, session: pylibsrtp.Session) -> None:
        self._session = session
        self._unprotect = session.unprotect
        self._unprotect_rtcp = session.unprotect_rtcp
        self.oversized = 0
        self.authenticated = 0

    def _refuse_oversized(self, data: bytes) -> None:
        if len(data) > SRTP_BUFFER_BYTES:
            self.oversized += 1
            raise pylibsrtp.Error("datagram larger than the MTU")

    def unprotect(self, data: bytes) -> bytes:
        self._refuse_oversized(data)
        result: bytes = self._unprotect(data)
        self.authenticated += 1
        return result

    def unprotect_rtcp(self, data: bytes) -> bytes:
        self._refuse_oversized(data)
        result: bytes = self._unprotect_rtcp(data)
        self.authenticated += 1
        return result


def _widen_srtp_buffer(session: pylibsrtp.Session) -> None:
    session._cdata = _srtp_ffi.new("char[]", SRTP_BUFFER_BYTES)
    session._buffer = _srtp_ffi.buffer(session._cdata)


def _allow_full_mtu(dtls: RTCDtlsTransport) -> None:
    setup_srtp = dtls._setup_srtp

    def setup_full_mtu_srtp() -> None:
        setup_srtp()
        # Runs before the state turns CONNECTED and the receive loop starts: no packet has
        # gone through the narrow buffers.
        if dtls._tx_srtp is not None and dtls._rx_srtp is not None:
            _widen_srtp_buffer(dtls._tx_srtp)
            _widen_srtp_buffer(dtls._rx_srtp)
            dtls._rx_srtp = _BoundedUnprotect(dtls._rx_srtp)  # type: ignore[assignment]

    dtls._setup_srtp = setup_full_mtu_srtp  # type: ignore[method-assign]


def authenticated_packets(dtls: RTCDtlsTransport) -> int:
    """SRTP and SRTCP packets received on ``dtls`` that passed authentication so far."""
    session = dtls._rx_srtp
    return session.authenticated if isinstance(session, _BoundedUnprotect) else 0


async def query_consent(connection: aioice.Connection, received: Callable[[], int]) -> None:
    """Consent freshness (RFC 7675) in which authenticated media from the peer counts too.

    aioice asks for consent with a STUN Binding request every 5 s and closes the connection
    after six unanswered ones. Minimal ICE agents never answer once connected: FFmpeg's WHIP
    muxer reads its socket only for DTLS after the handshake, so every FFmpeg publisher was
    cut after ~35 s. A packet that passes SRTP authentication can come only from the peer
    that holds this session's keys, so it proves the peer still wants the session as well as
    a Binding response does (this is how pion and libnice judge liveness). Consent is lost
    after :data:`CONSENT_TIMEOUT_S` with neither.
    """
    assert connection.remote_password is not None  # connect() has the remote's credentials
    integrity_key = connection.remote_password.encode("utf8")
    loop = asyncio.get_running_loop()
    fresh_at = loop.time()
    seen = received()
    while True:
        await asyncio.sleep(CONSENT_INTERVAL_S * (0.8 + 0.4 * random.random()))
        for pair in list(connection._nominated.values()):
            with contextlib.suppress(aioice.stun.TransactionError):
                await pair.protocol.request(connection.build_request(pair, nominate=False),
                                            pair.remote_addr, integrity_key=integrity_key,
                                            retransmissions=0)
                fresh_at = loop.time()
        count = received()
        if count != seen:
            seen, fresh_at = count, loop.time()
        if loop.time() - fresh_at >= CONSENT_TIMEOUT_S:
            await connection.close()
            return


def keep_consent(dtls: RTCDtlsTransport) -> None:
    """Run :func:`query_consent` instead of aioice's own on this transport's ICE connection
    (aioice starts ``self.query_consent()`` once connected)."""
    connection = dtls.transport._connection

    async def query_consent_or_media() -> None:
        await query_consent(connection, lambda: authenticated_packets(dtls))

    connection.query_consent = query_consent_or_media  # type: ignore[method-assign]


class IngressExtensions(HeaderExtensionsMap):
    """How a transport of this node reads received header extensions (RFC 8285), in place
    of aiortc's reader.

    aiortc's decodes every element it knows into lists, slices, a str for the mid and a
    tuple for the level (about 4 µs a packet), and an element of a length it does not expect
    (a two-byte audio level, say) raises ``struct.error`` out of the transport's receive loop,
    which closes the connection: one such packet would end a publisher. Of the values, only
    abs-send-time is read on the receive path (REMB) and the audio level by the SFU: these
    two are read with :func:`sfu.rtp.extension_value_at`, which allocates nothing and never
    raises (about 1.5 µs); a malformed element yields neither. ``audio_level`` holds the
    RFC 6464 byte as an int (aiortc's reader makes it a tuple): see :func:`received_audio_level`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._abs_send_time_id = 0
        self._audio_level_id = 0

    def configure(self, parameters: RTCRtpParameters) -> None:
        super().configure(parameters)
        for extension in parameters.headerExtensions:
            if extension.uri == ABS_SEND_TIME_URI:
                self._abs_send_time_id = extension.id
            elif extension.uri == AUDIO_LEVEL_EXTENSION_URI:
                self._audio_level_id = extension.id

    def get(self, extension_profile: int, extension_value: bytes) -> HeaderExtensions:
        values = HeaderExtensions()
        if self._abs_send_time_id:
            at = extension_value_at(extension_profile, extension_value, self._abs_send_time_id,
                                    ABS_SEND_TIME_LENGTH)
            if at >= 0:
                values.abs_send_time = (extension_value[at] << 16 | extension_value[at + 1] << 8
                                        | extension_value[at + 2])
        if self._audio_level_id:
            level = audio_level(extension_profile, extension_value, self._audio_level_id)
            if level >= 0:
                values.audio_level = level
        return values


def received_audio_level(packet: RtpPacket) -> int:
    """The RFC 6464 byte (V flag and level) a packet received by this node carried, or -1."""
    level = packet.extensions.audio_level
    return level if type(level) is int else -1


def new_peer_connection(configuration: RTCConfiguration,
                        media_socket: MediaSocket | None = None) -> RTCPeerConnection:
    """An aiortc peer connection whose DTLS takes RSA and ECDSA peers, in either role, whose
    SRTP carries packets up to :data:`MAX_RTP_PACKET_BYTES`, whose consent freshness
    counts authenticated media (:func:`query_consent`), and whose received header extensions
    are read by :class:`IngressExtensions`. With ``media_socket`` its ICE runs on the node's
    shared UDP socket, and received SRTP skips aioice's queue (:func:`_receive_media_now`)."""
    pc = RTCPeerConnection(configuration)
    pc._RTCPeerConnection__certificates = [  # type: ignore[attr-defined]
        ForwardingCertificate.generateCertificate()
    ]
    create_dtls_transport = pc._RTCPeerConnection__createDtlsTransport  # type: ignore[attr-defined]

    def create_full_mtu_dtls_transport() -> RTCDtlsTransport:
        dtls: RTCDtlsTransport = create_dtls_transport()
        dtls._rtp_header_extensions_map = IngressExtensions()
        _allow_full_mtu(dtls)
        keep_consent(dtls)
        if media_socket is not None:
            media_socket.attach(dtls.transport._connection, _receive_media_now(dtls))
        return dtls

    pc._RTCPeerConnection__createDtlsTransport = (  # type: ignore[attr-defined]
        create_full_mtu_dtls_transport
    )
    return pc


def _receive_media_now(dtls: RTCDtlsTransport) -> MediaReceiver:
    """What ``RTCDtlsTransport._recv_next`` does with an SRTP packet, done as the datagram
    arrives: no hop through aioice's queue and the transport's receive task (a future, a task
    step and four coroutine frames a packet), and no await between unprotect and fan-out.
    RTCP, and RTP for a receiver without the SFU's hook, keep aiortc's own path."""
    router = dtls._rtp_router
    connected = DtlsState.CONNECTED
    unhooked: set[asyncio.Future[None]] = set()

    def receive(data: bytes) -> bool:
        session = dtls._rx_srtp
        if session is None or dtls._state is not connected or is_rtcp(data):
            return False
        arrival_time_ms = clock.current_ms()
        try:
            packet = RtpPacket.parse(session.unprotect(data), dtls._rtp_header_extensions_map)
        except (pylibsrtp.Error, ValueError):
            return True  # aiortc drops these too, and goes on
        receiver = router.route_rtp(packet)
        if receiver is None:
            return True
        forward_now: Callable[[RtpPacket, int], None] | None = getattr(
            receiver, _FORWARD_NOW, None)
        if forward_now is not None:
            forward_now(packet, arrival_time_ms)
        else:
            _in_background(unhooked, receiver._handle_rtp_packet(packet, arrival_time_ms))
        return True

    return receive


def _in_background(tasks: set[asyncio.Future[None]], work: Awaitable[None]) -> None:
    """Run ``work`` as a task that ``tasks`` holds until it is done (the event loop keeps
    only weak references to tasks)."""
    task = asyncio.ensure_future(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def oversized_packets_dropped(pc: RTCPeerConnection) -> int:
    """Datagrams this connection received that were larger than the MTU (and dropped)."""
    total = 0
    for transceiver in pc.getTransceivers():
        session = getattr(transceiver.receiver.transport, "_rx_srtp", None)
        if isinstance(session, _BoundedUnprotect):
            total += session.oversized
            break  # BUNDLE: every transceiver shares the one transport
    return total


# -- codecs -------------------------------------------------------------------------------------


def register_forwarded_codecs() -> None:
    """Let aiortc negotiate every H.264 format in :data:`FORWARDED_H264_PROFILE_LEVEL_IDS`.

    aiortc keeps its codecs in one process-wide table, which both answers and offers read;
    this appends to it once (calling again changes nothing). aiortc's own entries stay first,
    so its encoder-backed peers (tests, tools) keep offering what that encoder makes.
    """
    video: list[RTCRtpCodecParameters] = aiortc.codecs.CODECS["video"]
    known = {CodecFormat.of(c.mimeType, c.parameters) for c in video if not _is_rtx(c)}
    used = {c.payloadType for kind in aiortc.codecs.CODECS.values() for c in kind}
    free = (pt for pt in range(96, 128) if pt not in used)  # RFC 3551 §3: dynamic types
    template = next(c for c in video if c.mimeType.lower() == "video/h264")
    for mode in ("1", "0"):
        for profile_level_id in FORWARDED_H264_PROFILE_LEVEL_IDS:
            parameters: dict[str, int | str | None] = {
                "level-asymmetry-allowed": "1", "packetization-mode": mode,
                "profile-level-id": profile_level_id}
            if CodecFormat.of("video/H264", parameters) in known:
                continue
            payload_type, rtx_payload_type = next(free), next(free)
            video.append(RTCRtpCodecParameters(
                mimeType="video/H264", clockRate=90000, payloadType=payload_type,
                rtcpFeedback=[RTCRtcpFeedback(type=f.type, parameter=f.parameter)
                              for f in template.rtcpFeedback],
                parameters=parameters,
            ))
            video.append(RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=rtx_payload_type,
                parameters={"apt": payload_type},
            ))
            known.add(CodecFormat.of("video/H264", parameters))


# -- publisher side -----------------------------------------------------------------------------


def install_ingress_hook(
    receiver: RTCRtpReceiver,
    on_packet: IngressCallback,
    on_sender_report: SenderReportCallback,
    yield_every: Callable[[], bool] | None = None,
) -> None:
    """Route every packet the receiver gets through ``on_packet``, then do only what a
    forwarder needs of aiortc's receive path (:func:`_forward_only_receive`).

    The decoder thread is stopped on the first packet: aiortc starts it after the connection
    reports "connected", so stopping earlier would be undone. ``yield_every`` returning True
    makes the hook give the event loop a turn after fanning out, so that a burst (a keyframe
    of a hundred packets to many subscribers) cannot stall signalling.
    """
    original_rtcp = receiver._handle_rtcp_packet
    stop_decoder: Callable[[], None] = receiver._RTCRtpReceiver__stop_decoder  # type: ignore[attr-defined]
    decoder_stopped = False
    receive = _forward_only_receive(receiver)

    def forward_now(packet: RtpPacket, arrival_time_ms: int) -> None:
        nonlocal decoder_stopped
        if not decoder_stopped:
            decoder_stopped = True
            stop_decoder()
        receive(packet, on_packet(packet, arrival_time_ms), arrival_time_ms)

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        forward_now(packet, arrival_time_ms)
        if yield_every is not None and yield_every():
            await asyncio.sleep(0)

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            info = packet.sender_info
            on_sender_report(packet.ssrc, info.ntp_timestamp, info.rtp_timestamp)
        await original_rtcp(packet)

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]
    receiver._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]
    setattr(receiver, _FORWARD_NOW, forward_now)


# The attribute a hooked receiver keeps its synchronous ingress in (see _receive_media_now).
_FORWARD_NOW = "_fairwire_forward_now"
ForwardOnlyReceive = Callable[[RtpPacket, RtpPacket | None, int], None]


def _forward_only_receive(receiver: RTCRtpReceiver) -> ForwardOnlyReceive:
    """aiortc's ``RTCRtpReceiver._handle_rtp_packet`` without what only a decoder needs.

    Kept, in aiortc's order: the bandwidth estimate from abs-send-time (REMB to the publisher,
    throttled by :class:`sfu.remb.RembThrottle`: aiortc sends one per packet under overuse),
    the per-SSRC statistics its receiver reports are made of, RTX unwrapping (done once: the
    SFU's own unwrapped packet is reused when it has one) and NACKs for what went missing.
    Left out: the depacketizer, the jitter buffer (one frame of buffering per packet, and
    PLIs of its own that would bypass :class:`sfu.keyframes.PliThrottle`), the decoder queue
    and ``getSynchronizationSources``' bookkeeping. :data:`RECEIVE_PATH_DIGEST` pins the
    method this mirrors. It runs synchronously: the RTCP it sends (REMB about once a second,
    NACKs on loss) goes out in a task of its own.
    """
    private = "_RTCRtpReceiver__"
    codecs: dict[int, RTCRtpCodecParameters] = getattr(receiver, private + "codecs")
    streams: dict[int, Any] = getattr(receiver, private + "remote_streams")
    rtx_ssrcs: dict[int, int] = getattr(receiver, private + "rtx_ssrc")
    estimator = getattr(receiver, private + "remote_bitrate_estimator")
    nacks = getattr(receiver, private + "nack_generator")
    rtcp_ssrc_field = private + "rtcp_ssrc"  # set later, when the transceiver learns its SSRC
    sending: set[asyncio.Future[None]] = set()
    remb_throttle = RembThrottle()

    def receive(packet: RtpPacket, forwarded: RtpPacket | None, arrival_time_ms: int) -> None:
        if not receiver._enabled:
            return
        if estimator is not None:
            abs_send_time = packet.extensions.abs_send_time
            if abs_send_time is not None:
                remb = estimator.add(
                    abs_send_time=abs_send_time, arrival_time_ms=arrival_time_ms,
                    payload_size=len(packet.payload) + packet.padding_size, ssrc=packet.ssrc)
                rtcp_ssrc = getattr(receiver, rtcp_ssrc_field)
                if (rtcp_ssrc is not None and remb is not None
                        and remb_throttle.should_send(remb[0], arrival_time_ms)):
                    _in_background(sending, receiver._send_rtcp(RtcpPsfbPacket(
                        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                        fci=pack_remb_fci(*remb))))
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return
        statistics = streams.get(packet.ssrc)
        if statistics is None:
            statistics = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        statistics.add(packet)
        if nacks is None:
            return  # audio: nothing more to keep
        if _is_rtx(codec):
            if forwarded is not None and forwarded is not packet:
                packet = forwarded  # the SFU unwrapped it already
            else:
                original_ssrc = rtx_ssrcs.get(packet.ssrc)
                apt = codec.parameters.get("apt")
                if (original_ssrc is None or len(packet.payload) < 2
                        or not isinstance(apt, int) or apt not in codecs):
                    return
                packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
        if nacks.add(packet):
            _in_background(sending,
                           receiver._send_rtcp_nack(packet.ssrc, sorted(nacks.missing)))

    return receive


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
    the selected candidate pair's transport: the node's shared socket, written to directly.
    Everything is looked up once, when the transport is first usable; until then (or after it
    closed) :meth:`send` drops the packet. A :class:`sfu.batch_fanout.BatchedFanout` sends for
    it instead, from :attr:`session`, :attr:`address` and :attr:`media_socket`, and counts what
    it sent in :attr:`sent_packets`.
    One thread only: the buffer is shared with aiortc's own RTCP protection.
    """

    __slots__ = (
        "_buffer", "_capacity", "_cdata", "_dtls", "_len_p", "_sendto", "_srtp", "address",
        "batched", "media_socket", "sent", "session",
    )

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._srtp: Any = None
        self._cdata: Any = None
        self._buffer: Any = None
        self._capacity = 0
        self._len_p = _srtp_ffi.new("int *")
        self._sendto: Callable[[bytes, Any], None] | None = None
        self.session: pylibsrtp.Session | None = None
        self.address: tuple[str, int] | None = None
        self.media_socket: MediaSocket | None = None
        self.sent = 0  # by send()
        # Fan-outs sending for this sink, each with a count of what it sent (see sent_packets).
        self.batched: dict[Any, Callable[[], int]] = {}

    def _resolve(self) -> bool:
        dtls = self._dtls
        session = dtls._tx_srtp
        if dtls._state != DtlsState.CONNECTED or session is None:
            return False
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None or pair.protocol.transport is None:
            return False
        transport = pair.protocol.transport
        media_socket = shared_socket(transport)
        if media_socket is not None:
            if media_socket.transport is None:
                return False
            transport = media_socket.transport
        self._srtp = session._srtp[0]
        self._cdata = session._cdata
        self._buffer = session._buffer
        self._capacity = len(session._cdata) - SRTP_MAX_TRAILER_LEN
        self._sendto = transport.sendto
        self.session = session
        self.address = (pair.remote_addr[0], pair.remote_addr[1])
        self.media_socket = media_socket
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
            self._sendto(buffer[0 : len_p[0]], self.address)  # type: ignore[misc]
        except (OSError, AttributeError, RuntimeError):
            self.close()
            return False
        self.sent += 1
        return True

    @property
    def sent_packets(self) -> int:
        """RTP packets sent for this subscriber, by itself and by fan-outs."""
        return self.sent + sum(count() for count in self.batched.values())

    @property
    def ready(self) -> bool:
        return self._srtp is not None or self._resolve()

    def close(self) -> None:
        self._srtp = None
        self._sendto = None
        self.address = None
        self.session = None
        self.media_socket = None


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
    format: CodecFormat


def _is_rtx(codec: Any) -> bool:
    return str(codec.mimeType).lower().endswith("/rtx")


def _restrict(transceiver: RTCRtpTransceiver, primary: Any) -> NegotiatedCodec | None:
    codec_format = CodecFormat.of(primary.mimeType, primary.parameters)
    if codec_format is None:
        return None
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
        format=codec_format,
    )


def _offered_parameters(pc: RTCPeerConnection, mid: str | None, payload_type: int
                        ) -> dict[str, Any]:
    description = pc.remoteDescription
    if description is None:
        return {}
    for media in SessionDescription.parse(description.sdp).media:
        if media.rtp.muxId == mid:
            for codec in media.rtp.codecs:
                if codec.payloadType == payload_type:
                    return dict(codec.parameters)
    return {}


def keep_first_codec(pc: RTCPeerConnection, transceiver: RTCRtpTransceiver
                     ) -> NegotiatedCodec | None:
    """Answering a publisher: accept only its preferred codec (and its RTX), so that every
    packet of the track has one payload type and subscribers can be offered exactly that.

    aiortc answers with its own fmtp; for H.264 the answer repeats the offered
    profile-level-id, so an encoder is never told to stay below the level it offered
    (RFC 6184 §8.2.2: with level-asymmetry-allowed the answer's level is what we receive).
    """
    primary = next((c for c in getattr(transceiver, "_codecs", []) if not _is_rtx(c)), None)
    if primary is None:
        return None
    if primary.mimeType.lower() == "video/h264":
        offered = _offered_parameters(pc, transceiver.mid, primary.payloadType)
        profile_level_id = offered.get("profile-level-id")
        if isinstance(profile_level_id, str):
            primary.parameters["profile-level-id"] = profile_level_id.lower()
    return _restrict(transceiver, primary)


def keep_payload_type(transceiver: RTCRtpTransceiver, payload_type: int) -> bool:
    """A renegotiation's answer for a track already received: only the codec it was
    negotiated with (aiortc recomputes every m-section's codecs from the new offer, and its
    own payload types for the extra H.264 formats can then clash with the offer's)."""
    primary = next((c for c in getattr(transceiver, "_codecs", [])
                    if not _is_rtx(c) and c.payloadType == payload_type), None)
    return primary is not None and _restrict(transceiver, primary) is not None


def can_forward(kind: str, codec: RTCRtpCodecParameters) -> bool:
    """Whether an offered codec is one this node negotiates (after
    :func:`register_forwarded_codecs`), as aiortc decides it."""
    return any(aiortc.rtcpeerconnection.is_codec_compatible(local, codec)
               for local in aiortc.codecs.CODECS.get(kind, []))


def _receivable(codecs: list[Any], codec_format: CodecFormat) -> list[Any]:
    """For each format the publication is receivable as (its own first), the first codec of
    ``codecs`` in that format."""
    found = []
    for receivable in codec_format.receivable_as():
        match = next((c for c in codecs if not _is_rtx(c)
                      and receivable.matches(c.mimeType, c.parameters)), None)
        if match is not None:
            found.append(match)
    return found


def keep_codec(transceiver: RTCRtpTransceiver, codec_format: CodecFormat) -> bool:
    """Answering a player: keep the first format of the publication's
    :meth:`~sfu.codecs.CodecFormat.receivable_as` that the offer has; False if none."""
    offered = _receivable(getattr(transceiver, "_codecs", []), codec_format)
    return bool(offered) and _restrict(transceiver, offered[0]) is not None


def prefer_codec(transceiver: RTCRtpTransceiver, codec_format: CodecFormat) -> None:
    """Offering to a subscriber: the publication's format first, then the others its
    receivers decode it as (so a browser that lists only a wider profile still takes it)."""
    capabilities = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    chosen = _receivable(capabilities, codec_format)
    if not chosen or not codec_format.matches(chosen[0].mimeType, chosen[0].parameters):
        raise ValueError(f"{codec_format} is not a codec this server can send")
    transceiver.setCodecPreferences([*chosen, *(c for c in capabilities if _is_rtx(c))])


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
