"""One UDP port for every peer connection of a node: real aiortc peers, the node's one socket."""

from __future__ import annotations

import asyncio
import socket

import aioice.stun
import pytest
from aiortc import RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from ports import free_port
from test_sessions import Clients, Viewer, publish

from sfu import ice_mux
from sfu.batch_send import NativeBatchSender
from sfu.ice_mux import (
    STUN_CLASS_INDICATION,
    STUN_CLASS_REQUEST,
    MediaSocket,
    MuxedStunProtocol,
    stun_class,
    stun_username,
)
from sfu.sessions import MediaSettings, Publisher, Sfu


def binding(message_class: aioice.stun.Class, username: str | None = None) -> bytes:
    message = aioice.stun.Message(message_method=aioice.stun.Method.BINDING,
                                  message_class=message_class)
    if username is not None:
        message.attributes["USERNAME"] = username
        message.attributes["PRIORITY"] = 1
    return bytes(message)


def server_protocols(pc: object) -> list[object]:
    transceivers = pc.getTransceivers()  # type: ignore[attr-defined]
    connection = transceivers[0].receiver.transport.transport._connection
    return list(connection._protocols)


async def watched(sfu: Sfu, clients: Clients) -> tuple[Publisher, Viewer]:
    """A publisher and a viewer that already receives its video."""
    _, publisher = await publish(sfu, clients)
    viewer = Viewer(sfu, clients)
    await viewer.start()
    await viewer.wait_frames("video", 5)
    return publisher, viewer


async def publish_audio(sfu: Sfu, clients: Clients) -> Publisher:
    pc = clients.pc()
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    publisher = sfu.room("r").publisher("alice")
    answer = await publisher.answer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return publisher


def test_stun_messages_are_told_from_media_by_their_header() -> None:
    request = binding(aioice.stun.Class.REQUEST, "serverfrag:clientfrag")
    assert stun_class(request) == STUN_CLASS_REQUEST
    assert stun_username(request) == "serverfrag:clientfrag"
    assert stun_class(binding(aioice.stun.Class.RESPONSE)) == 2
    assert stun_class(binding(aioice.stun.Class.ERROR)) == 3
    assert stun_class(binding(aioice.stun.Class.INDICATION)) == STUN_CLASS_INDICATION
    assert stun_username(binding(aioice.stun.Class.REQUEST)) is None
    # An RTP packet, a DTLS record, a truncated header and a wrong magic cookie are not STUN.
    assert stun_class(bytes([0x80, 0x60]) + bytes(30)) == -1
    assert stun_class(bytes([22, 254, 253]) + bytes(30)) == -1
    assert stun_class(request[:19]) == -1
    assert stun_class(request[:4] + b"\0\0\0\0" + request[8:]) == -1
    # A USERNAME whose length runs past the message is not read.
    cut = bytearray(request)
    cut[22:24] = (0xFFFF).to_bytes(2, "big")
    assert stun_username(bytes(cut)) is None


async def test_fifty_peer_connections_share_one_udp_port_and_all_receive(
    sfu: Sfu, clients: Clients
) -> None:
    publisher = await publish_audio(sfu, clients)
    viewers = [Viewer(sfu, clients, f"viewer-{n}") for n in range(49)]
    await asyncio.gather(*(viewer.start() for viewer in viewers))
    await asyncio.gather(*(viewer.wait_frames("audio", 10, timeout=30) for viewer in viewers))

    port = sfu.media_socket.port
    assert port > 0
    assert sfu.media_socket.connections == 50
    ufrags = {pc.getTransceivers()[0].receiver.transport.transport._connection.local_username
              for pc in (publisher.pc, *(viewer.subscriber.pc for viewer in viewers))}
    assert len(ufrags) == 50 and all(len(ufrag) == 8 for ufrag in ufrags)
    pcs = [publisher.pc, *(viewer.subscriber.pc for viewer in viewers)]
    for pc in pcs:
        assert pc.connectionState == "connected"
        protocols = server_protocols(pc)
        assert len(protocols) == 1 and isinstance(protocols[0], MuxedStunProtocol)
        assert protocols[0].local_candidate.port == port
        assert f" {port} typ host" in pc.localDescription.sdp
    # Every server-side connection sends from that one port: each client saw it as the
    # remote end of its selected pair.
    remote_ports = {
        viewer.pc.getTransceivers()[0].receiver.transport.transport._connection
        ._nominated[1].remote_addr[1] for viewer in viewers}
    assert remote_ports == {port}
    # And the fan-out hands each packet for all 49 to the kernel in one native batch.
    sender = sfu._batch_sender
    assert isinstance(sender, NativeBatchSender)
    assert sender.sent >= 49 * 10 and sender.failed == 0
    assert all(viewer.subscriber.sent_packets >= 10 for viewer in viewers)


async def test_the_media_port_is_the_configured_one_and_a_port_in_use_is_refused() -> None:
    port = free_port()
    sfu = Sfu(MediaSettings(media_port=port))
    await sfu.start()
    try:
        assert sfu.media_socket.port == port
        other = Sfu(MediaSettings(media_port=port))
        with pytest.raises(OSError):
            await other.start()
        await other.close()
    finally:
        await sfu.close()


async def test_datagrams_for_nobody_are_dropped_and_counted_and_media_goes_on(
    sfu: Sfu, clients: Clients
) -> None:
    publisher, viewer = await watched(sfu, clients)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.setblocking(False)
    try:
        target = (sfu.media_socket.address, sfu.media_socket.port)
        before = sfu.media_socket.unrouted
        # An ICE check for a connection this node does not have gets no answer (a node
        # answering any check would be a reflector); nor does SRTP from an unknown address.
        stranger.sendto(binding(aioice.stun.Class.REQUEST, "nosuchfrag:x"), target)
        stranger.sendto(bytes([0x80, 0x60]) + bytes(100), target)
        stranger.sendto(binding(aioice.stun.Class.RESPONSE), target)
        async with asyncio.timeout(5):
            while sfu.media_socket.unrouted < before + 3:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        with pytest.raises(BlockingIOError):
            stranger.recvfrom(2048)
        assert sfu.media_socket.unrouted == before + 3
    finally:
        stranger.close()
    await viewer.wait_frames("video", 10)
    assert publisher.pc.connectionState == "connected"


async def test_a_closed_connection_leaves_the_socket_s_tables(
    sfu: Sfu, clients: Clients
) -> None:
    publisher, viewer = await watched(sfu, clients)
    assert sfu.media_socket.connections == 2
    await viewer.subscriber.close()
    await publisher.close()
    assert sfu.media_socket.connections == 0
    assert not sfu.media_socket._by_address
    assert not sfu.media_socket._by_request


async def test_the_socket_opens_once_for_concurrent_callers() -> None:
    media = MediaSocket("127.0.0.1")
    await asyncio.gather(media.open(), media.open(), media.open())
    try:
        assert media.port > 0 and media.address == "127.0.0.1"
        assert media.fileno >= 0
    finally:
        media.close()


def test_the_aioice_internals_the_mux_relies_on_are_there() -> None:
    assert ice_mux.check_internals() == []
