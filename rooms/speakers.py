"""Who is speaking in a room: active speaker detection over audio levels. No I/O; time is
passed in.

The wiring (signalling) samples each room a few times a second: for every identity that
publishes audio, the loudest level its packets carried since the last sample (RFC 6464: a
level in -dBov, 0 the loudest, 127 silence), or None when nothing audible came (nothing
arrived, no level, or the microphone is muted). :meth:`SpeakerDetector.sample` answers who is
*speaking* and which of them is *dominant*, when that changed:

- A sample is voice when it is louder than ``voice_dbov`` (-50 dBov); someone already speaking
  keeps speaking down to ``keep_dbov`` (-55 dBov), so that a quieter word does not end it.
- Voice stretches across pauses up to ``pause`` (0.6 s: between words or breaths). Someone
  starts speaking once a stretch has lasted ``onset`` (0.3 s) over at least two samples: a
  cough, a door or a keyboard's click is not a speaker.
- They stop speaking after ``silence`` (1.5 s) without voice: the page does not flicker
  between two sentences.
- Each identity's level is smoothed (quick to rise, slow to fall, in dB). The dominant speaker
  is the loudest of those speaking; another takes over only when louder by ``margin_db``
  (6 dB), or when the dominant one stops speaking. Nobody speaking: no dominant speaker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SILENCE_DBOV = -127.0  # RFC 6464 §3: the quietest level there is
MIN_VOICED_SAMPLES = 2


@dataclass(frozen=True, slots=True)
class SpeakerSettings:
    voice_dbov: float = -50.0
    keep_dbov: float = -55.0
    onset: float = 0.3  # seconds of voice before someone counts as speaking
    pause: float = 0.6  # seconds of quiet that do not break a stretch of voice
    silence: float = 1.5  # seconds without voice after which someone stops speaking
    attack: float = 0.1  # time constant (s) of the smoothed level rising
    release: float = 1.0  # and falling
    margin_db: float = 6.0  # how much louder someone must be to take the dominance over


@dataclass(frozen=True, slots=True)
class Speakers:
    """Who speaks now: at most one dominant speaker, who is one of ``speaking``."""

    dominant: str | None = None
    speaking: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {"dominant": self.dominant, "speaking": sorted(self.speaking)}


NOBODY = Speakers()


@dataclass(slots=True)
class _Voice:
    """One identity's voice as the detector follows it."""

    smoothed: float = SILENCE_DBOV  # dBov
    speaking: bool = False
    stretch_start: float = 0.0  # when the current stretch of voice began
    voiced_samples: int = 0  # in that stretch
    last_voice: float | None = None  # the end of the last sample with voice


class SpeakerDetector:
    """One room's speakers, from samples of its publishers' audio levels."""

    def __init__(self, settings: SpeakerSettings | None = None) -> None:
        self.settings = settings or SpeakerSettings()
        self.speakers = NOBODY
        self._voices: dict[str, _Voice] = {}
        self._last_sample: float | None = None

    def sample(self, levels: Mapping[str, int | None], now: float) -> Speakers | None:
        """Take one sample: ``levels`` maps every identity that publishes audio to the loudest
        RFC 6464 level (-dBov) it sent since the previous sample, or None for nothing
        audible. Identities left out are gone. Returns the new :class:`Speakers` when they
        changed, None otherwise."""
        since = now if self._last_sample is None else min(self._last_sample, now)
        self._last_sample = now
        for identity in self._voices.keys() - levels.keys():
            del self._voices[identity]
        for identity, level in levels.items():
            voice = self._voices.get(identity)
            if voice is None:
                voice = self._voices[identity] = _Voice()
            self._follow(voice, SILENCE_DBOV if level is None else -float(level), since, now)
        speaking = frozenset(i for i, v in self._voices.items() if v.speaking)
        speakers = Speakers(self._dominant(speaking), speaking)
        if speakers == self.speakers:
            return None
        self.speakers = speakers
        return speakers

    def _follow(self, voice: _Voice, dbov: float, since: float, now: float) -> None:
        settings = self.settings
        elapsed = now - since
        constant = settings.attack if dbov > voice.smoothed else settings.release
        weight = 1.0 - math.exp(-elapsed / constant) if elapsed > 0 else 1.0
        voice.smoothed += weight * (dbov - voice.smoothed)
        threshold = settings.keep_dbov if voice.speaking else settings.voice_dbov
        if dbov > threshold:
            if voice.last_voice is None or since - voice.last_voice > settings.pause:
                # A new stretch: it began when this sample's stretch of time did.
                voice.stretch_start = since
                voice.voiced_samples = 0
            voice.voiced_samples += 1
            voice.last_voice = now
            if (not voice.speaking and voice.voiced_samples >= MIN_VOICED_SAMPLES
                    and now - voice.stretch_start >= settings.onset):
                voice.speaking = True
        elif voice.speaking and (voice.last_voice is None
                                 or now - voice.last_voice >= settings.silence):
            voice.speaking = False

    def _dominant(self, speaking: frozenset[str]) -> str | None:
        if not speaking:
            return None
        voices = self._voices
        # Ties go the same way every time: by identity.
        loudest = max(speaking, key=lambda i: (voices[i].smoothed, i))
        current = self.speakers.dominant
        if current is None or current not in speaking or current == loudest:
            return loudest
        if voices[loudest].smoothed > voices[current].smoothed + self.settings.margin_db:
            return loudest
        return current
