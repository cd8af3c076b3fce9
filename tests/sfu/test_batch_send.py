"""The batch sender on loopback sockets: native and reference put the same bytes on the wire."""

from __future__ import annotations

import errno
import random
import select
import socket
import struct
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack

import pylibsrtp
import pytest

from sfu import _pylibsrtp_compat, batch_send
from sfu.batch_send import (
    BatchSender,
    NativeBatchSender,
    PreparedTargets,
    ReferenceBatchSender,
    open_batch_sender,
)

AES_CM = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
AES_GCM = pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM
# Master key + salt (RFC 3711 §8.2 for AES-CM, RFC 7714 §12 for GCM) and the trailer each adds:
# the 80-bit HMAC-SHA1 tag (RFC 3711 §4.2) or GCM's 16-byte tag (RFC 7714 §7).
KEY_BYTES = {AES_CM: 16 + 14, AES_GCM: 16 + 12}
TAG_BYTES = {AES_CM: 10, AES_GCM: 16}
# pylibsrtp's Session unprotects datagrams of at most 1500 bytes (its buffer).
UNPROTECT_MAX_BYTES = 1500
RECEIVE_TIMEOUT = 2.0
RECEIVE_BUFFER = 1 << 20
SSRC = 0x1234ABCD


def policy(key: bytes, profile: int, ssrc_type: int, allow_repeat_tx: bool) -> pylibsrtp.Policy:
    made = pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=profile)
    made.allow_repeat_tx = allow_repeat_tx
    return made


def tx_session(key: bytes, profile: int = AES_CM,
               allow_repeat_tx: bool = True) -> pylibsrtp.Session:
    """A sending session as aiortc makes one (aiortc/rtcdtlstransport.py: allow_repeat_tx)."""
    return pylibsrtp.Session(policy(key, profile, pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                                    allow_repeat_tx))


def rx_session(key: bytes, profile: int = AES_CM) -> pylibsrtp.Session:
    return pylibsrtp.Session(policy(key, profile, pylibsrtp.Policy.SSRC_ANY_INBOUND, False))


def rtp_packet(seq: int, size: int, rng: random.Random) -> bytes:
    """An RTP packet (RFC 3550 §5.1) of ``size`` bytes: V=2, PT 96, no CSRC, a random payload."""
    header = struct.pack("!BBHII", 0x80, 96, seq & 0xFFFF, seq * 3000 & 0xFFFFFFFF, SSRC)
    return header + rng.randbytes(size - len(header))


def udp_socket(stack: ExitStack) -> socket.socket:
    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.bind(("127.0.0.1", 0))
    return sock


def receive(sock: socket.socket, count: int) -> list[tuple[bytes, tuple[str, int]]]:
    """Exactly ``count`` datagrams, then none waiting."""
    got: list[tuple[bytes, tuple[str, int]]] = []
    sock.settimeout(RECEIVE_TIMEOUT)
    while len(got) < count:
        try:
            got.append(sock.recvfrom(2048))
        except TimeoutError:
            break
    sock.settimeout(0)
    extra = 0
    while select.select([sock], [], [], 0)[0]:
        sock.recv(2048)
        extra += 1
    assert (len(got), extra) == (count, 0), f"{sock.getsockname()} got {len(got)} + {extra}"
    return got


def nothing_waiting(sock: socket.socket) -> bool:
    return not select.select([sock], [], [], 0.1)[0]


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as opened:
        yield opened


@pytest.fixture
def shared(stack: ExitStack) -> socket.socket:
    """The node's one UDP socket, non-blocking as asyncio keeps it."""
    sock = udp_socket(stack)
    sock.setblocking(False)
    return sock


def senders(stack: ExitStack, shared: socket.socket) -> tuple[NativeBatchSender,
                                                               ReferenceBatchSender]:
    assert batch_send.native_available(), batch_send.native_unavailable_reason()
    native, reference = NativeBatchSender(shared.fileno()), ReferenceBatchSender(shared.fileno())
    stack.callback(native.close)
    stack.callback(reference.close)
    return native, reference


def both_prepared(native: BatchSender, reference: BatchSender, keys: Sequence[bytes],
                  addresses: Sequence[tuple[str, int]], profile: int = AES_CM,
                  ) -> tuple[PreparedTargets, PreparedTargets]:
    """The same targets twice, on parallel sessions made from the same keys."""
    return (
        native.prepare([(tx_session(k, profile), a) for k, a in zip(keys, addresses, strict=True)]),
        reference.prepare([(tx_session(k, profile), a) for k, a in zip(keys, addresses,
                                                                        strict=True)]),
    )


@pytest.mark.parametrize("profile", [AES_CM, AES_GCM], ids=["aes-cm-sha1-80", "aes-gcm-128"])
def test_native_and_reference_put_identical_datagrams_on_the_wire(
        stack: ExitStack, shared: socket.socket, profile: int) -> None:
    rng = random.Random(7)
    receivers = [udp_socket(stack) for _ in range(3)]
    keys = [rng.randbytes(KEY_BYTES[profile]) for _ in receivers]
    native, reference = senders(stack, shared)
    prepared_native, prepared_reference = both_prepared(
        native, reference, keys, [r.getsockname() for r in receivers], profile)
    decrypt = [rx_session(k, profile) for k in keys]
    # Over the 1356 bytes pylibsrtp's Session.protect takes, up to the full MTU.
    sizes = [12, 200, 1200, 60, 1400, 1500, 12, 1200]
    # Across the 16-bit sequence wrap: the rollover counter (RFC 3711 §3.3.1) moves on.
    for seq, size in enumerate(sizes, start=65_530):
        packet = rtp_packet(seq, size, rng)
        assert native.send(packet, prepared_native) == len(receivers)
        assert reference.send(bytearray(packet), prepared_reference) == len(receivers)
        for receiver, session in zip(receivers, decrypt, strict=True):
            (from_native, source_native), (from_reference, source_reference) = receive(receiver, 2)
            assert source_native == source_reference == shared.getsockname()
            assert from_native == from_reference
            assert len(from_native) == size + TAG_BYTES[profile]
            assert from_native[:12] == packet[:12]  # the header is authenticated, not encrypted
            assert size == 12 or from_native[12:size] != packet[12:]
            if len(from_native) <= UNPROTECT_MAX_BYTES:
                assert session.unprotect(from_native) == packet
    assert (native.sent, native.failed) == (reference.sent, reference.failed) == (24, 0)


@pytest.mark.parametrize("targets", [1, 50, 1100])
def test_every_target_gets_its_own_datagram(
        stack: ExitStack, shared: socket.socket, targets: int) -> None:
    """Over 1024 targets sendmmsg(2) goes in chunks; receivers are shared to spare fds."""
    rng = random.Random(targets)
    receivers = [udp_socket(stack) for _ in range(min(targets, 50))]
    keys = [rng.randbytes(KEY_BYTES[AES_CM]) for _ in range(targets)]
    addresses = [receivers[i % len(receivers)].getsockname() for i in range(targets)]
    native, reference = senders(stack, shared)
    prepared = both_prepared(native, reference, keys, addresses)
    decrypt = [rx_session(k) for k in keys]
    for seq in range(3):
        packet = rtp_packet(seq, 200, rng)
        for sender, targets_prepared in zip((native, reference), prepared, strict=True):
            assert sender.send(packet, targets_prepared) == targets
        for r, receiver in enumerate(receivers):
            mine = range(r, targets, len(receivers))  # in target order: one socket sends them all
            got = [data for data, _ in receive(receiver, 2 * len(mine))]
            assert got[: len(mine)] == got[len(mine):]
            for i, datagram in zip(mine, got, strict=False):
                assert decrypt[i].unprotect(datagram) == packet
    assert (native.sent, native.failed) == (reference.sent, reference.failed) == (3 * targets, 0)


@pytest.mark.parametrize(("refused", "error"), [
    (("255.255.255.255", 9), errno.EACCES),  # broadcast without SO_BROADCAST
    (("127.0.0.1", 0), errno.EINVAL),  # no port
], ids=["broadcast", "port-0"])
def test_a_refused_address_costs_only_its_own_target(
        stack: ExitStack, shared: socket.socket, refused: tuple[str, int], error: int) -> None:
    rng = random.Random(3)
    good = [udp_socket(stack) for _ in range(2)]
    addresses = [refused, good[0].getsockname(), refused, good[1].getsockname(), refused]
    keys = [rng.randbytes(KEY_BYTES[AES_CM]) for _ in addresses]
    native, reference = senders(stack, shared)
    prepared = both_prepared(native, reference, keys, addresses)
    packet = rtp_packet(1, 1200, rng)
    for sender, targets_prepared in zip((native, reference), prepared, strict=True):
        assert sender.send(packet, targets_prepared) == 2
        assert (sender.sent, sender.failed, sender.last_errno) == (2, 3, error)
    for receiver, i in zip(good, (1, 3), strict=True):
        from_native, from_reference = (data for data, _ in receive(receiver, 2))
        assert from_native == from_reference
        assert rx_session(keys[i]).unprotect(from_native) == packet


def test_a_refused_protect_costs_only_its_own_target(
        stack: ExitStack, shared: socket.socket) -> None:
    """libsrtp refuses to protect a sequence number twice unless allow_repeat_tx is set."""
    rng = random.Random(4)
    receivers = [udp_socket(stack) for _ in range(2)]
    keys = [rng.randbytes(KEY_BYTES[AES_CM]) for _ in receivers]
    native, reference = senders(stack, shared)
    packet = rtp_packet(9, 300, rng)
    for sender in (native, reference):
        prepared = sender.prepare([
            (tx_session(keys[0], allow_repeat_tx=False), receivers[0].getsockname()),
            (tx_session(keys[1]), receivers[1].getsockname()),
        ])
        assert sender.send(packet, prepared) == 2
        assert sender.send(packet, prepared) == 1  # the replay: only the second target
        assert (sender.sent, sender.failed) == (3, 1)
    first = [data for data, _ in receive(receivers[0], 2)]
    second = [data for data, _ in receive(receivers[1], 4)]
    assert first[0] == first[1] and len(set(second)) == 1


def test_an_oversized_packet_is_refused_and_counted(
        stack: ExitStack, shared: socket.socket) -> None:
    rng = random.Random(5)
    receivers = [udp_socket(stack) for _ in range(3)]
    keys = [rng.randbytes(KEY_BYTES[AES_CM]) for _ in receivers]
    native, reference = senders(stack, shared)
    prepared = both_prepared(native, reference, keys, [r.getsockname() for r in receivers])
    oversized, fits = rtp_packet(1, 1501, rng), rtp_packet(2, 1500, rng)
    for sender, targets_prepared in zip((native, reference), prepared, strict=True):
        assert sender.send(oversized, targets_prepared) == 0
        assert (sender.sent, sender.failed) == (0, 3)
    assert all(nothing_waiting(r) for r in receivers)
    for sender, targets_prepared in zip((native, reference), prepared, strict=True):
        assert sender.send(fits, targets_prepared) == 3
    for receiver in receivers:
        from_native, from_reference = (data for data, _ in receive(receiver, 2))
        assert from_native == from_reference
        assert from_native[:12] == fits[:12] and len(from_native) == len(fits) + TAG_BYTES[AES_CM]


def test_closing_a_sender_leaves_the_shared_socket_open(
        stack: ExitStack, shared: socket.socket) -> None:
    receiver = udp_socket(stack)
    native, reference = senders(stack, shared)
    native.close()
    reference.close()
    shared.sendto(b"still open", receiver.getsockname())
    assert receive(receiver, 1)[0] == (b"still open", shared.getsockname())
    with pytest.raises(ValueError, match="closed"):
        native.send(b"", PreparedTargets((), (), None))


@pytest.mark.parametrize("host", ["::1", "localhost", "127.0.0"])
def test_prepare_takes_only_ipv4_addresses(
        stack: ExitStack, shared: socket.socket, host: str) -> None:
    for sender in senders(stack, shared):
        with pytest.raises(ValueError, match="IPv4"):
            sender.prepare([(tx_session(bytes(30)), (host, 5000))])


def test_no_targets_sends_nothing(stack: ExitStack, shared: socket.socket) -> None:
    for sender in senders(stack, shared):
        assert sender.send(rtp_packet(1, 100, random.Random(1)), sender.prepare([])) == 0
        assert (sender.sent, sender.failed) == (0, 0)


def test_the_native_sender_is_chosen_when_built(stack: ExitStack, shared: socket.socket) -> None:
    sender, line = open_batch_sender(shared.fileno())
    stack.callback(sender.close)
    assert isinstance(sender, NativeBatchSender), line
    assert "native" in line


def test_the_reference_sender_is_chosen_without_the_extension(
        stack: ExitStack, shared: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, batch_send.NATIVE_MODULE, None)  # import raises ImportError
    assert not batch_send.native_available()
    sender, line = open_batch_sender(shared.fileno())
    stack.callback(sender.close)
    assert isinstance(sender, ReferenceBatchSender)
    assert "sfu._native is not built" in line and "make setup" in line


def test_pylibsrtp_internals_are_the_ones_used() -> None:
    assert _pylibsrtp_compat.check_internals() == []
