"""BatchedFanout: which targets go in the batch, what each subscriber is counted as sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sfu._aiortc_compat import SrtpSink
from sfu.batch_fanout import BatchedFanout
from sfu.batch_send import PreparedTargets, Target
from sfu.ice_mux import MediaSocket


class RecordingSender:
    """A BatchSender that records what it was asked to send; ``refuse`` targets fail."""

    def __init__(self) -> None:
        self.batches: list[tuple[bytes, tuple[tuple[str, int], ...]]] = []
        self.refuse: set[tuple[str, int]] = set()
        self.sent = self.failed = self.last_errno = 0

    def prepare(self, targets: Sequence[Target]) -> PreparedTargets:
        return PreparedTargets(tuple(s for s, _ in targets), tuple(a for _, a in targets))

    def send(self, packet: bytes | bytearray, prepared: PreparedTargets) -> int:
        self.batches.append((bytes(packet), prepared.addresses))
        return sum(1 for address in prepared.addresses if address not in self.refuse)

    def close(self) -> None:
        pass


def ready_sink(media_socket: MediaSocket, port: int) -> SrtpSink:
    sink = SrtpSink(dtls=object())  # type: ignore[arg-type]
    sink.session = object()  # type: ignore[assignment]
    sink.address = ("192.0.2.7", port)
    sink.media_socket = media_socket
    return sink


def test_sinks_on_the_socket_are_batched_and_others_called_each() -> None:
    media_socket, sender = MediaSocket(), RecordingSender()
    fanout = BatchedFanout(sender, media_socket)
    first, second = ready_sink(media_socket, 5001), ready_sink(media_socket, 5002)
    elsewhere = ready_sink(MediaSocket(), 5003)  # another socket: not in this batch
    called: list[bytes] = []

    def plain(packet: bytearray) -> bool:
        called.append(bytes(packet))
        return False  # refused: counted as a failure

    fanout.set((first.send, plain, second.send))
    assert fanout.send(bytearray(b"rtp-1")) == 1
    assert sender.batches == [(b"rtp-1", (("192.0.2.7", 5001), ("192.0.2.7", 5002)))]
    assert called == [b"rtp-1"]
    sender.refuse.add(("192.0.2.7", 5002))
    assert fanout.send(bytearray(b"rtp-2")) == 2
    fanout.set((elsewhere.send,))
    batches = len(sender.batches)
    # Sent as itself (it has no transport, so it refuses), and no batch for nobody.
    assert fanout.send(bytearray(b"rtp-3")) == 1
    assert len(sender.batches) == batches


def test_each_subscriber_is_counted_for_the_batches_it_was_in() -> None:
    media_socket, sender = MediaSocket(), RecordingSender()
    fanout = BatchedFanout(sender, media_socket)
    staying, leaving = ready_sink(media_socket, 5001), ready_sink(media_socket, 5002)
    fanout.set((staying.send,))
    for _ in range(3):
        fanout.send(bytearray(b"x"))
    fanout.set((staying.send, leaving.send))
    for _ in range(2):
        fanout.send(bytearray(b"y"))
    fanout.set((staying.send,))
    fanout.send(bytearray(b"z"))
    assert (staying.sent_packets, leaving.sent_packets) == (6, 2)
    assert fanout not in leaving.batched
    other = BatchedFanout(sender, media_socket)  # a second stream to the same subscriber
    other.set((staying.send,))
    other.send(bytearray(b"audio"))
    assert staying.sent_packets == 7


def test_nothing_to_send_to_costs_no_batch() -> None:
    sender: Any = RecordingSender()
    fanout = BatchedFanout(sender, MediaSocket())
    fanout.set(())
    assert fanout.send(bytearray(b"x")) == 0
    assert sender.batches == []
