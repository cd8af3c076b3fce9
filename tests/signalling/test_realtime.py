"""socket.io presence against a real server on a loopback port, with python-socketio clients."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestServer

from config import load_config
from rooms import Role, RoomKind
from rooms.model import Room
from signalling.app import create_app
from signalling.keys import STORE, TOKENS

ServerFactory = Callable[..., Awaitable[TestServer]]


class Peer:
    """A socket.io client that records the participant lists it is sent."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.lists: list[list[str]] = []
        self.changed = asyncio.Event()
        self.events: list[tuple[str, Any]] = []
        self.client.on("participants", self._on_participants)
        self.client.on("*", self._on_any)

    async def _on_participants(self, data: dict[str, Any]) -> None:
        self.lists.append([p["identity"] for p in data["participants"]])
        self.changed.set()

    async def _on_any(self, event: str, data: Any) -> None:
        self.events.append((event, data))

    async def wait_for_list(self, identities: list[str]) -> None:
        async with asyncio.timeout(5):
            while not self.lists or self.lists[-1] != identities:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def server(aiohttp_server: ServerFactory) -> TestServer:
    settings = load_config(environ={"FAIRWIRE_API_KEY": "k", "FAIRWIRE_DATA_DIR": "/tmp/fw"})
    app = create_app(settings)
    await app[STORE].create_room(Room(id="booth", name="Booth", kind=RoomKind.LIVESTREAM))
    return await aiohttp_server(app)


def token(server: TestServer, identity: str, role: Role = Role.BUYER, room: str = "booth") -> str:
    return server.app[TOKENS].issue(room=room, identity=identity, name=identity.title(),  # type: ignore[index]
                                    role=role)


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        await peer.client.disconnect()


async def connect(server: TestServer, peers: list[Peer], auth: Any) -> Peer:
    peer = Peer()
    peers.append(peer)
    await peer.client.connect(str(server.make_url("/")), auth=auth, transports=["websocket"])
    return peer


async def test_two_clients_see_presence_change_live(server: TestServer, peers: list[Peer]) -> None:
    alice = await connect(server, peers, {"token": token(server, "alice", Role.EXHIBITOR)})
    joined = await alice.client.call("join", {})
    assert joined["self"]["identity"] == "alice"
    assert joined["self"]["grants"] == ["publish", "subscribe"]
    assert [p["identity"] for p in joined["participants"]] == ["alice"]

    bob = await connect(server, peers, {"token": token(server, "bob")})
    await bob.client.call("join", {})
    await alice.wait_for_list(["alice", "bob"])
    await bob.wait_for_list(["alice", "bob"])
    assert ("participant-joined", {"identity": "bob"}) not in alice.events  # full record sent
    assert any(e == "participant-joined" and d["identity"] == "bob" for e, d in alice.events)

    await bob.client.disconnect()
    await alice.wait_for_list(["alice"])
    assert await server.app[STORE].list_participants("booth") != []  # type: ignore[index]


async def test_refused_connections(server: TestServer, peers: list[Peer]) -> None:
    for auth in (None, {"token": "not-a-jwt"}, {"token": token(server, "x")[:-3] + "abc"}):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect(server, peers, auth)


async def test_joining_an_unknown_room_is_an_error(server: TestServer, peers: list[Peer]) -> None:
    peer = await connect(server, peers, {"token": token(server, "carol", room="missing")})
    reply = await peer.client.call("join", {})
    assert reply == {"error": {"code": "room_not_found", "message": "no room 'missing'"}}


async def test_same_identity_twice_keeps_one_seat(server: TestServer, peers: list[Peer]) -> None:
    first = await connect(server, peers, {"token": token(server, "dave")})
    await first.client.call("join", {})
    second = await connect(server, peers, {"token": token(server, "dave")})
    await second.client.call("join", {})
    await second.wait_for_list(["dave"])
    for _ in range(100):
        if not first.client.connected:
            break
        await asyncio.sleep(0.02)
    assert not first.client.connected
    await asyncio.sleep(0.1)
    members = await server.app[STORE].list_participants("booth")  # type: ignore[index]
    assert [m.identity for m in members] == ["dave"]


@pytest.mark.redis
async def test_presence_crosses_nodes_through_redis(
    aiohttp_server: ServerFactory, redis_store_url: str, peers: list[Peer]
) -> None:
    nodes = []
    for name in ("node-a", "node-b"):
        settings = load_config(environ={
            "FAIRWIRE_API_KEY": "k", "FAIRWIRE_DATA_DIR": "/tmp/fw",
            "FAIRWIRE_REDIS_URL": redis_store_url, "FAIRWIRE_NODE_ID": name,
        })
        nodes.append(await aiohttp_server(create_app(settings)))
    await nodes[0].app[STORE].create_room(  # type: ignore[index]
        Room(id="booth", name="Booth", kind=RoomKind.LIVESTREAM))
    alice = await connect(nodes[0], peers, {"token": token(nodes[0], "alice", Role.EXHIBITOR)})
    await alice.client.call("join", {})
    bob = await connect(nodes[1], peers, {"token": token(nodes[1], "bob")})
    reply = await bob.client.call("join", {})
    assert [p["identity"] for p in reply["participants"]] == ["alice", "bob"]
    # Alice is on the other node: the list reaches her through Redis pub/sub.
    await alice.wait_for_list(["alice", "bob"])
    members = await nodes[1].app[STORE].list_participants("booth")  # type: ignore[index]
    assert {m.identity: m.node_id for m in members} == {"alice": "node-a", "bob": "node-b"}
    await bob.client.disconnect()
    await alice.wait_for_list(["alice"])
