"""What every translation provider is to the rest of Fairwire: one async call and its failures.

A provider translates one text from a source language (or ``None``: detect it) to a target
language and says which language it read. Languages are lower-case ISO 639-1 codes as pages
and tokens carry them (``en``, ``es``, ``zh``; see :mod:`translate.languages`); each provider
maps them to its own codes. A provider never delivers anything itself: the caller
(:class:`translate.service.TranslationService`) decides what to do when it fails, and a
failure is always a :class:`TranslationError` whose ``kind`` says why, so that the caller can
count it and try the next provider.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class FailureKind(enum.Enum):
    """Why a provider gave no translation (a label in ``/metrics``)."""

    UNSUPPORTED = "unsupported"  # the provider has no such language pair
    UNAVAILABLE = "unavailable"  # down, unreachable, 5xx, or its process died
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"  # 429: try again later
    QUOTA = "quota"  # DeepL 456: the account's characters are used up
    AUTH = "auth"  # 401/403: a bad or missing API key
    REJECTED = "rejected"  # 400 and other refusals of this request


class TranslationError(Exception):
    """A provider could not translate this text; ``kind`` says why."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Translation:
    """One text in one target language, and who translated it from what."""

    text: str
    source: str  # the language the provider read (detected when none was given)
    target: str
    provider: str


@dataclass(frozen=True, slots=True)
class LanguagePair:
    source: str
    target: str


class Translator(Protocol):
    """A translation provider (Apertium, LibreTranslate, DeepL...)."""

    @property
    def name(self) -> str:
        """How ``/readyz``, ``/metrics`` and a translation's ``provider`` name it."""

    async def start(self) -> None:
        """Connect or start what it needs and discover its language pairs (see ``pairs``).
        A provider that cannot start raises :class:`TranslationError` (UNAVAILABLE)."""

    @property
    def pairs(self) -> frozenset[LanguagePair]:
        """The pairs it translates, as discovered by :meth:`start` (empty before)."""

    @property
    def detects(self) -> bool:
        """True when it accepts ``source=None`` (it detects the language itself)."""

    async def translate(self, text: str, source: str | None, target: str) -> Translation:
        """``text`` in ``target``; raises :class:`TranslationError`. Never delivers a text
        it did not get from the provider (an empty answer is a failure)."""

    async def close(self) -> None:
        """Stop what :meth:`start` started."""
