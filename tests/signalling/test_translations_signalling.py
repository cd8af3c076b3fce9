"""Chat and questions cross languages: the original at once, each reader's translation after.

Against in-process servers: a local LibreTranslate that answers in its documented shapes (and
fails when told), and the real Apertium for English to Spanish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from socketio_media import Participant

from config import load_config
from rooms import Role, RoomKind
from rooms.model import Room
from signalling.app import create_app
from signalling.keys import STORE, TOKENS

ServerFactory = Callable[..., Awaitable[TestServer]]
ENV = {"FAIRWIRE_API_KEY": "test-api-key-of-some-length", "FAIRWIRE_DATA_DIR": "/tmp/fw"}
LANGUAGES = ("en", "es", "zh", "de")


@dataclass
class FakeLibreTranslate:
    """LibreTranslate's /languages and /translate; ``down`` makes /translate answer 500."""

    down: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/languages", self.languages)
        app.router.add_post("/translate", self.translate)
        return app

    async def languages(self, request: web.Request) -> web.Response:
        return web.json_response([
            {"code": code, "name": code, "targets": [t for t in LANGUAGES if t != code]}
            for code in LANGUAGES])

    async def translate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(body)
        if self.down:
            return web.json_response({"error": "the model is loading"}, status=500)
        return web.json_response({"translatedText": f"[{body['target']}] {body['q']}"})


@pytest.fixture
async def libretranslate(aiohttp_server: ServerFactory) -> AsyncIterator[
        tuple[FakeLibreTranslate, TestServer]]:
    fake = FakeLibreTranslate()
    yield fake, await aiohttp_server(fake.app())


async def start(aiohttp_server: ServerFactory, **env: str) -> TestServer:
    server = await aiohttp_server(create_app(load_config(environ=ENV | env)))
    await server.app[STORE].create_room(Room(  # type: ignore[index]
        id="booth", name="Booth", kind=RoomKind.LIVESTREAM, owner="acme"))
    return server


async def start_translating(aiohttp_server: ServerFactory, libretranslate: TestServer
                            ) -> TestServer:
    """A node whose one translator is the local LibreTranslate."""
    return await start(aiohttp_server, FAIRWIRE_TRANSLATORS="libretranslate",
                       FAIRWIRE_LIBRETRANSLATE_URL=str(libretranslate.make_url("")))


async def reader(server: TestServer, people: list[Participant], identity: str, role: Role,
                 language: str) -> Participant:
    token = server.app[TOKENS].issue_link(  # type: ignore[index]
        room="booth", identity=identity, name=identity.title(), role=role,
        language=language).token
    person = Participant(server, identity, role, room="booth", token=token)
    people.append(person)
    person.joined = await person.connect()  # type: ignore[attr-defined]
    return person


def translations_of(person: Participant, item_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for event, data in person.events:
        if event == "room-event" and data["type"] == "translation" and data["id"] == item_id:
            found.update(data["translations"])
    return found


async def until(check: Callable[[], bool], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.02)


async def test_a_message_reaches_every_language_once_each_and_a_repeat_hits_the_cache(
    aiohttp_server: ServerFactory, people: list[Participant],
    libretranslate: tuple[FakeLibreTranslate, TestServer],
) -> None:
    fake, fake_server = libretranslate
    server = await start_translating(aiohttp_server, fake_server)
    alice = await reader(server, people, "alice", Role.EXHIBITOR, "en")
    readers = [await reader(server, people, f"viewer-{lang}-{n}", Role.VISITOR, lang)
               for lang in ("es", "zh", "de") for n in range(2)]
    reply = await alice.sio.call("chat-send", {"text": "Our booth opens at nine"})
    message = reply["message"]
    assert message["language"] == "en"
    for person in readers:
        await until(lambda p=person: len(translations_of(p, message["id"])) == 3)
    es = translations_of(readers[0], message["id"])["es"]
    assert es == {"text": "[es] Our booth opens at nine", "provider": "libretranslate",
                  "from": "en"}
    # Six readers in three languages: three provider calls, one per language.
    assert sorted(call["target"] for call in fake.calls) == ["de", "es", "zh"]
    assert all(call["source"] == "en" for call in fake.calls)
    second = (await alice.sio.call("chat-send", {"text": "Our booth opens at nine"}))["message"]
    await until(lambda: len(translations_of(readers[0], second["id"])) == 3)
    assert len(fake.calls) == 3  # the same text again: from the cache
    # Someone who comes in later finds the translation of the recent messages in their join.
    late = await reader(server, people, "late-es", Role.VISITOR, "es")
    assert late.joined["translations"][message["id"]]["text"] == (  # type: ignore[attr-defined]
        "[es] Our booth opens at nine")


async def test_the_original_goes_out_at_once_and_the_translation_follows_a_recovery(
    aiohttp_server: ServerFactory, people: list[Participant],
    libretranslate: tuple[FakeLibreTranslate, TestServer],
) -> None:
    fake, fake_server = libretranslate
    fake.down = True
    server = await start_translating(aiohttp_server, fake_server)
    alice = await reader(server, people, "alice", Role.EXHIBITOR, "en")
    bob = await reader(server, people, "bob", Role.VISITOR, "es")
    reply = await alice.sio.call("chat-send", {"text": "Samples ship on Monday"})
    message = reply["message"]
    posted = await bob.wait_event("room-event", lambda d: d["type"] == "chat")
    assert posted["message"]["text"] == "Samples ship on Monday"
    await until(lambda: len(fake.calls) >= 1)
    assert translations_of(bob, message["id"]) == {}
    async with ClientSession() as client:
        async with client.get(server.make_url("/metrics")) as response:
            metrics = await response.text()
    assert ('fairwire_translation_failures_total{kind="unavailable",provider="libretranslate"}'
            in metrics)
    fake.down = False  # the provider recovers: the retry delivers
    await until(lambda: "es" in translations_of(bob, message["id"]))
    assert translations_of(bob, message["id"])["es"]["text"] == "[es] Samples ship on Monday"


async def test_an_english_question_reaches_a_spanish_viewer_translated_by_apertium(
    aiohttp_server: ServerFactory, people: list[Participant],
) -> None:
    server = await start(aiohttp_server, FAIRWIRE_TRANSLATORS="apertium")
    async with ClientSession() as client:
        async with client.get(server.make_url("/readyz")) as response:
            ready = await response.json()
    assert "en-es" in ready["translation"]["providers"]["apertium"]["pairs"]
    alice = await reader(server, people, "alice", Role.VISITOR, "en")
    maria = await reader(server, people, "maria", Role.VISITOR, "es")
    text = "What is the price of the machine?"
    question = (await alice.sio.call("question-ask", {"text": text}))["question"]
    await until(lambda: "es" in translations_of(maria, question["id"]))
    spanish = translations_of(maria, question["id"])["es"]
    assert spanish["provider"] == "apertium"
    assert "precio" in spanish["text"].lower() and "máquina" in spanish["text"].lower()
    # The original stays as it was asked, beside the translation.
    asked = await maria.wait_event("room-event", lambda d: d["type"] == "question")
    assert asked["question"]["text"] == text and asked["question"]["language"] == "en"


async def test_a_question_hidden_before_its_translation_arrives_stays_hidden(
    aiohttp_server: ServerFactory, people: list[Participant],
    libretranslate: tuple[FakeLibreTranslate, TestServer],
) -> None:
    fake, fake_server = libretranslate
    fake.down = True
    server = await start_translating(aiohttp_server, fake_server)
    owner = await reader(server, people, "acme", Role.EXHIBITOR, "en")
    alice = await reader(server, people, "alice", Role.VISITOR, "en")
    bob = await reader(server, people, "bob", Role.VISITOR, "es")
    hidden = (await alice.sio.call("question-ask", {"text": "Call me on 555-0100"}))["question"]
    kept = (await alice.sio.call("question-ask", {"text": "Is there a warranty?"}))["question"]
    await until(lambda: len(fake.calls) >= 2)
    reply = await owner.sio.call("question-hide", {"id": hidden["id"], "hidden": True})
    assert reply["question"]["hidden"] is True
    fake.down = False
    await until(lambda: "es" in translations_of(bob, kept["id"]))
    # The retry translated both; only the one still shown was announced.
    assert translations_of(bob, hidden["id"]) == {}
    assert not any(hidden["text"] in str(data) for event, data in bob.events
                   if event == "room-event" and data["type"] == "translation")
