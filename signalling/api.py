"""REST API: health, metrics, rooms and tokens (the public contract in ARCHITECTURE.md)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from rooms import RoomKind, RoomNotFoundError, RoomStatus, ValidationError
from rooms.model import check_room_id, room_from_request
from signalling.auth import check_api_key
from signalling.errors import ApiError, read_json_object
from signalling.keys import LOOP_MONITOR, METRICS, REALTIME, SETTINGS, SFU, STORE, TOKENS
from signalling.openapi import openapi_document

routes = web.RouteTableDef()


def require_api_key(request: web.Request) -> None:
    check_api_key(request.headers.get("Authorization"), request.app[SETTINGS].api_key)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "node": request.app[SETTINGS].node_id})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    if not await request.app[STORE].ping():
        raise ApiError(503, "store unreachable", "store_unavailable")
    return web.json_response({"status": "ready", "node": request.app[SETTINGS].node_id})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    sfu = request.app[SFU]
    await registry.refresh(request.app[STORE], sfu.stats(), sfu.published_formats(),
                           request.app[LOOP_MONITOR].take_worst())
    return web.Response(body=registry.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def _enum_query(request: web.Request, name: str, cls: type[RoomKind] | type[RoomStatus]) -> Any:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return cls(raw)
    except ValueError:
        choices = ", ".join(member.value for member in cls)
        raise ValidationError(name, f"one of {choices}") from None


@routes.get("/api/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    unknown = set(request.query) - {"kind", "status", "category"}
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown query parameter")
    rooms = await request.app[STORE].list_rooms(
        kind=_enum_query(request, "kind", RoomKind),
        status=_enum_query(request, "status", RoomStatus),
        category=request.query.get("category") or None,
    )
    return web.json_response({"rooms": [room.to_dict() for room in rooms]})


@routes.post("/api/rooms")
async def create_room(request: web.Request) -> web.Response:
    require_api_key(request)
    body = await read_json_object(request)
    room = room_from_request(body, now=time.time())
    await request.app[STORE].create_room(room)
    return web.json_response(
        room.to_dict(), status=201, headers={"Location": f"/api/rooms/{room.id}"}
    )


async def _room_or_404(request: web.Request) -> Any:
    room_id = request.match_info["room_id"]
    try:
        check_room_id(room_id)
    except ValidationError:
        raise RoomNotFoundError(room_id) from None
    room = await request.app[STORE].get_room(room_id)
    if room is None:
        raise RoomNotFoundError(room_id)
    return room


@routes.get("/api/rooms/{room_id}")
async def get_room(request: web.Request) -> web.Response:
    room = await _room_or_404(request)
    body = room.to_dict()
    body["participant_count"] = await request.app[STORE].count_participants(room.id)
    return web.json_response(body)


@routes.patch("/api/rooms/{room_id}")
async def update_room(request: web.Request) -> web.Response:
    """Operators move a room through its lifecycle: scheduled -> live -> ended."""
    require_api_key(request)
    room = await _room_or_404(request)
    body = await read_json_object(request)
    unknown = set(body) - {"status"}
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown field (only status may change)")
    if "status" not in body:
        raise ValidationError("status", "is required")
    try:
        status = RoomStatus(body["status"])
    except ValueError:
        raise ValidationError("status", "one of scheduled, live, ended") from None
    try:
        updated = room.with_status(status, now=time.time())
    except ValidationError as exc:
        raise ApiError(409, str(exc), "invalid_transition") from None
    await request.app[STORE].save_room(updated)
    if updated.status != room.status:
        await request.app[REALTIME].room_status_changed(updated)
        if updated.status == RoomStatus.ENDED:
            # Encoders (WHIP) and players (WHEP) are not socket.io connections: end them too.
            await request.app[SFU].close_room(updated.id)
    return web.json_response(updated.to_dict())


@routes.post("/api/tokens")
async def create_token(request: web.Request) -> web.Response:
    require_api_key(request)
    body = await read_json_object(request)
    token, ttl = request.app[TOKENS].issue_from_request(body)
    room = await request.app[STORE].get_room(body["room"])
    if room is None:
        raise RoomNotFoundError(body["room"])
    return web.json_response({"token": token, "expires_in": ttl})
