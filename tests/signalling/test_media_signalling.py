"""Media negotiation over socket.io: python-socketio clients driving aiortc peer connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from socketio_media import Participant

from config import load_config
from rooms import Role, RoomKind
from rooms.model import Room
from signalling.app import create_app
from signalling.keys import SFU, STORE, TOKENS

ServerFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def server(aiohttp_server: ServerFactory) -> TestServer:
    app = create_app(load_config(environ={"FAIRWIRE_API_KEY": "k",
                                          "FAIRWIRE_DATA_DIR": "/tmp/fw"}))
    await app[STORE].create_room(Room(id="fair", name="Fair", kind=RoomKind.MEETING))
    return await aiohttp_server(app)


@pytest.fixture
async def people(server: TestServer) -> AsyncIterator[Callable[[str, Role], Participant]]:
    made: list[Participant] = []

    def make(identity: str, role: Role) -> Participant:
        person = Participant(server, identity, role)
        made.append(person)
        return person

    yield make
    for person in made:
        await person.close()


async def seller_live_buyer_watching(
    people: Callable[[str, Role], Participant], **selection: Any
) -> tuple[Participant, Participant]:
    seller = people("seller", Role.EXHIBITOR)
    buyer = people("buyer", Role.BUYER)
    await seller.connect()
    await buyer.connect()
    await seller.publish()
    await buyer.subscribe(**selection)
    await buyer.wait_frames("audio" if selection.get("kinds") == ["audio"] else "video", 5)
    return seller, buyer


async def test_publish_then_subscribe_and_renegotiate_on_new_tracks(
    server: TestServer, people: Callable[[str, Role], Participant]
) -> None:
    seller = people("seller", Role.EXHIBITOR)
    buyer = people("buyer", Role.BUYER)
    await seller.connect()
    await buyer.connect()
    assert await buyer.subscribe() == {"waiting": True}  # nothing published yet

    reply = await seller.publish(sources=["camera", "microphone"])
    assert reply["type"] == "answer"
    published = await buyer.wait_event("track-published")
    assert published["identity"] == "seller"
    assert published["track"]["kind"] in ("audio", "video")
    await buyer.wait_frames("video", 10)  # the track arrived through "subscriber-offer"
    await buyer.wait_frames("audio", 10)
    assert buyer.offers >= 1

    # The participant list carries the published tracks.
    members = await server.app[STORE].list_participants("fair")  # type: ignore[index]
    seller_record = next(m for m in members if m.identity == "seller")
    assert sorted((t.kind, t.source) for t in seller_record.tracks) == [
        ("audio", "microphone"), ("video", "camera")]

    assert await seller.sio.call("unpublish", {}) == {}
    gone = await buyer.wait_event("track-unpublished")
    assert gone["identity"] == "seller"
    assert server.app[SFU].stats()["publications"] == 0  # type: ignore[index]


async def test_restarting_ice_keeps_viewers_on_one_stream(
    server: TestServer, people: Callable[[str, Role], Participant]
) -> None:
    seller, buyer = await seller_live_buyer_watching(people)
    offers = buyer.offers
    reply = await seller.publish("restart-ice", target="publisher")
    assert reply["type"] == "answer"
    await buyer.wait_frames("video", 20)
    assert buyer.offers == offers  # no renegotiation: the same tracks, a new source behind them
    assert server.app[SFU].stats()["publishers"] == 1  # type: ignore[index]


async def test_media_events_check_grants_and_input(
    server: TestServer, people: Callable[[str, Role], Participant]
) -> None:
    visitor = people("visitor", Role.VISITOR)
    await visitor.connect()
    reply = await visitor.publish()
    assert reply["error"]["code"] == "missing_grant"
    seller = people("seller", Role.EXHIBITOR)
    await seller.connect()
    for bad in (None, "v=0", {"type": "answer", "sdp": "v=0"}, {"type": "offer", "sdp": ""},
                {"type": "offer", "sdp": "x" * 40_000}):
        reply = await seller.sio.call("publish", bad)
        assert reply["error"]["code"] == "invalid_field", (bad, reply)
    reply = await seller.sio.call("publish", {"type": "offer", "sdp": "v=0\r\nbroken"})
    assert reply["error"]["code"] == "invalid_sdp"
    reply = await seller.sio.call("subscribe-answer", {"type": "answer", "sdp": "v=0\r\n"})
    assert reply["error"]["code"] == "not_subscribed"
    reply = await seller.sio.call("ice-candidate", {"target": "publisher", "candidate": {}})
    assert reply["error"]["code"] == "no_connection"
    stats = server.app[SFU].stats()  # type: ignore[index]
    assert stats["publishers"] == 0 and stats["publications"] == 0
    assert (await seller.publish())["type"] == "answer"  # the connection still works


async def test_events_before_join_are_refused(
    server: TestServer, people: Callable[[str, Role], Participant]
) -> None:
    person = people("early", Role.EXHIBITOR)
    token = server.app[TOKENS].issue_link(room="fair", identity="early", name="E",  # type: ignore[index]
                                     role=Role.EXHIBITOR).token
    await person.sio.connect(str(server.make_url("/")), auth={"token": token},
                             transports=["websocket"])
    reply = await person.sio.call("subscribe", {})
    assert reply["error"]["code"] == "not_joined"


async def test_disconnect_frees_the_media_of_a_connection(
    server: TestServer, people: Callable[[str, Role], Participant]
) -> None:
    seller, buyer = await seller_live_buyer_watching(people)
    await seller.sio.disconnect()
    await buyer.sio.disconnect()
    sfu = server.app[SFU]  # type: ignore[index]
    async with asyncio.timeout(5):
        while sfu.stats()["publishers"] or sfu.stats()["subscribers"]:
            await asyncio.sleep(0.02)
    assert sfu.stats()["rooms"] == 0


async def test_a_subscriber_receives_the_subset_it_asks_for(
    server: TestServer, people: Callable[[str, Role], Participant]
) -> None:
    _, buyer = await seller_live_buyer_watching(people, kinds=["audio"])  # a weak link
    assert buyer.frames["video"] == 0
    assert buyer.receiving is not None
    assert [t.kind for t in buyer.receiving.getTransceivers()] == ["audio"]
    assert await buyer.sio.call("update-subscription", {"kinds": None}) == {}
    await buyer.wait_frames("video", 10)
    assert await buyer.sio.call("update-subscription", {"identities": ["nobody"]}) == {}
    async with asyncio.timeout(10):
        while any(t.currentDirection != "inactive" for t in buyer.receiving.getTransceivers()):
            await asyncio.sleep(0.02)
    reply = await buyer.sio.call("update-subscription", {"kinds": ["smell"]})
    assert reply["error"]["code"] == "invalid_field"


async def test_restarting_a_subscriber_keeps_what_it_receives(
    server: TestServer, people: Callable[[str, Role], Participant]
) -> None:
    _, buyer = await seller_live_buyer_watching(people, kinds=["audio"])  # a weak link
    reply = await buyer.sio.call("restart-ice", {"target": "subscriber"})
    assert reply["type"] == "offer"
    assert "m=audio" in reply["sdp"] and "m=video" not in reply["sdp"]
    assert buyer.receiving is not None
    await buyer.receiving.close()
    buyer.receiving = None
    await buyer._answer(reply)
    await buyer.wait_frames("audio", 10)
    assert server.app[SFU].stats()["subscribers"] == 1  # type: ignore[index]
