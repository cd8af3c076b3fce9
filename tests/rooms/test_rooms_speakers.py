"""Active speaker detection over audio levels, with synthetic time: who speaks, who dominates,
and that neither flickers."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rooms.speakers import NOBODY, SpeakerDetector, Speakers, SpeakerSettings

TICK = 0.25  # seconds between samples, as the room's sampler takes them
LOUD = 20  # RFC 6464 level: -20 dBov, a voice close to the microphone
QUIET = 53  # -53 dBov: a trailing word, or a voice far from the microphone
SILENT = 127

Levels = dict[str, int | None]


def run(detector: SpeakerDetector, script: Callable[[float], Levels], start: float,
        seconds: float) -> list[tuple[float, Speakers]]:
    """Sample every TICK from ``start`` for ``seconds``; the changes, with their times."""
    changes = []
    for step in range(round(seconds / TICK)):
        now = start + step * TICK
        changed = detector.sample(script(now), now)
        if changed is not None:
            changes.append((round(now, 3), changed))
    return changes


def talking(*who: str, level: int = LOUD, others: Iterable[str] = ()) -> Callable[
        [float], Levels]:
    def script(now: float) -> Levels:
        levels: Levels = {identity: level for identity in who}
        levels.update({identity: SILENT for identity in others})
        return levels
    return script


def test_sustained_voice_makes_a_speaker_and_silence_ends_it_after_one_and_a_half_seconds(
) -> None:
    detector = SpeakerDetector()
    assert detector.sample({"li": SILENT}, 0.0) is None  # nobody speaks: no news
    changes = run(detector, talking("li"), TICK, 2.0)
    # Voice from 0.25 s: speaking at the second sample of voice (0.5 s of it, > 0.3 s).
    assert changes == [(0.5, Speakers("li", frozenset({"li"})))]
    assert detector.speakers.to_dict() == {"dominant": "li", "speaking": ["li"]}
    changes = run(detector, talking(others=["li"]), 2.25, 3.0)
    # The last voice ended at 2.0 s: 1.5 s later, nobody speaks.
    assert changes == [(3.5, NOBODY)]
    assert NOBODY.to_dict() == {"dominant": None, "speaking": []}


def test_a_single_loud_sound_is_not_a_speaker() -> None:
    detector = SpeakerDetector()

    def cough(now: float) -> Levels:
        return {"li": 3 if now == 1.0 else SILENT}

    assert run(detector, cough, 0.0, 5.0) == []


def test_pauses_between_words_do_not_make_the_page_flicker() -> None:
    detector = SpeakerDetector()

    # Quiet samples within 8 s of speech: short pauses, a 0.5 s pause, breaths of 1 s.
    quiet = {0.75, 1.5, 2.0, 2.25, 3.0, 3.25, 3.5, 3.75, 5.0, 6.0, 6.25, 6.5, 6.75}

    def sentences(now: float) -> Levels:
        return {"li": SILENT if now in quiet else LOUD}

    changes = run(detector, sentences, 0.0, 8.0)
    assert changes == [(0.5, Speakers("li", frozenset({"li"})))]


def test_a_beep_every_half_second_is_speaking() -> None:
    # Chromium's fake microphone: a short beep each 0.5 s, so one sample in two is loud.
    detector = SpeakerDetector()

    def beeps(now: float) -> Levels:
        return {"page": 6 if round(now / TICK) % 2 else SILENT}

    changes = run(detector, beeps, 0.0, 3.0)
    assert [speakers.dominant for _, speakers in changes] == ["page"]
    assert changes[0][0] <= 1.0


def test_hysteresis_quiet_words_keep_a_speaker_but_do_not_start_one() -> None:
    detector = SpeakerDetector()
    assert run(detector, talking("far", level=QUIET), 0.0, 3.0) == []
    run(detector, talking("far"), 3.0, 1.0)  # speaks up
    assert detector.speakers.speaking == {"far"}
    assert run(detector, talking("far", level=QUIET), 4.0, 4.0) == []  # still speaking
    assert detector.speakers.speaking == {"far"}


def test_muted_or_without_levels_is_silence_and_someone_who_leaves_goes_at_once() -> None:
    detector = SpeakerDetector()
    run(detector, talking("li", "wu"), 0.0, 1.0)
    assert detector.speakers.speaking == {"li", "wu"}
    changes = run(detector, lambda now: {"li": LOUD, "wu": None}, 1.0, 2.0)
    assert changes[-1][1].speaking == {"li"}
    assert detector.sample({"wu": LOUD}, 3.0) == Speakers(None, frozenset())  # li unpublished


def test_the_loudest_speaker_dominates_and_a_slightly_louder_one_does_not_take_over() -> None:
    detector = SpeakerDetector()
    run(detector, talking("li"), 0.0, 1.0)
    assert detector.speakers.dominant == "li"
    # Wu joins in 3 dB louder: both speak, Li stays dominant (the margin is 6 dB).
    changes = run(detector, lambda now: {"li": LOUD, "wu": LOUD - 3}, 1.0, 2.0)
    assert [s for _, s in changes] == [Speakers("li", frozenset({"li", "wu"}))]
    # Wu raises the voice by 10 dB: Wu takes over, once.
    changes = run(detector, lambda now: {"li": LOUD, "wu": LOUD - 10}, 3.0, 2.0)
    assert [s.dominant for _, s in changes] == ["wu"]
    # Wu stops: Li is dominant again once Wu's fading level is 6 dB under Li's, and alone
    # once Wu's 1.5 s are over.
    changes = run(detector, lambda now: {"li": LOUD, "wu": SILENT}, 5.0, 3.0)
    assert [s for _, s in changes] == [Speakers("li", frozenset({"li", "wu"})),
                                       Speakers("li", frozenset({"li"}))]
    assert changes[0][0] < 5.5 and changes[1][0] == 6.25  # 1.5 s after 4.75


def test_turn_taking_hands_the_dominance_to_whoever_speaks_now() -> None:
    detector = SpeakerDetector()
    run(detector, talking("li", others=["wu"]), 0.0, 3.0)
    changes = run(detector, talking("wu", others=["li"]), 3.0, 3.0)
    # Li, silent from 3 s, fades; Wu's voice is soon far louder than Li's smoothed level.
    assert changes[0][1] == Speakers("wu", frozenset({"li", "wu"}))
    assert changes[0][0] <= 4.0
    assert changes[-1][1] == Speakers("wu", frozenset({"wu"}))


def test_settings_are_what_the_detector_follows() -> None:
    eager = SpeakerDetector(SpeakerSettings(onset=0.0, silence=0.5))
    assert eager.sample({"li": LOUD}, 0.0) is None  # one sample is never enough
    assert eager.sample({"li": LOUD}, 0.25) == Speakers("li", frozenset({"li"}))
    assert eager.sample({"li": SILENT}, 0.5) is None
    assert eager.sample({"li": SILENT}, 0.75) == NOBODY


def test_time_that_runs_backwards_does_no_harm() -> None:
    detector = SpeakerDetector()
    detector.sample({"li": LOUD}, 10.0)
    detector.sample({"li": LOUD}, 9.0)
    detector.sample({"li": LOUD}, 10.5)
    assert detector.speakers.speaking == {"li"}
