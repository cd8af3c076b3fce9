"""The recording clock: sender-report alignment, arrival fallback, wrap, switches, restarts."""

from __future__ import annotations

import itertools
import random

import pytest

from recorder.timeline import (
    DISCONTINUITY_MS,
    MIN_STEP_MS,
    NTP_FRACTION_PER_SECOND,
    SourceClock,
    Timeline,
    ntp_to_ms,
)

VIDEO = SourceClock("alice", "video", 90000)
AUDIO = SourceClock("alice", "audio", 48000)
NTP_1900_TO_2026_S = 3_976_300_800  # any wallclock will do; a realistic one has a big seconds part


def ntp_at(capture_ms: float) -> int:
    """The publisher's NTP clock at its capture time ``capture_ms``."""
    return int((NTP_1900_TO_2026_S + capture_ms / 1000) * NTP_FRACTION_PER_SECOND)


class Publisher:
    """Audio every 20 ms and video every 33.3 ms, captured on one clock, each with a random
    RTP origin, arriving with random network delay."""

    def __init__(self, seed: int, source: str = "alice", origin_ms: float = 0.0) -> None:
        self.rng = random.Random(seed)
        self.video = SourceClock(source, "video", 90000)
        self.audio = SourceClock(source, "audio", 48000)
        self.origin = {s: self.rng.randrange(1 << 32) for s in (self.video, self.audio)}
        self.origin_ms = origin_ms  # our clock's reading at capture time 0

    def rtp(self, source: SourceClock, capture_ms: float) -> int:
        return (self.origin[source] + round(capture_ms * source.clock_rate / 1000)) & 0xFFFFFFFF

    def events(self, duration_ms: float, sr_every_ms: float | None = 1000.0,
               ) -> list[tuple[float, str, SourceClock, float]]:
        """(arrival ms, "frame" | "sr", source, capture ms), in arrival order."""
        events = []
        for source, step in ((self.video, 1000 / 30), (self.audio, 20.0)):
            capture, arrival = 0.0, 0.0
            while capture < duration_ms:
                # Random delay, but frames of one source come out of the reorder buffer in order.
                arrival = max(arrival, self.origin_ms + capture + 20 + self.rng.uniform(0, 40))
                events.append((arrival, "frame", source, capture))
                capture += step
            if sr_every_ms is not None:
                capture = sr_every_ms * self.rng.random()
                while capture < duration_ms:
                    events.append((self.origin_ms + capture + 25, "sr", source, capture))
                    capture += sr_every_ms
        events.sort(key=lambda e: e[0])
        return events

    def play(self, timeline: Timeline, events: list[tuple[float, str, SourceClock, float]],
             ) -> dict[SourceClock, list[tuple[float, float]]]:
        """Feed the timeline; per source, (capture ms, pts)."""
        placed: dict[SourceClock, list[tuple[float, float]]] = {self.video: [], self.audio: []}
        for arrival, what, source, capture in events:
            now = int(arrival)
            if what == "sr":
                timeline.on_sender_report(source, ntp_at(capture), self.rtp(source, capture), now)
            else:
                pts = timeline.place(source, self.rtp(source, capture), now)
                placed[source].append((capture, pts))
        return placed


def skew_ms(placed: dict[SourceClock, list[tuple[float, float]]], video: SourceClock,
            audio: SourceClock, after_capture_ms: float) -> float:
    """Largest |(pts - capture) of video - (pts - capture) of audio| after a moment."""
    v = [pts - capture for capture, pts in placed[video] if capture >= after_capture_ms]
    a = [pts - capture for capture, pts in placed[audio] if capture >= after_capture_ms]
    assert v and a
    return max(abs(x - y) for x in v for y in a[:: max(1, len(a) // 50)])


@pytest.mark.parametrize("seed", range(5))
def test_audio_and_video_align_through_sender_reports(seed: int) -> None:
    publisher = Publisher(seed)
    placed = publisher.play(Timeline(), publisher.events(8000))
    # Once both have had an SR (within the first second), their offsets agree.
    assert skew_ms(placed, publisher.video, publisher.audio, 1100) < 5
    for source in placed:
        pts = [p for _, p in placed[source]]
        assert all(b > a for a, b in itertools.pairwise(pts))


def test_without_sender_reports_arrival_jitter_shows_but_stays_bounded() -> None:
    publisher = Publisher(11)
    placed = publisher.play(Timeline(), publisher.events(4000, sr_every_ms=None))
    # Each source is anchored on its first frame's arrival: the skew is the difference of
    # two delays (each 20-60 ms), never more, and never grows.
    assert skew_ms(placed, publisher.video, publisher.audio, 0) <= 41
    video = placed[publisher.video]
    # Between frames, pts follow the RTP timestamps exactly (not the jittery arrivals).
    assert video[10][1] - video[0][1] == pytest.approx(10 * 1000 / 30, abs=0.01)


def test_first_frame_is_zero_and_later_ones_follow_rtp() -> None:
    timeline = Timeline()
    assert timeline.place(VIDEO, 1000, 5000) == 0.0
    assert timeline.place(VIDEO, 1000 + 9000, 5090) == pytest.approx(100.0)
    assert timeline.place(AUDIO, 777, 5120) == pytest.approx(120.0)  # a new source: arrival
    assert timeline.place(AUDIO, 777 + 960, 5150) == pytest.approx(140.0)


def test_timestamp_wrap_keeps_time_going_forward() -> None:
    timeline = Timeline()
    start = (1 << 32) - 3 * 3000
    pts = [timeline.place(VIDEO, (start + i * 3000) & 0xFFFFFFFF, 1000 + i * 33) for i in range(10)]
    assert pts == pytest.approx([i * 1000 / 30 for i in range(10)])
    # The same across a wrap with an SR taken before it and frames after.
    timeline = Timeline()
    timeline.on_sender_report(VIDEO, ntp_at(0), start, 1000)
    after = [
        timeline.place(VIDEO, (start + i * 3000) & 0xFFFFFFFF, 1000 + i * 33) for i in range(10)
    ]
    assert after == pytest.approx([i * 1000 / 30 for i in range(10)], abs=1e-3)


def test_program_switch_continues_with_real_elapsed_time() -> None:
    timeline = Timeline()
    alice = Publisher(1, "alice")
    placed_a = alice.play(timeline, alice.events(3000))
    last_a = max(p for ps in placed_a.values() for _, p in ps)
    # Bob's publisher clock and RTP origins have nothing in common with Alice's; he comes on
    # 500 ms after Alice's last frames.
    bob = Publisher(2, "bob", origin_ms=3500)
    placed_b = bob.play(timeline, bob.events(3000))
    first_b = min(p for ps in placed_b.values() for _, p in ps)
    assert last_a < first_b
    assert first_b == pytest.approx(3500 + 20, abs=45)  # its arrival on the recording clock
    assert skew_ms(placed_b, bob.video, bob.audio, 1100) < 5


def test_publisher_restart_behind_the_same_source_is_reanchored() -> None:
    timeline = Timeline()
    for i in range(30):
        timeline.on_sender_report(VIDEO, ntp_at(i * 33), 1000 + i * 3000, 100 + i * 33)
        timeline.place(VIDEO, 1000 + i * 3000, 100 + i * 33)
    # The publisher restarts: new random RTP origin, NTP clock restarted near 0.
    restart_at = 100 + 30 * 33 + 400
    timeline.on_sender_report(VIDEO, 5 * NTP_FRACTION_PER_SECOND, 3_000_000_000, restart_at)
    pts = timeline.place(VIDEO, 3_000_000_000, restart_at)
    assert timeline.reanchored == 1
    assert pts == pytest.approx(restart_at - 100)
    nxt = timeline.place(VIDEO, 3_000_000_000 + 3000, restart_at + 33)
    assert nxt == pytest.approx(pts + 1000 / 30)
    # A later SR of the new stream is taken up again without a jump.
    new_ts = 3_000_000_000 + 6000
    timeline.on_sender_report(VIDEO, 6 * NTP_FRACTION_PER_SECOND, new_ts, restart_at + 60)
    assert timeline.place(VIDEO, new_ts, restart_at + 66) == pytest.approx(pts + 2000 / 30)
    assert DISCONTINUITY_MS < 1000 * 1000  # the restart above was far beyond it


def test_pts_strictly_increase_per_kind_even_when_sources_disagree() -> None:
    timeline = Timeline()
    pts = [timeline.place(VIDEO, 5000, 1000), timeline.place(VIDEO, 5000, 1001)]  # same timestamp
    # An SR that puts the video 30 ms earlier than its arrival anchor: no step back.
    timeline.on_sender_report(AUDIO, ntp_at(0), 0, 1000)
    timeline.place(AUDIO, 0, 1000)  # audio sets alice's NTP offset
    timeline.on_sender_report(VIDEO, ntp_at(-30), 5000, 1002)
    pts.append(timeline.place(VIDEO, 5000 + 900, 1010))
    assert pts[1] == pts[0] + MIN_STEP_MS
    assert pts[2] == pts[1] + MIN_STEP_MS  # would have been -20 ms


def test_ntp_to_ms() -> None:
    assert ntp_to_ms(0) == 0
    assert ntp_to_ms((3 << 32) | (1 << 31)) == 3500.0
    assert ntp_to_ms(ntp_at(1234.5)) == pytest.approx(NTP_1900_TO_2026_S * 1000 + 1234.5, abs=1e-3)
