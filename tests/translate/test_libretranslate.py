"""The LibreTranslate provider against a local server that speaks LibreTranslate's documented
API and checks every request it is sent."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import MappingProxyType

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from ports import free_port

from translate.libretranslate import LibreTranslateTranslator
from translate.provider import FailureKind, LanguagePair, Translation, TranslationError

API_KEY = "lt-key-0123"
# What the fake server knows: (source, target, text) → translation, and text → language.
TRANSLATIONS = MappingProxyType(
    {
        ("en", "es", "Good morning"): "Buenos días",
        ("en", "zh", "Good morning"): "早上好",
        ("en", "zh-Hans", "Good morning"): "早上好",
        ("es", "en", "Buenos días"): "Good morning",
        ("zt", "en", "早安"): "Good morning",
    }
)
DETECTIONS = MappingProxyType({"Good morning": "en", "Buenos días": "es", "早安": "zt"})


def languages_listed(with_targets: bool = True) -> list[dict[str, object]]:
    """A /languages answer: English to Spanish and both Chinese scripts, and back."""
    listed: list[dict[str, object]] = [
        {"code": "en", "name": "English", "targets": ["en", "es", "zh", "zt"]},
        {"code": "es", "name": "Spanish", "targets": ["en", "es"]},
        {"code": "zh", "name": "Chinese", "targets": ["en", "zh"]},
        {"code": "zt", "name": "Chinese (traditional)", "targets": ["en", "zt"]},
    ]
    if not with_targets:
        for entry in listed:
            del entry["targets"]
    return listed


def refuse(status: int, error: str) -> web.Response:
    return web.json_response({"error": error}, status=status)


@dataclass
class FakeLibreTranslate:
    """A LibreTranslate server. A request that is not what the documentation describes is
    answered 400 with what is wrong, so that the test which sent it fails saying so."""

    api_key: str | None = API_KEY
    languages: list[dict[str, object]] = field(default_factory=languages_listed)
    fail_with: tuple[int, str] | None = None  # status and {"error": ...} text
    raw_answer: tuple[str, str] | None = None  # body and content type, answered with 200
    hang: bool = False  # /translate and /languages never answer
    received: list[dict[str, object]] = field(default_factory=list)
    hung_request_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None
    url: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/languages", self.list_languages)
        app.router.add_post("/translate", self.translate)
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()
        self.url = f"http://127.0.0.1:{self.server.port}"

    async def stop(self) -> None:
        self.release.set()  # hung handlers return, so that the server stops at once
        if self.server is not None:
            await self.server.close()

    async def never_answer(self) -> None:
        self.hung_request_arrived.set()
        await self.release.wait()

    async def list_languages(self, request: web.Request) -> web.Response:
        if self.hang:
            await self.never_answer()
        return web.json_response(self.languages)

    async def translate(self, request: web.Request) -> web.Response:
        if self.hang:
            await self.never_answer()
        if request.content_type != "application/json":
            return refuse(400, f"fake: content type {request.content_type}")
        body = await request.json()
        if not isinstance(body, dict):
            return refuse(400, "fake: body is no JSON object")
        expected_keys = {"q", "source", "target", "format"}
        if self.api_key is not None:
            expected_keys.add("api_key")
        if set(body) != expected_keys:
            return refuse(400, f"fake: keys {sorted(body)}, expected {sorted(expected_keys)}")
        if self.api_key is not None and body["api_key"] != self.api_key:
            return refuse(403, "Invalid API key")
        self.received.append(body)
        listed = {entry["code"] for entry in self.languages}
        if body["format"] != "text" or body["target"] not in listed:
            return refuse(400, f"fake: format {body['format']}, target {body['target']}")
        if body["source"] != "auto" and body["source"] not in listed:
            return refuse(400, f"fake: {body['source']} is not supported")
        if self.fail_with is not None:
            return refuse(*self.fail_with)
        if self.raw_answer is not None:
            text, content_type = self.raw_answer
            return web.Response(text=text, content_type=content_type)
        auto = body["source"] == "auto"
        source = DETECTIONS.get(body["q"], "en") if auto else body["source"]
        translated = TRANSLATIONS.get((source, body["target"], body["q"]))
        if translated is None:
            return refuse(400, f"fake: no translation of {body['q']!r} {source}→{body['target']}")
        answer: dict[str, object] = {"translatedText": translated}
        if auto:
            answer["detectedLanguage"] = {"language": source, "confidence": 90}
        return web.json_response(answer)


@pytest.fixture
async def fake() -> AsyncIterator[FakeLibreTranslate]:
    server = FakeLibreTranslate()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def translator(fake: FakeLibreTranslate) -> AsyncIterator[LibreTranslateTranslator]:
    provider = LibreTranslateTranslator(fake.url, api_key=API_KEY)
    yield provider
    await provider.close()


def pairs(*names: str) -> frozenset[LanguagePair]:
    return frozenset(LanguagePair(*name.split("-")) for name in names)


async def test_start_reads_the_pairs_each_language_translates_to(
    translator: LibreTranslateTranslator,
) -> None:
    assert translator.pairs == frozenset()
    await translator.start()
    # zt (traditional Chinese) is never asked for: zh is Chinese.
    assert translator.pairs == pairs("en-es", "en-zh", "es-en", "zh-en")
    assert translator.detects
    assert translator.name == "libretranslate"


async def test_a_server_without_targets_translates_every_listed_language_to_every_other(
    fake: FakeLibreTranslate, translator: LibreTranslateTranslator
) -> None:
    fake.languages = languages_listed(with_targets=False)
    await translator.start()
    assert translator.pairs == frozenset(
        LanguagePair(source, target)
        for source, target in itertools.permutations(["en", "es", "zh"], 2)
    )


async def test_the_plain_script_is_asked_for_when_a_server_names_both(
    fake: FakeLibreTranslate, translator: LibreTranslateTranslator
) -> None:
    fake.languages = [
        {"code": "en", "name": "English", "targets": ["zh-Hant", "zh-Hans"]},
        {"code": "zh-Hant", "name": "Chinese (Traditional)", "targets": ["en"]},
        {"code": "zh-Hans", "name": "Chinese", "targets": ["en"]},
    ]
    await translator.start()
    assert translator.pairs == pairs("en-zh", "zh-en")
    translation = await translator.translate("Good morning", "en", "zh")
    assert translation.text == "早上好"
    assert fake.received[-1]["target"] == "zh-Hans"


async def test_translates_from_a_given_source_with_the_documented_request(
    fake: FakeLibreTranslate, translator: LibreTranslateTranslator
) -> None:
    await translator.start()
    translation = await translator.translate("Good morning", "en", "es")
    assert translation == Translation("Buenos días", "en", "es", "libretranslate")
    assert fake.received == [
        {
            "q": "Good morning",
            "source": "en",
            "target": "es",
            "format": "text",
            "api_key": API_KEY,
        }
    ]


async def test_no_api_key_is_sent_when_none_is_configured(fake: FakeLibreTranslate) -> None:
    fake.api_key = None
    provider = LibreTranslateTranslator(fake.url)
    try:
        await provider.start()
        translation = await provider.translate("Good morning", "en", "zh")
    finally:
        await provider.close()
    assert translation.text == "早上好"
    assert "api_key" not in fake.received[-1]


async def test_a_wrong_api_key_is_an_auth_failure(fake: FakeLibreTranslate) -> None:
    provider = LibreTranslateTranslator(fake.url, api_key="not-the-key")
    try:
        await provider.start()
        with pytest.raises(TranslationError) as failure:
            await provider.translate("Good morning", "en", "es")
    finally:
        await provider.close()
    assert failure.value.kind is FailureKind.AUTH
    assert "Invalid API key" in str(failure.value)


@pytest.mark.parametrize(
    ("text", "detected"),
    [("Buenos días", "es"), ("早安", "zh")],  # the server says zt: still Chinese
)
async def test_detects_the_source_when_none_is_given(
    fake: FakeLibreTranslate, translator: LibreTranslateTranslator, text: str, detected: str
) -> None:
    await translator.start()
    translation = await translator.translate(text, None, "en")
    assert translation == Translation("Good morning", detected, "en", "libretranslate")
    assert fake.received[-1]["source"] == "auto"


@pytest.mark.parametrize(("source", "target"), [("es", "zh"), ("en", "fr"), (None, "fr")])
async def test_a_pair_it_lacks_is_unsupported_without_asking_the_server(
    fake: FakeLibreTranslate,
    translator: LibreTranslateTranslator,
    source: str | None,
    target: str,
) -> None:
    await translator.start()
    with pytest.raises(TranslationError) as failure:
        await translator.translate("Good morning", source, target)
    assert failure.value.kind is FailureKind.UNSUPPORTED
    assert fake.received == []


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, "Invalid request: missing q parameter", FailureKind.REJECTED),
        (403, "Too many request limits violations", FailureKind.AUTH),
        (429, "Slowdown: 30 per 1 minute", FailureKind.RATE_LIMITED),
        (500, "Cannot translate text: argos failed", FailureKind.UNAVAILABLE),
        (503, "Service Unavailable", FailureKind.UNAVAILABLE),
    ],
)
async def test_an_error_status_is_its_failure_kind_with_the_servers_message(
    fake: FakeLibreTranslate,
    translator: LibreTranslateTranslator,
    status: int,
    error: str,
    kind: FailureKind,
) -> None:
    await translator.start()
    fake.fail_with = (status, error)
    with pytest.raises(TranslationError) as failure:
        await translator.translate("Good morning", "en", "es")
    assert failure.value.kind is kind
    assert str(failure.value) == f"libretranslate: HTTP {status}: {error}"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"translatedText": ""}', "application/json"),
        ('{"translatedText": "  "}', "application/json"),
        ("{}", "application/json"),
        ('{"translatedText": ["Buenos días"]}', "application/json"),
        ("[]", "application/json"),
        ("<html>Bad gateway</html>", "text/html"),
    ],
)
async def test_an_answer_without_a_translation_is_unavailable(
    fake: FakeLibreTranslate, translator: LibreTranslateTranslator, body: str, content_type: str
) -> None:
    await translator.start()
    fake.raw_answer = (body, content_type)
    with pytest.raises(TranslationError) as failure:
        await translator.translate("Good morning", "en", "es")
    assert failure.value.kind is FailureKind.UNAVAILABLE


async def test_a_detection_the_server_does_not_report_is_unavailable(
    fake: FakeLibreTranslate, translator: LibreTranslateTranslator
) -> None:
    await translator.start()
    fake.raw_answer = ('{"translatedText": "Good morning"}', "application/json")
    with pytest.raises(TranslationError) as failure:
        await translator.translate("Buenos días", None, "en")
    assert failure.value.kind is FailureKind.UNAVAILABLE


async def test_an_unanswered_request_ends_cleanly_at_the_callers_timeout(
    fake: FakeLibreTranslate, translator: LibreTranslateTranslator
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
    provider = LibreTranslateTranslator(f"http://127.0.0.1:{free_port()}")
    began = time.monotonic()
    try:
        with pytest.raises(TranslationError) as failure:
            await provider.start()
    finally:
        await provider.close()
    assert failure.value.kind is FailureKind.UNAVAILABLE
    assert time.monotonic() - began < 5
    assert provider.pairs == frozenset()


async def test_start_gives_up_on_a_server_that_never_answers(fake: FakeLibreTranslate) -> None:
    fake.hang = True
    provider = LibreTranslateTranslator(fake.url, api_key=API_KEY, start_timeout=0.2)
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
    fake: FakeLibreTranslate, translator: LibreTranslateTranslator
) -> None:
    await translator.start()
    await fake.stop()
    with pytest.raises(TranslationError) as failure:
        await translator.translate("Good morning", "en", "es")
    assert failure.value.kind is FailureKind.UNAVAILABLE


async def test_a_given_session_stays_open_and_a_made_one_is_closed(
    fake: FakeLibreTranslate,
) -> None:
    made: list[aiohttp.ClientSession] = []

    def make_session() -> aiohttp.ClientSession:
        made.append(aiohttp.ClientSession())
        return made[-1]

    async with aiohttp.ClientSession() as given:
        borrowing = LibreTranslateTranslator(fake.url, API_KEY, session=given)
        owning = LibreTranslateTranslator(fake.url, API_KEY, session_factory=make_session)
        for provider in (borrowing, owning):
            await provider.start()
            assert (await provider.translate("Good morning", "en", "es")).text == "Buenos días"
            await provider.close()
        assert not given.closed
        assert len(made) == 1 and made[0].closed
    with pytest.raises(TranslationError) as failure:
        await owning.translate("Good morning", "en", "es")
    assert failure.value.kind is FailureKind.UNAVAILABLE
