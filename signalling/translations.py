"""Chat messages and questions in their readers' languages, after the original went out.

The original is posted and delivered first, always: translation never delays it. Then, in a
task of its own, the text is translated once to each language the room's people read (the
room's declared languages and those of everyone who came in, noted by the store as they
arrive: a handful, whatever the audience) and a ``translation`` room event carries all of
them; each page shows the one in its reader's language, marked as machine translated, the
original one click away. A target that failed (provider down, slow, or without the pair) is
tried again later (:data:`RETRY_AFTER_S`), so the translation follows when the provider
recovers. A page that comes in later gets the translations of the recent messages in its
language from the translation cache with its join (:meth:`MessageTranslations.for_reader`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from config import Settings
from rooms import Store
from rooms.events import MessageTranslated
from rooms.model import Room
from signalling.metrics import Metrics
from signalling.realtime import Realtime
from translate.apertium import ApertiumTranslator
from translate.deepl import FREE_URL, DeepLTranslator
from translate.glossary import Glossary
from translate.languages import normalize
from translate.libretranslate import LibreTranslateTranslator
from translate.provider import FailureKind, Translation, TranslationError, Translator
from translate.service import MemoryTranslationCache, TranslationService

log = logging.getLogger(__name__)

# When the targets that failed are tried again (seconds after the first attempt): the last
# one a few minutes on, after which the original stays as it is.
RETRY_AFTER_S = (2.0, 5.0, 15.0, 30.0, 60.0, 180.0)
# Failures not worth retrying: the pair will not appear, the text will not become shorter.
FINAL_FAILURES = frozenset({FailureKind.UNSUPPORTED, FailureKind.REJECTED})


@dataclass(frozen=True, slots=True)
class Written:
    """Something a person wrote in a room: a chat message or a question."""

    kind: str  # "chat" or "question"
    id: str
    text: str
    language: str  # "" when unknown: the provider detects it


class MessageTranslations:
    """Translates what people write in rooms and tells the rooms."""

    def __init__(self, realtime: Realtime, store: Store, service: TranslationService,
                 retry_after_s: Iterable[float] = RETRY_AFTER_S) -> None:
        self.realtime = realtime
        self.store = store
        self.service = service
        self._retry_after_s = tuple(retry_after_s)
        self._tasks: set[asyncio.Task[None]] = set()

    def posted(self, room: Room, written: Written) -> None:
        """``written`` was delivered in ``room``: translate it for its other readers."""
        task = asyncio.ensure_future(self._translate(room, written))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def targets(self, room: Room, language: str) -> set[str]:
        read = {normalize(lang) for lang in (*room.languages,
                                              *await self.store.languages_read(room.id))}
        return {lang for lang in read if lang and lang != language}

    async def _translate(self, room: Room, written: Written) -> None:
        source = written.language or None
        pending = await self.targets(room, written.language)
        started = time.monotonic()
        for delay in (0.0, *self._retry_after_s):
            if not pending:
                return
            wait = started + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            results = await self.service.translate_many(written.text, source, pending)
            done = {lang: r for lang, r in results.items() if isinstance(r, Translation)}
            if done:
                await self._announce(room, written, done)
            pending = {lang for lang, r in results.items()
                       if isinstance(r, TranslationError) and r.kind not in FINAL_FAILURES}
        if pending:
            log.info("%s %s in %s stays untranslated to %s", written.kind, written.id, room.id,
                     ", ".join(sorted(pending)))

    async def _still_shown(self, room: Room, written: Written) -> bool:
        """False once a moderator hid the question or deleted the message: a translation
        arriving later must not bring its text back."""
        if written.kind == "question":
            question = await self.store.get_question(room.id, written.id)
            return question is not None and not question.hidden
        return any(m.id == written.id for m in await self.store.recent_chat(room.id))

    async def _announce(self, room: Room, written: Written,
                        done: Mapping[str, Translation]) -> None:
        translations = {lang: {"text": t.text, "provider": t.provider, "from": t.source}
                        for lang, t in sorted(done.items())}
        try:
            if await self._still_shown(room, written):
                await self.realtime.feed.append(room.id, MessageTranslated(
                    written.kind, written.id, translations, time.time()))
        except Exception:  # the room ended meanwhile, the store is away: the original stays
            log.info("could not announce translations of %s %s", written.kind, written.id,
                     exc_info=True)

    async def for_reader(self, items: Iterable[Written], language: str
                         ) -> dict[str, dict[str, str]]:
        """Translations to ``language`` of ``items`` that are in the cache (a join's recent
        messages): ``{id: {"text", "provider", "from"}}``. Nothing is translated here."""
        reader = normalize(language)
        if reader is None:
            return {}
        wanted = [item for item in items if item.language != reader and item.text]
        cached = await self.service.cached_many(
            [(item.text, item.language or None) for item in wanted], reader)
        return {item.id: {"text": t.text, "provider": t.provider, "from": t.source}
                for item, t in zip(wanted, cached, strict=True) if t is not None}


def translation_service(settings: Settings, metrics: Metrics) -> TranslationService:
    """The node's translation service as the settings describe it (not started; its cache is
    this node's memory until the app's lifecycle gives it Redis's)."""
    providers: list[Translator] = []
    for name in settings.translators:
        if name == "apertium":
            providers.append(ApertiumTranslator())
        elif name == "libretranslate":
            assert settings.libretranslate_url is not None  # load_config checked it
            providers.append(LibreTranslateTranslator(settings.libretranslate_url,
                                                      settings.libretranslate_api_key))
        elif name == "deepl":
            assert settings.deepl_api_key is not None
            providers.append(DeepLTranslator(settings.deepl_api_key,
                                             settings.deepl_url or FREE_URL))
    glossary = Glossary() if settings.glossary is None else Glossary.load(settings.glossary)

    def count(provider: str, kind: FailureKind) -> None:
        metrics.translation_failures.labels(provider, kind.value).inc()

    return TranslationService(providers, MemoryTranslationCache(), glossary,
                              settings.translation_timeout_ms / 1000, on_failure=count)
