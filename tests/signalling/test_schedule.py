"""The schedule (``GET /api/rooms?from=&to=``) and self-started lives (the ``start-live``
grant on ``POST /api/rooms``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from config import load_config
from rooms import Grant, Role
from signalling.app import create_app
from signalling.keys import TOKENS

API_KEY = "test-api-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]

DAY = 86_400
# A fixed day well in the future: nothing live now overlaps it.
T = float((int(time.time()) // DAY + 30) * DAY)


def make_app(**env: str) -> web.Application:
    environ = {"FAIRWIRE_API_KEY": API_KEY, "FAIRWIRE_DATA_DIR": "/tmp/fairwire-test"} | env
    return create_app(load_config(environ=environ))


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> TestClient[Any, Any]:
    return await aiohttp_client(make_app())


def assert_error(body: Any, code: str | None = None) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create(client: TestClient[Any, Any], **fields: Any) -> dict[str, Any]:
    fields.setdefault("kind", "livestream")
    fields.setdefault("name", fields.get("id", "A live"))
    response = await client.post("/api/rooms", json=fields, headers=AUTH)
    assert response.status == 201, await response.json()
    room: dict[str, Any] = await response.json()
    return room


async def link(client: TestClient[Any, Any], room: str, identity: str, role: str,
               headers: dict[str, str] = AUTH, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/tokens", headers=headers,
                                 json={"room": room, "identity": identity, "role": role} | extra)
    assert response.status == 200, await response.json()
    body: dict[str, Any] = await response.json()
    return body


async def ids(client: TestClient[Any, Any], query: str,
              headers: dict[str, str] | None = None) -> list[str]:
    response = await client.get(f"/api/rooms?{query}", headers=headers or {})
    assert response.status == 200, await response.json()
    return [room["id"] for room in (await response.json())["rooms"]]


# -- the schedule -------------------------------------------------------------------------------


async def test_from_and_to_select_rooms_taking_place_in_the_window(
    client: TestClient[Any, Any],
) -> None:
    await create(client, id="inside-late", scheduled_start=T + 5 * 3600, category="Textiles")
    await create(client, id="before", scheduled_start=T - 7200, scheduled_end=T - 3600)
    await create(client, id="ends-at-start", scheduled_start=T - 3600, scheduled_end=T)
    await create(client, id="runs-into", scheduled_start=T - 1800, scheduled_end=T + 1800,
                 category="Machinery")
    await create(client, id="inside-early", scheduled_start=T + 3600, scheduled_end=T + 7200,
                 category="Machinery")
    await create(client, id="next-day", scheduled_start=T + DAY)
    await create(client, id="no-time")
    await create(client, id="a-meeting", kind="meeting", visibility="public",
                 scheduled_start=T + 600)
    window = f"from={int(T)}&to={int(T + DAY)}"

    # Sorted by start; [from, to) excludes what ends at `from` and what starts at `to`.
    assert await ids(client, window) == ["runs-into", "a-meeting", "inside-early",
                                         "inside-late"]
    assert await ids(client, "kind=livestream&" + window) == ["runs-into", "inside-early",
                                                              "inside-late"]
    assert await ids(client, "kind=livestream&category=Machinery&status=&" + window) == [
        "runs-into", "inside-early"]
    assert await ids(client, f"kind=livestream&status=scheduled&from={T + 3600}&to={T + 3601}"
                     ) == ["inside-early"]
    # One bound only: open on the other side. Decimal seconds are fine.
    assert await ids(client, f"kind=livestream&from={int(T + DAY) - 1}.5") == ["next-day"]
    assert await ids(client, f"kind=livestream&to={int(T)}") == ["before", "ends-at-start",
                                                                 "runs-into"]
    # Without from/to the list is as before: every room, oldest first, untimed ones too.
    assert "no-time" in await ids(client, "kind=livestream")


async def test_live_and_ended_rooms_are_on_the_schedule_of_now(
    client: TestClient[Any, Any],
) -> None:
    now = time.time()
    await create(client, id="live-unscheduled", status="live")
    await create(client, id="live-since-yesterday", status="live",
                 scheduled_start=now - DAY - 3600, scheduled_end=now - DAY)
    await create(client, id="over", status="live")
    response = await client.patch("/api/rooms/over", json={"status": "ended"}, headers=AUTH)
    assert response.status == 200
    await create(client, id="later-today", scheduled_start=now + 60)

    today = f"kind=livestream&from={int(now) - 3600}&to={int(now) + 3600}"
    shown = await ids(client, today)
    assert shown[0] == "live-since-yesterday"  # it started first
    assert set(shown) == {"live-since-yesterday", "live-unscheduled", "over", "later-today"}
    # A live room runs until now at least: on the schedule from any moment up to now...
    assert "live-unscheduled" in await ids(client, f"from={int(now)}")
    assert "live-since-yesterday" in await ids(client, f"from={int(now - DAY / 2)}"
                                                       f"&to={int(now - DAY / 3)}")
    # ...but not in the future, and an ended one is over.
    assert await ids(client, f"from={int(now) + 600}&to={int(now) + 7200}") == []
    assert await ids(client, f"status=live&from={int(now) + 5}") == []
    body = (await (await client.get(f"/api/rooms?{today}")).json())["rooms"]
    assert {room["id"]: room["on_air"] for room in body}["live-unscheduled"] is False


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("from=yesterday", "from"),
        ("from=-5", "from"),
        ("from=1e9", "from"),
        ("from=nan", "from"),
        ("from=2026-12-01T10:00:00Z", "from"),
        ("to=%201767225600", "to"),
        ("to=99999999999999", "to"),
        ("from=1767225600&to=1767225600", "to"),
        ("from=1767225600&to=1767200000", "to"),
        ("kind=livestream&from=1767225600&since=3", "since"),
    ],
)
async def test_bad_schedule_bounds_are_refused_naming_the_parameter(
    client: TestClient[Any, Any], query: str, named: str
) -> None:
    response = await client.get(f"/api/rooms?{query}")
    assert response.status == 400
    body = await response.json()
    assert_error(body, "invalid_field")
    assert body["error"]["message"].startswith(f"{named}: ")


async def test_the_schedule_keeps_the_visibility_rules(client: TestClient[Any, Any]) -> None:
    await create(client, id="open-day", scheduled_start=T + 100)
    await create(client, id="closed-day", scheduled_start=T + 200, visibility="private")
    await create(client, id="other-closed", scheduled_start=T + 300, visibility="private")
    window = f"from={int(T)}&to={int(T + DAY)}"
    assert await ids(client, window) == ["open-day"]
    assert await ids(client, window, AUTH) == ["open-day", "closed-day", "other-closed"]
    token = (await link(client, "closed-day", "acme", "exhibitor"))["token"]
    assert await ids(client, window, bearer(token)) == ["open-day", "closed-day"]
    assert await ids(client, "visibility=private&" + window, bearer(token)) == ["closed-day"]
    response = await client.get(f"/api/rooms?{window}", headers=bearer("not-a-key"))
    assert response.status == 401


# -- self-started lives -------------------------------------------------------------------------


async def test_a_start_live_link_starts_lives_owned_by_its_bearer(
    client: TestClient[Any, Any],
) -> None:
    await create(client, id="acme-booth", owner="acme", category="Machinery")
    issued = await link(client, "acme-booth", "acme", "exhibitor", name="ACME Tools",
                        grants=["publish", "subscribe", "start-live"], language="zh-CN")
    tokens = client.app[TOKENS]
    assert tokens.verify(issued["token"]).grants == {Grant.PUBLISH, Grant.SUBSCRIBE,
                                                     Grant.START_LIVE}
    before = time.time()
    response = await client.post("/api/rooms", headers=bearer(issued["token"]), json={
        "name": "After-show factory tour", "category": "Machinery"})
    assert response.status == 201, await response.json()
    room = await response.json()
    assert response.headers["Location"] == f"/api/rooms/{room['id']}"
    assert room["kind"] == "livestream" and room["owner"] == "acme"
    assert room["visibility"] == "public" and room["status"] == "scheduled"
    assert room["record"] is True and room["category"] == "Machinery"
    # Unscheduled: it is on the schedule from now.
    assert before - 1 <= room["scheduled_start"] <= time.time()
    assert room["id"] in await ids(client, f"kind=livestream&from={int(before) - 60}")

    # The studio link: the owner's, for the new room, with the role's default grants.
    url = urlsplit(room["studio_url"])
    assert url.path == f"/room/{room['id']}"
    assert room["studio_link"]["url"] == room["studio_url"]
    studio_token = parse_qs(url.query)["token"][0]
    assert studio_token == room["studio_link"]["token"]
    claims = tokens.verify(studio_token)
    assert (claims.room, claims.identity, claims.name, claims.role, claims.language) == (
        room["id"], "acme", "ACME Tools", Role.EXHIBITOR, "zh-CN")
    assert claims.grants == {Grant.PUBLISH, Grant.SUBSCRIBE} and not claims.guest
    assert claims.expires_at <= tokens.verify(issued["token"]).expires_at
    # It is a link of the room like any other (listed, revocable), and it owns the room.
    links = (await (await client.get(f"/api/rooms/{room['id']}/links", headers=AUTH)).json())
    assert [item["token_id"] for item in links["links"]] == [room["studio_link"]["token_id"]]
    response = await client.patch(f"/api/rooms/{room['id']}", json={"status": "live"},
                                  headers=bearer(studio_token))
    assert response.status == 200 and (await response.json())["status"] == "live"
    response = await client.patch(f"/api/rooms/{room['id']}", json={"name": "Renamed"},
                                  headers=bearer(studio_token))
    assert response.status == 403  # the owner starts and ends the live, nothing more

    # Asked for: private, live at once, scheduled later, kind and owner spelled out.
    response = await client.post("/api/rooms", headers=bearer(issued["token"]), json={
        "name": "Buyers only", "visibility": "private", "status": "live",
        "kind": "livestream", "owner": "acme"})
    assert response.status == 201
    private = await response.json()
    assert private["status"] == "live" and private["visibility"] == "private"
    assert private["started_at"] is not None and private["scheduled_start"] is None
    assert (await client.get(f"/api/rooms/{private['id']}")).status == 404
    private_token = private["studio_link"]["token"]
    assert (await client.get(f"/api/rooms/{private['id']}",
                             headers=bearer(private_token))).status == 200


async def test_self_started_lives_are_livestreams_of_their_own(
    client: TestClient[Any, Any],
) -> None:
    await create(client, id="acme-booth", owner="acme")
    token = (await link(client, "acme-booth", "acme", "exhibitor",
                        grants=["publish", "subscribe", "start-live"]))["token"]
    for body, field in [
        ({"name": "Deal", "kind": "meeting"}, "kind"),
        ({"name": "Someone else's", "owner": "globex"}, "owner"),
        ({"name": "Squat", "id": "keynote"}, "id"),
        ({"name": "Odd", "colour": "red"}, "colour"),
        ({"name": "Over", "status": "ended"}, "status"),
        ({"category": "Machinery"}, "name"),
        ({"name": "Backwards", "scheduled_start": T, "scheduled_end": T - 1}, "scheduled_end"),
    ]:
        response = await client.post("/api/rooms", json=body, headers=bearer(token))
        assert response.status == 400, body
        error = await response.json()
        assert_error(error, "invalid_field")
        assert error["error"]["message"].startswith(f"{field}: "), error
    response = await client.post("/api/rooms", headers=bearer(token), json={
        "name": "Tomorrow's tour", "scheduled_start": T, "scheduled_end": T + 3600})
    assert response.status == 201
    assert (await response.json())["scheduled_start"] == T
    assert (await client.get("/api/rooms?kind=livestream", headers=AUTH)).status == 200


async def test_creating_rooms_needs_the_api_key_or_the_start_live_grant(
    client: TestClient[Any, Any],
) -> None:
    await create(client, id="acme-booth", owner="acme")
    body = {"name": "My own live"}
    response = await client.post("/api/rooms", json=body)
    assert response.status == 401
    assert_error(await response.json(), "missing_credentials")
    for role in ("exhibitor", "host", "buyer", "visitor"):
        token = (await link(client, "acme-booth", f"someone-{role}", role))["token"]
        response = await client.post("/api/rooms", json=body, headers=bearer(token))
        assert response.status == 403, role
        assert_error(await response.json(), "missing_grant")
    guest = await client.post("/api/rooms/acme-booth/guest")
    response = await client.post("/api/rooms", json=body,
                                 headers=bearer((await guest.json())["token"]))
    assert response.status == 403
    # Only exhibitors and hosts may hold it...
    for role in ("buyer", "visitor"):
        response = await client.post("/api/tokens", headers=AUTH, json={
            "room": "acme-booth", "identity": "x", "role": role, "grants": ["start-live"]})
        assert response.status == 400, role
        assert_error(await response.json(), "invalid_field")
    # ...and only the operator hands it out: not a host, even for their own room.
    host = (await link(client, "acme-booth", "hall-host", "host"))["token"]
    response = await client.post("/api/tokens", headers=bearer(host), json={
        "room": "acme-booth", "identity": "acme", "role": "exhibitor",
        "grants": ["publish", "subscribe", "start-live"]})
    assert response.status == 403
    assert_error(await response.json(), "missing_grant")
    assert (await link(client, "acme-booth", "acme", "exhibitor", headers=bearer(host)))["token"]
    # Nothing was created.
    assert await ids(client, "", AUTH) == ["acme-booth"]


async def test_a_host_with_start_live_gets_a_host_studio(client: TestClient[Any, Any]) -> None:
    await create(client, id="hall-a")
    token = (await link(client, "hall-a", "lin.host", "host",
                        grants=["publish", "subscribe", "moderate", "record", "start-live"]))
    response = await client.post("/api/rooms", json={"name": "Evening special"},
                                 headers=bearer(token["token"]))
    assert response.status == 201
    room = await response.json()
    assert room["owner"] == "lin.host"
    claims = client.app[TOKENS].verify(room["studio_link"]["token"])
    assert claims.role == Role.HOST and claims.can(Grant.MODERATE)
    assert not claims.can(Grant.START_LIVE)


async def test_self_started_lives_are_rate_limited_per_identity(
    aiohttp_client: ClientFactory,
) -> None:
    client = await aiohttp_client(make_app())
    await create(client, id="booth")
    grants = ["publish", "subscribe", "start-live"]
    acme = (await link(client, "booth", "acme", "exhibitor", grants=grants))["token"]
    globex = (await link(client, "booth", "globex", "exhibitor", grants=grants))["token"]
    statuses = [(await client.post("/api/rooms", json={"name": f"Live {i}"},
                                   headers=bearer(acme))).status for i in range(4)]
    assert statuses == [201, 201, 201, 429]
    limited = await client.post("/api/rooms", json={"name": "Again"}, headers=bearer(acme))
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
    assert_error(await limited.json(), "rate_limited")
    # Another exhibitor, and the operator, are not held back by acme.
    response = await client.post("/api/rooms", json={"name": "Other"}, headers=bearer(globex))
    assert response.status == 201
    await create(client, id="operator-room")
