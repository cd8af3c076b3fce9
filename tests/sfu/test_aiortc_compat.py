"""Fails loudly when the pinned aiortc release changes the internals the SFU relies on."""

import asyncio
import re
import struct

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from certificates import self_signed
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from OpenSSL import SSL

from sfu import _aiortc_compat as compat
from sfu.codecs import CodecFormat, H264Profile
from sfu.rtp import RtpHeaderTemplate


def test_aiortc_is_the_pinned_release() -> None:
    assert compat.aiortc_version() == compat.PINNED_AIORTC, (
        "aiortc changed: review sfu/_aiortc_compat.py against the new release, then move the pin"
    )


def test_every_private_internal_still_exists() -> None:
    assert compat.check_internals() == []


async def test_negotiated_stream_and_sender_report_fields_on_a_real_transceiver() -> None:
    pc = RTCPeerConnection()
    try:
        track = compat.IdleTrack("video", "track-1")
        transceiver = pc.addTransceiver(track, direction="sendonly")
        compat.prefer_codec(transceiver, CodecFormat("video/VP8"))
        compat.set_stream_id(transceiver.sender, "alice")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        assert "msid:alice track-1" in sdp
        assert "VP8/90000" in sdp and "H264" not in sdp
        stream = compat.negotiated_stream(transceiver)
        assert stream is not None
        assert stream.mime_type == "video/VP8"
        assert stream.rtx_payload_type is not None
        assert stream.ssrc == transceiver.sender._ssrc
        assert "urn:ietf:params:rtp-hdrext:sdes:mid" in stream.extension_ids
        compat.set_sender_report(transceiver.sender, 1 << 40, 1234, 10, 5000)
        stats = await transceiver.sender.getStats()
        outbound = [s for s in stats.values() if s.type == "outbound-rtp"]
        assert outbound[0].packetsSent == 10 and outbound[0].bytesSent == 5000
    finally:
        await pc.close()


async def test_idle_track_never_yields_until_stopped() -> None:
    track = compat.IdleTrack("audio", "a")
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.05)
    assert not pending.done()
    track.stop()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert pending.done()
    assert pending.exception() is not None


async def test_srtp_sink_drops_until_the_transport_is_connected() -> None:
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video", direction="sendonly")
        sink = compat.SrtpSink(transceiver.sender.transport)
        assert not sink.ready
        assert sink.send(bytearray(b"\x80" + bytes(30))) is False
    finally:
        await pc.close()


# -- DTLS with every certificate type peers use (RFC 8827 §6.5) --------------------------------


def _peer_context(key_type: str) -> SSL.Context:
    """A DTLS endpoint as GStreamer, FFmpeg or a browser makes one: its own self-signed
    certificate (RSA or ECDSA), SRTP keying (RFC 5764), any certificate accepted (the
    fingerprint in the SDP is what authenticates)."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if key_type.startswith("rsa"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    else:
        key = ec.generate_private_key(ec.SECP384R1() if key_type == "ecdsa-p384"
                                      else ec.SECP256R1())
    certificate = self_signed(key)
    context = SSL.Context(SSL.DTLS_METHOD)
    context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *_: True)
    context.use_certificate(certificate)
    context.use_privatekey(key)
    context.set_tlsext_use_srtp(b"SRTP_AES128_CM_SHA1_80")
    return context


def _handshake(client: SSL.Connection, server: SSL.Connection) -> None:
    """Run a DTLS handshake over memory BIOs; raises SSL.Error when it fails."""
    client.set_connect_state()
    server.set_accept_state()
    done = {client: False, server: False}
    for _ in range(20):
        for this, other in ((client, server), (server, client)):
            if not done[this]:
                try:
                    this.do_handshake()
                    done[this] = True
                except SSL.WantReadError:
                    pass
            try:
                while True:
                    other.bio_write(this.bio_read(65536))
            except SSL.WantReadError:
                pass
        if all(done.values()):
            return
    raise AssertionError("the DTLS handshake did not finish")


@pytest.mark.parametrize("peer_key", ["rsa2048", "rsa4096", "ecdsa-p256", "ecdsa-p384"])
@pytest.mark.parametrize("our_role", ["client", "server"])
def test_dtls_handshakes_with_rsa_and_ecdsa_peers_in_both_roles(
    peer_key: str, our_role: str
) -> None:
    ours = SSL.Connection(compat.ForwardingCertificate.generateCertificate()._create_ssl_context(
        srtp_profiles=SRTP_PROFILES), None)
    peer = SSL.Connection(_peer_context(peer_key), None)
    if our_role == "client":  # we answered an actpass offer with a=setup:active
        _handshake(ours, peer)
    else:  # the offer said a=setup:active
        _handshake(peer, ours)
    assert ours.get_selected_srtp_profile() == b"SRTP_AES128_CM_SHA1_80"
    assert ours.get_peer_certificate() is not None


def test_aiortc_alone_fails_an_rsa_dtls_server() -> None:
    """What ForwardingCertificate is for: stock aiortc offers only ECDHE-ECDSA suites."""
    stock = SSL.Connection(RTCCertificate.generateCertificate()._create_ssl_context(
        srtp_profiles=SRTP_PROFILES), None)
    with pytest.raises(SSL.Error):
        _handshake(stock, SSL.Connection(_peer_context("rsa2048"), None))


# -- packets of every size up to the MTU --------------------------------------------------------


async def _connected_pair() -> tuple[RTCPeerConnection, RTCPeerConnection, RTCRtpTransceiver]:
    sender = compat.new_peer_connection(RTCConfiguration())
    receiver = compat.new_peer_connection(RTCConfiguration())
    transceiver = sender.addTransceiver(compat.IdleTrack("video", "t"), direction="sendonly")
    compat.prefer_codec(transceiver, CodecFormat("video/VP8"))
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)
    async with asyncio.timeout(10):
        while "connected" not in (sender.connectionState, receiver.connectionState) or (
            sender.connectionState != receiver.connectionState
        ):
            await asyncio.sleep(0.02)
    return sender, receiver, transceiver


async def test_packets_up_to_the_mtu_are_protected_sent_and_received_intact() -> None:
    sender, receiver, transceiver = await _connected_pair()
    try:
        # One SHA-256 fingerprint per section, as browsers write it (libdatachannel, OBS's
        # WebRTC stack, keeps only the last one it reads and may check with SHA-256).
        fingerprints = re.findall(r"a=fingerprint:(\S+)", sender.localDescription.sdp)
        assert fingerprints == ["sha-256"]
        stream = compat.negotiated_stream(transceiver)
        assert stream is not None
        arrived: dict[int, bytes] = {}
        remote = receiver.getTransceivers()[0].receiver
        compat.install_ingress_hook(
            remote, lambda packet, _ms: arrived.__setitem__(packet.sequence_number,
                                                            packet.payload),
            lambda *_: None)
        sink = compat.SrtpSink(transceiver.sender.transport)
        assert sink.ready
        template = RtpHeaderTemplate(stream.payload_type, stream.ssrc)
        sizes = [200, 1200, 1400, 1500]
        payloads = {}
        for seq, size in enumerate(sizes, start=1):
            payload = bytes([seq]) * (size - template.header_size)
            packet = template.build(False, seq, seq * 3000, payload)
            assert len(packet) == size
            assert sink.send(packet)
            payloads[seq] = payload
        too_long = template.build(False, 9, 27000, bytes(compat.MAX_RTP_PACKET_BYTES + 100))
        assert not sink.send(too_long)  # refused, not sent
        # A datagram larger than any MTU sent straight at the receiver is dropped there,
        # and its transport goes on (pylibsrtp alone raises and closes it).
        pair = transceiver.sender.transport.transport._connection._nominated[1]
        pair.protocol.transport.sendto(b"\x80" + bytes(2000), pair.remote_addr)
        await asyncio.sleep(0.1)
        later = template.build(True, 5, 15000, b"after")
        assert sink.send(later)
        async with asyncio.timeout(5):
            while len(arrived) < 5:
                await asyncio.sleep(0.02)
        assert arrived == payloads | {5: b"after"}
        assert compat.oversized_packets_dropped(receiver) == 1
        assert receiver.connectionState == "connected"
    finally:
        await sender.close()
        await receiver.close()


def test_forwarded_h264_formats_are_negotiable() -> None:
    compat.register_forwarded_codecs()
    compat.register_forwarded_codecs()  # twice changes nothing
    codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs
              if c.mimeType == "video/H264"]
    formats = [CodecFormat.of(c.mimeType, c.parameters) for c in codecs]
    assert len(formats) == len(set(formats)) == 12  # 6 profiles x 2 packetization modes
    assert {f.profile for f in formats if f is not None} == set(H264Profile)


class _UnansweredPair:
    """A nominated candidate pair whose peer never answers a consent check."""

    remote_addr = ("127.0.0.1", 9)

    def __init__(self) -> None:
        self.protocol = self
        self.checks = 0

    async def request(self, *args: object, **kwargs: object) -> None:
        self.checks += 1
        raise compat.aioice.stun.TransactionTimeout()


class _SilentPeerConnection:
    """Just what consent freshness reads of an aioice connection."""

    remote_password = "remote-password"

    def __init__(self) -> None:
        self.pair = _UnansweredPair()
        self._nominated = {1: self.pair}
        self.closed = asyncio.Event()

    def build_request(self, pair: object, nominate: bool) -> object:
        return object()

    async def close(self) -> None:
        self.closed.set()


async def test_consent_holds_while_authenticated_media_arrives_and_expires_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RFC 7675 with media as proof: a peer that answers no consent check keeps its session
    while its SRTP authenticates, and loses it one timeout after the media stops."""
    monkeypatch.setattr(compat, "CONSENT_INTERVAL_S", 0.02)
    monkeypatch.setattr(compat, "CONSENT_TIMEOUT_S", 0.2)
    connection = _SilentPeerConnection()
    received = 0

    def authenticated() -> int:
        return received

    task = asyncio.create_task(compat.query_consent(connection, authenticated))  # type: ignore[arg-type]
    try:
        loop = asyncio.get_running_loop()
        until = loop.time() + 0.6  # three timeouts' worth of unanswered checks
        while loop.time() < until:
            received += 1
            await asyncio.sleep(0.01)
        assert not connection.closed.is_set()
        assert connection.pair.checks > 10  # it kept asking all along
        stopped = loop.time()
        await asyncio.wait_for(connection.closed.wait(), 1.0)
        assert 0.15 <= loop.time() - stopped < 0.4  # one timeout, within a check or two
        await asyncio.wait_for(task, 1.0)
    finally:
        task.cancel()


async def test_every_peer_connection_keeps_consent_by_media() -> None:
    pc = compat.new_peer_connection(RTCConfiguration())
    try:
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        dtls = pc.getTransceivers()[0].receiver.transport
        assert dtls.transport._connection.query_consent.__name__ == "query_consent_or_media"
        assert compat.authenticated_packets(dtls) == 0
    finally:
        await pc.close()


# -- received header extensions (RFC 8285) -----------------------------------------------------


def _configured(reader: HeaderExtensionsMap) -> HeaderExtensionsMap:
    reader.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        RTCRtpHeaderExtensionParameters(id=2, uri=compat.ABS_SEND_TIME_URI),
        RTCRtpHeaderExtensionParameters(id=4, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
    ]))
    return reader


def _rtp(block: bytes) -> bytes:
    return bytes([0x90, 111, 0, 1, 0, 0, 3, 192, 0, 0, 0, 9]) + bytes(
        [0xBE, 0xDE, 0, len(block) // 4]) + block + b"opus"


def test_the_ingress_reader_gives_the_receive_path_what_aiortcs_does() -> None:
    # Chromium's audio: level (V=1, -5 dBov), abs-send-time, transport-cc, mid.
    block = bytes([0x10, 0x85, 0x22, 0x01, 0x02, 0x03, 0x31, 0x00, 0x10, 0x40, ord("0"), 0])
    ours = RtpPacket.parse(_rtp(block), _configured(compat.IngressExtensions()))
    theirs = RtpPacket.parse(_rtp(block), _configured(HeaderExtensionsMap()))
    assert ours.extensions.abs_send_time == theirs.extensions.abs_send_time == 0x010203
    assert theirs.extensions.audio_level == (True, 5)
    assert compat.received_audio_level(ours) == 0x85
    assert compat.received_audio_level(theirs) == -1  # not ours: not trusted
    assert ours.payload == theirs.payload == b"opus"


def test_a_malformed_extension_costs_the_packet_its_level_not_the_connection() -> None:
    # An audio level two bytes long: aiortc's reader raises struct.error, which its receive
    # loop does not catch (the DTLS transport closes); ours reads no level and goes on.
    block = bytes([0x11, 0x85, 0x00, 0x22, 0x01, 0x02, 0x03, 0x00])
    with pytest.raises(struct.error):
        RtpPacket.parse(_rtp(block), _configured(HeaderExtensionsMap()))
    packet = RtpPacket.parse(_rtp(block), _configured(compat.IngressExtensions()))
    assert compat.received_audio_level(packet) == -1
    assert packet.extensions.abs_send_time == 0x010203
    truncated = RtpPacket.parse(_rtp(bytes([0x10, 0x85, 0x2F, 0x01])),
                                _configured(compat.IngressExtensions()))
    assert compat.received_audio_level(truncated) == 0x85
    assert truncated.extensions.abs_send_time is None


async def test_every_transport_of_a_forwarding_connection_reads_with_the_ingress_reader(
) -> None:
    client, server = RTCPeerConnection(), compat.new_peer_connection(RTCConfiguration())
    try:
        client.addTransceiver("audio", direction="sendonly")
        await client.setLocalDescription(await client.createOffer())
        # aiortc offers the audio level on audio, and a forwarding node accepts it.
        assert "urn:ietf:params:rtp-hdrext:ssrc-audio-level" in client.localDescription.sdp
        await server.setRemoteDescription(client.localDescription)
        await server.setLocalDescription(await server.createAnswer())
        assert "urn:ietf:params:rtp-hdrext:ssrc-audio-level" in server.localDescription.sdp
        [transceiver] = server.getTransceivers()
        dtls = transceiver.receiver.transport
        assert isinstance(dtls._rtp_header_extensions_map, compat.IngressExtensions)
    finally:
        await client.close()
        await server.close()
