"""REST API: health, metrics, rooms, links and guests (the public contract in ARCHITECTURE.md).

Who may do what: the operator (the API key) everything; a room's hosts (a token with
``moderate``) edit their room, see who is in it and hand out and revoke its links; its owner
exhibitor starts and ends its live; an exhibitor or host whose link carries ``start-live``
creates livestreams of their own; anyone sees public rooms and gets a guest link to watch one.
A private room is not found (404) by anyone else: its existence is not disclosed.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import weakref
from typing import Any
from urllib.parse import quote

from aiohttp import web
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
    ROOM_FIELDS,
    Visibility,
    check_language,
    room_edited,
    room_from_request,
)
from signalling.auth import (
    DEFAULT_TOKEN_TTL,
    AuthError,
    Claims,
    ForbiddenError,
    IssuedToken,
)
from signalling.callers import Caller, caller_of, require_credentials, room_seen_by
from signalling.errors import ApiError, read_json_object
from signalling.keys import (
    GUEST_LIMITER,
    LIVE_HLS,
    LOOP_MONITOR,
    MESSAGE_TRANSLATIONS,
    METRICS,
    REALTIME,
    RECORDINGS,
    SETTINGS,
    SFU,
    STORE,
    TOKENS,
)
from signalling.openapi import openapi_document
from signalling.ratelimit import RateLimiter

log = logging.getLogger(__name__)

PARTICIPANT_PAGE_DEFAULT = 50
PARTICIPANT_PAGE_MAX = 200
TOKEN_ID_RE = re.compile(r"^[0-9a-f]{16}$")  # secrets.token_hex(8), as the issuer makes them

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "node": request.app[SETTINGS].node_id})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    if not await request.app[STORE].ping():
        raise ApiError(503, "store unreachable", "store_unavailable")
    return web.json_response({
        "status": "ready", "node": request.app[SETTINGS].node_id,
        # Which translators run and the pairs each has (discovered at start-up).
        "translation": request.app[MESSAGE_TRANSLATIONS].service.details(),
    })


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    sfu = request.app[SFU]
    await registry.refresh(request.app[STORE], sfu.stats(), sfu.published_formats(),
                           request.app[LOOP_MONITOR].take_worst(),
                           request.app[RECORDINGS].stats(), request.app[LIVE_HLS].stats())
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


async def _managing(request: web.Request, room_id: str) -> Caller:
    """The caller, who must manage ``room_id``: 401 without credentials, 404 if it may not
    even see the room (a private room's existence is not disclosed), 403 otherwise."""
    caller = await caller_of(request)
    require_credentials(caller)
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


SCHEDULE_QUERY = frozenset({"from", "to"})
UNIX_SECONDS_RE = re.compile(r"^[0-9]{1,11}(\.[0-9]{1,6})?$")
# Self-started lives (start-live grant): per identity, a few a minute.
START_LIVE_PER_MINUTE = 3.0
START_LIVE_BURST = 3.0
# Fields a start-live token may send; kind and owner are the node's to say (see create_room).
SELF_STARTED_FIELDS = frozenset({"name", "category", "scheduled_start", "scheduled_end",
                                 "record", "languages", "visibility", "status", "kind", "owner"})
# One limiter per application (tests run several in one process); the app cannot take new keys
# once it runs, so it is looked up here rather than in signalling.keys.
_START_LIVE_LIMITERS: weakref.WeakKeyDictionary[web.Application, RateLimiter] = (
    weakref.WeakKeyDictionary())


def unix_query(request: web.Request, name: str) -> float | None:
    """A schedule bound of the query: UNIX seconds (an integer or a decimal), or absent."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not UNIX_SECONDS_RE.match(raw) or float(raw) >= 2**34:
        raise ValidationError(name, "a UNIX time in seconds, such as 1767225600")
    return float(raw)


def schedule_span(room: Room, now: float) -> tuple[float, float] | None:
    """When a room takes place on the schedule: from its scheduled or actual start (whichever
    is earlier) to its end (ended: when it ended; live: at least until ``now``; scheduled: its
    scheduled end, or its start when it has none). None for a room with no time at all."""
    starts = [t for t in (room.scheduled_start, room.started_at) if t is not None]
    if not starts:
        return None
    start = min(starts)
    if room.status == RoomStatus.ENDED:
        end = room.ended_at if room.ended_at is not None else room.scheduled_end
    elif room.status == RoomStatus.LIVE:
        end = max(now, room.scheduled_end or now)
    else:
        end = room.scheduled_end
    return start, max(start, end if end is not None else start)


def in_window(room: Room, now: float, low: float | None, high: float | None) -> bool:
    """Whether the room's schedule overlaps ``[low, high)``: it starts in it, or runs into it
    (a live room runs until now at least). Unbounded on a side that is None."""
    span = schedule_span(room, now)
    if span is None:
        return False
    start, end = span
    if high is not None and start >= high:
        return False
    if low is None or start >= low or end > low:
        return True
    return room.status == RoomStatus.LIVE and end >= low  # live right at the window's start


@routes.get("/api/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    """Rooms the caller may see, filtered; with ``from``/``to`` (UNIX seconds) the schedule:
    rooms taking place in ``[from, to)``, by start time."""
    unknown = set(request.query) - {"kind", "status", "category", "visibility"} - SCHEDULE_QUERY
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown query parameter")
    caller = await caller_of(request)
    visibility = _enum_query(request, "visibility", Visibility)
    low, high = unix_query(request, "from"), unix_query(request, "to")
    if low is not None and high is not None and high <= low:
        raise ValidationError("to", "must be after from")
    rooms = await request.app[STORE].list_rooms(
        kind=_enum_query(request, "kind", RoomKind),
        status=_enum_query(request, "status", RoomStatus),
        category=request.query.get("category") or None,
    )
    shown = [room for room in rooms if caller.sees(room)
             and (visibility is None or room.visibility == visibility)]
    if low is not None or high is not None:
        now = time.time()
        spans = {room.id: schedule_span(room, now) for room in shown}
        shown = sorted((room for room in shown if in_window(room, now, low, high)),
                       key=lambda room: ((spans[room.id] or (0.0, 0.0))[0], room.id))
    return web.json_response({"rooms": [room_body(request, room) for room in shown]})


def _start_live_limiter(app: web.Application) -> RateLimiter:
    limiter = _START_LIVE_LIMITERS.get(app)
    if limiter is None:
        limiter = _START_LIVE_LIMITERS[app] = RateLimiter(START_LIVE_PER_MINUTE,
                                                          burst=START_LIVE_BURST)
    return limiter


def _self_started(claims: Claims, body: dict[str, Any], now: float) -> Room:
    """The livestream a start-live token asks for: always a livestream owned by its bearer,
    public unless it asks for private, scheduled (from now, unless it says when) or live."""
    unknown = set(body) - SELF_STARTED_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationError(name, "chosen by the node for a live you start"
                              if name in ROOM_FIELDS else "unknown field")
    if body.get("kind", RoomKind.LIVESTREAM.value) != RoomKind.LIVESTREAM.value:
        raise ValidationError("kind", "a live you start is a livestream")
    if body.get("owner", claims.identity) != claims.identity:
        raise ValidationError("owner", "a live you start is yours: leave owner out")
    fields = dict(body, kind=RoomKind.LIVESTREAM.value, owner=claims.identity)
    if fields.get("status", RoomStatus.SCHEDULED.value) == RoomStatus.SCHEDULED.value:
        fields.setdefault("scheduled_start", int(now))
    return room_from_request(fields, now=now)


@routes.post("/api/rooms")
async def create_room(request: web.Request) -> web.Response:
    """The operator creates any room; the bearer of a token with ``start-live`` (an exhibitor
    or a host the operator allowed to) starts a livestream of their own and gets its studio
    link (``studio_url``)."""
    caller = await caller_of(request)
    claims = caller.claims
    if not caller.operator:
        if claims is None:
            raise AuthError("send the API key, or a token with the start-live grant",
                            "missing_credentials")
        if claims.guest or not claims.can(Grant.START_LIVE):
            raise ForbiddenError("only the operator, or a token with the start-live grant, "
                                 "creates rooms", "missing_grant")
    body = await read_json_object(request)
    now = time.time()
    if caller.operator or claims is None:
        room = room_from_request(body, now=now)
        await request.app[STORE].create_room(room)
        return web.json_response(
            room_body(request, room), status=201, headers={"Location": f"/api/rooms/{room.id}"}
        )

    room = _self_started(claims, body, now)
    limiter = _start_live_limiter(request.app)  # lives started, not requests refused
    if not limiter.allow(claims.identity, time.monotonic()):
        retry = max(1, round(limiter.retry_after(claims.identity)))
        raise ApiError(429, "too many lives started: try again shortly", "rate_limited",
                       headers={"Retry-After": str(retry)})
    await request.app[STORE].create_room(room)
    settings = request.app[SETTINGS]
    # The studio link lasts no longer than the link that started the live (a minute at least).
    ttl = int(min(DEFAULT_TOKEN_TTL, settings.token_max_ttl, claims.link_expires_at - now))
    studio = request.app[TOKENS].issue_link(
        room=room.id, identity=claims.identity, name=claims.name, role=claims.role,
        ttl=max(60, ttl), language=claims.language, now=now)
    await request.app[STORE].put_link(LinkRecord(
        token_id=studio.token_id, room=room.id, identity=claims.identity, name=claims.name,
        role=claims.role, issued_at=studio.issued_at, expires_at=studio.expires_at))
    log.info("self-started live %s by %s (%s), studio link %s", room.id, claims.identity,
             claims.role.value, studio.token_id)
    link = _link_body(request, studio)
    return web.json_response(
        room_body(request, room) | {"studio_url": link["url"], "studio_link": link},
        status=201, headers={"Location": f"/api/rooms/{room.id}"},
    )


@routes.get("/api/rooms/{room_id}")
async def get_room(request: web.Request) -> web.Response:
    room = await room_seen_by(request, await caller_of(request))
    body = room_body(request, room)
    body["participant_count"] = await request.app[STORE].count_participants(room.id)
    return web.json_response(body)


@routes.patch("/api/rooms/{room_id}")
async def update_room(request: web.Request) -> web.Response:
    """Operators and the room's hosts edit it; its owner exhibitor starts and ends the live and
    says how viewers watch; starting and stopping recording needs the ``record`` grant."""
    caller = await caller_of(request)
    require_credentials(caller)
    room = await room_seen_by(request, caller)
    body = await read_json_object(request)
    records = caller.operator or (caller.claims is not None and caller.claims.room == room.id
                                  and caller.claims.can(Grant.RECORD))
    if not caller.manages(room.id):
        if not caller.owns(room):
            raise ForbiddenError("only the operator, a host or the room's owner may change it",
                                 "missing_grant")
        if set(body) - {"status", "delivery", "record"}:
            raise ForbiddenError("the owner may start and end the live, say how viewers "
                                 "watch and (with the record grant) record, nothing else",
                                 "missing_grant")
    if "record" in body and body["record"] != room.record and not records:
        raise ForbiddenError("starting or stopping recording needs the 'record' grant",
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
    room = await room_seen_by(request, None)
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
    caller = await caller_of(request)
    require_credentials(caller)
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
        if issued.claims.can(Grant.START_LIVE):
            raise ForbiddenError("only the operator lets people start lives", "missing_grant")
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
    room = await room_seen_by(request, None)
    links = await request.app[STORE].list_links(room.id, time.time())
    return web.json_response({"links": [link.to_dict() for link in links]})


@routes.delete("/api/tokens/{token_id}")
async def revoke_token(request: web.Request) -> web.Response:
    """Revoke a link: every connection that came in with it is ended at its next renewal."""
    caller = await caller_of(request)
    require_credentials(caller)
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
    room = await room_seen_by(request, Caller())  # private rooms are not found
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
