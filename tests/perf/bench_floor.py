"""Floor benchmark: the least CPU one forwarded packet can cost on this machine (run on demand).

    .venv/bin/python tests/perf/bench_floor.py [--subscribers 10,40,160] [--seconds 5]
        [--rate 220]

A forwarded packet is one datagram to one subscriber, as in bench_fanout.py: one SRTP protect
of a 1,200-byte RTP packet and its share of one ``sendmmsg(2)`` to N subscribers, in
``sfu.batch_send.NativeBatchSender``, with nothing else of the SFU around it. This process
sends from one shared UDP socket, pinned to the first CPU; a drain process pinned to the second
receives the N loopback sockets so that their buffers do not overflow. Packets go at ``--rate``
per second like one stream (220: bench_fanout's VP8 + Opus clip; 0: flat out), each on N
sessions of the SRTP profile aiortc negotiates first, keyed at random.

One JSON line describes the set-up, then one per N and path (``native``, then ``reference``:
``ReferenceBatchSender``, one ``sendto`` per subscriber), then one of reference/native ratios:

- ``cpu_us_per_packet``: this process's CPU time (``time.process_time``, user + system) spent
  inside ``send()``, over the datagrams the kernel accepted. On loopback the kernel also
  delivers each datagram into the drain's socket within the sender's system call, so this
  includes receive-side work that a NIC would take off the sender's CPU.
- ``loop_cpu_us_per_packet``: the whole window's process CPU, pacing wake-ups included.
- ``drain_received_pct``: of the accepted datagrams, those the drain read (under 100: drops).

``floor_us_per_packet(subscribers, seconds)`` runs the native measurement alone and returns its
``cpu_us_per_packet``, for bench_fanout.py to print beside its own figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pylibsrtp  # noqa: E402
from aiortc.rtcdtlstransport import SRTP_PROFILES  # noqa: E402

from sfu.batch_send import (  # noqa: E402
    BatchSender,
    NativeBatchSender,
    ReferenceBatchSender,
    native_unavailable_reason,
)

PACKET_BYTES = 1200
RTP_HEADER = struct.Struct("!BBHII")  # RFC 3550 §5.1: V=2, PT, sequence, timestamp, SSRC
SSRC = 0x5EED1E55
CLIP_RATE = 220  # packets/s of bench_fanout.py's clip
WARMUP_SECONDS = 0.3
SOCKET_BUFFER = 4 * 1024 * 1024  # capped by net.core.{r,w}mem_max
DRAIN_LIFETIME = 600.0  # a drain outliving this exits on its own
PATHS = {"native": NativeBatchSender, "reference": ReferenceBatchSender}


# -- the drain process -------------------------------------------------------------------------


def drain_child(count: int, cpu: int) -> None:
    """Bind ``count`` loopback sockets, print their ports, read them until stdin closes, then
    print how many datagrams arrived."""
    os.sched_setaffinity(0, {cpu})
    threading.Timer(DRAIN_LIFETIME, os._exit, (1,)).start()
    selector = selectors.DefaultSelector()
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        sockets.append(sock)
    selector.register(sys.stdin, selectors.EVENT_READ)
    print(json.dumps([s.getsockname()[1] for s in sockets]), flush=True)
    buffer = bytearray(2048)
    received = 0
    while True:
        for key, _ in selector.select():
            if key.fileobj is sys.stdin:
                print(json.dumps({"received": received}), flush=True)
                os._exit(0)
            recv_into = key.fileobj.recv_into  # type: ignore[union-attr]
            with contextlib.suppress(BlockingIOError):
                while True:
                    recv_into(buffer)
                    received += 1


@contextlib.contextmanager
def drain(count: int, cpu: int) -> Iterator[tuple[list[int], subprocess.Popen[str]]]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--drain", str(count), "--cpu", str(cpu)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        yield json.loads(child.stdout.readline()), child
    finally:
        child.kill()
        child.wait()


def drained(child: subprocess.Popen[str]) -> int:
    """Close the drain's stdin after the last datagram had time to land; what it read."""
    time.sleep(0.2)
    assert child.stdin is not None and child.stdout is not None
    child.stdin.close()
    return int(json.loads(child.stdout.readline())["received"])


# -- the sender --------------------------------------------------------------------------------


@contextlib.contextmanager
def pinned(cpu: int) -> Iterator[None]:
    """This process on ``cpu`` only, then back where it was (a caller may be pinned itself)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def cpus() -> tuple[int, int]:
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        raise SystemExit("needs two CPUs: one for the sender, one for the drain")
    return available[0], available[1]


def tx_session(rng: random.Random) -> pylibsrtp.Session:
    """A sending session as aiortc makes one: its first profile, allow_repeat_tx."""
    profile = SRTP_PROFILES[0]
    policy = pylibsrtp.Policy(key=rng.randbytes(profile.key_length + profile.salt_length),
                              ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                              srtp_profile=profile.libsrtp_profile)
    policy.allow_repeat_tx = True
    return pylibsrtp.Session(policy)


def measure(path: str, subscribers: int, seconds: float, rate: float) -> dict[str, Any]:
    sender_cpu, drain_cpu = cpus()
    rng = random.Random(subscribers)
    payload = rng.randbytes(PACKET_BYTES - RTP_HEADER.size)
    with (pinned(sender_cpu), drain(subscribers, drain_cpu) as (ports, child),
          socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as shared):
        shared.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        shared.bind(("127.0.0.1", 0))
        shared.setblocking(False)
        sender: BatchSender = PATHS[path](shared.fileno())
        try:
            prepared = sender.prepare([(tx_session(rng), ("127.0.0.1", p)) for p in ports])
            window = run(sender, prepared, payload, WARMUP_SECONDS, rate, 0)
            sent_before, failed_before = sender.sent, sender.failed
            window = run(sender, prepared, payload, seconds, rate, window["packets"])
            datagrams, failed = sender.sent - sent_before, sender.failed - failed_before
        finally:
            sender.close()
        received = drained(child)
    received -= sent_before  # the warm-up's
    return {
        "path": path,
        "subscribers": subscribers,
        "packets": window["packets"],
        "datagrams": datagrams,
        "failed": failed,
        "cpu_us_per_packet": round(window["in_send"] / datagrams * 1e6, 3) if datagrams else None,
        "loop_cpu_us_per_packet": round(window["cpu"] / datagrams * 1e6, 3) if datagrams else None,
        "drain_received_pct": round(100 * received / datagrams, 2) if datagrams else None,
        "wall_s": round(window["wall"], 2),
    }


def run(sender: BatchSender, prepared: Any, payload: bytes, seconds: float, rate: float,
        first_seq: int) -> dict[str, Any]:
    """Send at ``rate`` packets/s (0: flat out) for ``seconds``; CPU in send() and overall."""
    process_time, monotonic, sleep = time.process_time, time.monotonic, time.sleep
    send, pack = sender.send, RTP_HEADER.pack
    period = 1 / rate if rate else 0.0
    packets, in_send = 0, 0.0
    cpu_start, start = process_time(), monotonic()
    next_at, end = start, start + seconds
    while (now := monotonic()) < end:
        if next_at > now:
            sleep(next_at - now)
        seq = first_seq + packets
        packet = pack(0x80, 96, seq & 0xFFFF, seq * 409 & 0xFFFFFFFF, SSRC) + payload
        before = process_time()
        send(packet, prepared)
        in_send += process_time() - before
        packets += 1
        next_at += period
    return {"packets": packets, "in_send": in_send, "cpu": process_time() - cpu_start,
            "wall": monotonic() - start}


def floor_us_per_packet(subscribers: int, seconds: float, rate: float = CLIP_RATE) -> float:
    """CPU µs per forwarded packet of the native loop alone: the SFU's floor at N subscribers."""
    reason = native_unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    figure = measure("native", subscribers, seconds, rate)["cpu_us_per_packet"]
    if figure is None:
        raise RuntimeError("the native sender sent nothing")
    return float(figure)


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--subscribers", default="10,40,160", help="subscriber counts")
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement window per N")
    parser.add_argument("--rate", type=float, default=CLIP_RATE,
                        help="source packets per second (0: flat out)")
    parser.add_argument("--drain", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain is not None:
        drain_child(args.drain, args.cpu)
        return

    reason = native_unavailable_reason()
    if reason is not None:
        raise SystemExit(reason)
    sender_cpu, drain_cpu = cpus()
    emit({"bench": "floor", "packet_bytes": PACKET_BYTES, "rate_pps": args.rate or "flat out",
          "srtp_profile": SRTP_PROFILES[0].openssl_profile.decode(), "seconds": args.seconds,
          "sender_cpu": sender_cpu, "drain_cpu": drain_cpu, "python": sys.version.split()[0]})
    for subscribers in (int(n) for n in args.subscribers.split(",")):
        lines = {path: measure(path, subscribers, args.seconds, args.rate) for path in PATHS}
        for line in lines.values():
            emit(line)
        native, reference = lines["native"], lines["reference"]
        if native["cpu_us_per_packet"] and reference["cpu_us_per_packet"]:
            emit({"ratio": "reference/native", "subscribers": subscribers,
                  "cpu_us_per_packet": round(reference["cpu_us_per_packet"]
                                             / native["cpu_us_per_packet"], 2)})


if __name__ == "__main__":
    main()
