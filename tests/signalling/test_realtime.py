"""socket.io presence against a real server on a loopback port, with python-socketio clients.

Each client keeps the room's state the way docs/socketio.md tells clients to: the join
acknowledgement's snapshot (or events), then ``room-event`` deltas folded with the same
reducer the server uses (:func:`rooms.presence.apply`), a ``sync`` on a gap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestServer

from config import load_config
from rooms import Role, RoomKind
from rooms.events import event_from_dict
from rooms.model import Participant, Room
from rooms.presence import Presence, SequenceGap, apply
from signalling.app import create_app
from signalling.keys import STORE, TOKENS

ServerFactory = Callable[..., Awaitable[TestServer]]
ENV = {"FAIRWIRE_API_KEY": "k", "FAIRWIRE_DATA_DIR": "/tmp/fw"}


class Peer:
    """A socket.io client that keeps the room's presence from snapshots and deltas."""

    def __init__(self, server: TestServer, token: str) -> None:
        self.server = server
        self.token = token
        self.client = socketio.AsyncClient(reconnection=False)
        self.presence: Presence | None = None
        self.buffered: list[dict[str, Any]] = []
        self.deltas: list[dict[str, Any]] = []
        self.audience: list[dict[str, int]] = []
        self.events: list[tuple[str, Any]] = []
        self.changed = asyncio.Event()
        self.client.on("room-event", self._on_room_event)
        self.client.on("audience", self._on_audience)
        self.client.on("*", self._on_any)

    async def connect(self) -> None:
        await self.client.connect(str(self.server.make_url("/")), auth={"token": self.token},
                                  transports=["websocket"])

    async def join(self) -> dict[str, Any]:
        """``join``, passing the last sequence number after a reconnect."""
        since = None if self.presence is None else self.presence.seq
        reply: dict[str, Any] = await self.client.call(
            "join", {} if since is None else {"since": since})
        if "error" not in reply:
            self._take(reply)
        return reply

    def _take(self, reply: dict[str, Any]) -> None:
        if reply["snapshot"]:
            listed = tuple(Participant.from_public(p) for p in reply["participants"])
            self.presence = Presence(reply["seq"], listed)
        else:
            assert self.presence is not None
            for event in reply["events"]:
                self.presence = apply(self.presence, event_from_dict(event))
            assert self.presence.seq == reply["seq"]
        self.audience.append(reply["audience"])
        for data in self.buffered:  # deltas that came before the acknowledgement
            self._apply(data)
        self.buffered = []
        self.changed.set()

    def _apply(self, data: dict[str, Any]) -> None:
        assert self.presence is not None
        try:
            self.presence = apply(self.presence, event_from_dict(data))
        except SequenceGap:
            raise AssertionError(f"a gap at {data['seq']} after {self.presence.seq}") from None

    async def _on_room_event(self, data: dict[str, Any]) -> None:
        self.deltas.append(data)
        if self.presence is None:
            self.buffered.append(data)
        else:
            self._apply(data)
        self.changed.set()

    async def _on_audience(self, data: dict[str, int]) -> None:
        self.audience.append(data)
        self.changed.set()

    async def _on_any(self, event: str, data: Any) -> None:
        self.events.append((event, data))

    def listed(self) -> list[str]:
        return [] if self.presence is None else self.presence.identities()

    async def wait_for(self, check: Callable[[], bool], seconds: float = 5) -> None:
        async with asyncio.timeout(seconds):
            while not check():
                self.changed.clear()
                await self.changed.wait()

    async def wait_for_list(self, identities: list[str]) -> None:
        await self.wait_for(lambda: self.listed() == identities)


@pytest.fixture
async def server(aiohttp_server: ServerFactory) -> TestServer:
    app = create_app(load_config(environ=ENV | {"FAIRWIRE_EVENT_LOG_MAX_EVENTS": "30"}))
    await app[STORE].create_room(Room(id="booth", name="Booth", kind=RoomKind.LIVESTREAM))
    await app[STORE].create_room(Room(id="deal", name="Deal", kind=RoomKind.MEETING))
    return await aiohttp_server(app)


def token(server: TestServer, identity: str, role: Role = Role.BUYER, room: str = "booth") -> str:
    return server.app[TOKENS].issue_link(room=room, identity=identity, name=identity.title(),  # type: ignore[index]
                                    role=role).token


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        await peer.client.disconnect()


async def joined(server: TestServer, peers: list[Peer], identity: str,
                 role: Role = Role.BUYER, room: str = "booth") -> Peer:
    peer = Peer(server, token(server, identity, role, room))
    peers.append(peer)
    await peer.connect()
    reply = await peer.join()
    assert "error" not in reply, reply
    return peer


async def test_two_clients_see_presence_change_live(server: TestServer, peers: list[Peer]) -> None:
    alice = await joined(server, peers, "alice", room="deal")
    assert alice.listed() == ["alice"]  # the snapshot already has the joiner
    bob = await joined(server, peers, "bob", room="deal")
    assert bob.listed() == ["alice", "bob"]
    await alice.wait_for_list(["alice", "bob"])
    # Deltas only, each once, numbered in order; never the whole list.
    assert [e for e, _ in alice.events if e in ("participants", "participant-joined")] == []
    seqs = [d["seq"] for d in alice.deltas]
    assert seqs == sorted(set(seqs))
    await bob.client.disconnect()
    await alice.wait_for_list(["alice"])
    assert alice.deltas[-1]["type"] == "participant-left"
    assert alice.deltas[-1]["identity"] == "bob"


async def test_refused_connections(server: TestServer, peers: list[Peer]) -> None:
    for auth in ("", "not-a-jwt", token(server, "x")[:-3] + "abc"):
        peer = Peer(server, auth)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await peer.connect()


async def test_joining_an_unknown_room_is_an_error(server: TestServer, peers: list[Peer]) -> None:
    peer = Peer(server, token(server, "carol", room="missing"))
    peers.append(peer)
    await peer.connect()
    # The same code and words as the REST API's (one error mapping).
    assert await peer.join() == {
        "error": {"code": "room_not_found", "message": "no room 'missing'"}}
    for bad in ({"since": -1}, {"since": "3"}, {"since": True}):
        reply = await peer.client.call("join", bad)
        assert reply["error"]["code"] == "invalid_field", reply


async def test_same_identity_twice_keeps_one_seat(server: TestServer, peers: list[Peer]) -> None:
    first = await joined(server, peers, "dave", room="deal")
    second = await joined(server, peers, "dave", room="deal")
    await second.wait_for_list(["dave"])
    for _ in range(100):
        if not first.client.connected:
            break
        await asyncio.sleep(0.02)
    assert not first.client.connected
    await asyncio.sleep(0.1)
    members = await server.app[STORE].list_participants("deal")  # type: ignore[index]
    assert [m.identity for m in members] == ["dave"]
    assert second.listed() == ["dave"]


async def test_a_client_away_for_five_seconds_catches_up_with_only_what_it_missed(
    server: TestServer, peers: list[Peer]
) -> None:
    steady = await joined(server, peers, "steady", Role.HOST)
    away = await joined(server, peers, "away", Role.HOST)
    await steady.wait_for_list(["steady", "away"])
    await away.client.disconnect()
    hosts = []
    for i in range(10):  # 20 events (and "away" leaving) while it is gone
        hosts.append(await joined(server, peers, f"host-{i}", Role.HOST))
    for host in hosts[:5]:
        await host.client.disconnect()
    await asyncio.sleep(5)
    for host in hosts[5:]:
        await host.client.call("leave", {})
    await steady.wait_for(lambda: steady.presence is not None and steady.presence.seq >= 23)
    before = away.presence
    assert before is not None
    away.client = socketio.AsyncClient(reconnection=False)  # a new connection, same state
    away.client.on("room-event", away._on_room_event)
    away.client.on("audience", away._on_audience)
    await away.connect()
    reply = await away.join()
    assert reply["snapshot"] is False  # only what it missed
    assert [e["seq"] for e in reply["events"]] == list(range(before.seq + 1, reply["seq"] + 1))
    assert len(reply["events"]) >= 20
    await steady.wait_for(lambda: steady.listed() == ["steady", "away"])
    await away.wait_for(lambda: away.presence == steady.presence)
    assert away.listed() == ["steady", "away"]


async def test_a_client_away_longer_than_the_log_gets_a_snapshot(
    server: TestServer, peers: list[Peer]
) -> None:
    steady = await joined(server, peers, "steady", Role.HOST)
    reply = await steady.client.call("sync", {"since": 0})
    assert reply["snapshot"] is False and reply["seq"] >= 1
    for i in range(20):  # 40 events: more than the log keeps (30)
        host = await joined(server, peers, f"h{i}", Role.HOST)
        await host.client.call("leave", {})
    reply = await steady.client.call("sync", {"since": 1})
    assert reply["snapshot"] is True
    assert [p["identity"] for p in reply["participants"]] == ["steady"]
    assert (await steady.client.call("sync", {}))["error"]["code"] == "invalid_field"


async def test_a_livestream_counts_its_audience_and_lists_its_stage(
    server: TestServer, peers: list[Peer]
) -> None:
    exhibitor = await joined(server, peers, "exhibitor", Role.EXHIBITOR)
    viewers = [await joined(server, peers, f"viewer-{i:02}", Role.VISITOR) for i in range(12)]
    # Nobody is told of each viewer: no room event for them, a figure once a second.
    try:
        await exhibitor.wait_for(lambda: exhibitor.audience[-1] == {"current": 12, "peak": 12})
    except TimeoutError:
        raise AssertionError(exhibitor.audience) from None
    assert [d["participant"]["identity"] for d in exhibitor.deltas] == ["exhibitor"]  # its own
    assert exhibitor.listed() == ["exhibitor"]
    assert viewers[-1].listed() == ["exhibitor"]
    assert len(exhibitor.audience) <= 4  # the join ack, then at most one figure a second
    await viewers[0].wait_for(lambda: viewers[0].audience[-1] == {"current": 12, "peak": 12})
    # One leaving is a small change: the team is told, the audience is not (they are told
    # again when the figure moves by a tenth: O(1) bytes per join for any audience size).
    await viewers[11].client.disconnect()
    await exhibitor.wait_for(lambda: exhibitor.audience[-1] == {"current": 11, "peak": 12})
    await asyncio.sleep(1.5)
    assert viewers[0].audience[-1] == {"current": 12, "peak": 12}
    for viewer in viewers[:3]:
        await viewer.client.disconnect()
    await exhibitor.wait_for(lambda: exhibitor.audience[-1] == {"current": 8, "peak": 12})
    await viewers[5].wait_for(lambda: viewers[5].audience[-1] == {"current": 8, "peak": 12})
    # The exhibitor pages through who is watching; a viewer may not.
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await exhibitor.client.call("audience-list", {"cursor": cursor, "limit": 3})
        assert page["total"] == 8
        seen += [v["identity"] for v in page["viewers"]]
        cursor = page["next"]
        if cursor is None:
            break
        assert len(page["viewers"]) == 3  # full pages, though the exhibitor is stored too
    assert sorted(seen) == [f"viewer-{i:02}" for i in range(3, 11)]
    stale = await exhibitor.client.call("audience-list", {"cursor": "zzz"})
    assert stale["error"]["code"] == "invalid_field"
    refused = await viewers[5].client.call("audience-list", {})
    assert refused["error"]["code"] == "forbidden"
    bad = await exhibitor.client.call("audience-list", {"limit": 1000})
    assert bad["error"]["code"] == "invalid_field"


@pytest.mark.redis
async def test_events_cross_nodes_in_order_through_redis(
    aiohttp_server: ServerFactory, redis_store_url: str, peers: list[Peer]
) -> None:
    def node(name: str) -> Any:
        return create_app(load_config(environ=ENV | {
            "FAIRWIRE_REDIS_URL": redis_store_url, "FAIRWIRE_NODE_ID": name}))

    node_a = await aiohttp_server(node("node-a"))
    await node_a.app[STORE].create_room(  # type: ignore[index]
        Room(id="deal", name="Deal", kind=RoomKind.MEETING))
    alice = await joined(node_a, peers, "alice", room="deal")
    early = [await joined(node_a, peers, f"early-{i}", room="deal") for i in range(3)]
    # Node B starts after all that: it serves its snapshot from the shared store and log.
    node_b = await aiohttp_server(node("node-b"))
    bob = await joined(node_b, peers, "bob", room="deal")
    assert bob.listed() == ["alice", "early-0", "early-1", "early-2", "bob"]
    for peer in early:
        await peer.client.call("leave", {})
    for i in range(5):
        await joined(node_a, peers, f"late-{i}", room="deal")
    expected = ["alice", "bob", *[f"late-{i}" for i in range(5)]]
    await bob.wait_for_list(expected)
    await alice.wait_for_list(expected)
    # Every event appended on node A reached the client on node B once, in order.
    bob_seqs = [d["seq"] for d in bob.deltas]
    assert bob_seqs == list(range(bob_seqs[0], bob_seqs[0] + len(bob_seqs)))
    assert alice.presence == bob.presence
    members = await node_b.app[STORE].list_participants("deal")  # type: ignore[index]
    assert {m.identity: m.node_id for m in members}["bob"] == "node-b"
    await bob.client.disconnect()
    await alice.wait_for_list([i for i in expected if i != "bob"])
