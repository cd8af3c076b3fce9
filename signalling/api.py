"""REST API: health, metrics, rooms, links and guests (the public contract in ARCHITECTURE.md).

Who may do what: the operator (the API key) everything; a room's hosts (a token with
``moderate``) edit their room, see who is in it and hand out and revoke its links; its owner
exhibitor starts and ends its live; anyone sees public rooms and gets a guest link to watch one.
A private room is not found (404) by anyone else: its existence is not disclosed.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST

from rooms import (
    Grant,
    Role,
    Room,
    RoomKind,
    RoomNotFoundError,
    RoomStatus,
    ValidationError,
)
from rooms.access import LinkRecord, on_air
from rooms.model import (
    MAX_NAME_CHARS,
    Visibility,
    check_language,
    check_room_id,
    room_edited,
    room_from_request,
)
from signalling.auth import (
    AuthError,
    Claims,
    ForbiddenError,
    IssuedToken,
    bearer_token,
    check_api_key,
)
from signalling.errors import ApiError, read_json_object
from signalling.keys import (
    CREDENTIALS,
    GUEST_LIMITER,
    LOOP_MONITOR,
    METRICS,
    REALTIME,
    SETTINGS,
    SFU,
    STORE,
    TOKENS,
)
from signalling.openapi import openapi_document

log = logging.getLogger(__name__)

PARTICIPANT_PAGE_DEFAULT = 50
PARTICIPANT_PAGE_MAX = 200
TOKEN_ID_RE = re.compile(r"^[0-9a-f]{16}$")  # secrets.token_hex(8), as the issuer makes them

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


def _enum_query(request: web.Request, name: str,
                cls: type[RoomKind] | type[RoomStatus] | type[Visibility]) -> Any:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return cls(raw)
    except ValueError:
        choices = ", ".join(member.value for member in cls)
        raise ValidationError(name, f"one of {choices}") from None


# -- who is asking ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    """Anonymous, the operator (API key), or the bearer of a room's link or credential."""

    operator: bool = False
    claims: Claims | None = None

    def sees(self, room: Room) -> bool:
        """Public rooms are anyone's; a private one is its token holders' and the operator's."""
        return room.public or self.operator or (
            self.claims is not None and self.claims.room == room.id and not self.claims.guest)

    def manages(self, room_id: str) -> bool:
        """The operator, or a host of that room (the ``moderate`` grant)."""
        return self.operator or (self.claims is not None and self.claims.room == room_id
                                 and self.claims.can(Grant.MODERATE) and not self.claims.guest)

    def owns(self, room: Room) -> bool:
        claims = self.claims
        return (claims is not None and claims.room == room.id and not claims.guest
                and claims.role == Role.EXHIBITOR and room.owner == claims.identity)


async def _caller(request: web.Request) -> Caller:
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return Caller()
    credential = bearer_token(header)
    if hmac.compare_digest(credential.encode(), request.app[SETTINGS].api_key.encode()):
        return Caller(operator=True)
    if credential.count(".") != 2:  # not a JWT (RFC 7519 §3): a mistyped API key
        raise AuthError("invalid API key", "invalid_api_key")
    return Caller(claims=await request.app[CREDENTIALS].verify(credential))


async def _managing(request: web.Request, room_id: str) -> Caller:
    """The caller, who must manage ``room_id``: 401 without credentials, 404 if it may not
    even see the room (a private room's existence is not disclosed), 403 otherwise."""
    caller = await _caller(request)
    if not caller.operator and caller.claims is None:
        raise AuthError("send the API key or a host token of this room", "missing_credentials")
    if not caller.manages(room_id):
        if caller.claims is not None and caller.claims.room != room_id:
            raise ForbiddenError(f"token is for room {caller.claims.room!r}", "wrong_room")
        raise ForbiddenError("only the operator or a host of this room may do this",
                             "missing_grant")
    return caller


def room_body(request: web.Request, room: Room) -> dict[str, Any]:
    """A room as the API shows it: its record and whether it is on air now."""
    grace = request.app[SETTINGS].live_grace
    return room.to_dict() | {"on_air": on_air(room, time.time(), grace)}


def _site(request: web.Request) -> str:
    """Where people open pages: the configured public URL, or the address this request used."""
    public_url = request.app[SETTINGS].public_url
    return public_url.rstrip("/") if public_url else f"{request.scheme}://{request.host}"


def _link_body(request: web.Request, issued: IssuedToken) -> dict[str, Any]:
    room = issued.claims.room
    return {
        "token": issued.token,
        "token_id": issued.token_id,
        "expires_in": issued.ttl,
        "expires_at": issued.expires_at,
        "url": f"{_site(request)}/room/{quote(room)}?token={issued.token}",
    }


# -- rooms --------------------------------------------------------------------------------------


@routes.get("/api/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    unknown = set(request.query) - {"kind", "status", "category", "visibility"}
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown query parameter")
    caller = await _caller(request)
    visibility = _enum_query(request, "visibility", Visibility)
    rooms = await request.app[STORE].list_rooms(
        kind=_enum_query(request, "kind", RoomKind),
        status=_enum_query(request, "status", RoomStatus),
        category=request.query.get("category") or None,
    )
    shown = [room_body(request, room) for room in rooms if caller.sees(room)
             and (visibility is None or room.visibility == visibility)]
    return web.json_response({"rooms": shown})


@routes.post("/api/rooms")
async def create_room(request: web.Request) -> web.Response:
    require_api_key(request)
    body = await read_json_object(request)
    room = room_from_request(body, now=time.time())
    await request.app[STORE].create_room(room)
    return web.json_response(
        room_body(request, room), status=201, headers={"Location": f"/api/rooms/{room.id}"}
    )


async def _room_or_404(request: web.Request, caller: Caller | None = None) -> Room:
    """The room of the path, if it exists and the caller may see it (else 404 either way)."""
    room_id = request.match_info["room_id"]
    try:
        check_room_id(room_id)
    except ValidationError:
        raise RoomNotFoundError(room_id) from None
    room = await request.app[STORE].get_room(room_id)
    if room is None or (caller is not None and not caller.sees(room)):
        raise RoomNotFoundError(room_id)
    return room


@routes.get("/api/rooms/{room_id}")
async def get_room(request: web.Request) -> web.Response:
    room = await _room_or_404(request, await _caller(request))
    body = room_body(request, room)
    body["participant_count"] = await request.app[STORE].count_participants(room.id)
    return web.json_response(body)


@routes.patch("/api/rooms/{room_id}")
async def update_room(request: web.Request) -> web.Response:
    """Operators and the room's hosts edit it; its owner exhibitor starts and ends the live."""
    caller = await _caller(request)
    if not caller.operator and caller.claims is None:
        raise AuthError("send the API key or a host token of this room", "missing_credentials")
    room = await _room_or_404(request, caller)
    body = await read_json_object(request)
    if not caller.manages(room.id):
        if not caller.owns(room):
            raise ForbiddenError("only the operator, a host or the room's owner may change it",
                                 "missing_grant")
        if set(body) - {"status"}:
            raise ForbiddenError("the owner may start and end the live (status) only",
                                 "missing_grant")
    try:
        updated = room_edited(room, body, now=time.time())
    except ValidationError as exc:
        if exc.field != "status" or "cannot go from" not in exc.message:
            raise
        raise ApiError(409, str(exc), "invalid_transition") from None
    if updated != room:
        await request.app[STORE].save_room(updated)
        await request.app[REALTIME].room_changed(updated)
        if updated.status == RoomStatus.ENDED and room.status != RoomStatus.ENDED:
            # Encoders (WHIP) and players (WHEP) are not socket.io connections: end them too.
            await request.app[SFU].close_room(updated.id)
    return web.json_response(room_body(request, updated))


@routes.get("/api/rooms/{room_id}/participants")
async def list_participants(request: web.Request) -> web.Response:
    """Who is in a room, a page at a time (the console's view of it)."""
    await _managing(request, request.match_info["room_id"])
    room = await _room_or_404(request)
    unknown = set(request.query) - {"cursor", "limit"}
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown query parameter")
    raw_limit = request.query.get("limit", str(PARTICIPANT_PAGE_DEFAULT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= PARTICIPANT_PAGE_MAX:
        raise ValidationError("limit", f"an integer from 1 to {PARTICIPANT_PAGE_MAX}")
    store = request.app[STORE]
    page, following = await store.page_participants(room.id, request.query.get("cursor") or None,
                                                    int(raw_limit))
    return web.json_response({
        "participants": [p.public_dict() | {"guest": p.guest} for p in page],
        "next": following,
        "total": await store.count_participants(room.id),
    })


# -- links --------------------------------------------------------------------------------------


@routes.post("/api/tokens")
async def create_token(request: web.Request) -> web.Response:
    """A link for one person in one room: by the operator, or by a host for their own room
    (not a host link: hosts are made by the operator)."""
    caller = await _caller(request)
    if not caller.operator and caller.claims is None:
        raise AuthError("send the API key or a host token", "missing_credentials")
    body = await read_json_object(request)
    now = time.time()
    issued = request.app[TOKENS].issue_from_request(body, now=now)
    room_id = issued.claims.room
    if not caller.operator:
        if not caller.manages(room_id):
            raise ForbiddenError("a host issues links for their own room only", "wrong_room"
                                 if caller.claims and caller.claims.room != room_id
                                 else "missing_grant")
        if issued.claims.role == Role.HOST:
            raise ForbiddenError("only the operator issues host links", "missing_grant")
    room = await request.app[STORE].get_room(room_id)
    if room is None:
        raise RoomNotFoundError(room_id)
    claims = issued.claims
    await request.app[STORE].put_link(LinkRecord(
        token_id=issued.token_id, room=room_id, identity=claims.identity, name=claims.name,
        role=claims.role, issued_at=issued.issued_at, expires_at=issued.expires_at))
    log.info("link %s: %s (%s) in %s, %d s", issued.token_id, claims.identity,
             claims.role.value, room_id, issued.ttl)
    return web.json_response(_link_body(request, issued))


@routes.get("/api/rooms/{room_id}/links")
async def list_links(request: web.Request) -> web.Response:
    await _managing(request, request.match_info["room_id"])
    room = await _room_or_404(request)
    links = await request.app[STORE].list_links(room.id, time.time())
    return web.json_response({"links": [link.to_dict() for link in links]})


@routes.delete("/api/tokens/{token_id}")
async def revoke_token(request: web.Request) -> web.Response:
    """Revoke a link: every connection that came in with it is ended at its next renewal."""
    caller = await _caller(request)
    if not caller.operator and caller.claims is None:
        raise AuthError("send the API key or a host token", "missing_credentials")
    token_id = request.match_info["token_id"]
    store = request.app[STORE]
    now = time.time()
    not_found = ApiError(404, "no such link (or it has expired)", "token_not_found")
    if not TOKEN_ID_RE.match(token_id):
        raise not_found
    if not caller.operator:
        claims = caller.claims
        if claims is None or not caller.manages(claims.room):
            raise ForbiddenError("only the operator or a host revokes links", "missing_grant")
        # A host revokes the links of their own room only; others are not found for them.
        if token_id not in {link.token_id for link in await store.list_links(claims.room, now)}:
            raise not_found
    revoked = await store.revoke_link(token_id, now)
    if revoked is None:
        raise not_found
    log.info("link %s revoked (%s in %s)", token_id, revoked.identity, revoked.room)
    return web.Response(status=204)


# -- guests -------------------------------------------------------------------------------------


@routes.post("/api/rooms/{room_id}/guest")
async def guest_link(request: web.Request) -> web.Response:
    """A visitor's link for a public room, so that anyone on the programme can watch."""
    limiter = request.app[GUEST_LIMITER]
    address = request.remote or "unknown"
    if not limiter.allow(address, time.monotonic()):
        retry = max(1, round(limiter.retry_after(address)))
        raise ApiError(429, "too many guest links from this address: try again shortly",
                       "rate_limited", headers={"Retry-After": str(retry)})
    room = await _room_or_404(request, Caller())  # private rooms are not found
    if room.status == RoomStatus.ENDED:
        raise ApiError(409, "this room has ended", "room_ended")
    body: dict[str, Any] = {}
    if request.can_read_body:
        body = await read_json_object(request)
    unknown = set(body) - {"name", "language"}
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown field")
    number = secrets.randbelow(9000) + 1000
    name = body.get("name") or f"Guest {number}"
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise ValidationError("name", f"a non-empty string of at most {MAX_NAME_CHARS}")
    language = check_language(body.get("language", room.languages[0]))
    settings = request.app[SETTINGS]
    issued = request.app[TOKENS].issue_link(
        room=room.id, identity=f"guest-{secrets.token_hex(6)}", name=name.strip(),
        role=Role.VISITOR, ttl=settings.guest_token_ttl, language=language, guest=True)
    return web.json_response(
        _link_body(request, issued) | {"identity": issued.claims.identity,
                                       "name": issued.claims.name}, status=201)
