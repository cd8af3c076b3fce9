"""One-to-one messages over socket.io: delivered at once to every connection of the recipient
(whatever room their page is in), kept for someone offline and told on their next connection,
read marks and unread counts, guests and floods refused; against an in-process server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from socketio_media import Participant, online

from config import load_config
from rooms import Role, RoomKind
from rooms.model import Room
from signalling.app import create_app
from signalling.keys import STORE, TOKENS

ServerFactory = Callable[..., Awaitable[TestServer]]
ENV = {"FAIRWIRE_API_KEY": "test-api-key-of-some-length", "FAIRWIRE_DATA_DIR": "/tmp/fw"}


@pytest.fixture
async def server(aiohttp_server: ServerFactory) -> TestServer:
    server = await aiohttp_server(create_app(load_config(environ=ENV)))
    store = server.app[STORE]  # type: ignore[index]
    await store.create_room(Room(id="booth", name="Booth", kind=RoomKind.LIVESTREAM,
                                 owner="valve-co"))
    await store.create_room(Room(id="deal", name="Deal", kind=RoomKind.MEETING))
    return server


def received(person: Participant, event: str) -> list[Any]:
    return [data for name, data in person.events if name == event]


async def test_a_message_to_someone_offline_waits_and_is_told_when_they_connect(
    server: TestServer, people: list[Participant]
) -> None:
    buyer = await online(server, people, "buyer-li", Role.BUYER, "booth")
    sent = await buyer.sio.call("dm-send", {"to": "valve-co", "text": "FOB price for 500?"})
    message = sent["message"]
    assert (message["from"], message["to"], message["read"]) == ("buyer-li", "valve-co", False)

    exhibitor = await online(server, people, "valve-co", Role.EXHIBITOR, "booth")
    told = await exhibitor.wait_event("dm-unread")
    assert told == {"unread": {"buyer-li": 1}}
    history = await exhibitor.sio.call("dm-history", {"with": "buyer-li"})
    assert [m["text"] for m in history["messages"]] == ["FOB price for 500?"]
    assert await exhibitor.sio.call("dm-read", {"with": "buyer-li"}) == {"unread": {}}
    mine = await buyer.sio.call("dm-history", {"with": "valve-co"})
    assert mine["messages"][0]["read"] is True  # the buyer sees it was read


async def test_a_message_reaches_every_connection_of_both_sides_at_once(
    server: TestServer, people: list[Participant]
) -> None:
    in_booth = await online(server, people, "valve-co", Role.EXHIBITOR, "booth")
    in_meeting = await online(server, people, "valve-co", Role.EXHIBITOR, "deal")
    buyer = await online(server, people, "buyer-li", Role.BUYER, "booth")
    buyer_tab = await online(server, people, "buyer-li", Role.BUYER, "deal")
    await buyer.sio.call("dm-send", {"to": "valve-co", "text": "Are you at the booth?"})
    for page in (in_booth, in_meeting, buyer_tab):
        await page.wait_event("dm")
    assert received(in_meeting, "dm")[0]["message"]["text"] == "Are you at the booth?"
    await asyncio.sleep(0.2)
    assert received(buyer, "dm") == []  # the sending page has the acknowledgement


async def test_guests_floods_and_bad_messages_are_refused(
    server: TestServer, people: list[Participant]
) -> None:
    guest_token = server.app[TOKENS].issue_link(  # type: ignore[index]
        room="booth", identity="guest-1", name="Guest", role=Role.VISITOR, guest=True).token
    guest = await online(server, people, "guest-1", Role.VISITOR, "booth", token=guest_token)
    refused = await guest.sio.call("dm-send", {"to": "valve-co", "text": "hi"})
    assert refused["error"]["code"] == "forbidden"
    buyer = await online(server, people, "buyer-li", Role.BUYER, "booth")
    for bad in ({"to": "buyer-li", "text": "me"}, {"to": "valve-co"}, {"to": "x y", "text": "a"},
                {"to": "valve-co", "text": ""}, "text", {"to": "valve-co", "text": "a", "x": 1}):
        reply = await buyer.sio.call("dm-send", bad)
        assert reply["error"]["code"] == "invalid_field", (bad, reply)
    codes = [(await buyer.sio.call("dm-send", {"to": "valve-co", "text": f"m{n}"})).get(
        "error", {}).get("code") for n in range(7)]
    assert codes[:5] == [None] * 5 and codes[5] == "rate_limited"
    history = await buyer.sio.call("dm-history", {"with": "valve-co", "limit": 3})
    assert [m["text"] for m in history["messages"]] == ["m2", "m3", "m4"]
