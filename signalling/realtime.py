"""socket.io on the same aiohttp app: authentication, joining a room, presence.

Other features (media negotiation, chat, moderation) register their events with
:meth:`Realtime.on`, which authenticates, rate-limits and turns failures into the contract's
error shape in the acknowledgement: ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio

from config import Settings
from rooms import Grant, Participant, Room, RoomStatus, Store, ValidationError
from signalling.auth import AuthError, Claims, ForbiddenError, TokenIssuer, require
from signalling.errors import ApiError, error_body
from signalling.metrics import Metrics
from signalling.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# Per connection: a steady rate that a busy person never reaches, bursts for page start-up.
EVENTS_PER_MINUTE = 600
EVENT_BURST = 60


@dataclass(slots=True)
class Connection:
    sid: str
    claims: Claims
    joined: bool = False
    data: dict[str, Any] = field(default_factory=dict)


EventHandler = Callable[[Connection, Any], Awaitable[Any]]
DisconnectHook = Callable[[Connection], Awaitable[None]]


def socket_room(room_id: str) -> str:
    return f"room:{room_id}"


class Realtime:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        tokens: TokenIssuer,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.tokens = tokens
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
        self._limiter = RateLimiter(EVENTS_PER_MINUTE, EVENT_BURST)
        self._disconnect_hooks: list[DisconnectHook] = []
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.on("join", self._join)
        self.on("leave", self._leave)

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
                    require(connection.claims, grant)
                if joined and not connection.joined:
                    raise ApiError(409, "join the room first", "not_joined")
                result = await handler(connection, data)
            except ValidationError as exc:
                outcome, result = "invalid", error_body("invalid_field", str(exc))
            except (AuthError, ForbiddenError) as exc:
                outcome, result = "refused", error_body(exc.code, str(exc))
            except ApiError as exc:
                outcome, result = "error", error_body(exc.code, exc.message)
            except Exception:
                log.exception("socket.io event %s failed", event)
                outcome, result = "error", error_body("internal_error", "internal server error")
            else:
                outcome = "ok"
            self.metrics.socket_events.labels(event, outcome).inc()
            return result

        self.sio.on(event, dispatch)

    def on_disconnect(self, hook: DisconnectHook) -> None:
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
            claims = self.tokens.verify(token)
        except AuthError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                str(exc), error_body(exc.code, str(exc))["error"]
            ) from None
        self.connections[sid] = Connection(sid=sid, claims=claims)
        self.metrics.socket_connections.inc()

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
        room = await self.store.get_room(claims.room)
        if room is None:
            raise ApiError(404, f"no room {claims.room!r}", "room_not_found")
        if room.status == RoomStatus.ENDED:
            raise ApiError(409, "this room has ended", "room_ended")
        connection.joined = True
        await self.sio.enter_room(connection.sid, socket_room(room.id))
        participant, previous = await self.seat(claims, connection.sid)
        if previous is not None and previous.session_id != connection.sid:
            # One identity, one seat: the newest connection wins (a reload, a second tab).
            await self.sio.emit("replaced", {"reason": "joined from another connection"},
                                to=previous.session_id)
            await self.sio.disconnect(previous.session_id)
        participants = await self.store.list_participants(room.id)
        return {
            "ice_servers": [{"urls": url} for url in self.settings.ice_servers],
            "room": room.to_dict(),
            "self": participant.public_dict() | {"grants": sorted(g.value for g in claims.grants)},
            "participants": [p.public_dict() for p in participants],
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
        await self.unseat(room_id, connection.claims.identity, connection.sid)

    async def seat(self, claims: Claims, session_id: str
                   ) -> tuple[Participant, Participant | None]:
        """Put the token's bearer in its room, held by ``session_id`` (a socket.io connection or
        a WHIP session), and tell the room. Returns the participant and whom it replaced."""
        previous = await self.store.get_participant(claims.room, claims.identity)
        participant = Participant(
            identity=claims.identity,
            name=claims.name,
            role=claims.role,
            grants=claims.grants,
            joined_at=time.time(),
            language=claims.language,
            node_id=self.settings.node_id,
            session_id=session_id,
        )
        await self.store.put_participant(claims.room, participant)
        await self.sio.emit("participant-joined", participant.public_dict(),
                            room=socket_room(claims.room), skip_sid=session_id)
        await self.broadcast_participants(claims.room)
        return participant, previous

    async def unseat(self, room_id: str, identity: str, session_id: str) -> None:
        """Take ``identity`` out of the room if ``session_id`` still holds its seat."""
        current = await self.store.get_participant(room_id, identity)
        if current is None or current.session_id != session_id:
            return  # a newer connection of the same identity holds the seat
        await self.store.remove_participant(room_id, identity)
        await self.sio.emit("participant-left", {"identity": identity}, room=socket_room(room_id))
        await self.broadcast_participants(room_id)

    async def broadcast_participants(
        self, room_id: str, participants: list[Participant] | None = None
    ) -> None:
        if participants is None:
            participants = await self.store.list_participants(room_id)
        await self.sio.emit(
            "participants",
            {"room": room_id, "participants": [p.public_dict() for p in participants]},
            room=socket_room(room_id),
        )

    async def update_participant(self, room_id: str, participant: Participant) -> None:
        """Store a changed participant (e.g. its tracks) and tell the room."""
        await self.store.put_participant(room_id, participant)
        await self.broadcast_participants(room_id)

    async def room_status_changed(self, room: Room) -> None:
        await self.sio.emit("room-status", room.to_dict(), room=socket_room(room.id))
        if room.status == RoomStatus.ENDED:
            for connection in list(self.connections.values()):
                if connection.claims.room == room.id:
                    await self.sio.disconnect(connection.sid)

    async def close(self) -> None:
        for sid in list(self.connections):
            await self.sio.disconnect(sid)
        manager = self.sio.manager
        if isinstance(manager, socketio.AsyncRedisManager):
            # The listener task holds a pub/sub connection: stop it so shutdown is clean.
            task = getattr(manager, "thread", None)
            if task is not None:
                task.cancel()
