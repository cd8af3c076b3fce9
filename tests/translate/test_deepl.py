"""The DeepL provider against a local server that speaks DeepL's documented v2 API and checks
every request it is sent (the key in its header, the JSON it carries)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import MappingProxyType

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from ports import free_port

from translate.deepl import DeepLTranslator
from translate.provider import FailureKind, LanguagePair, Translation, TranslationError

API_KEY = "0123abcd-4567-89ef-0123-456789abcdef:fx"
SOURCE_LANGUAGES = (
    {"language": "EN", "name": "English"},
    {"language": "ES", "name": "Spanish"},
    {"language": "ZH", "name": "Chinese"},
)
TARGET_LANGUAGES = (
    {"language": "EN-GB", "name": "English (British)", "supports_formality": False},
    {"language": "EN-US", "name": "English (American)", "supports_formality": False},
    {"language": "ES", "name": "Spanish", "supports_formality": True},
    {"language": "ZH", "name": "Chinese (simplified)", "supports_formality": False},
    {"language": "ZH-HANS", "name": "Chinese (simplified)", "supports_formality": False},
    {"language": "ZH-HANT", "name": "Chinese (traditional)", "supports_formality": False},
)
# What the fake server knows: (source_lang, target_lang, text) → translation, text → language.
TRANSLATIONS = MappingProxyType(
    {
        ("EN", "ES", "Good morning"): "Buenos días",
        ("EN", "ZH-HANS", "Good morning"): "早上好",
        ("ES", "EN-US", "Buenos días"): "Good morning",
        ("ZH", "EN-US", "早上好"): "Good morning",
    }
)
DETECTIONS = MappingProxyType({"Good morning": "EN", "Buenos días": "ES", "早上好": "ZH"})


def refuse(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


@dataclass
class FakeDeepL:
    """DeepL's API. A request that is not what the documentation describes is answered 400
    with what is wrong, so that the test which sent it fails saying so."""

    fail_with: tuple[int, str] | None = None  # status and {"message": ...} text
    raw_answer: tuple[str, str] | None = None  # body and content type, answered with 200
    hang: bool = False  # /v2/translate and /v2/languages never answer
    languages_asked: list[str] = field(default_factory=list)
    received: list[dict[str, object]] = field(default_factory=list)
    hung_request_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None
    url: str = ""

    async def start(self) -> None:
        app = web.Application(middlewares=[self.check_key])
        app.router.add_get("/v2/languages", self.list_languages)
        app.router.add_post("/v2/translate", self.translate)
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()
        self.url = f"http://127.0.0.1:{self.server.port}"

    async def stop(self) -> None:
        self.release.set()  # hung handlers return, so that the server stops at once
        if self.server is not None:
            await self.server.close()

    @web.middleware
    async def check_key(self, request: web.Request, handler: web.Handler) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"DeepL-Auth-Key {API_KEY}":
            return refuse(403, "Authorization failure, check auth_key")
        return await handler(request)

    async def never_answer(self) -> None:
        self.hung_request_arrived.set()
        await self.release.wait()

    async def list_languages(self, request: web.Request) -> web.Response:
        if self.hang:
            await self.never_answer()
        kind = request.query.get("type")
        self.languages_asked.append(str(kind))
        if kind == "source":
            return web.json_response(list(SOURCE_LANGUAGES))
        if kind == "target":
            return web.json_response(list(TARGET_LANGUAGES))
        return refuse(400, f"fake: type {kind}")

    async def translate(self, request: web.Request) -> web.Response:
        if self.hang:
            await self.never_answer()
        if request.content_type != "application/json":
            return refuse(400, f"fake: content type {request.content_type}")
        body = await request.json()
        if not isinstance(body, dict):
            return refuse(400, "fake: body is no JSON object")
        if not {"text", "target_lang"} <= set(body) <= {"text", "target_lang", "source_lang"}:
            return refuse(400, f"fake: keys {sorted(body)}")
        texts = body["text"]
        if not isinstance(texts, list) or len(texts) != 1 or not isinstance(texts[0], str):
            return refuse(400, "fake: text is not a list of one text")
        if body["target_lang"] not in {entry["language"] for entry in TARGET_LANGUAGES}:
            return refuse(400, "Value for 'target_lang' not supported.")
        source = body.get("source_lang")
        if source is not None and source not in {entry["language"] for entry in SOURCE_LANGUAGES}:
            return refuse(400, "Value for 'source_lang' not supported.")
        self.received.append(body)
        if self.fail_with is not None:
            return refuse(*self.fail_with)
        if self.raw_answer is not None:
            text, content_type = self.raw_answer
            return web.Response(text=text, content_type=content_type)
        read = source or DETECTIONS.get(texts[0], "EN")
        translated = TRANSLATIONS.get((read, body["target_lang"], texts[0]))
        if translated is None:
            return refuse(400, f"fake: no translation of {texts[0]!r} {read}→{body['target_lang']}")
        return web.json_response(
            {"translations": [{"detected_source_language": read, "text": translated}]}
        )


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepL]:
    server = FakeDeepL()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def translator(fake: FakeDeepL) -> AsyncIterator[DeepLTranslator]:
    provider = DeepLTranslator(API_KEY, fake.url)
    yield provider
    await provider.close()


def answer_with(text: str, detected: str | None = "EN") -> tuple[str, str]:
    translation: dict[str, str] = {"text": text}
    if detected is not None:
        translation["detected_source_language"] = detected
    return json.dumps({"translations": [translation]}), "application/json"


async def test_start_pairs_every_source_with_every_other_target(
    fake: FakeDeepL, translator: DeepLTranslator
) -> None:
    assert translator.pairs == frozenset()
    await translator.start()
    assert translator.pairs == frozenset(
        LanguagePair(source, target)
        for source in ("en", "es", "zh")
        for target in ("en", "es", "zh")
        if source != target
    )
    assert fake.languages_asked == ["source", "target"]
    assert translator.detects
    assert translator.name == "deepl"


async def test_translates_from_a_given_source_with_the_documented_request(
    fake: FakeDeepL, translator: DeepLTranslator
) -> None:
    await translator.start()
    translation = await translator.translate("Good morning", "en", "es")
    assert translation == Translation("Buenos días", "en", "es", "deepl")
    assert fake.received == [{"text": ["Good morning"], "target_lang": "ES", "source_lang": "EN"}]


@pytest.mark.parametrize(
    ("text", "source", "target", "target_lang"),
    [("Good morning", "en", "zh", "ZH-HANS"), ("Buenos días", "es", "en", "EN-US")],
)
async def test_targets_deepl_wants_a_variant_of_are_sent_with_it(
    fake: FakeDeepL,
    translator: DeepLTranslator,
    text: str,
    source: str,
    target: str,
    target_lang: str,
) -> None:
    await translator.start()
    await translator.translate(text, source, target)
    assert fake.received[-1]["target_lang"] == target_lang


async def test_detects_the_source_when_none_is_given(
    fake: FakeDeepL, translator: DeepLTranslator
) -> None:
    await translator.start()
    translation = await translator.translate("早上好", None, "en")
    assert translation == Translation("Good morning", "zh", "en", "deepl")
    assert fake.received == [{"text": ["早上好"], "target_lang": "EN-US"}]


async def test_a_detection_deepl_does_not_report_is_unavailable(
    fake: FakeDeepL, translator: DeepLTranslator
) -> None:
    await translator.start()
    fake.raw_answer = answer_with("Good morning", detected=None)
    with pytest.raises(TranslationError) as failure:
        await translator.translate("Buenos días", None, "en")
    assert failure.value.kind is FailureKind.UNAVAILABLE


@pytest.mark.parametrize(("source", "target"), [("en", "fr"), ("fr", "en"), (None, "de")])
async def test_a_pair_it_lacks_is_unsupported_without_asking_deepl(
    fake: FakeDeepL, translator: DeepLTranslator, source: str | None, target: str
) -> None:
    await translator.start()
    with pytest.raises(TranslationError) as failure:
        await translator.translate("Good morning", source, target)
    assert failure.value.kind is FailureKind.UNSUPPORTED
    assert fake.received == []


async def test_a_wrong_key_fails_start_as_auth(fake: FakeDeepL) -> None:
    provider = DeepLTranslator("not-the-key", fake.url)
    try:
        with pytest.raises(TranslationError) as failure:
            await provider.start()
    finally:
        await provider.close()
    assert failure.value.kind is FailureKind.AUTH
    assert "Authorization failure" in str(failure.value)


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (400, "Value for 'target_lang' not supported.", FailureKind.REJECTED),
        (403, "Authorization failure, check auth_key", FailureKind.AUTH),
        (413, "Request Entity Too Large", FailureKind.REJECTED),
        (429, "Too many requests", FailureKind.RATE_LIMITED),
        (456, "Quota exceeded", FailureKind.QUOTA),
        (500, "Internal server error", FailureKind.UNAVAILABLE),
        (503, "Service unavailable", FailureKind.UNAVAILABLE),
        (529, "Too many requests", FailureKind.RATE_LIMITED),
    ],
)
async def test_an_error_status_is_its_failure_kind_with_deepls_message(
    fake: FakeDeepL,
    translator: DeepLTranslator,
    status: int,
    message: str,
    kind: FailureKind,
) -> None:
    await translator.start()
    fake.fail_with = (status, message)
    with pytest.raises(TranslationError) as failure:
        await translator.translate("Good morning", "en", "es")
    assert failure.value.kind is kind
    assert str(failure.value) == f"deepl: HTTP {status}: {message}"


async def test_a_request_over_128_kib_is_refused_before_sending(
    fake: FakeDeepL, translator: DeepLTranslator
) -> None:
    await translator.start()
    with pytest.raises(TranslationError) as failure:
        await translator.translate("a" * 128 * 1024, "en", "es")
    assert failure.value.kind is FailureKind.REJECTED
    assert fake.received == []


async def test_the_limit_counts_utf8_bytes_not_escapes(
    fake: FakeDeepL, translator: DeepLTranslator
) -> None:
    await translator.start()
    fake.raw_answer = answer_with("Good morning" * 1000, detected="ZH")
    text = "早" * 40_000  # 120,000 bytes in UTF-8, 240,000 as \u escapes
    await translator.translate(text, "zh", "en")
    assert fake.received[-1]["text"] == [text]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        answer_with(""),
        answer_with("  "),
        ('{"translations": []}', "application/json"),
        ('{"translations": ["Buenos días"]}', "application/json"),
        ("{}", "application/json"),
        ("<html>Bad gateway</html>", "text/html"),
    ],
)
async def test_an_answer_without_a_translation_is_unavailable(
    fake: FakeDeepL, translator: DeepLTranslator, body: str, content_type: str
) -> None:
    await translator.start()
    fake.raw_answer = (body, content_type)
    with pytest.raises(TranslationError) as failure:
        await translator.translate("Good morning", "en", "es")
    assert failure.value.kind is FailureKind.UNAVAILABLE


async def test_an_unanswered_request_ends_cleanly_at_the_callers_timeout(
    fake: FakeDeepL, translator: DeepLTranslator
) -> None:
    await translator.start()
    fake.hang = True
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await translator.translate("Good morning", "en", "es")
    assert fake.hung_request_arrived.is_set()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    fake.hang = False  # the provider is still usable
    assert (await translator.translate("Good morning", "en", "es")).text == "Buenos días"


async def test_start_against_a_closed_port_is_unavailable_at_once() -> None:
    provider = DeepLTranslator(API_KEY, f"http://127.0.0.1:{free_port()}")
    began = time.monotonic()
    try:
        with pytest.raises(TranslationError) as failure:
            await provider.start()
    finally:
        await provider.close()
    assert failure.value.kind is FailureKind.UNAVAILABLE
    assert time.monotonic() - began < 5
    assert provider.pairs == frozenset()


async def test_start_gives_up_on_a_server_that_never_answers(fake: FakeDeepL) -> None:
    fake.hang = True
    provider = DeepLTranslator(API_KEY, fake.url, start_timeout=0.2)
    began = time.monotonic()
    try:
        with pytest.raises(TranslationError) as failure:
            await provider.start()
    finally:
        await provider.close()
    assert failure.value.kind is FailureKind.UNAVAILABLE
    assert fake.hung_request_arrived.is_set()
    assert time.monotonic() - began < 2


async def test_a_server_gone_after_start_is_unavailable(
    fake: FakeDeepL, translator: DeepLTranslator
) -> None:
    await translator.start()
    await fake.stop()
    with pytest.raises(TranslationError) as failure:
        await translator.translate("Good morning", "en", "es")
    assert failure.value.kind is FailureKind.UNAVAILABLE


async def test_the_key_is_in_no_message_log_or_repr(
    fake: FakeDeepL, translator: DeepLTranslator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await translator.start()
    fake.fail_with = (403, "Authorization failure, check auth_key")
    failures: list[BaseException] = []
    with pytest.raises(TranslationError) as refused:
        await translator.translate("Good morning", "en", "es")
    failures.append(refused.value)
    await fake.stop()
    with pytest.raises(TranslationError) as unreachable:
        await translator.translate("Good morning", "en", "es")
    failures.append(unreachable.value)
    told = [caplog.text, repr(translator)]
    for failure in failures:
        cause: BaseException | None = failure
        while cause is not None:
            told += [str(cause), repr(cause)]
            cause = cause.__cause__
    assert not [text for text in told if API_KEY in text]


async def test_a_given_session_stays_open_and_a_made_one_is_closed(fake: FakeDeepL) -> None:
    made: list[aiohttp.ClientSession] = []

    def make_session() -> aiohttp.ClientSession:
        made.append(aiohttp.ClientSession())
        return made[-1]

    async with aiohttp.ClientSession() as given:
        borrowing = DeepLTranslator(API_KEY, fake.url, session=given)
        owning = DeepLTranslator(API_KEY, fake.url, session_factory=make_session)
        for provider in (borrowing, owning):
            await provider.start()
            assert (await provider.translate("Good morning", "en", "es")).text == "Buenos días"
            await provider.close()
        assert not given.closed
        assert len(made) == 1 and made[0].closed
    with pytest.raises(TranslationError) as failure:
        await owning.translate("Good morning", "en", "es")
    assert failure.value.kind is FailureKind.UNAVAILABLE
