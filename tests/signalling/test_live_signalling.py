"""Live Q&A, chat and figures over socket.io and REST, against in-process servers (a real Redis
for the restart test)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from socketio_media import Participant

from config import load_config
from rooms import Role, RoomKind
from rooms.model import Room
from signalling.app import create_app
from signalling.keys import STORE, TOKENS

ServerFactory = Callable[..., Awaitable[TestServer]]
API_KEY = "test-api-key-of-some-length"
ENV = {"FAIRWIRE_API_KEY": API_KEY, "FAIRWIRE_DATA_DIR": "/tmp/fw"}


async def start(aiohttp_server: ServerFactory, **env: str) -> TestServer:
    server = await aiohttp_server(create_app(load_config(environ=ENV | env)))
    if await server.app[STORE].get_room("booth") is None:  # type: ignore[index]
        await server.app[STORE].create_room(Room(  # type: ignore[index]
            id="booth", name="Booth", kind=RoomKind.LIVESTREAM, owner="acme"))
    return server


async def joined(server: TestServer, people: list[Participant], identity: str, role: Role
                 ) -> Participant:
    person = Participant(server, identity, role, room="booth")
    people.append(person)
    person.joined = await person.connect()  # type: ignore[attr-defined]
    return person


def room_events(person: Participant, kind: str) -> list[dict[str, Any]]:
    return [data for event, data in person.events
            if event == "room-event" and data["type"] == kind]


async def wait_until(check: Callable[[], bool], seconds: float = 5) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.01)


def error(reply: dict[str, Any]) -> str:
    assert set(reply) == {"error"}, reply
    return str(reply["error"]["code"])


async def test_questions_are_asked_voted_answered_pinned_and_hidden(
    aiohttp_server: ServerFactory, people: list[Participant]
) -> None:
    server = await start(aiohttp_server)
    owner = await joined(server, people, "acme", Role.EXHIBITOR)
    wang = await joined(server, people, "wang", Role.BUYER)
    li = await joined(server, people, "li", Role.VISITOR)
    asked = await wang.sio.call("question-ask", {"text": "  MOQ for the 5 kW pump?  "})
    question = asked["question"]
    assert (question["text"], question["votes"], question["name"]) == (
        "MOQ for the 5 kW pump?", 0, "Wang")
    await wait_until(lambda: bool(room_events(owner, "question")))
    # Once per identity; a second vote takes it back.
    voted = await li.sio.call("question-vote", {"id": question["id"]})
    assert (voted["voted"], voted["question"]["votes"]) == (True, 1)
    again = await li.sio.call("question-vote", {"id": question["id"]})
    assert (again["voted"], again["question"]["votes"]) == (False, 0)
    await li.sio.call("question-vote", {"id": question["id"]})
    assert error(await li.sio.call("question-vote", {"id": "nope"})) == "not_found"
    # Viewers may not moderate: forbidden, nothing changes.
    for event, body in (("question-answer", {"id": question["id"], "answered": True}),
                        ("question-pin", {"id": question["id"]}),
                        ("question-hide", {"id": question["id"], "hidden": True}),
                        ("chat-delete", {"id": "x"}),
                        ("chat-mute", {"identity": "wang", "muted": True})):
        assert error(await li.sio.call(event, body)) == "forbidden", event
    answered = await owner.sio.call("question-answer", {"id": question["id"], "answered": True})
    assert answered["question"]["answered"] is True
    assert await owner.sio.call("question-pin", {"id": question["id"]}) == {}
    second = (await li.sio.call("question-ask", {"text": "Lead time?"}))["question"]
    assert await owner.sio.call("question-pin", {"id": second["id"]}) == {}
    await wait_until(lambda: [e["question"]["pinned"] for e in room_events(wang, "question")
                              ][-2:] == [False, True])
    # Hidden: everyone else gets it without its text; the asker and moderators still see it.
    await owner.sio.call("question-hide", {"id": second["id"], "hidden": True})
    await wait_until(lambda: room_events(wang, "question")[-1]["question"]["hidden"])
    last = room_events(wang, "question")[-1]["question"]
    assert last["text"] == "" and last["pinned"] is False
    rejoined = await li.sio.call("join", {})
    assert [q["text"] for q in rejoined["qa"]["questions"]] == ["MOQ for the 5 kW pump?",
                                                                 "Lead time?"]
    assert rejoined["qa"]["voted"] == [question["id"]]
    assert [q["text"] for q in (await wang.sio.call("join", {}))["qa"]["questions"]] == [
        "MOQ for the 5 kW pump?", ""]
    # Questions carry their moment; over-long ones are refused with the limit.
    long = await wang.sio.call("question-ask", {"text": "x" * 501})
    assert error(long) == "invalid_field" and "500" in long["error"]["message"]
    async with ClientSession() as http:
        token = server.app[TOKENS].issue_link(  # type: ignore[index]
            room="booth", identity="wang", name="Wang", role=Role.BUYER).token
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(server.make_url("/api/rooms/booth/questions"),
                            headers=headers) as response:
            listed = (await response.json())["questions"]
        assert [(q["votes"], q["answered"]) for q in listed] == [(1, True), (0, False)]
        async with http.get(server.make_url("/api/rooms/booth/questions")) as response:
            assert response.status == 401


async def test_chat_is_kept_limited_and_moderated(
    aiohttp_server: ServerFactory, people: list[Participant]
) -> None:
    server = await start(aiohttp_server)
    owner = await joined(server, people, "acme", Role.EXHIBITOR)
    wang = await joined(server, people, "wang", Role.BUYER)
    li = await joined(server, people, "li", Role.VISITOR)
    replies = [await wang.sio.call("chat-send", {"text": f"hello {i}"}) for i in range(20)]
    sent = [r for r in replies if "message" in r]
    limited = [r for r in replies if "error" in r]
    assert len(sent) == 5 and all(error(r) == "rate_limited" for r in limited)
    assert 0 < limited[0]["error"]["retry_after"] <= 10
    # Another viewer is not held back by the first one's flood.
    assert "message" in await li.sio.call("chat-send", {"text": "李: 价格?"})
    await wait_until(lambda: len(room_events(owner, "chat")) == 6)
    long = await li.sio.call("chat-send", {"text": "y" * 1001})
    assert error(long) == "invalid_field" and "1000" in long["error"]["message"]
    # The owner deletes a message and mutes a chatter for the rest of the live.
    assert await owner.sio.call("chat-delete", {"id": sent[0]["message"]["id"]}) == {}
    assert await owner.sio.call("chat-mute", {"identity": "li", "muted": True}) == {}
    assert error(await li.sio.call("chat-send", {"text": "again"})) == "chat_muted"
    await wait_until(lambda: bool(room_events(wang, "chat-muted")))
    assert room_events(wang, "chat-deleted")[0]["id"] == sent[0]["message"]["id"]
    rejoined = await li.sio.call("join", {})
    assert [m["text"] for m in rejoined["chat"]] == [f"hello {i}" for i in range(1, 5)] + [
        "李: 价格?"]
    assert rejoined["chat_muted"] is True


async def test_stats_and_attendance_follow_what_viewers_did(
    aiohttp_server: ServerFactory, people: list[Participant]
) -> None:
    server = await start(aiohttp_server)
    owner = await joined(server, people, "acme", Role.EXHIBITOR)
    started = time.time()
    wang = await joined(server, people, "wang", Role.BUYER)
    await joined(server, people, "li", Role.VISITOR)
    await asyncio.sleep(1.0)
    await wang.sio.disconnect()
    wang_left = time.time()
    await owner.sio.call("question-ask", {"text": "Is the line running?"})
    await owner.sio.call("chat-send", {"text": "Welcome"})
    await asyncio.sleep(0.5)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with ClientSession() as http:
        async with http.get(server.make_url("/api/rooms/booth/stats"), headers=headers) as r:
            stats = await r.json()
        async with http.get(server.make_url("/api/rooms/booth/attendance"),
                            headers=headers) as r:
            report = {p["identity"]: p for p in (await r.json())["attendance"]}
        async with http.get(server.make_url("/api/rooms/booth/attendance"),
                            headers=headers | {"Accept": "text/csv"}) as r:
            assert r.content_type == "text/csv"
            rows = (await r.text()).splitlines()
        viewer = server.app[TOKENS].issue_link(  # type: ignore[index]
            room="booth", identity="li", name="Li", role=Role.VISITOR).token
        async with http.get(server.make_url("/api/rooms/booth/stats"),
                            headers={"Authorization": f"Bearer {viewer}"}) as r:
            assert r.status == 403
    now = time.time()
    assert stats["unique_viewers"] == 2 and stats["current"] == 1 and stats["peak"] >= 1
    assert (stats["questions_asked"], stats["questions_answered"], stats["chat_messages"]) == (
        1, 0, 1)
    expected = (wang_left - started) + (now - started)
    assert abs(stats["total_watch_seconds"] - expected) < 1.0
    assert abs(report["wang"]["watch_seconds"] - (wang_left - started)) < 1.0
    assert report["wang"]["sessions"][0]["left_at"] is not None
    assert report["li"]["sessions"][0]["left_at"] is None
    assert rows[0] == "identity,name,role,joined_at,left_at,watch_seconds"
    assert any(row.startswith("wang,Wang,buyer,") for row in rows[1:])


@pytest.mark.redis
async def test_questions_and_chat_survive_a_node_restart(
    aiohttp_server: ServerFactory, redis_store_url: str, people: list[Participant]
) -> None:
    env = {"FAIRWIRE_REDIS_URL": redis_store_url, "FAIRWIRE_NODE_ID": "node-a"}
    first = await start(aiohttp_server, **env)
    wang = await joined(first, people, "wang", Role.BUYER)
    await wang.sio.call("question-ask", {"text": "Warranty terms?"})
    await wang.sio.call("chat-send", {"text": "Great demo"})
    await wang.close()
    people.remove(wang)
    await first.close()
    second = await start(aiohttp_server, **env)
    li = await joined(second, people, "li", Role.VISITOR)
    ack = li.joined  # type: ignore[attr-defined]
    assert [q["text"] for q in ack["qa"]["questions"]] == ["Warranty terms?"]
    assert [m["text"] for m in ack["chat"]] == ["Great demo"]
