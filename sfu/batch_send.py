"""Send one RTP packet to many subscribers on one shared UDP socket.

The SFU forwards each packet to every subscriber of a stream. With one UDP socket per node,
that is N SRTP protections and N datagrams from the same fd: :class:`NativeBatchSender` does
them in C (``sfu/native/batch_send.c``) with one ``sendmmsg(2)`` per packet;
:class:`ReferenceBatchSender` does the same in Python, one ``sendto`` per target, and is what
runs when the extension is not built (:func:`open_batch_sender` says which, and why).

Both protect with the libsrtp inside pylibsrtp (see ``sfu/_pylibsrtp_compat.py``), so they put
byte-identical datagrams on the wire. A target is an SRTP session and the remote IPv4 address
of its subscriber; :meth:`BatchSender.prepare` turns a list of them into
:class:`PreparedTargets` once, when membership changes (or a session is re-keyed), not per
packet. The send path never raises for one target's trouble: a packet over
:data:`MAX_RTP_PACKET_BYTES`, a protect that libsrtp refuses or a datagram the kernel refuses
is counted in ``failed`` and the other targets still get theirs. One thread per sender.
"""

from __future__ import annotations

import errno
import importlib
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pylibsrtp

from sfu._pylibsrtp_compat import (
    SrtpProtector,
    check_internals,
    session_context_address,
    srtp_protect_address,
)

NATIVE_MODULE = "sfu._native"  # built by sfu/_native_build.py

# The largest RTP packet taken: one that fills a 1500-byte Ethernet MTU (as sfu/_aiortc_compat).
MAX_RTP_PACKET_BYTES = 1500

# sendto(2) errors that are the socket's, not one target's: the rest of the batch would fail
# alike (EAGAIN: the send buffer is full, so UDP drops the rest of this packet's copies).
SOCKET_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EBADF,
                           errno.ENOTSOCK})

Target = tuple[pylibsrtp.Session, tuple[str, int]]


@dataclass(frozen=True)
class PreparedTargets:
    """The targets of one fan-out, in order. Holding the sessions keeps each srtp_t alive
    while ``native`` (the C array of ``fw_target``, for :class:`NativeBatchSender`) points
    at it."""

    sessions: tuple[pylibsrtp.Session, ...]
    addresses: tuple[tuple[str, int], ...]
    native: Any = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.sessions)


class BatchSender(Protocol):
    @property
    def sent(self) -> int:
        """Datagrams the kernel accepted, since creation."""

    @property
    def failed(self) -> int:
        """Targets that got nothing (refused, unprotectable or unsendable), since creation."""

    @property
    def last_errno(self) -> int:
        """errno of the last datagram the kernel refused (0: none yet), for logs."""

    def prepare(self, targets: Sequence[Target]) -> PreparedTargets: ...

    def send(self, packet: bytes | bytearray, prepared: PreparedTargets) -> int:
        """Protect and send ``packet`` to every target; the number of datagrams accepted."""

    def close(self) -> None:
        """Free what the sender holds; the socket stays open (it is the caller's)."""


def _checked_targets(targets: Sequence[Target]) -> PreparedTargets:
    sessions, addresses = [], []
    for session, (host, port) in targets:
        try:
            socket.inet_pton(socket.AF_INET, host)
        except OSError:
            raise ValueError(f"not an IPv4 address: {host!r}") from None
        if not 0 <= port <= 0xFFFF:
            raise ValueError(f"not a UDP port: {port}")
        sessions.append(session)
        addresses.append((host, port))
    return PreparedTargets(tuple(sessions), tuple(addresses))


class NativeBatchSender:
    """libsrtp protect per target and one sendmmsg(2) per packet, in ``sfu._native``."""

    def __init__(self, sock_fd: int) -> None:
        self._native: Any = importlib.import_module(NATIVE_MODULE)
        ffi, lib = self._native.ffi, self._native.lib
        sender = lib.fw_sender_new(sock_fd, ffi.cast("fw_srtp_protect_fn", srtp_protect_address()))
        if sender == ffi.NULL:
            raise MemoryError("fw_sender_new")
        self._sender: Any = ffi.gc(sender, lib.fw_sender_free)
        self._fw_send = lib.fw_send
        self._from_buffer = ffi.from_buffer

    @property
    def sent(self) -> int:
        return int(self._sender.sent) if self._sender is not None else 0

    @property
    def failed(self) -> int:
        return int(self._sender.failed) if self._sender is not None else 0

    @property
    def last_errno(self) -> int:
        """errno of the last datagram the kernel refused (0: none yet), for logs."""
        return int(self._sender.last_errno) if self._sender is not None else 0

    def prepare(self, targets: Sequence[Target]) -> PreparedTargets:
        checked = _checked_targets(targets)
        ffi, lib = self._native.ffi, self._native.lib
        array = ffi.new("fw_target[]", len(checked))
        for index, (session, (host, port)) in enumerate(
                zip(checked.sessions, checked.addresses, strict=True)):
            context = ffi.cast("void *", session_context_address(session))
            if not lib.fw_target_set(ffi.addressof(array, index), context, host.encode(), port):
                raise ValueError(f"not an IPv4 address: {host!r}")
        return PreparedTargets(checked.sessions, checked.addresses, array)

    def send(self, packet: bytes | bytearray, prepared: PreparedTargets) -> int:
        if self._sender is None:
            raise ValueError("send on a closed NativeBatchSender")
        if prepared.native is None:
            raise ValueError("targets not prepared by a NativeBatchSender")
        return int(self._fw_send(self._sender, self._from_buffer(packet), len(packet),
                                 prepared.native, len(prepared)))

    def close(self) -> None:
        if self._sender is not None:
            self._native.ffi.release(self._sender)
            self._sender = None


class ReferenceBatchSender:
    """The same in Python: protect and ``sendto`` per target.

    It sends on a duplicate of ``sock_fd`` (the same socket, so the same local address), which
    it closes; the caller's fd stays open. It never changes the socket's blocking mode: that
    is shared with the caller's fd.
    """

    def __init__(self, sock_fd: int) -> None:
        self._socket: socket.socket | None = socket.fromfd(sock_fd, socket.AF_INET,
                                                           socket.SOCK_DGRAM)
        self._protector = SrtpProtector.create(MAX_RTP_PACKET_BYTES)
        self._sent = 0
        self._failed = 0
        self._last_errno = 0

    @property
    def sent(self) -> int:
        return self._sent

    @property
    def failed(self) -> int:
        return self._failed

    @property
    def last_errno(self) -> int:
        return self._last_errno

    def prepare(self, targets: Sequence[Target]) -> PreparedTargets:
        return _checked_targets(targets)

    def send(self, packet: bytes | bytearray, prepared: PreparedTargets) -> int:
        sock = self._socket
        if sock is None:
            raise ValueError("send on a closed ReferenceBatchSender")
        if len(packet) > MAX_RTP_PACKET_BYTES:
            self._failed += len(prepared)
            return 0
        accepted = 0
        protect = self._protector.protect
        for index, (session, address) in enumerate(
                zip(prepared.sessions, prepared.addresses, strict=True)):
            datagram = protect(session, packet)
            if datagram is None:
                self._failed += 1
                continue
            try:
                sock.sendto(datagram, socket.MSG_DONTWAIT, address)
            except OSError as error:
                self._last_errno = error.errno or 0
                if error.errno in SOCKET_ERRNOS:
                    self._failed += len(prepared) - index
                    break
                self._failed += 1
                continue
            accepted += 1
        self._sent += accepted
        return accepted

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def native_unavailable_reason() -> str | None:
    """Why the native sender cannot run here, or None when it can."""
    try:
        native = importlib.import_module(NATIVE_MODULE)
    except ImportError as error:
        return f"sfu._native is not built ({error}): run make setup"
    if native.lib.FW_MAX_RTP_PACKET_BYTES != MAX_RTP_PACKET_BYTES:
        return "sfu._native is stale (its MTU differs): run make setup"
    problems = check_internals()
    if problems:
        return "pylibsrtp's internals changed: " + ", ".join(problems)
    return None


def native_available() -> bool:
    return native_unavailable_reason() is None


def open_batch_sender(sock_fd: int) -> tuple[BatchSender, str]:
    """The native sender when it can run, else the reference; and a line for the log."""
    reason = native_unavailable_reason()
    if reason is None:
        return NativeBatchSender(sock_fd), "batch send: native (libsrtp + one sendmmsg per packet)"
    return ReferenceBatchSender(sock_fd), f"batch send: Python, one sendto per target ({reason})"
