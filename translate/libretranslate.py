"""LibreTranslate (a self-hosted or hosted server) as a :class:`translate.provider.Translator`.

Its API: ``GET /languages`` lists ``{"code", "name", "targets"}`` (older servers omit
``targets``: every listed language then translates to every other); ``POST /translate`` takes
JSON ``{q, source ("auto" detects), target, format, api_key}`` and answers
``{translatedText, detectedLanguage: {language, confidence}}``, or ``{"error": ...}`` with 400,
403, 429 or 500.

Its codes are ISO 639-1 with a few of its own for regional variants: ``zt`` is traditional
Chinese and ``pb`` Brazilian Portuguese (servers built on newer models say ``zh-Hant``,
``pt-BR``). Fairwire names a language, not a script or region, so it always asks for the plain
variant (LibreTranslate's ``zh`` is simplified Chinese) and never sends a variant code; a text
the server detects as a variant was still written in that language.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from translate import languages
from translate._http import (
    ProviderSession,
    SessionFactory,
    network_failures,
    parse_json,
    start_bounded,
    status_failure,
)
from translate.provider import FailureKind, LanguagePair, Translation, TranslationError

NAME = "libretranslate"
# Variant codes (lower case) and the language they are a variant of.
VARIANT_CODES = {"zt": "zh", "zh-hant": "zh", "zh-tw": "zh", "pb": "pt", "pt-br": "pt"}
# LibreTranslate's statuses mean what they mean everywhere (see translate._http).
SPECIAL_STATUSES: Mapping[int, FailureKind] = {}


def language_of(code: str) -> str | None:
    """The Fairwire language of a LibreTranslate code, variants included (for detection)."""
    return VARIANT_CODES.get(code.lower()) or languages.normalize(code)


def requestable_language(code: str) -> str | None:
    """The Fairwire language Fairwire may ask for with this code: None for the variants."""
    return None if code.lower() in VARIANT_CODES else languages.normalize(code)


def read_languages(listed: object) -> tuple[dict[str, str], frozenset[LanguagePair]]:
    """From a ``/languages`` answer: the code to send for each Fairwire language, and the
    pairs. Entries it cannot read are left out rather than failing the whole list."""
    if not isinstance(listed, list):
        raise TranslationError(
            FailureKind.UNAVAILABLE, f"{NAME}: /languages answered no list of languages"
        )
    entries = [entry for entry in listed if isinstance(entry, dict)]
    codes: dict[str, str] = {}
    for entry in entries:
        code = entry.get("code")
        if not isinstance(code, str) or (language := requestable_language(code)) is None:
            continue
        # "zh" rather than "zh-Hans" when a server lists both.
        if language not in codes or code.lower() == language:
            codes[language] = code
    every_code = list(codes.values())
    pairs: set[LanguagePair] = set()
    for entry in entries:
        code = entry.get("code")
        if not isinstance(code, str) or (source := requestable_language(code)) is None:
            continue
        targets = entry.get("targets", every_code)
        if not isinstance(targets, list):
            continue
        for target_code in targets:
            if not isinstance(target_code, str):
                continue
            target = requestable_language(target_code)
            if target is not None and target != source:
                pairs.add(LanguagePair(source, target))
    return codes, frozenset(pairs)


class LibreTranslateTranslator:
    """A LibreTranslate server at ``url``, with ``api_key`` when the server wants one.

    HTTP goes through ``session`` when given (the caller closes it), else through a session
    made by ``session_factory`` or with aiohttp's defaults, closed by :meth:`close`.
    ``translate`` sets no timeout of its own (the caller bounds each call); ``start`` gives up
    after ``start_timeout`` seconds, so that an unreachable server cannot hold up start-up.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        session_factory: SessionFactory | None = None,
        start_timeout: float = 5.0,
    ) -> None:
        self._url = url.rstrip("/")
        self._api_key = api_key
        self._session = ProviderSession(session, session_factory)
        self._start_timeout = start_timeout
        self._codes: dict[str, str] = {}
        self._pairs: frozenset[LanguagePair] = frozenset()
        self._targets: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return NAME

    @property
    def pairs(self) -> frozenset[LanguagePair]:
        return self._pairs

    @property
    def detects(self) -> bool:
        return True

    async def start(self) -> None:
        session = self._session.get(NAME)
        async with start_bounded(NAME, self._start_timeout, "answer to GET /languages"):
            with network_failures(NAME, SPECIAL_STATUSES):
                async with session.get(f"{self._url}/languages") as response:
                    status, body = response.status, await response.read()
        answer = parse_json(body)
        if status != 200:
            raise status_failure(NAME, status, answer, "error", SPECIAL_STATUSES)
        self._codes, self._pairs = read_languages(answer)
        self._targets = frozenset(pair.target for pair in self._pairs)

    async def translate(self, text: str, source: str | None, target: str) -> Translation:
        if not text.strip():
            raise TranslationError(FailureKind.REJECTED, f"{NAME}: nothing to translate")
        if target not in self._targets or (
            source is not None and LanguagePair(source, target) not in self._pairs
        ):
            raise TranslationError(
                FailureKind.UNSUPPORTED, f"{NAME}: no pair {source or 'auto'}→{target}"
            )
        request: dict[str, str] = {
            "q": text,
            "source": "auto" if source is None else self._codes[source],
            "target": self._codes[target],
            "format": "text",
        }
        if self._api_key is not None:
            request["api_key"] = self._api_key
        session = self._session.get(NAME)
        with network_failures(NAME, SPECIAL_STATUSES):
            async with session.post(f"{self._url}/translate", json=request) as response:
                status, body = response.status, await response.read()
        answer = parse_json(body)
        if not 200 <= status < 300:
            raise status_failure(NAME, status, answer, "error", SPECIAL_STATUSES)
        if not isinstance(answer, dict):
            raise TranslationError(FailureKind.UNAVAILABLE, f"{NAME}: answer is no JSON object")
        translated = answer.get("translatedText")
        if not isinstance(translated, str) or not translated.strip():
            raise TranslationError(FailureKind.UNAVAILABLE, f"{NAME}: no translatedText")
        read = source if source is not None else detected_language(answer)
        if read is None:
            raise TranslationError(
                FailureKind.UNAVAILABLE, f"{NAME}: no detectedLanguage with source auto"
            )
        return Translation(text=translated, source=read, target=target, provider=NAME)

    async def close(self) -> None:
        await self._session.close()


def detected_language(answer: Mapping[str, object]) -> str | None:
    detected = answer.get("detectedLanguage")
    if not isinstance(detected, dict):
        return None
    code = detected.get("language")
    return language_of(code) if isinstance(code, str) else None
