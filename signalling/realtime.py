"""socket.io on the same aiohttp app: authentication, joining a room, presence.

Other features (media negotiation, chat, moderation) register their events with
:meth:`Realtime.on`, which authenticates, rate-limits and turns failures into the contract's
error shape in the acknowledgement: ``{"error": {"code", "message"}}``.

What happens in a room is appended to its event log (:mod:`signalling.room_feed` delivers it
as ``"room-event"``):
a ``join`` is answered with a snapshot and the sequence number it stands at, or with the
events after the number a reconnecting client passes; a livestream's audience is counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio

from config import Settings
from rooms import (
    Grant,
    Participant,
    Role,
    Room,
    RoomKind,
    RoomNotFoundError,
    RoomStatus,
    Store,
    ValidationError,
)
from rooms.access import StageState, room_grants
from rooms.events import RoomStatusChanged
from rooms.live import VIEWER_ROLES, Visit
from rooms.presence import change, is_listed
from signalling.auth import AuthError, Claims, ForbiddenError, require_grant
from signalling.credentials import SessionCredentials
from signalling.errors import ApiError, api_error, error_body
from signalling.metrics import Metrics
from signalling.ratelimit import RateLimiter
from signalling.room_feed import RoomFeed, socket_room, team_room
from translate.languages import normalize

log = logging.getLogger(__name__)

# Per connection: a steady rate that a busy person never reaches, bursts for page start-up.
EVENTS_PER_MINUTE = 600
EVENT_BURST = 60
AUDIENCE_PAGE_DEFAULT = 50
AUDIENCE_PAGE_MAX = 200
AUDIENCE_PAGE_READS = 8  # store pages read at most to fill one page of the audience
# A livestream's team: they page through its audience and see every change of its size.
AUDIENCE_VIEWER_ROLES = frozenset({Role.HOST, Role.EXHIBITOR})


@dataclass(slots=True)
class Connection:
    sid: str
    claims: Claims  # of the credential it holds now (renewed: a later expiry)
    # What it may do in its room: the token's grants as the room kind and the stage allow
    # (set on join, changed by stage invitations).
    grants: frozenset[Grant] = frozenset()
    joined: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def can(self, grant: Grant) -> bool:
        return grant in self.grants


EventHandler = Callable[[Connection, Any], Awaitable[Any]]
ConnectionHook = Callable[[Connection], Awaitable[None]]
# Before a join takes a seat: None lets it in; an acknowledgement holds it there (a lobby).
JoinGate = Callable[[Connection, Room], Awaitable[dict[str, Any] | None]]
# What a feature adds to the join acknowledgement (Q&A, chat, the program...).
JoinPart = Callable[[Connection, Room], Awaitable[dict[str, Any]]]

__all__ = ["Connection", "Realtime", "socket_room"]


def credential_body(token: str, expires_at: int, now: float) -> dict[str, Any]:
    return {"token": token, "expires_at": expires_at, "expires_in": max(0, int(expires_at - now))}


def _since(data: Any) -> int | None:
    """The ``since`` a client passes: the last sequence number it applied."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValidationError("since", "send an object {since?}")
    value = data.get("since")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError("since", "the last sequence number applied: an integer >= 0")
    return value


class Realtime:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        credentials: SessionCredentials,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.credentials = credentials
        self.metrics = metrics
        manager = (
            socketio.AsyncRedisManager(settings.redis_url, channel="fairwire-socketio")
            if settings.redis_url
            else None
        )
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=manager,
            cors_allowed_origins=list(settings.cors_origins) if settings.cors_origins else [],
            max_http_buffer_size=settings.max_body_bytes,
            logger=False,
            engineio_logger=False,
        )
        self.connections: dict[str, Connection] = {}
        self.feed = RoomFeed(store, self.sio, self._room_ended)
        self._limiter = RateLimiter(EVENTS_PER_MINUTE, EVENT_BURST)
        self._disconnect_hooks: list[ConnectionHook] = []
        self._join_parts: list[JoinPart] = []
        self._join_gates: list[JoinGate] = []
        self._connect_hooks: list[ConnectionHook] = []
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.on("join", self._join)
        self.on("leave", self._leave)
        self.on("sync", self._sync, joined=True)
        self.on("audience-list", self._audience_list, joined=True)

    # -- registration -----------------------------------------------------------------------

    def on(self, event: str, handler: EventHandler, *, grant: Grant | None = None,
           joined: bool = False) -> None:
        """Register ``handler`` for ``event``; its return value is the acknowledgement."""

        async def dispatch(sid: str, data: Any = None) -> Any:
            connection = self.connections.get(sid)
            if connection is None:
                return error_body("unauthorized", "not connected")
            if not self._limiter.allow(sid, time.monotonic()):
                self.metrics.socket_events.labels(event, "rate_limited").inc()
                return error_body("rate_limited", "too many events: slow down")
            try:
                if connection.claims.expires_at < time.time():
                    raise AuthError("token expired", "token_expired")
                if grant is not None:
                    require_grant(connection.grants, grant)
                if joined and not connection.joined:
                    raise ApiError(409, "join the room first", "not_joined")
                result = await handler(connection, data)
            except Exception as exc:
                error = api_error(exc)
                if error is None:
                    log.exception("socket.io event %s failed", event)
                    error = ApiError(500, "internal server error", "internal_error")
                outcome = ("invalid" if error.status == 400 else
                           "refused" if error.status in (401, 403) else "error")
                result = error_body(error.code, error.message, **error.extra)
            else:
                outcome = "ok"
            self.metrics.socket_events.labels(event, outcome).inc()
            return result

        self.sio.on(event, dispatch)

    def on_join(self, part: JoinPart) -> None:
        """Add ``part``'s fields to every join acknowledgement (after the seat is taken)."""
        self._join_parts.append(part)

    def on_join_gate(self, gate: JoinGate) -> None:
        """Ask ``gate`` before every join takes a seat (it may also refuse: raise)."""
        self._join_gates.append(gate)

    def on_connect(self, hook: ConnectionHook) -> None:
        """Run ``hook`` for every connection once its credential is accepted."""
        self._connect_hooks.append(hook)

    def on_disconnect(self, hook: ConnectionHook) -> None:
        """Run ``hook`` when a connection goes (before presence is updated)."""
        self._disconnect_hooks.append(hook)

    # -- connection lifecycle ---------------------------------------------------------------

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            # Two arguments: the client sees err.message and err.data = {code, message}.
            message = "connect with auth: {token: <JWT>}"
            raise socketio.exceptions.ConnectionRefusedError(
                message, error_body("missing_credentials", message)["error"]
            )
        try:
            claims = await self.credentials.verify(token)
            # Coming back works while the link lasts; a connection that stays is renewed on.
            if claims.link_expires_at + self.settings.clock_skew < time.time():
                raise AuthError("the link has expired: ask the organiser for a new one",
                                "token_expired")
        except AuthError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                str(exc), error_body(exc.code, str(exc))["error"]
            ) from None
        connection = self.connections[sid] = Connection(sid=sid, claims=claims,
                                                        grants=claims.grants)
        self.metrics.socket_connections.inc()
        for hook in self._connect_hooks:
            try:
                await hook(connection)
            except Exception:
                log.exception("connect hook failed for %s", sid)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        connection = self.connections.pop(sid, None)
        if connection is None:
            return
        self.metrics.socket_connections.dec()
        self._limiter.forget(sid)
        for hook in self._disconnect_hooks:
            try:
                await hook(connection)
            except Exception:
                log.exception("disconnect hook failed for %s", sid)
        if connection.joined:
            await self._remove_participant(connection)

    # -- presence ---------------------------------------------------------------------------

    async def _join(self, connection: Connection, data: Any) -> dict[str, Any]:
        claims = connection.claims
        since = _since(data)
        room = await self.store.get_room(claims.room)
        if room is None or (claims.guest and not room.public):
            raise RoomNotFoundError(claims.room)  # a room made private sends its guests away
        if room.status == RoomStatus.ENDED:
            raise ApiError(409, "this room has ended", "room_ended")
        for gate in self._join_gates:
            held = await gate(connection, room)
            if held is not None:
                return held
        stage = (await self.store.stage_states(room.id)).get(claims.identity)
        connection.grants = self.grants_in(room, claims, stage)
        now = time.time()
        credential = self.credentials.issue(claims, now)
        connection.claims = credential.claims
        if not connection.joined:
            connection.joined = True
            await self.sio.enter_room(connection.sid, socket_room(room.id))
            if claims.role in AUDIENCE_VIEWER_ROLES:
                await self.sio.enter_room(connection.sid, team_room(room.id))
            await self.feed.follow(room)
        participant, previous = await self.seat(claims, connection.sid, room,
                                                grants=connection.grants)
        log.info("join %s: %s (%s)", room.id, claims.identity, claims.role.value)
        if previous is not None and previous.session_id != connection.sid:
            # One identity, one seat: the newest connection wins (a reload, a second tab).
            await self.sio.emit("replaced", {"reason": "joined from another connection"},
                                to=previous.session_id)
            await self.sio.disconnect(previous.session_id)
        extras: dict[str, Any] = {}
        for part in self._join_parts:
            extras |= await part(connection, room)
        return extras | {
            "ice_servers": [{"urls": url} for url in self.settings.ice_servers],
            "room": room.to_dict(),
            "self": participant.public_dict() | {
                "grants": sorted(g.value for g in connection.grants),
                "guest": claims.guest,
                "stage": None if stage is None else stage.value,
            },
            "credential": credential_body(credential.token, credential.expires_at, now),
            **await self.feed.catch_up(room.id, since),
        }

    @staticmethod
    def grants_in(room: Room, claims: Claims, stage: StageState | None) -> frozenset[Grant]:
        return room_grants(room, claims.role, claims.identity, claims.grants,
                           guest=claims.guest, stage=stage)

    # -- session credentials (CredentialHolder) ---------------------------------------------

    def token_ids(self) -> set[str]:
        return {c.claims.token_id for c in self.connections.values() if c.claims.token_id}

    async def revoke(self, token_ids: set[str]) -> None:
        for connection in list(self.connections.values()):
            if connection.claims.token_id in token_ids:
                log.info("revoked: %s in %s", connection.claims.identity, connection.claims.room)
                await self.sio.emit("revoked", {"message": "this link was revoked"},
                                    to=connection.sid)
                await self.sio.disconnect(connection.sid)

    async def renew(self, credentials: SessionCredentials, now: float) -> None:
        for connection in list(self.connections.values()):
            if not credentials.due(connection.claims, now):
                continue
            credential = credentials.issue(connection.claims, now)
            connection.claims = credential.claims
            await self.sio.emit("credential",
                                credential_body(credential.token, credential.expires_at, now),
                                to=connection.sid)

    async def _sync(self, connection: Connection, data: Any) -> dict[str, Any]:
        """A client saw a gap in the sequence numbers: the events it missed, or a snapshot."""
        room_id = connection.claims.room
        since = _since(data)
        if since is None:
            raise ValidationError("since", "is required")
        return await self.feed.catch_up(room_id, since)

    async def _audience_list(self, connection: Connection, data: Any) -> dict[str, Any]:
        """Who watches a livestream, a page at a time, for its hosts and exhibitors."""
        if connection.claims.role not in AUDIENCE_VIEWER_ROLES:
            raise ForbiddenError("only the room's hosts and exhibitors see who is watching")
        if data is None:
            data = {}
        if not isinstance(data, dict) or set(data) - {"cursor", "limit"}:
            raise ValidationError("audience-list", "send {cursor?, limit?}")
        cursor, limit = data.get("cursor"), data.get("limit", AUDIENCE_PAGE_DEFAULT)
        if cursor is not None and not isinstance(cursor, str):
            raise ValidationError("cursor", "the `next` of the previous page, or null")
        if isinstance(limit, bool) or not isinstance(limit, int) or not (
                1 <= limit <= AUDIENCE_PAGE_MAX):
            raise ValidationError("limit", f"an integer from 1 to {AUDIENCE_PAGE_MAX}")
        room = await self.store.get_room(connection.claims.room)
        if room is None:
            raise RoomNotFoundError(connection.claims.room)
        viewers: list[Participant] = []
        # The store's pages hold listed people too: read on until this page is full.
        for _ in range(AUDIENCE_PAGE_READS):
            page, cursor = await self.store.page_participants(
                room.id, cursor, limit - len(viewers))
            viewers += [p for p in page if not is_listed(room.kind, p)]
            if cursor is None or len(viewers) >= limit:
                break
        return {
            "viewers": [{"identity": p.identity, "name": p.name, "role": p.role.value,
                         "joined_at": p.joined_at, "guest": p.guest} for p in viewers],
            "next": cursor,
            "total": (await self.feed.audience(room.id))["current"],
        }

    async def _leave(self, connection: Connection, data: Any) -> dict[str, Any]:
        if connection.joined:
            for hook in self._disconnect_hooks:
                await hook(connection)
            await self._remove_participant(connection)
        return {"left": connection.claims.room}

    async def _remove_participant(self, connection: Connection) -> None:
        room_id = connection.claims.room
        connection.joined = False
        await self.sio.leave_room(connection.sid, socket_room(room_id))
        await self.sio.leave_room(connection.sid, team_room(room_id))
        self.feed.unfollow(room_id)
        log.info("leave %s: %s", room_id, connection.claims.identity)
        await self.unseat(room_id, connection.claims.identity, connection.sid)

    async def _append_change(self, room_id: str, before: Participant | None,
                             after: Participant | None, kind: RoomKind | None = None) -> None:
        """Log what a seat's change means for the room's list, if anything."""
        if kind is None:
            room = await self.store.get_room(room_id)
            if room is None:
                return  # nobody to tell
            kind = room.kind
        event = change(kind, before, after, time.time())
        if event is not None:
            await self.feed.append(room_id, event)

    async def seat(self, claims: Claims, session_id: str, room: Room | None = None, *,
                   grants: frozenset[Grant]) -> tuple[Participant, Participant | None]:
        """Put the token's bearer in its room, held by ``session_id`` (a socket.io connection or
        a WHIP session) with ``grants``, and tell the room. Returns the participant and whom it
        replaced."""
        previous = await self.store.get_participant(claims.room, claims.identity)
        participant = Participant(
            identity=claims.identity,
            name=claims.name,
            role=claims.role,
            grants=grants,
            joined_at=time.time(),
            language=claims.language,
            node_id=self.settings.node_id,
            session_id=session_id,
            guest=claims.guest,
        )
        await self.store.put_participant(claims.room, participant)
        language = normalize(claims.language)
        if language is not None:
            await self.store.note_language(claims.room, language)
        await self.store.visit_started(claims.room, Visit(
            claims.identity, claims.name, claims.role, participant.joined_at))
        await self._append_change(claims.room, previous, participant,
                                  None if room is None else room.kind)
        return participant, previous

    async def unseat(self, room_id: str, identity: str, session_id: str) -> None:
        """Take ``identity`` out of the room if ``session_id`` still holds its seat."""
        current = await self.store.get_participant(room_id, identity)
        if current is None or current.session_id != session_id:
            return  # a newer connection of the same identity holds the seat
        await self.store.remove_participant(room_id, identity)
        await self._visit_ended(room_id, current)
        await self._append_change(room_id, current, None)

    async def _visit_ended(self, room_id: str, participant: Participant) -> None:
        now = time.time()
        await self.store.visit_ended(room_id, participant.identity, now)
        if participant.role in VIEWER_ROLES:
            self.metrics.live_activity.labels("watch_seconds").inc(
                max(0.0, now - participant.joined_at))

    async def update_participant(self, room_id: str, participant: Participant) -> None:
        """Store a changed participant (e.g. its tracks) and tell the room."""
        previous = await self.store.get_participant(room_id, participant.identity)
        await self.store.put_participant(room_id, participant)
        await self._append_change(room_id, previous, participant)

    async def forget_participants(self, removed: list[tuple[str, Participant]]) -> None:
        """Tell the rooms about participants a stopped node held (the store forgot them)."""
        for room_id, participant in removed:
            await self._visit_ended(room_id, participant)
            await self._append_change(room_id, participant, None)

    async def room_changed(self, room: Room) -> None:
        """The room's record changed (status, publishing, an edit): tell everyone in it."""
        await self.feed.append(room.id, RoomStatusChanged(room, time.time()))

    async def _room_ended(self, room_id: str) -> None:
        """Every node sends its clients of an ended room away once they were told."""
        for connection in list(self.connections.values()):
            if connection.claims.room == room_id:
                await self.sio.disconnect(connection.sid)

    def start(self) -> None:
        self.feed.start()

    async def close(self) -> None:
        for sid in list(self.connections):
            await self.sio.disconnect(sid)
        await self.feed.close()
        manager = self.sio.manager
        if isinstance(manager, socketio.AsyncRedisManager):
            # The listener task holds a pub/sub connection: stop it so shutdown is clean.
            task = getattr(manager, "thread", None)
            if task is not None:
                task.cancel()
