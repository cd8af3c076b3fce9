"""The production :class:`sfu.forwarding.Fanout`: one batch per packet for the kernel.

Every subscriber of a node is on the node's one UDP socket (:mod:`sfu.ice_mux`), so a
stream's packet for all of them is protected and handed to the kernel in one call
(:mod:`sfu.batch_send`: libsrtp and one ``sendmmsg(2)`` in C, or the Python reference). The
list of targets is prepared when membership changes, never per packet. A target that is not
a subscriber's :class:`~sfu._aiortc_compat.SrtpSink` on that socket (a test's wrapper, a
connection on another socket) is called as :class:`~sfu.forwarding.SendEach` would.
"""

from __future__ import annotations

import functools

from sfu._aiortc_compat import SrtpSink
from sfu.batch_send import BatchSender, PreparedTargets, Target
from sfu.forwarding import SendEach, SendPacket
from sfu.ice_mux import MediaSocket


class BatchedFanout:
    """Sends an outgoing stream's packets to its subscribers' sinks in one batch each."""

    __slots__ = ("_each", "_joined", "_prepared", "_sender", "_sinks", "_socket", "packets")

    def __init__(self, sender: BatchSender, media_socket: MediaSocket) -> None:
        self._sender = sender
        self._socket = media_socket
        self._prepared: PreparedTargets = sender.prepare(())
        self._sinks: tuple[SrtpSink, ...] = ()
        self._each: SendEach | None = None
        # packets when each sink joined: what it was sent is the difference (see sent_to).
        self._joined: dict[SrtpSink, int] = {}
        self.packets = 0  # batches sent

    def sent_to(self, sink: SrtpSink) -> int:
        joined = self._joined.get(sink)
        return 0 if joined is None else self.packets - joined

    def set(self, targets: tuple[SendPacket, ...]) -> None:
        sinks: list[SrtpSink] = []
        prepared: list[Target] = []
        others: list[SendPacket] = []
        for send in targets:
            sink = getattr(send, "__self__", None)
            if (isinstance(sink, SrtpSink) and sink.media_socket is self._socket
                    and sink.session is not None and sink.address is not None):
                sinks.append(sink)
                prepared.append((sink.session, sink.address))
            else:
                others.append(send)
        kept = set(sinks)
        for sink in self._sinks:
            if sink not in kept:
                sink.sent += self.sent_to(sink)
                del self._joined[sink]
                sink.batched.pop(self, None)
        for sink in sinks:
            if sink not in self._joined:
                self._joined[sink] = self.packets
                sink.batched[self] = functools.partial(self.sent_to, sink)
        self._sinks = tuple(sinks)
        self._prepared = self._sender.prepare(prepared)
        if others:
            if self._each is None:
                self._each = SendEach()
            self._each.set(tuple(others))
        else:
            self._each = None

    def send(self, packet: bytearray) -> int:
        failed = 0 if self._each is None else self._each.send(packet)
        count = len(self._sinks)
        if count:
            self.packets += 1
            failed += count - self._sender.send(packet, self._prepared)
        return failed
