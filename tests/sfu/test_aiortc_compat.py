"""Fails loudly when the pinned aiortc release changes the internals the SFU relies on."""

import asyncio

from aiortc import RTCPeerConnection

from sfu import _aiortc_compat as compat


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
        compat.prefer_codec(transceiver, "video/VP8", {})
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
