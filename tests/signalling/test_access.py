"""Who gets in, over REST: visibility, guest links, edits by role, links and their revocation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from config import load_config
from rooms import Role
from signalling.app import create_app
from signalling.keys import TOKENS

API_KEY = "test-api-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def make_app(**env: str) -> web.Application:
    environ = {"FAIRWIRE_API_KEY": API_KEY, "FAIRWIRE_DATA_DIR": "/tmp/fairwire-test"} | env
    return create_app(load_config(environ=environ))


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> TestClient[Any, Any]:
    client = await aiohttp_client(make_app())
    for body in ({"id": "booth", "name": "CNC line", "kind": "livestream", "owner": "acme"},
                 {"id": "deal", "name": "ACME × Globex price negotiation", "kind": "meeting"},
                 {"id": "ended", "name": "Yesterday", "kind": "livestream", "status": "live"}):
        assert (await client.post("/api/rooms", json=body, headers=AUTH)).status == 201
    assert (await client.patch("/api/rooms/ended", json={"status": "ended"},
                               headers=AUTH)).status == 200
    return client


def bearer(client: TestClient[Any, Any], room: str, identity: str, role: Role,
           **kwargs: Any) -> dict[str, str]:
    token = client.app[TOKENS].issue_link(room=room, identity=identity, name=identity.title(),
                                     role=role, **kwargs).token
    return {"Authorization": f"Bearer {token}"}


async def error_code(response: Any) -> str:
    body = await response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return str(body["error"]["code"])


async def room_ids(client: TestClient[Any, Any], headers: dict[str, str]) -> list[str]:
    response = await client.get("/api/rooms", headers=headers)
    assert response.status == 200
    return [room["id"] for room in (await response.json())["rooms"]]


async def test_private_rooms_reach_only_their_people(client: TestClient[Any, Any]) -> None:
    assert await room_ids(client, {}) == ["booth", "ended"]
    assert await room_ids(client, AUTH) == ["booth", "deal", "ended"]
    assert await room_ids(client, bearer(client, "deal", "globex", Role.BUYER)) == [
        "booth", "deal", "ended"]
    assert await room_ids(client, bearer(client, "booth", "v", Role.VISITOR)) == [
        "booth", "ended"]
    # The meeting is not found without its token, as an unknown room is (existence hidden).
    for headers in ({}, bearer(client, "booth", "v", Role.VISITOR)):
        response = await client.get("/api/rooms/deal", headers=headers)
        assert response.status == 404 and await error_code(response) == "room_not_found"
    response = await client.get("/api/rooms/deal", headers=bearer(client, "deal", "g",
                                                                   Role.BUYER))
    assert response.status == 200
    body = await response.json()
    assert body["visibility"] == "private" and body["on_air"] is False
    # A forged or expired credential is refused, never silently treated as anonymous.
    response = await client.get("/api/rooms", headers={"Authorization": "Bearer a.b.c"})
    assert response.status == 401 and await error_code(response) == "invalid_token"


async def test_guests_watch_public_rooms_only(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app(FAIRWIRE_GUEST_TOKENS_PER_MINUTE="3"))
    for body in ({"id": "booth", "name": "CNC", "kind": "livestream", "languages": ["zh-CN"]},
                 {"id": "deal", "name": "Deal", "kind": "meeting"}):
        await client.post("/api/rooms", json=body, headers=AUTH)
    response = await client.post("/api/rooms/booth/guest", json={"name": "Li Wei"})
    assert response.status == 201
    guest = await response.json()
    claims = client.app[TOKENS].verify(guest["token"])
    assert claims.guest and claims.role == Role.VISITOR and claims.name == "Li Wei"
    assert claims.language == "zh-CN"  # the room's language unless the guest says
    assert {g.value for g in claims.grants} == {"subscribe"}
    assert guest["identity"].startswith("guest-") and guest["url"].endswith(guest["token"])
    assert 60 <= guest["expires_in"] <= 3600
    # Without a body: a name is made up.
    response = await client.post("/api/rooms/booth/guest")
    assert response.status == 201 and (await response.json())["name"].startswith("Guest ")
    # A private room is not disclosed: 404 like an unknown one.
    response = await client.post("/api/rooms/deal/guest")
    assert response.status == 404 and await error_code(response) == "room_not_found"
    # Three a minute per address (the burst): the fourth is refused with a Retry-After.
    response = await client.post("/api/rooms/booth/guest")
    assert response.status == 429 and await error_code(response) == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    # A guest link lists what anyone sees and cannot edit or issue anything.
    headers = {"Authorization": f"Bearer {guest['token']}"}
    assert await room_ids(client, headers) == ["booth"]
    response = await client.patch("/api/rooms/booth", json={"status": "ended"}, headers=headers)
    assert response.status == 403 and await error_code(response) == "missing_grant"


async def test_guest_link_input_and_ended_rooms(client: TestClient[Any, Any]) -> None:
    response = await client.post("/api/rooms/ended/guest")
    assert response.status == 409 and await error_code(response) == "room_ended"
    response = await client.post("/api/rooms/booth/guest", json={"name": "x" * 201})
    assert response.status == 400
    response = await client.post("/api/rooms/booth/guest", json={"role": "host"})
    assert response.status == 400 and await error_code(response) == "invalid_field"
    response = await client.post("/api/rooms/nowhere/guest")
    assert response.status == 404


async def test_who_may_edit_a_room(client: TestClient[Any, Any]) -> None:
    host = bearer(client, "booth", "mod", Role.HOST)
    response = await client.patch("/api/rooms/booth", headers=host, json={
        "name": "CNC line, hall 3", "visibility": "private", "scheduled_start": 2_000_000_000,
        "languages": ["zh-CN", "en"]})
    assert response.status == 200
    room = await response.json()
    assert (room["name"], room["visibility"], room["languages"]) == (
        "CNC line, hall 3", "private", ["zh-CN", "en"])
    assert await room_ids(client, {}) == ["ended"]  # private now: off the programme
    # The kind never changes; unknown fields are refused; nothing changed on refusal.
    response = await client.patch("/api/rooms/booth", headers=host, json={"kind": "meeting"})
    assert response.status == 400
    response = await client.patch("/api/rooms/booth", headers=AUTH, json={"owner": "bad id!"})
    assert response.status == 400
    # The owner exhibitor starts and ends the live, and edits nothing else.
    owner = bearer(client, "booth", "acme", Role.EXHIBITOR)
    response = await client.patch("/api/rooms/booth", headers=owner, json={"name": "Mine"})
    assert response.status == 403
    another = bearer(client, "booth", "rival", Role.EXHIBITOR)
    response = await client.patch("/api/rooms/booth", headers=another, json={"status": "live"})
    assert response.status == 403
    buyer = bearer(client, "booth", "b", Role.BUYER)
    response = await client.patch("/api/rooms/booth", headers=buyer, json={"status": "ended"})
    assert response.status == 403 and await error_code(response) == "missing_grant"
    response = await client.patch("/api/rooms/booth", headers=owner, json={"status": "ended"})
    assert response.status == 200 and (await response.json())["status"] == "ended"
    # A host of another room gets nothing here (and the private room stays hidden).
    response = await client.patch("/api/rooms/booth", json={"name": "x"},
                                  headers=bearer(client, "deal", "mod", Role.HOST))
    assert response.status == 404
    response = await client.get("/api/rooms/booth", headers=AUTH)
    assert (await response.json())["name"] == "CNC line, hall 3"


async def test_links_are_listed_and_revoked(client: TestClient[Any, Any]) -> None:
    host = bearer(client, "booth", "mod", Role.HOST)
    response = await client.post("/api/tokens", headers=host, json={
        "room": "booth", "identity": "acme", "role": "exhibitor", "name": "ACME",
        "ttl": 3 * 24 * 3600})
    assert response.status == 200
    studio = await response.json()
    assert studio["expires_in"] == 3 * 24 * 3600
    # A host issues no host links, and none for other rooms.
    response = await client.post("/api/tokens", headers=host, json={
        "room": "booth", "identity": "x", "role": "host"})
    assert response.status == 403
    response = await client.post("/api/tokens", headers=host, json={
        "room": "deal", "identity": "x", "role": "buyer"})
    assert response.status == 403 and await error_code(response) == "wrong_room"
    response = await client.post("/api/tokens", headers=bearer(client, "booth", "b", Role.BUYER),
                                 json={"room": "booth", "identity": "x", "role": "buyer"})
    assert response.status == 403
    response = await client.get("/api/rooms/booth/links", headers=host)
    links = (await response.json())["links"]
    assert [(link["token_id"], link["identity"], link["revoked"]) for link in links] == [
        (studio["token_id"], "acme", False)]
    assert "token" not in links[0]
    # Revoked by the host: listed as such; a second node or a reconnect refuses it.
    response = await client.delete(f"/api/tokens/{studio['token_id']}", headers=host)
    assert response.status == 204
    response = await client.get("/api/rooms/booth/links", headers=AUTH)
    assert (await response.json())["links"][0]["revoked"] is True
    response = await client.get("/api/rooms/booth",
                                headers={"Authorization": f"Bearer {studio['token']}"})
    assert response.status == 401 and await error_code(response) == "token_revoked"
    # Unknown ids, ids of other rooms' links, and callers without the grant.
    response = await client.delete("/api/tokens/0123456789abcdef", headers=AUTH)
    assert response.status == 404 and await error_code(response) == "token_not_found"
    response = await client.delete("/api/tokens/not-an-id", headers=AUTH)
    assert response.status == 404
    other = await (await client.post("/api/tokens", headers=AUTH, json={
        "room": "deal", "identity": "g", "role": "buyer"})).json()
    response = await client.delete(f"/api/tokens/{other['token_id']}", headers=host)
    assert response.status == 404
    response = await client.delete(f"/api/tokens/{other['token_id']}")
    assert response.status == 401
    response = await client.get("/api/rooms/deal/links", headers=host)
    assert response.status == 403


async def test_participants_for_the_rooms_managers(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/rooms/booth/participants", headers=AUTH)
    assert response.status == 200
    assert await response.json() == {"participants": [], "next": None, "total": 0}
    response = await client.get("/api/rooms/booth/participants")
    assert response.status == 401
    response = await client.get("/api/rooms/booth/participants",
                                headers=bearer(client, "booth", "v", Role.VISITOR))
    assert response.status == 403
    response = await client.get("/api/rooms/booth/participants?limit=0", headers=AUTH)
    assert response.status == 400
