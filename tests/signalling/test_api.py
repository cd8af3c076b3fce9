from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from config import load_config
from signalling.app import create_app

API_KEY = "test-api-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


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


async def test_health_and_readiness(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json())["status"] == "ok"
    response = await client.get("/readyz")
    assert response.status == 200


async def test_create_room_needs_the_api_key(client: TestClient[Any, Any]) -> None:
    response = await client.post("/api/rooms", json={"name": "Booth", "kind": "livestream"})
    assert response.status == 401
    assert_error(await response.json(), "missing_credentials")
    response = await client.post("/api/rooms", json={"name": "Booth", "kind": "livestream"},
                                 headers={"Authorization": "Bearer wrong"})
    assert response.status == 401
    assert_error(await response.json(), "invalid_api_key")
    assert (await (await client.get("/api/rooms")).json())["rooms"] == []


async def test_rooms_are_created_listed_and_filtered(client: TestClient[Any, Any]) -> None:
    created = []
    for name, kind, category, status in [
        ("Machine tools live", "livestream", "machinery", "live"),
        ("Textiles preview", "livestream", "textiles", "scheduled"),
        ("Negotiation 1", "meeting", "machinery", "scheduled"),
    ]:
        response = await client.post(
            "/api/rooms",
            json={"name": name, "kind": kind, "category": category, "status": status},
            headers=AUTH,
        )
        assert response.status == 201
        room = await response.json()
        assert room["id"] and room["name"] == name and room["status"] == status
        assert response.headers["Location"] == f"/api/rooms/{room['id']}"
        created.append(room)

    async def names(query: str, headers: dict[str, str] = AUTH) -> list[str]:
        response = await client.get(f"/api/rooms{query}", headers=headers)
        assert response.status == 200
        return [room["name"] for room in (await response.json())["rooms"]]

    assert await names("") == ["Machine tools live", "Textiles preview", "Negotiation 1"]
    assert await names("?kind=meeting") == ["Negotiation 1"]
    assert await names("?status=live") == ["Machine tools live"]
    assert await names("?category=machinery&kind=livestream") == ["Machine tools live"]
    assert await names("?visibility=private") == ["Negotiation 1"]
    # Meetings are private unless made public: nobody without a credential sees them.
    assert await names("", headers={}) == ["Machine tools live", "Textiles preview"]
    assert await names("?kind=meeting", headers={}) == []
    response = await client.get(f"/api/rooms/{created[1]['id']}")
    assert response.status == 200
    assert (await response.json())["category"] == "textiles"


async def test_room_lifecycle_over_patch(client: TestClient[Any, Any]) -> None:
    room = await (await client.post("/api/rooms", json={"id": "expo-1", "name": "Expo",
                                                        "kind": "livestream"},
                                    headers=AUTH)).json()
    response = await client.patch(f"/api/rooms/{room['id']}", json={"status": "live"},
                                  headers=AUTH)
    assert response.status == 200
    assert (await response.json())["started_at"] is not None
    response = await client.patch(f"/api/rooms/{room['id']}", json={"status": "scheduled"},
                                  headers=AUTH)
    assert response.status == 409
    assert_error(await response.json(), "invalid_transition")
    response = await client.patch(f"/api/rooms/{room['id']}", json={"status": "ended"})
    assert response.status == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "livestream"}, "name"),
        ({"name": "x", "kind": "party"}, "kind"),
        ({"name": "x", "kind": "meeting", "colour": "red"}, "colour"),
        ({"name": "x", "kind": "meeting", "record": "yes"}, "record"),
        ({"name": "x", "kind": "meeting", "scheduled_start": 100, "scheduled_end": 50},
         "scheduled_end"),
        ({"name": "", "kind": "meeting"}, "name"),
        ({"name": "x", "kind": "meeting", "id": "bad id!"}, "room"),
    ],
)
async def test_bad_room_input_is_refused(
    client: TestClient[Any, Any], body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/rooms", json=body, headers=AUTH)
    assert response.status == 400
    payload = await response.json()
    assert_error(payload, "invalid_field")
    assert payload["error"]["message"].startswith(field)
    assert (await (await client.get("/api/rooms", headers=AUTH)).json())["rooms"] == []


async def test_malformed_and_oversized_bodies(client: TestClient[Any, Any]) -> None:
    response = await client.post("/api/rooms", data=b"{not json",
                                 headers=AUTH | {"Content-Type": "application/json"})
    assert response.status == 400
    assert_error(await response.json(), "invalid_json")
    response = await client.post("/api/rooms", data=b"[1, 2]",
                                 headers=AUTH | {"Content-Type": "application/json"})
    assert response.status == 400
    response = await client.post("/api/rooms", data=b"name=x", headers=AUTH)
    assert response.status == 415
    assert_error(await response.json())
    huge = b'{"name": "' + b"x" * (200 * 1024) + b'", "kind": "meeting"}'
    response = await client.post("/api/rooms", data=huge,
                                 headers=AUTH | {"Content-Type": "application/json"})
    assert response.status == 413
    assert_error(await response.json(), "payload_too_large")
    assert (await client.get("/healthz")).status == 200


async def test_duplicate_room_and_unknown_room(client: TestClient[Any, Any]) -> None:
    body = {"id": "hall-a", "name": "Hall A", "kind": "livestream"}
    assert (await client.post("/api/rooms", json=body, headers=AUTH)).status == 201
    response = await client.post("/api/rooms", json=body, headers=AUTH)
    assert response.status == 409
    assert_error(await response.json(), "room_exists")
    response = await client.get("/api/rooms/nope")
    assert response.status == 404
    assert_error(await response.json(), "room_not_found")
    response = await client.get("/api/rooms?kind=banquet")
    assert response.status == 400
    response = await client.get("/no/such/path")
    assert response.status == 404
    assert_error(await response.json(), "not_found")


async def test_tokens(client: TestClient[Any, Any]) -> None:
    await client.post("/api/rooms", json={"id": "r1", "name": "R", "kind": "meeting"},
                      headers=AUTH)
    request = {"room": "r1", "identity": "buyer-7", "name": "Wang", "role": "buyer", "ttl": 600}
    response = await client.post("/api/tokens", json=request)
    assert response.status == 401
    response = await client.post("/api/tokens", json=request, headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert body["expires_in"] == 600
    # The link a person opens: this server's room page with the token.
    assert body["url"] == f"http://{client.host}:{client.port}/room/r1?token={body['token']}"
    from signalling.keys import TOKENS

    claims = client.app[TOKENS].verify(body["token"])  # type: ignore[index]
    assert claims.identity == "buyer-7" and claims.room == "r1"
    response = await client.post("/api/tokens", json=request | {"room": "missing"}, headers=AUTH)
    assert response.status == 404
    response = await client.post("/api/tokens", json=request | {"role": "emperor"}, headers=AUTH)
    assert response.status == 400


async def test_metrics_count_rooms_and_requests(client: TestClient[Any, Any]) -> None:
    await client.post("/api/rooms", json={"name": "L", "kind": "livestream", "status": "live"},
                      headers=AUTH)
    await client.get("/api/rooms/unknown")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'fairwire_rooms{kind="livestream",status="live"} 1.0' in text
    assert 'fairwire_rooms{kind="meeting",status="live"} 0.0' in text
    assert 'fairwire_participants{role="buyer"} 0.0' in text
    assert ('fairwire_http_requests_total{method="GET",route="/api/rooms/{room_id}",'
            'status="404"} 1.0') in text
    # The node's own event-loop lag: a histogram, and the worst since the last scrape.
    assert "fairwire_event_loop_lag_seconds_bucket" in text
    assert "fairwire_event_loop_worst_lag_seconds " in text


async def test_openapi_describes_the_contract(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.")
    for path in ("/api/rooms", "/api/rooms/{room_id}", "/api/tokens", "/healthz", "/readyz",
                 "/metrics", "/whip/{room}", "/whep/{room}", "/api/rooms/{room_id}/guest",
                 "/api/rooms/{room_id}/links", "/api/rooms/{room_id}/participants",
                 "/api/tokens/{token_id}", "/api/replays", "/api/replays/{replay_id}",
                 "/replays/{replay_id}/s/{signature}/{file}", "/hls/{room}/index.m3u8",
                 "/hls/{room}/s/{signature}/{file}"):
        assert path in document["paths"], path
    # Every route the app serves under /api/ is described.
    served = {resource.canonical for resource in client.app.router.resources()
              if resource.canonical.startswith("/api/")} - {"/api/openapi.json"}
    assert served <= set(document["paths"]), served - set(document["paths"])


async def test_writes_are_rate_limited(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app(FAIRWIRE_RATE_LIMIT_PER_MINUTE="6"))
    statuses = [
        (await client.post("/api/rooms", json={"name": f"r{i}", "kind": "meeting"},
                           headers=AUTH)).status
        for i in range(15)
    ]
    assert statuses[0] == 201
    assert 429 in statuses
    limited = await client.post("/api/rooms", json={"name": "x", "kind": "meeting"},
                                headers=AUTH)
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert_error(await limited.json(), "rate_limited")
    assert (await client.get("/api/rooms")).status == 200


async def test_recording_is_started_and_stopped_by_the_record_grant_only(
        client: TestClient[Any, Any]) -> None:
    await client.post("/api/rooms", json={"id": "deal", "name": "Deal", "kind": "meeting",
                                          "owner": "valve-co"}, headers=AUTH)

    async def bearer(identity: str, role: str, grants: list[str] | None = None) -> dict[str, str]:
        body = {"room": "deal", "identity": identity, "role": role} | (
            {"grants": grants} if grants else {})
        response = await client.post("/api/tokens", json=body, headers=AUTH)
        assert response.status == 200, await response.json()
        return {"Authorization": f"Bearer {(await response.json())['token']}"}

    owner = await bearer("valve-co", "exhibitor")
    recording_owner = await bearer("valve-co", "exhibitor", ["publish", "subscribe", "record"])
    host = await bearer("host-1", "host")
    narrowed_host = await bearer("host-2", "host", ["publish", "subscribe", "moderate"])
    buyer = await bearer("buyer-1", "buyer")

    async def patch(headers: dict[str, str], body: dict[str, Any]) -> Any:
        response = await client.patch("/api/rooms/deal", json=body, headers=headers)
        return response.status, await response.json()

    status, body = await patch(owner, {"record": True})
    assert status == 403 and body["error"]["code"] == "missing_grant"
    status, body = await patch(narrowed_host, {"record": True})
    assert status == 403
    status, body = await patch(buyer, {"record": True})
    assert status == 403
    assert (await (await client.get("/api/rooms/deal", headers=AUTH)).json())["record"] is False
    status, body = await patch(recording_owner, {"record": True})
    assert status == 200 and body["record"] is True
    status, body = await patch(host, {"record": False})
    assert status == 200 and body["record"] is False
    # Unchanged is no change: a host's edit that repeats the flag needs no grant.
    status, body = await patch(narrowed_host, {"name": "Deal 2", "record": False})
    assert status == 200 and body["name"] == "Deal 2"


async def test_the_owner_or_a_host_sends_viewers_to_live_hls(
        client: TestClient[Any, Any]) -> None:
    await client.post("/api/rooms", json={"id": "line", "name": "Line", "kind": "livestream",
                                          "owner": "valve-co"}, headers=AUTH)
    response = await client.post("/api/tokens", json={
        "room": "line", "identity": "valve-co", "role": "exhibitor"}, headers=AUTH)
    owner = {"Authorization": f"Bearer {(await response.json())['token']}"}
    room = await (await client.get("/api/rooms/line", headers=AUTH)).json()
    assert room["delivery"] == "webrtc"
    response = await client.patch("/api/rooms/line", json={"delivery": "hls"}, headers=owner)
    assert response.status == 200 and (await response.json())["delivery"] == "hls"
    response = await client.patch("/api/rooms/line", json={"delivery": "carrier-pigeon"},
                                  headers=AUTH)
    assert response.status == 400
    assert_error(await response.json(), "invalid_field")


async def test_a_meeting_may_start_with_a_lobby(client: TestClient[Any, Any]) -> None:
    response = await client.post("/api/rooms", json={"id": "hosted", "name": "Hosted",
                                                     "kind": "meeting", "lobby": True},
                                 headers=AUTH)
    assert response.status == 201 and (await response.json())["lobby"] is True
    response = await client.post("/api/rooms", json={"name": "Bad", "kind": "meeting",
                                                     "lobby": "yes"}, headers=AUTH)
    assert response.status == 400
    assert_error(await response.json(), "invalid_field")
    response = await client.patch("/api/rooms/hosted", json={"lobby": False}, headers=AUTH)
    assert response.status == 200 and (await response.json())["lobby"] is False
