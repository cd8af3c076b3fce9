import random

import pytest

from sfu.rtp import seq_diff, ts_diff
from sfu.sequencer import StreamRewriter

VIDEO = 90_000
AUDIO = 48_000
TS_MOD = 1 << 32


def rw(rewriter: StreamRewriter, seq: int, ts: int, now_ms: int) -> tuple[int, int]:
    out = rewriter.rewrite(seq, ts, now_ms)
    assert out is not None, f"packet {seq} unexpectedly dropped"
    return out


def test_first_packet_uses_initial_values_then_offsets() -> None:
    r = StreamRewriter(VIDEO, initial_sequence_number=1000, initial_timestamp=5000)
    assert r.last_sequence_number is None
    assert r.translate_timestamp(0) is None
    out = [rw(r, 40_000 + i, 123_456 + 3000 * i, 33 * i) for i in range(10)]
    assert out == [(1000 + i, 5000 + 3000 * i) for i in range(10)]
    assert r.last_sequence_number == 1009
    assert r.last_timestamp == 5000 + 27_000


def test_out_of_order_and_retransmitted_packets_map_through_same_offsets() -> None:
    r = StreamRewriter(VIDEO, 1000, 0)
    assert rw(r, 10, 90_000, 0) == (1000, 0)
    assert rw(r, 12, 93_000, 66) == (1002, 3000)
    assert rw(r, 11, 90_000, 70) == (1001, 0)  # late packet of the first frame
    assert rw(r, 11, 90_000, 80) == (1001, 0)  # duplicate / retransmission
    assert r.last_sequence_number == 1002  # highest, not latest
    assert r.last_timestamp == 3000


def test_packets_older_than_the_first_forwarded_are_dropped() -> None:
    r = StreamRewriter(VIDEO, 1000, 0)
    assert rw(r, 500, 9000, 0) == (1000, 0)  # keyframe start: first forwarded
    assert r.rewrite(499, 6000, 1) is None  # tail of a frame that was never forwarded
    assert r.rewrite(400, 3000, 2) is None
    assert rw(r, 501, 9000, 3) == (1001, 0)
    assert r.last_timestamp == 0  # the dropped packet did not move the timestamp


def test_source_switch_keeps_seq_and_ts_continuous() -> None:
    r = StreamRewriter(VIDEO, 2000, 100_000)
    for i in range(5):  # source A: 30 fps, last packet at t=132
        rw(r, 300 + i, 7_000_000 + 3000 * i, 33 * i)
    assert r.last_sequence_number == 2004
    assert r.last_timestamp == 112_000
    r.switch_source()
    # Source B (a different publisher): unrelated seq/ts, keyframe arrives 200 ms later.
    first = rw(r, 61_000, 42, 332)
    assert first == (2005, 112_000 + 200 * 90)
    # B's later packets follow through B's offsets.
    assert rw(r, 61_001, 42, 340) == (2006, 130_000)
    assert rw(r, 61_002, 42 + 3000, 365) == (2007, 133_000)


def test_switch_with_no_elapsed_time_still_advances_timestamp() -> None:
    r = StreamRewriter(AUDIO, 0, 0)
    rw(r, 1, 960, 0)
    r.switch_source()
    assert rw(r, 50_000, 10, 0) == (1, 1)


def test_switch_elapsed_is_measured_from_highest_timestamp_not_latest_packet() -> None:
    r = StreamRewriter(VIDEO, 0, 0)
    rw(r, 1, 0, 0)
    rw(r, 2, 3000, 33)
    rw(r, 1, 0, 100)  # retransmission at t=100 of an older frame
    r.switch_source()
    assert rw(r, 9, 555, 133) == (2, 3000 + (133 - 33) * 90)


def test_audio_clock_rate_on_switch() -> None:
    r = StreamRewriter(AUDIO, 7, 0)
    rw(r, 100, 480_000, 1_000)
    r.switch_source()
    assert rw(r, 5, 0, 2_000) == (8, 48_000)


def test_repeated_switch_without_packets_is_one_switch() -> None:
    r = StreamRewriter(VIDEO, 10, 10)
    rw(r, 1, 1, 0)
    r.switch_source()
    r.switch_source()
    assert rw(r, 77, 77, 10) == (11, 10 + 900)


def test_switch_before_any_packet_uses_initial_values() -> None:
    r = StreamRewriter(VIDEO, 10, 10)
    r.switch_source()
    assert rw(r, 77, 77, 10) == (10, 10)


def test_outgoing_sequence_wraps_at_65536() -> None:
    r = StreamRewriter(VIDEO, 65_534, 0)
    out = [rw(r, 100 + i, 3000 * i, 33 * i)[0] for i in range(4)]
    assert out == [65_534, 65_535, 0, 1]
    assert r.last_sequence_number == 1
    # Late packet from before the wrap still maps through the same offset.
    assert rw(r, 101, 3000, 200) == (65_535, 3000)


def test_source_sequence_wraps_at_65536() -> None:
    r = StreamRewriter(VIDEO, 100, 0)
    out = [rw(r, (65_534 + i) & 0xFFFF, 3000 * i, 33 * i)[0] for i in range(4)]
    assert out == [100, 101, 102, 103]
    assert r.source_sequence(101) == 65_535
    assert r.source_sequence(102) == 0


def test_timestamp_wraps_at_2_32() -> None:
    r = StreamRewriter(VIDEO, 0, TS_MOD - 3000)
    out = [rw(r, i, 1_000_000 + 3000 * i, 33 * i)[1] for i in range(4)]
    assert out == [TS_MOD - 3000, 0, 3000, 6000]
    assert r.last_timestamp == 6000  # highest across the wrap, not max()


def test_source_timestamp_wraps_at_2_32() -> None:
    r = StreamRewriter(VIDEO, 0, 500)
    out = [rw(r, i, (TS_MOD - 3000 + 3000 * i) % TS_MOD, 33 * i)[1] for i in range(3)]
    assert out == [500, 3500, 6500]


def test_out_of_order_across_seq_wrap_tracks_highest() -> None:
    r = StreamRewriter(VIDEO, 65_533, 0)
    rw(r, 0, 0, 0)  # -> 65533
    rw(r, 3, 3000, 10)  # -> 0 (after the wrap)
    rw(r, 1, 0, 11)  # -> 65534, late
    rw(r, 2, 3000, 12)  # -> 65535, late
    assert r.last_sequence_number == 0
    r.switch_source()
    assert rw(r, 9000, 0, 40)[0] == 1


def test_switch_near_both_wraps() -> None:
    r = StreamRewriter(VIDEO, 65_535, TS_MOD - 1)
    assert rw(r, 10, 10, 1_000) == (65_535, TS_MOD - 1)
    r.switch_source()
    # Both counters wrap on the switch itself: seq -> 0, ts -> (2^32 - 1 + 90) mod 2^32.
    assert rw(r, 30_000, 2_000_000_000, 1_001) == (0, 89)
    assert rw(r, 30_001, 2_000_003_000, 1_034) == (1, 3089)
    # A late packet of source B from before its first packet is still refused after the wrap.
    assert r.rewrite(29_999, 1_999_997_000, 1_040) is None
    r.switch_source()
    assert rw(r, 5, 5, 1_134) == (2, 3089 + 100 * 90)


def test_switch_to_source_whose_counters_are_about_to_wrap() -> None:
    r = StreamRewriter(VIDEO, 500, 1_000)
    rw(r, 7, 7, 0)
    r.switch_source()
    out = [rw(r, (65_535 + i) & 0xFFFF, (TS_MOD - 1500 + 3000 * i) % TS_MOD, 100 + 33 * i)
           for i in range(3)]
    first_ts = 1_000 + 100 * 90
    assert out == [(501, first_ts), (502, first_ts + 3000), (503, first_ts + 6000)]
    assert r.source_sequence(502) == 0
    assert r.translate_timestamp(1500) == first_ts + 3000


def test_long_running_source_beyond_half_the_sequence_space() -> None:
    # More than 2^15 packets after the source's first one: late packets must still map.
    r = StreamRewriter(AUDIO, 0, 0)
    for i in range(70_000):
        rw(r, i & 0xFFFF, 960 * i, 20 * i)
    last = 69_999
    assert rw(r, (last - 5) & 0xFFFF, 960 * (last - 5), 20 * last) == (
        (last - 5) & 0xFFFF,
        (960 * (last - 5)) % TS_MOD,
    )
    assert r.source_sequence((last - 5) & 0xFFFF) == (last - 5) & 0xFFFF


def test_source_sequence_for_nacks() -> None:
    r = StreamRewriter(VIDEO, 1000, 0)
    for i in range(5):
        rw(r, 20_000 + i, 3000 * i, 33 * i)
    assert r.source_sequence(1000) == 20_000
    assert r.source_sequence(1004) == 20_004
    assert r.source_sequence(1005) == -1  # never sent
    assert r.source_sequence(999) == -1  # before the first packet
    r.switch_source()
    assert r.source_sequence(1002) == -1  # current source not started yet
    rw(r, 7, 0, 500)  # -> 1005
    rw(r, 8, 0, 510)  # -> 1006
    assert r.source_sequence(1005) == 7
    assert r.source_sequence(1006) == 8
    assert r.source_sequence(1004) == -1  # belongs to the previous source


def test_translate_timestamp() -> None:
    r = StreamRewriter(VIDEO, 0, 10)
    assert r.translate_timestamp(100) is None
    rw(r, 1, 100, 0)
    assert r.translate_timestamp(100) == 10
    assert r.translate_timestamp(3100) == 3010
    assert r.translate_timestamp(99) == 9
    assert r.translate_timestamp(0) == TS_MOD - 90
    r.switch_source()
    assert r.translate_timestamp(100) is None


def test_rejects_bad_clock_rate() -> None:
    with pytest.raises(ValueError):
        StreamRewriter(0, 0, 0)


@pytest.mark.parametrize("seed", range(5))
def test_random_switches_give_a_continuous_stream(seed: int) -> None:
    rng = random.Random(seed)
    r = StreamRewriter(VIDEO, rng.randrange(65_536), rng.randrange(TS_MOD))
    now = 0
    prev: tuple[int, int] | None = None
    for _ in range(40):
        seq, ts = rng.randrange(65_536), rng.randrange(TS_MOD)
        for _ in range(rng.randrange(1, 300)):
            now += rng.randrange(0, 40)
            out = rw(r, seq, ts, now)
            if prev is not None:
                assert seq_diff(out[0], prev[0]) == 1
                assert ts_diff(out[1], prev[1]) >= 0
            prev = out
            seq = (seq + 1) & 0xFFFF
            if rng.random() < 0.3:
                ts = (ts + 3000) % TS_MOD
        r.switch_source()
        now += rng.randrange(0, 2000)
        before = prev
        assert before is not None
        seq, ts = rng.randrange(65_536), rng.randrange(TS_MOD)
        out = rw(r, seq, ts, now)
        assert seq_diff(out[0], before[0]) == 1
        assert ts_diff(out[1], before[1]) >= 1  # strictly later across a switch
        prev = out
        r.switch_source()
