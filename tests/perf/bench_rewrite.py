"""Micro-benchmark of the per-subscriber hot path (run on demand, not a test).

    python tests/perf/bench_rewrite.py

Prints µs per call for StreamRewriter.rewrite, RtpHeaderTemplate.build on a
1200-byte payload, and both together as a subscriber fan-out loop runs them.
Each figure is the best of several runs over a precomputed packet list, minus
the cost of the empty loop.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sfu.codecs import vp8_is_keyframe_start
from sfu.history import PacketHistory
from sfu.rtp import RtpHeaderTemplate, one_byte_extensions
from sfu.sequencer import StreamRewriter

PACKETS = 10_000  # per loop; wraps the 16-bit sequence space
LOOPS = 20
REPEAT = 5


def per_packet_us(body: str, env: dict[str, object]) -> float:
    stmt = f"for seq, ts, now in packets:\n    {body}"
    times = timeit.repeat(stmt, globals=env, number=LOOPS, repeat=REPEAT)
    return min(times) / (LOOPS * PACKETS) * 1e6


def main() -> None:
    payload = b"\x90\x80\x80\x01" + bytes(1196)
    # 30 fps video, ~7 packets a frame, starting near the seq and ts wraps.
    packets = [
        ((65_000 + i) & 0xFFFF, ((1 << 32) - 90_000 + 3000 * (i // 7)) & 0xFFFFFFFF, i * 5)
        for i in range(PACKETS)
    ]
    env: dict[str, object] = {
        "packets": packets,
        "p": payload,
        "rewrite": StreamRewriter(90_000, 1000, 5000).rewrite,
        "build": RtpHeaderTemplate(96, 0x12345678, one_byte_extensions([(1, b"0")])).build,
        "rewrite2": StreamRewriter(90_000, 1000, 5000).rewrite,
        "keyframe": vp8_is_keyframe_start,
        "put": PacketHistory().put,
    }
    empty = per_packet_us("pass", env)
    rows = [
        ("StreamRewriter.rewrite", "rewrite(seq, ts, now)"),
        ("RtpHeaderTemplate.build (1200 B payload)", "build(False, seq, ts, p)"),
        (
            "rewrite + build (per subscriber per packet)",
            "o = rewrite2(seq, ts, now)\n    if o is not None: build(False, o[0], o[1], p)",
        ),
        ("vp8_is_keyframe_start (while gated)", "keyframe(p)"),
        ("PacketHistory.put (per source packet)", "put(seq, ts, False, p, now)"),
    ]
    print(f"Python {sys.version.split()[0]}: µs per packet, best of {REPEAT}, loop cost removed")
    print(f"{'empty loop':<46} {empty:6.3f}")
    for name, body in rows:
        print(f"{name:<46} {per_packet_us(body, env) - empty:6.3f}")


if __name__ == "__main__":
    main()
