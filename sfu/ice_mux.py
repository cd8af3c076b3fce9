"""One UDP socket for every peer connection of a node (ICE multiplexing).

Operators open one port in the firewall, and the fan-out can hand a whole batch of datagrams
to the kernel at once (:mod:`sfu.batch_send`), which needs them on one socket. Each aioice
connection of the node gets, in place of the sockets aioice would bind for it, one
:class:`MuxedStunProtocol` per host address whose transport writes to the shared socket.
:class:`MediaSocket` hands every datagram it receives to one of them:

- STUN requests by their USERNAME: its first half is the ufrag of the agent the request is for
  (RFC 8445 §7.2.2, RFC 5389 §15.3), the only thing that identifies the connection when a
  new address sends its first check. The address is then remembered for that connection.
- STUN responses by their transaction id (RFC 5389 §6): requests to a STUN server that every
  connection asks come back from one address.
- Everything else (DTLS, SRTP, SRTCP: RFC 7983) by the remote address, learned from checks in
  either direction.

Two connections of this node cannot share a remote address (a peer that multiplexes its own
port would need one connection per node pair). The media port is IPv4 and advertises one host
address (the one configured, or the machine's first): which of several a datagram was sent to
is not known to a socket bound to all of them, and a check answered from the wrong one fails.

aioice has no hook for bringing one's own sockets; the places this touches are listed in
:func:`check_internals`, and ``tests/sfu/test_ice_mux.py`` fails when aioice changes them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
from collections.abc import Callable
from typing import Any, cast

import aioice
import aioice.ice
import aioice.stun
import aioice.utils
from aioice.candidate import Candidate, candidate_foundation, candidate_priority

log = logging.getLogger(__name__)

Address = tuple[str, int]
# Hands a datagram that is neither STUN nor DTLS (RFC 7983: SRTP/SRTCP, first byte 128..191)
# to a faster path than aioice's queue; False leaves it to aioice.
MediaReceiver = Callable[[bytes], bool]

# RFC 5389 §6: the fixed magic cookie and the 20-byte header; §15.3 USERNAME.
STUN_MAGIC_COOKIE = b"\x21\x12\xa4\x42"
STUN_HEADER_BYTES = 20
STUN_ATTRIBUTE_USERNAME = 0x0006
# RFC 5389 §6: the class bits of the message type (C1 is bit 8, C0 is bit 4).
STUN_CLASS_REQUEST = 0
STUN_CLASS_INDICATION = 1
# RFC 7983 §7: a first byte of 0..3 is STUN.
STUN_FIRST_BYTE_MAX = 3
# ICE ufrag characters (RFC 8445 §5.3: ice-char, of which aioice uses letters and digits).
MUXED_UFRAG_LENGTH = 8
# One socket carries every connection's media: room for bursts (a keyframe from each of many
# publishers) before the kernel drops. Linux caps it at net.core.[rw]mem_max unless root.
MEDIA_SOCKET_BUFFER_BYTES = 8 * 1024 * 1024


def stun_class(data: bytes) -> int:
    """The class of a STUN message (RFC 5389 §6), or -1 when ``data`` is not one."""
    if (len(data) < STUN_HEADER_BYTES or data[0] > STUN_FIRST_BYTE_MAX
            or data[4:8] != STUN_MAGIC_COOKIE):
        return -1
    return ((data[0] & 0x01) << 1) | ((data[1] & 0x10) >> 4)


def stun_username(data: bytes) -> str | None:
    """The USERNAME attribute of a STUN message (RFC 5389 §15), None when it has none."""
    end = min(len(data), STUN_HEADER_BYTES + (data[2] << 8 | data[3]))
    at = STUN_HEADER_BYTES
    while at + 4 <= end:
        kind = data[at] << 8 | data[at + 1]
        length = data[at + 2] << 8 | data[at + 3]
        if kind == STUN_ATTRIBUTE_USERNAME:
            if at + 4 + length > end:
                return None
            return data[at + 4 : at + 4 + length].decode("utf-8", "replace")
        at += 4 + (length + 3 & ~3)  # §15: attributes are padded to 4 bytes
    return None


def shared_socket(transport: object) -> MediaSocket | None:
    """The node's shared socket behind a (muxed) protocol's transport, else None."""
    return transport.media_socket if isinstance(transport, _MuxedTransport) else None


class MuxedStunProtocol(aioice.ice.StunProtocol):
    """aioice's protocol for one host candidate, on the node's shared socket."""

    def __init__(self, connection: aioice.Connection, media: MediaReceiver | None) -> None:
        super().__init__(connection)
        self.media = media
        self.addresses: set[Address] = set()
        self.requests: set[bytes] = set()  # transaction ids of requests it sent

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        assert isinstance(data, bytes)
        first = data[0] if data else 0
        if first > STUN_FIRST_BYTE_MAX:
            media = self.media
            if media is not None and 127 < first < 192 and media(data):
                return
            # Not STUN (RFC 7983): what aioice's own datagram_received does after trying to
            # parse it as STUN.
            self.receiver.data_received(data, self.local_candidate.component)
            return
        super().datagram_received(data, addr)


class _MuxedTransport(asyncio.DatagramTransport):
    """What a :class:`MuxedStunProtocol` writes to: the shared socket, remembering where."""

    def __init__(self, media_socket: MediaSocket, protocol: MuxedStunProtocol,
                 sockname: Address) -> None:
        super().__init__()
        self.media_socket = media_socket
        self._protocol = protocol
        self._sockname = sockname
        self._closing = False

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        if self._closing:
            return
        self.media_socket.send_from(self._protocol, bytes(data), addr)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname":
            return self._sockname
        if name == "socket":
            return None  # shared: not this connection's to configure
        return default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.media_socket.detach(self._protocol)
        asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()


class MediaSocket(asyncio.DatagramProtocol):
    """The node's UDP socket for media, shared by every peer connection.

    ``host`` is the address to bind (all IPv4 interfaces by default); ``port`` 0 takes any
    free one (see :attr:`port` once open).
    """

    def __init__(self, host: str = "0.0.0.0", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.transport: asyncio.DatagramTransport | None = None
        self._opening: asyncio.Future[None] | None = None
        self._by_address: dict[Address, MuxedStunProtocol] = {}
        self._by_ufrag: dict[str, MuxedStunProtocol] = {}
        self._by_request: dict[bytes, MuxedStunProtocol] = {}
        self._sendto: Callable[[bytes, Address], None] | None = None
        self.address = ""  # what host candidates advertise, once open
        self.unrouted = 0  # datagrams nobody of this node expected

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Bind the socket (once; later calls wait for the first)."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        await asyncio.shield(self._opening)

    async def _open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.requested_port))
            for option, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):
                try:  # SO_RCVBUFFORCE / SO_SNDBUFFORCE (socket(7)) pass the cap when root
                    sock.setsockopt(socket.SOL_SOCKET, force, MEDIA_SOCKET_BUFFER_BYTES)
                except OSError:
                    sock.setsockopt(socket.SOL_SOCKET, option, MEDIA_SOCKET_BUFFER_BYTES)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=sock)
        self.address = self._advertised_address()
        log.info("media on UDP %s:%d, advertised as %s", self.host, self.port, self.address)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._sendto = self.transport.sendto

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._sendto = None

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for one peer (IP_RECVERR is off: rare): the others go on.
        log.debug("media socket: %s", exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def port(self) -> int:
        """The bound port (0 before :meth:`open`)."""
        if self.transport is None:
            return 0
        port: int = self.transport.get_extra_info("sockname")[1]
        return port

    @property
    def fileno(self) -> int:
        """The socket's file descriptor, for batched sends (-1 when closed)."""
        sock = None if self.transport is None else self.transport.get_extra_info("socket")
        return -1 if sock is None else int(sock.fileno())

    @property
    def connections(self) -> int:
        """Connections (ufrags) whose checks this socket routes now."""
        return len(self._by_ufrag)

    # -- connections -------------------------------------------------------------------------

    def attach(self, connection: aioice.Connection, media: MediaReceiver | None = None
               ) -> None:
        """Make ``connection`` gather its host candidates on this socket (before it gathers);
        ``media`` takes its SRTP datagrams first (see :data:`MediaReceiver`)."""
        # aioice's 4-character ufrags (24 bits, RFC 8445 §5.3's minimum) collide between a
        # node's connections at a few thousand of them; here they name the connection, so
        # each gets 48 bits and one no other connection of the socket has.
        ufrag = aioice.utils.random_string(MUXED_UFRAG_LENGTH)
        while ufrag in self._by_ufrag:
            ufrag = aioice.utils.random_string(MUXED_UFRAG_LENGTH)
        connection._local_username = ufrag
        gather_others = connection.get_component_candidates

        # aioice's signature, which gather_candidates() calls.
        async def get_component_candidates(
                component: int, addresses: list[str],
                timeout: int = 5) -> list[Candidate]:  # noqa: ASYNC109
            await self.open()
            protocol = self._host_protocol(connection, media, component, self.address)
            connection._protocols.append(protocol)
            candidates = [protocol.local_candidate]
            if connection.stun_server:
                try:
                    srflx, _ = await asyncio.wait_for(
                        aioice.ice.server_reflexive_candidate(protocol, connection.stun_server),
                        timeout)
                    candidates.append(srflx)
                except (OSError, TimeoutError, aioice.stun.TransactionError) as exc:
                    log.info("no server-reflexive candidate: %s", exc)
            # A relayed candidate (TURN) keeps its own socket to the TURN server.
            candidates += await gather_others(component=component, addresses=[],
                                              timeout=timeout)
            return candidates

        connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]

    def _advertised_address(self) -> str:
        if self.host not in ("", "0.0.0.0"):
            return self.host
        addresses = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
        return addresses[0] if addresses else "127.0.0.1"

    def _host_protocol(self, connection: aioice.Connection, media: MediaReceiver | None,
                       component: int, address: str) -> MuxedStunProtocol:
        protocol = MuxedStunProtocol(connection, media)
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", address), component=component,
            transport="udp", priority=candidate_priority(component, "host"), host=address,
            port=self.port, type="host")
        protocol.connection_made(_MuxedTransport(self, protocol, (address, self.port)))
        self._by_ufrag[connection.local_username] = protocol
        return protocol

    def detach(self, protocol: MuxedStunProtocol) -> None:
        for address in protocol.addresses:
            if self._by_address.get(address) is protocol:
                del self._by_address[address]
        protocol.addresses.clear()
        for request in protocol.requests:
            self._by_request.pop(request, None)
        protocol.requests.clear()
        ufrag = protocol.receiver.local_username
        if self._by_ufrag.get(ufrag) is protocol:
            del self._by_ufrag[ufrag]

    def _learn(self, address: Address, protocol: MuxedStunProtocol) -> None:
        previous = self._by_address.get(address)
        if previous is protocol:
            return
        if previous is not None:
            previous.addresses.discard(address)
        self._by_address[address] = protocol
        protocol.addresses.add(address)

    # -- datagrams ---------------------------------------------------------------------------

    def send_from(self, protocol: MuxedStunProtocol, data: bytes, addr: Address) -> None:
        sendto = self._sendto
        if sendto is None:
            return
        address = (addr[0], addr[1])
        if stun_class(data) == STUN_CLASS_REQUEST:
            request = data[8:STUN_HEADER_BYTES]
            if protocol.requests:
                # Forget requests aioice gave up on (no response is coming for them).
                for stale in [r for r in protocol.requests if r not in protocol.transactions]:
                    protocol.requests.discard(stale)
                    self._by_request.pop(stale, None)
            protocol.requests.add(request)
            self._by_request[request] = protocol
        if address not in self._by_address:
            self._learn(address, protocol)
        sendto(data, address)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        # An AF_INET socket's addresses are (host, port) already: no copy per packet.
        address = cast(Address, addr)
        protocol = self._by_address.get(address)
        if data and data[0] > STUN_FIRST_BYTE_MAX:
            if protocol is not None:
                protocol.datagram_received(data, address)
            else:
                self.unrouted += 1
            return
        kind = stun_class(data)
        if kind == STUN_CLASS_REQUEST:
            username = stun_username(data)
            target = (None if username is None
                      else self._by_ufrag.get(username.partition(":")[0]))
            if target is not None:
                self._learn(address, target)
                protocol = target
        elif kind != STUN_CLASS_INDICATION and kind >= 0:
            request = data[8:STUN_HEADER_BYTES]
            target = self._by_request.pop(request, None)
            if target is not None:
                target.requests.discard(request)
                protocol = target
        if protocol is None:
            self.unrouted += 1
            return
        protocol.datagram_received(data, address)


def check_internals() -> list[str]:
    """What of aioice this module needs and the installed aioice lacks."""
    missing: list[str] = []
    connection_init = aioice.Connection.__init__.__code__.co_names
    for name in ("_protocols", "stun_server", "_local_username"):
        if name not in connection_init and not hasattr(aioice.Connection, name):
            missing.append(f"aioice.Connection.{name}")
    if "self.get_component_candidates(" not in inspect.getsource(
            aioice.Connection.gather_candidates):
        missing.append("aioice.Connection.gather_candidates calls get_component_candidates")
    for name in ("data_received", "request_received", "protocol_lost"):
        if not hasattr(aioice.Connection, name):
            missing.append(f"aioice.Connection.{name}")
    protocol_init = aioice.ice.StunProtocol.__init__.__code__.co_names
    for name in ("receiver", "transactions"):
        if name not in protocol_init:
            missing.append(f"aioice.ice.StunProtocol.{name}")
    if not isinstance(getattr(aioice.Connection, "local_username", None), property):
        missing.append("aioice.Connection.local_username reads _local_username")
    for name in ("get_host_addresses", "server_reflexive_candidate"):
        if not hasattr(aioice.ice, name):
            missing.append(f"aioice.ice.{name}")
    return missing
