"""TranslationService: the fallback chain, once per language, the cache, failures counted."""

from __future__ import annotations

import asyncio

import pytest

from translate.glossary import Glossary
from translate.provider import FailureKind, LanguagePair, Translation, TranslationError
from translate.service import (
    MemoryTranslationCache,
    RedisTranslationCache,
    TranslationService,
    cache_key,
)


class ScriptedProvider:
    """A provider whose answers the test sets: uppercases, or fails with ``failing``."""

    def __init__(self, name: str, pairs: set[tuple[str, str]], detects: bool = False,
                 fails_to_start: bool = False) -> None:
        self.name = name
        self._pairs = frozenset(LanguagePair(s, t) for s, t in pairs)
        self.detects = detects
        self.fails_to_start = fails_to_start
        self.failing: FailureKind | None = None
        self.delay = 0.0
        self.calls: list[tuple[str, str | None, str]] = []

    @property
    def pairs(self) -> frozenset[LanguagePair]:
        return self._pairs

    async def start(self) -> None:
        if self.fails_to_start:
            raise TranslationError(FailureKind.UNAVAILABLE, "connection refused")

    async def close(self) -> None:
        pass

    async def translate(self, text: str, source: str | None, target: str) -> Translation:
        self.calls.append((text, source, target))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing is not None:
            raise TranslationError(self.failing, "scripted failure")
        return Translation(f"{target}:{text.upper()}", source or "en", target, self.name)


async def started(*providers: ScriptedProvider, **options: object) -> TranslationService:
    service = TranslationService(providers, **options)  # type: ignore[arg-type]
    await service.start()
    return service


async def test_each_target_language_is_translated_once_and_a_repeat_hits_the_cache() -> None:
    provider = ScriptedProvider("p", {("en", "es"), ("en", "zh"), ("en", "de")})
    service = await started(provider)
    # Recipients read es, es, zh, de and the original's own en: three provider calls.
    result = await service.translate_many("hello", "en", ["es", "es", "zh", "de", "en"])
    assert {t: r.text for t, r in result.items() if isinstance(r, Translation)} == {
        "es": "es:HELLO", "zh": "zh:HELLO", "de": "de:HELLO"}
    assert len(provider.calls) == 3
    again = await service.translate_many("hello", "en", ["zh", "es"])
    assert len(provider.calls) == 3 and again["zh"].provider == "p"  # type: ignore[union-attr]


async def test_the_next_provider_answers_when_the_first_fails_and_failures_are_counted() -> None:
    failures: list[tuple[str, FailureKind]] = []
    first = ScriptedProvider("first", {("en", "es")})
    second = ScriptedProvider("second", {("en", "es")})
    service = await started(first, second,
                            on_failure=lambda name, kind: failures.append((name, kind)))
    first.failing = FailureKind.QUOTA
    translation = await service.translate("hi", "en", "es")
    assert translation.provider == "second"
    assert failures == [("first", FailureKind.QUOTA)]


async def test_a_slow_provider_times_out_and_no_provider_is_reported_not_raised() -> None:
    slow = ScriptedProvider("slow", {("en", "es")})
    slow.delay = 5
    service = await started(slow, timeout_s=0.05)
    result = await service.translate_many("hi", "en", ["es", "ja"])
    assert isinstance(result["es"], TranslationError)
    assert result["es"].kind is FailureKind.TIMEOUT
    assert isinstance(result["ja"], TranslationError)
    assert result["ja"].kind is FailureKind.UNSUPPORTED


async def test_detection_goes_only_to_providers_that_detect() -> None:
    offline = ScriptedProvider("offline", {("en", "es")})
    online = ScriptedProvider("online", {("en", "es"), ("zh", "es")}, detects=True)
    service = await started(offline, online)
    translation = await service.translate("你好", None, "es")
    assert translation.provider == "online" and offline.calls == []


async def test_same_text_at_the_same_time_is_one_provider_call() -> None:
    provider = ScriptedProvider("p", {("en", "es")})
    provider.delay = 0.05
    service = await started(provider)
    first, second = await asyncio.gather(service.translate("hi", "en", "es"),
                                         service.translate("hi", "en", "es"))
    assert first == second and len(provider.calls) == 1


async def test_glossary_terms_reach_the_provider_as_placeholders() -> None:
    provider = ScriptedProvider("p", {("en", "es")})
    service = await started(provider, glossary=Glossary())
    translation = await service.translate("price fob", "en", "es")
    # FOB is matched as written only ("fob" is a word here): nothing to protect.
    assert translation.text == "es:PRICE FOB"
    translation = await service.translate("price FOB", "en", "es")
    assert "FOB" not in provider.calls[-1][0]
    assert translation.text.endswith("FOB")


async def test_a_provider_that_cannot_start_is_left_out_and_said_so() -> None:
    down = ScriptedProvider("down", {("en", "es")}, fails_to_start=True)
    up = ScriptedProvider("up", {("en", "es")})
    service = await started(down, up)
    assert service.details()["providers"]["down"] == {"unavailable": "connection refused"}
    assert service.details()["providers"]["up"]["pairs"] == ["en-es"]
    assert (await service.translate("x", "en", "es")).provider == "up"


async def test_a_cache_that_fails_costs_a_call_not_the_message() -> None:
    class BrokenCache:
        async def get(self, key: str) -> Translation | None:
            raise ConnectionError("redis is down")

        async def get_many(self, keys: object) -> list[Translation | None]:
            raise ConnectionError("redis is down")

        async def put(self, key: str, translation: Translation) -> None:
            raise ConnectionError("redis is down")

    provider = ScriptedProvider("p", {("en", "es")})
    service = await started(provider, cache=BrokenCache())
    assert (await service.translate("x", "en", "es")).text == "es:X"
    assert await service.cached_many([("x", "en")], "es") == [None]


async def test_the_memory_cache_keeps_the_most_recent() -> None:
    cache = MemoryTranslationCache(entries=2)
    one, two, three = (Translation(t, "en", "es", "p") for t in ("1", "2", "3"))
    await cache.put("a", one)
    await cache.put("b", two)
    assert await cache.get("a") == one  # a is now the most recent
    await cache.put("c", three)
    assert await cache.get("b") is None and await cache.get("a") == one
    assert cache_key("p", None, "es", "x") != cache_key("p", "en", "es", "x")


@pytest.mark.parametrize("text", ["", "  ", "x" * 5001])
async def test_nothing_to_translate_or_too_much_is_refused(text: str) -> None:
    provider = ScriptedProvider("p", {("en", "es")})
    service = await started(provider)
    with pytest.raises(TranslationError) as refused:
        await service.translate(text, "en", "es")
    assert refused.value.kind is FailureKind.REJECTED and provider.calls == []


async def test_a_join_reads_what_was_translated_before_in_one_go_from_any_provider() -> None:
    first = ScriptedProvider("first", {("en", "es")})
    second = ScriptedProvider("second", {("en", "es"), ("de", "es")})
    service = await started(first, second)
    first.failing = FailureKind.UNAVAILABLE
    await service.translate("hi", "en", "es")  # made by the second provider
    await service.translate("hallo", "de", "es")
    calls = len(second.calls)
    found = await service.cached_many([("hi", "en"), ("never", "en"), ("hallo", "de")], "es")
    assert [t and t.text for t in found] == ["es:HI", None, "es:HALLO"]
    assert len(second.calls) == calls  # from the cache only


@pytest.mark.redis
async def test_the_redis_cache_reads_many_keys_at_once(redis_url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        cache = RedisTranslationCache(client)
        one = Translation("uno", "en", "es", "p")
        await cache.put("k1", one)
        assert await cache.get_many(["k1", "missing"]) == [one, None]
        assert await cache.get_many([]) == []
    finally:
        await client.aclose()
