"""Session credentials, revocation, the stage and status over socket.io, against real servers
(in-process, on loopback ports) with python-socketio clients and aiortc media."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import socketio
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from socketio_media import Participant

from config import load_config
from rooms import Role, RoomKind, RoomStatus
from rooms.model import Room
from signalling.app import create_app
from signalling.keys import STORE, TOKENS

ServerFactory = Callable[..., Awaitable[TestServer]]
API_KEY = "test-api-key-of-some-length"
ENV = {"FAIRWIRE_API_KEY": API_KEY, "FAIRWIRE_DATA_DIR": "/tmp/fw",
       "FAIRWIRE_SESSION_TTL": "10", "FAIRWIRE_CLOCK_SKEW": "0"}


async def start(aiohttp_server: ServerFactory, **env: str) -> TestServer:
    app = create_app(load_config(environ=ENV | env))
    server = await aiohttp_server(app)
    return server


async def create(server: TestServer, room: Room) -> None:
    if await server.app[STORE].get_room(room.id) is None:  # type: ignore[index]
        await server.app[STORE].create_room(room)  # type: ignore[index]


def link(server: TestServer, room: str, identity: str, role: Role, ttl: int = 3600) -> str:
    return server.app[TOKENS].issue_link(room=room, identity=identity,  # type: ignore[index]
                                    name=identity.title(), role=role, ttl=ttl).token


async def refused(server: TestServer, token: str) -> str:
    """The code a connection with ``token`` is refused with."""
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    try:
        await client.connect(str(server.make_url("/")), auth={"token": token},
                             transports=["websocket"])
    except socketio.exceptions.ConnectionError:
        # The refusal: {message, data: {code, message}} (see Realtime._on_connect).
        return str(errors[0]["data"]["code"]) if errors else "no connect_error"
    await client.disconnect()
    return "accepted"


def credentials(person: Participant) -> list[dict[str, Any]]:
    return [data for event, data in person.events if event == "credential"]


async def test_a_live_outlasts_its_session_credentials_and_its_link(
    aiohttp_server: ServerFactory, people: list[Participant]
) -> None:
    """A link valid for 60 s, session credentials of 10 s: the exhibitor stays live without a
    break; after the link expires the live goes on, but nobody comes back in with it."""
    server = await start(aiohttp_server)
    await create(server, Room(id="booth", name="Booth", kind=RoomKind.LIVESTREAM, owner="acme"))
    issued = time.time()
    studio = link(server, "booth", "acme", Role.EXHIBITOR, ttl=60)
    exhibitor = Participant(server, "acme", Role.EXHIBITOR, room="booth", token=studio)
    viewer = Participant(server, "wang", Role.BUYER, room="booth")
    people += [exhibitor, viewer]
    joined = await exhibitor.connect()
    credential = joined["credential"]
    assert 9 <= credential["expires_in"] <= 10
    claims = server.app[TOKENS].verify(credential["token"])  # type: ignore[index]
    assert claims.use == "session" and claims.identity == "acme"
    assert "sdp" in await exhibitor.publish()
    await viewer.connect()
    await viewer.subscribe()
    await viewer.wait_frames("video", 10)
    # 30 s live: frames arrive every second, the credential is renewed before it expires.
    stalls = 0
    for _ in range(30):
        before = viewer.frames["video"]
        await asyncio.sleep(1.0)
        stalls += viewer.frames["video"] == before
    assert stalls == 0
    renewed = credentials(exhibitor)
    assert len(renewed) >= 4, renewed
    assert exhibitor.sio.connected
    # Past the link's expiry: still live, still renewed; the link lets nobody in again, nor
    # does a credential that came from it.
    await asyncio.sleep(max(0.0, issued + 61 - time.time()))
    await viewer.wait_frames("video", 10)
    assert exhibitor.sio.connected
    assert await refused(server, studio) == "token_expired"
    assert await refused(server, credentials(exhibitor)[-1]["token"]) == "token_expired"
    reply = await exhibitor.sio.call("set-muted", {"kind": "audio", "muted": True})
    assert reply == {}, reply  # the connection still acts: its credential is current


@pytest.mark.redis
async def test_a_revoked_link_ends_its_connections_on_every_node(
    aiohttp_server: ServerFactory, redis_store_url: str, people: list[Participant]
) -> None:
    node_a = await start(aiohttp_server, FAIRWIRE_REDIS_URL=redis_store_url,
                         FAIRWIRE_NODE_ID="node-a")
    node_b = await start(aiohttp_server, FAIRWIRE_REDIS_URL=redis_store_url,
                         FAIRWIRE_NODE_ID="node-b")
    await create(node_a, Room(id="booth", name="Booth", kind=RoomKind.LIVESTREAM))
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with ClientSession() as http:
        async with http.post(node_a.make_url("/api/tokens"), headers=headers, json={
                "room": "booth", "identity": "wang", "role": "buyer"}) as response:
            issued = await response.json()
        buyer = Participant(node_b, "wang", Role.BUYER, room="booth", token=issued["token"])
        people.append(buyer)
        await buyer.connect()
        async with http.delete(node_a.make_url(f"/api/tokens/{issued['token_id']}"),
                               headers=headers) as response:
            assert response.status == 204
        revoked_at = time.monotonic()
        # Node B sweeps every 2.5 s (a quarter of the 10 s credential).
        async with asyncio.timeout(5):
            while buyer.sio.connected:
                await asyncio.sleep(0.05)
        assert time.monotonic() - revoked_at < 5
    assert any(event == "revoked" for event, _ in buyer.events)
    for node in (node_a, node_b):
        assert await refused(node, issued["token"]) == "token_revoked"


@pytest.fixture
async def booth(aiohttp_server: ServerFactory) -> TestServer:
    server = await start(aiohttp_server)
    await create(server, Room(id="booth", name="Booth", kind=RoomKind.LIVESTREAM, owner="acme"))
    return server


async def wait_until(check: Callable[[], bool], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.02)


def stage_events(person: Participant) -> list[tuple[str, str]]:
    return [(data["identity"], data["state"]) for event, data in person.events
            if event == "room-event" and data["type"] == "stage"]


def tracks_of(person: Participant, identity: str) -> list[dict[str, Any]] | None:
    """The tracks ``identity`` has as ``person`` last heard (None: never heard of them)."""
    found = None
    for event, data in person.events:
        if event == "room-event" and data["type"] in ("participant-joined",
                                                      "participant-updated"):
            if data["participant"]["identity"] == identity:
                found = data["participant"]["tracks"]
        elif event == "room-event" and data["type"] == "participant-left":
            if data["identity"] == identity:
                found = None
    return found


async def test_a_buyer_publishes_in_a_livestream_only_on_stage(
    booth: TestServer, people: list[Participant]
) -> None:
    host = Participant(booth, "mod", Role.HOST, room="booth")
    buyer = Participant(booth, "wang", Role.BUYER, room="booth")
    viewer = Participant(booth, "li", Role.VISITOR, room="booth")
    people += [host, buyer, viewer]
    for person in people:
        await person.connect()
    assert "publish" not in (await buyer.sio.call("join", {}))["self"]["grants"]
    refused_publish = await buyer.publish()
    assert refused_publish["error"]["code"] == "missing_grant"
    # Only a host invites; the buyer answers.
    assert (await viewer.sio.call("stage-invite", {"identity": "wang"}))["error"]["code"] == (
        "missing_grant")
    assert await host.sio.call("stage-invite", {"identity": "wang"}) == {}
    await wait_until(lambda: ("wang", "invited") in stage_events(buyer))
    reply = await buyer.sio.call("stage-answer", {"accept": True})
    assert "publish" in reply["grants"] and reply["stage"] == "on"
    assert "sdp" in await buyer.publish()
    await viewer.subscribe()
    await wait_until(lambda: len(tracks_of(viewer, "wang") or []) == 2)
    await viewer.wait_frames("video", 5)
    # The host takes the buyer off: their tracks go for every viewer, their grant with them.
    assert await host.sio.call("stage-leave", {"identity": "wang"}) == {}
    await wait_until(lambda: ("wang", "off") in stage_events(viewer))
    await wait_until(lambda: tracks_of(viewer, "wang") is None)
    assert (await buyer.publish())["error"]["code"] == "missing_grant"
    # A reconnect keeps no grant either; the host's snapshot has nobody on stage.
    assert (await host.sio.call("join", {}))["stage"] == {}


async def test_stepping_down_and_declining(booth: TestServer, people: list[Participant]) -> None:
    host = Participant(booth, "mod", Role.HOST, room="booth")
    buyer = Participant(booth, "wang", Role.BUYER, room="booth")
    people += [host, buyer]
    await host.connect()
    await buyer.connect()
    assert (await buyer.sio.call("stage-answer", {"accept": True}))["error"]["code"] == (
        "not_invited")
    await host.sio.call("stage-invite", {"identity": "wang"})
    assert (await buyer.sio.call("stage-answer", {"accept": False}))["stage"] is None
    await host.sio.call("stage-invite", {"identity": "wang"})
    await buyer.sio.call("stage-answer", {"accept": True})
    assert "sdp" in await buyer.publish()
    # The snapshot a rejoin gets says who is on stage.
    assert (await buyer.sio.call("join", {}))["self"]["stage"] == "on"
    assert await buyer.sio.call("stage-leave", {}) == {}
    await wait_until(lambda: ("wang", "off") in stage_events(host))
    assert (await buyer.sio.call("stage-leave", {}))["error"]["code"] == "not_on_stage"
    assert (await host.sio.call("stage-invite", {"identity": "acme"}))["error"]["code"] == (
        "participant_not_found")
    assert (await host.sio.call("stage-invite", {"identity": "mod"}))["error"]["code"] == (
        "already_on_stage")
    assert [state for identity, state in stage_events(host)] == [
        "invited", "declined", "invited", "on", "off"]


async def test_guests_are_never_invited(booth: TestServer, people: list[Participant]) -> None:
    async with ClientSession() as http:
        async with http.post(booth.make_url("/api/rooms/booth/guest")) as response:
            guest_link = await response.json()
    host = Participant(booth, "mod", Role.HOST, room="booth")
    guest = Participant(booth, guest_link["identity"], Role.VISITOR, room="booth",
                        token=guest_link["token"])
    people += [host, guest]
    await host.connect()
    joined = await guest.connect()
    assert joined["self"]["guest"] is True and joined["self"]["grants"] == ["subscribe"]
    reply = await host.sio.call("stage-invite", {"identity": guest_link["identity"]})
    assert reply["error"]["code"] == "guest_cannot_publish"


async def test_the_owner_going_live_starts_the_room(
    aiohttp_server: ServerFactory, people: list[Participant]
) -> None:
    server = await start(aiohttp_server, FAIRWIRE_LIVE_GRACE="0")
    await create(server, Room(id="booth", name="Booth", kind=RoomKind.LIVESTREAM, owner="acme"))
    owner = Participant(server, "acme", Role.EXHIBITOR, room="booth")
    rival = Participant(server, "rival", Role.EXHIBITOR, room="booth")
    viewer = Participant(server, "li", Role.VISITOR, room="booth")
    people += [owner, rival, viewer]
    for person in people:
        await person.connect()
    assert (await rival.publish())["error"]["code"] == "missing_grant"  # not its booth
    async with ClientSession() as http:
        async def room() -> dict[str, Any]:
            async with http.get(server.make_url("/api/rooms/booth")) as response:
                body: dict[str, Any] = await response.json()
                return body

        before = await room()
        assert (before["status"], before["on_air"]) == ("scheduled", False)
        assert "sdp" in await owner.publish()
        await wait_until(lambda: any(
            event == "room-event" and data["type"] == "room-status"
            and data["room"]["status"] == "live" for event, data in viewer.events))
        during = await room()
        assert (during["status"], during["publishing"], during["on_air"]) == ("live", True, True)
        assert during["started_at"] is not None
        # The camera goes off: everyone is told the track is muted.
        assert await owner.sio.call("set-muted", {"kind": "video", "muted": True}) == {}
        await wait_until(lambda: any(t["kind"] == "video" and t["muted"]
                                     for t in tracks_of(viewer, "acme") or []))
        assert (await owner.sio.call("set-muted", {"kind": "screen", "muted": 1}))["error"][
            "code"] == "invalid_field"
        # Nobody publishes: still live, no longer on air (no grace here), "starting soon".
        await owner.sio.call("unpublish", {})
        await wait_until(lambda: any(
            event == "room-event" and data["type"] == "room-status"
            and not data["room"]["publishing"] for event, data in viewer.events))
        after = await room()
        assert (after["status"], after["publishing"], after["on_air"]) == ("live", False, False)
    stored = await server.app[STORE].get_room("booth")  # type: ignore[index]
    assert stored is not None and stored.status == RoomStatus.LIVE
