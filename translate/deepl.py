"""DeepL's API (v2) as a :class:`translate.provider.Translator`.

``GET /v2/languages?type=source|target`` lists ``{"language": "EN-US", "name": ...}``;
``POST /v2/translate`` takes JSON ``{text: [...], target_lang, source_lang?}`` (no
``source_lang``: DeepL detects it) and answers ``{translations: [{detected_source_language,
text}]}``. Every request carries ``Authorization: DeepL-Auth-Key KEY``. Errors: 403 a bad key,
429 too many requests, 456 the account's character quota used up, 5xx DeepL's own trouble; a
request body may be 128 KiB at most. Free accounts use api-free.deepl.com, pro accounts
api.deepl.com.
"""

from __future__ import annotations

import itertools
import json
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

NAME = "deepl"
FREE_URL = "https://api-free.deepl.com"
PRO_URL = "https://api.deepl.com"
MAX_REQUEST_BYTES = 128 * 1024
SPECIAL_STATUSES: Mapping[int, FailureKind] = {
    456: FailureKind.QUOTA,
    # DeepL documents 529 as "too many requests" too, not as trouble of its own.
    529: FailureKind.RATE_LIMITED,
}


def read_language_list(listed: object, kind: str) -> frozenset[str]:
    """The Fairwire languages of a ``/v2/languages`` answer (``EN-US`` and ``EN-GB`` are
    both ``en``)."""
    if not isinstance(listed, list):
        raise TranslationError(
            FailureKind.UNAVAILABLE, f"{NAME}: /v2/languages?type={kind} answered no list"
        )
    found = set()
    for entry in listed:
        code = entry.get("language") if isinstance(entry, dict) else None
        if isinstance(code, str) and (language := languages.from_deepl(code)) is not None:
            found.add(language)
    return frozenset(found)


class DeepLTranslator:
    """DeepL with the account's ``api_key``, at ``url`` (:data:`FREE_URL` or :data:`PRO_URL`).

    HTTP goes through ``session`` when given (the caller closes it), else through a session
    made by ``session_factory`` or with aiohttp's defaults, closed by :meth:`close`.
    ``translate`` sets no timeout of its own (the caller bounds each call); ``start`` gives up
    after ``start_timeout`` seconds. The key goes into the Authorization header only, never
    into a message.
    """

    def __init__(
        self,
        api_key: str,
        url: str = FREE_URL,
        *,
        session: aiohttp.ClientSession | None = None,
        session_factory: SessionFactory | None = None,
        start_timeout: float = 5.0,
    ) -> None:
        if not api_key:
            raise ValueError("DeepL needs an API key")
        self._url = url.rstrip("/")
        self._headers = {"Authorization": f"DeepL-Auth-Key {api_key}"}
        self._session = ProviderSession(session, session_factory)
        self._start_timeout = start_timeout
        self._sources: frozenset[str] = frozenset()
        self._targets: frozenset[str] = frozenset()
        self._pairs: frozenset[LanguagePair] = frozenset()

    def __repr__(self) -> str:
        return f"DeepLTranslator(url={self._url!r})"  # never the key

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
        async with start_bounded(NAME, self._start_timeout, "languages listed"):
            sources = await self._languages("source")
            targets = await self._languages("target")
        self._sources, self._targets = sources, targets
        self._pairs = frozenset(
            LanguagePair(source, target)
            for source, target in itertools.product(sources, targets)
            if source != target
        )

    async def _languages(self, kind: str) -> frozenset[str]:
        session = self._session.get(NAME)
        with network_failures(NAME, SPECIAL_STATUSES):
            async with session.get(
                f"{self._url}/v2/languages", params={"type": kind}, headers=self._headers
            ) as response:
                status, body = response.status, await response.read()
        answer = parse_json(body)
        if status != 200:
            raise status_failure(NAME, status, answer, "message", SPECIAL_STATUSES)
        return read_language_list(answer, kind)

    async def translate(self, text: str, source: str | None, target: str) -> Translation:
        if not text.strip():
            raise TranslationError(FailureKind.REJECTED, f"{NAME}: nothing to translate")
        if target not in self._targets or (
            source is not None and LanguagePair(source, target) not in self._pairs
        ):
            raise TranslationError(
                FailureKind.UNSUPPORTED, f"{NAME}: no pair {source or 'auto'}→{target}"
            )
        request: dict[str, object] = {
            "text": [text],
            "target_lang": languages.to_deepl_target(target),
        }
        if source is not None:
            request["source_lang"] = source.upper()
        # Measured as sent: DeepL's limit is on the request body, not on the text. UTF-8
        # rather than \u escapes: a Chinese character is 3 bytes, not 6.
        body = json.dumps(request, ensure_ascii=False).encode()
        if len(body) > MAX_REQUEST_BYTES:
            raise TranslationError(
                FailureKind.REJECTED,
                f"{NAME}: request of {len(body)} bytes exceeds DeepL's {MAX_REQUEST_BYTES}",
            )
        session = self._session.get(NAME)
        headers = {**self._headers, "Content-Type": "application/json"}
        with network_failures(NAME, SPECIAL_STATUSES):
            async with session.post(
                f"{self._url}/v2/translate", data=body, headers=headers
            ) as response:
                status, answer_body = response.status, await response.read()
        answer = parse_json(answer_body)
        if not 200 <= status < 300:
            raise status_failure(NAME, status, answer, "message", SPECIAL_STATUSES)
        first = first_translation(answer)
        translated = first.get("text") if first is not None else None
        if first is None or not isinstance(translated, str) or not translated.strip():
            raise TranslationError(FailureKind.UNAVAILABLE, f"{NAME}: no translated text")
        read = source
        if read is None:
            detected = first.get("detected_source_language")
            read = languages.from_deepl(detected) if isinstance(detected, str) else None
        if read is None:
            raise TranslationError(FailureKind.UNAVAILABLE, f"{NAME}: no detected_source_language")
        return Translation(text=translated, source=read, target=target, provider=NAME)

    async def close(self) -> None:
        await self._session.close()


def first_translation(answer: object) -> Mapping[str, object] | None:
    if not isinstance(answer, dict):
        return None
    translations = answer.get("translations")
    if not isinstance(translations, list) or not translations:
        return None
    first = translations[0]
    return first if isinstance(first, dict) else None
