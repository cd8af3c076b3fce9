"""Translation for the whole node: a fallback chain of providers, a cache, the glossary.

:meth:`TranslationService.translate_many` is what chat, questions and direct messages call
once per message with the set of languages its recipients read: each target language is
translated once however many recipients read it, a text translated before comes from the
cache (by provider, language pair and text hash; Redis when configured, so every node shares
it), and two messages with the same text at the same time share one provider call. Providers
are tried in the configured order among those that serve the pair; each failure is counted
(``on_failure``, which ``/metrics`` reads) and the next is tried; a target no provider could
do is reported as its last :class:`~translate.provider.TranslationError`, never raised: the
caller has delivered the original already and goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from translate.glossary import Glossary
from translate.provider import FailureKind, LanguagePair, Translation, TranslationError, Translator

log = logging.getLogger(__name__)

# How long one provider may take for one text before the next one is tried.
DEFAULT_TIMEOUT_S = 5.0
MEMORY_CACHE_ENTRIES = 20_000
CACHE_TTL_S = 30 * 24 * 3600  # a fair and its replays
# The longest text sent to a provider (DeepL takes 128 KiB a request; a chat line is short).
MAX_TEXT_CHARS = 5000

FailureCounter = Callable[[str, FailureKind], None]


class TranslationCache(Protocol):
    async def get(self, key: str) -> Translation | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[Translation | None]:
        """Each key's translation, in one round trip."""

    async def put(self, key: str, translation: Translation) -> None: ...


class MemoryTranslationCache:
    """The most recently used translations of this node."""

    def __init__(self, entries: int = MEMORY_CACHE_ENTRIES) -> None:
        self._entries = entries
        self._items: OrderedDict[str, Translation] = OrderedDict()

    async def get(self, key: str) -> Translation | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    async def get_many(self, keys: Sequence[str]) -> list[Translation | None]:
        return [await self.get(key) for key in keys]

    async def put(self, key: str, translation: Translation) -> None:
        self._items[key] = translation
        self._items.move_to_end(key)
        while len(self._items) > self._entries:
            self._items.popitem(last=False)


class RedisTranslationCache:
    """Translations shared by every node, for :data:`CACHE_TTL_S`."""

    PREFIX = "fairwire:translation:"

    def __init__(self, redis: Any, ttl_s: int = CACHE_TTL_S) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def get(self, key: str) -> Translation | None:
        return self._decode(await self._redis.get(self.PREFIX + key))

    async def get_many(self, keys: Sequence[str]) -> list[Translation | None]:
        if not keys:
            return []
        return [self._decode(raw)
                for raw in await self._redis.mget([self.PREFIX + key for key in keys])]

    @staticmethod
    def _decode(raw: Any) -> Translation | None:
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return Translation(str(data["text"]), str(data["source"]), str(data["target"]),
                               str(data["provider"]))
        except (ValueError, KeyError, TypeError):
            return None

    async def put(self, key: str, translation: Translation) -> None:
        value = json.dumps({"text": translation.text, "source": translation.source,
                            "target": translation.target, "provider": translation.provider})
        await self._redis.set(self.PREFIX + key, value, ex=self._ttl_s)


def cache_key(provider: str, source: str | None, target: str, text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"{provider}:{source or 'auto'}:{target}:{digest}"


class TranslationService:
    """The node's providers in order of preference, with cache and glossary around them."""

    def __init__(
        self,
        providers: Sequence[Translator],
        cache: TranslationCache | None = None,
        glossary: Glossary | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        on_failure: FailureCounter | None = None,
    ) -> None:
        self._configured = tuple(providers)
        self._providers: tuple[Translator, ...] = ()
        self._unavailable: dict[str, str] = {}
        self._cache = cache if cache is not None else MemoryTranslationCache()
        self._glossary = glossary if glossary is not None else Glossary()
        self._timeout_s = timeout_s
        self._on_failure = on_failure or (lambda provider, kind: None)
        self._in_flight: dict[str, asyncio.Future[Translation]] = {}

    def use_cache(self, cache: TranslationCache) -> None:
        """Keep translations in ``cache`` from now on (Redis's, once the node connects)."""
        self._cache = cache

    async def start(self) -> None:
        """Start every provider; those that cannot start are left out (and said so in
        :meth:`details`), so that a node without a translation service still runs."""
        results = await asyncio.gather(*(p.start() for p in self._configured),
                                       return_exceptions=True)
        started = []
        for provider, result in zip(self._configured, results, strict=True):
            if isinstance(result, BaseException):
                self._unavailable[provider.name] = str(result) or type(result).__name__
                log.warning("translation provider %s is unavailable: %s", provider.name, result)
            else:
                started.append(provider)
                log.info("translation provider %s: %d language pairs", provider.name,
                         len(provider.pairs))
        self._providers = tuple(started)

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self._providers), return_exceptions=True)
        self._providers = ()

    def details(self) -> dict[str, Any]:
        """What ``/readyz`` shows: each provider's pairs, or why it is not there."""
        providers: dict[str, Any] = {
            p.name: {"pairs": sorted(f"{pair.source}-{pair.target}" for pair in p.pairs),
                     "detects_language": p.detects}
            for p in self._providers}
        for name, reason in self._unavailable.items():
            providers[name] = {"unavailable": reason}
        return {"providers": providers}

    def chain(self, source: str | None, target: str) -> list[Translator]:
        """The providers to try for a pair, in order."""
        if source is None:
            return [p for p in self._providers
                    if p.detects and any(pair.target == target for pair in p.pairs)]
        wanted = LanguagePair(source, target)
        return [p for p in self._providers if wanted in p.pairs]

    def serves(self, source: str | None, target: str) -> bool:
        return source == target or bool(self.chain(source, target))

    async def translate_many(
        self, text: str, source: str | None, targets: Iterable[str]
    ) -> dict[str, Translation | TranslationError]:
        """``text`` in each target language (once each), concurrently."""
        wanted = sorted({t for t in targets if t and t != source})
        results = await asyncio.gather(*(self._translate_or_error(text, source, t)
                                         for t in wanted))
        return dict(zip(wanted, results, strict=True))

    async def _translate_or_error(self, text: str, source: str | None, target: str
                                  ) -> Translation | TranslationError:
        try:
            return await self.translate(text, source, target)
        except TranslationError as error:
            return error

    async def translate(self, text: str, source: str | None, target: str) -> Translation:
        """``text`` in ``target`` from the first provider of the chain that can; raises the
        last provider's :class:`TranslationError` when none could."""
        if source == target:
            return Translation(text, target, target, "none")
        if not text.strip():
            raise TranslationError(FailureKind.REJECTED, "nothing to translate")
        if len(text) > MAX_TEXT_CHARS:
            raise TranslationError(FailureKind.REJECTED,
                                   f"longer than {MAX_TEXT_CHARS} characters")
        chain = self.chain(source, target)
        if not chain:
            raise TranslationError(FailureKind.UNSUPPORTED,
                                   f"no provider translates {source or 'auto'} to {target}")
        last: TranslationError | None = None
        for provider in chain:
            try:
                return await self._from(provider, text, source, target)
            except TranslationError as error:
                self._on_failure(provider.name, error.kind)
                log.info("translation by %s (%s→%s) failed: %s", provider.name,
                         source or "auto", target, error)
                last = error
        assert last is not None
        raise last

    async def cached_many(self, texts: Sequence[tuple[str, str | None]], target: str
                          ) -> list[Translation | None]:
        """For each ``(text, source)``, a translation to ``target`` made before by a provider
        of its chain (the first in order), all read from the cache at once; never a provider
        call (a join's recent messages)."""
        keys: list[str] = []
        owners: list[int] = []
        for index, (text, source) in enumerate(texts):
            for provider in self.chain(source, target):
                keys.append(cache_key(provider.name, source, target, text))
                owners.append(index)
        try:
            found = await self._cache.get_many(keys)
        except Exception:  # a cache that is down: the join goes on without translations
            log.warning("translation cache unavailable", exc_info=True)
            return [None] * len(texts)
        result: list[Translation | None] = [None] * len(texts)
        for owner, translation in zip(owners, found, strict=True):
            if result[owner] is None:
                result[owner] = translation
        return result

    async def _from(self, provider: Translator, text: str, source: str | None, target: str
                    ) -> Translation:
        key = cache_key(provider.name, source, target, text)
        cached = await self._cache_get(key)
        if cached is not None:
            return cached
        pending = self._in_flight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Translation] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            translation = await self._call(provider, text, source, target)
        except TranslationError as error:
            future.set_exception(error)
            future.exception()  # the waiters (if any) get it; nobody else must
            raise
        finally:
            del self._in_flight[key]
        future.set_result(translation)
        await self._cache_put(key, translation)
        return translation

    async def _call(self, provider: Translator, text: str, source: str | None, target: str
                    ) -> Translation:
        protected, restore = self._glossary.protect(text, target)
        try:
            async with asyncio.timeout(self._timeout_s):
                translated = await provider.translate(protected, source, target)
        except TimeoutError:
            raise TranslationError(FailureKind.TIMEOUT,
                                   f"no answer in {self._timeout_s:g} s") from None
        result = restore(translated.text).strip()
        if not result:
            raise TranslationError(FailureKind.UNAVAILABLE, "an empty translation")
        return Translation(result, translated.source, target, provider.name)

    async def _cache_get(self, key: str) -> Translation | None:
        try:
            return await self._cache.get(key)
        except Exception:  # a cache that is down costs a provider call, not the message
            log.warning("translation cache unavailable", exc_info=True)
            return None

    async def _cache_put(self, key: str, translation: Translation) -> None:
        try:
            await self._cache.put(key, translation)
        except Exception:
            log.warning("translation cache unavailable", exc_info=True)
