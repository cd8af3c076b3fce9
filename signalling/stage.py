"""The stage of a livestream: a host invites a viewer on, they accept or decline, step down.

In a livestream only its hosts and owner exhibitor publish (:func:`rooms.access.room_grants`);
a viewer a host invited, who accepted, publishes too until they step down or a host takes them
off. Where everyone stands is kept in the store and told in the room's log (``stage`` events),
so every node sees it: the node holding the person's connection gives or takes the grant, and
stops their media when it goes.

Events (client -> server; see docs/socketio.md):

- ``stage-invite`` ``{identity}`` (``moderate``) -> ``{}``
- ``stage-answer`` ``{accept}`` (the invitee) -> ``{grants, stage}``
- ``stage-leave`` ``{identity?}`` (oneself, or anyone with ``moderate``) -> ``{}``
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rooms import Grant, Room, RoomKind, RoomNotFoundError, Store, ValidationError
from rooms.access import StageState, may_publish_by_role
from rooms.events import RoomEvent, StageChanged, StageMove
from rooms.model import check_identity
from signalling.auth import ForbiddenError
from signalling.errors import ApiError
from signalling.realtime import Connection, Realtime

log = logging.getLogger(__name__)

StopPublishing = Callable[[Connection], Awaitable[None]]


def _grants(connection: Connection) -> list[str]:
    return sorted(g.value for g in connection.grants)


class Stage:
    def __init__(self, realtime: Realtime, store: Store, stop_publishing: StopPublishing
                 ) -> None:
        self.realtime = realtime
        self.store = store
        self._stop_publishing = stop_publishing
        realtime.on("stage-invite", self._invite, grant=Grant.MODERATE, joined=True)
        realtime.on("stage-answer", self._answer, joined=True)
        realtime.on("stage-leave", self._leave, joined=True)
        realtime.feed.observe(self._on_event)

    async def _livestream(self, connection: Connection) -> Room:
        room = await self.store.get_room(connection.claims.room)
        if room is None:
            raise RoomNotFoundError(connection.claims.room)
        if room.kind != RoomKind.LIVESTREAM:
            raise ApiError(409, "only livestreams have a stage: in a meeting everyone "
                           "invited publishes", "not_a_livestream")
        return room

    async def _move(self, room: Room, identity: str, name: str, move: StageMove) -> None:
        state = StageState(move.value) if move in (StageMove.INVITED, StageMove.ON) else None
        await self.store.set_stage(room.id, identity, state)
        await self.realtime.feed.append(room.id, StageChanged(identity, name, move, time.time()))
        log.info("stage %s: %s %s", room.id, identity, move.value)

    async def _invite(self, connection: Connection, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or set(data) != {"identity"}:
            raise ValidationError("stage-invite", "send {identity}")
        identity = check_identity(data["identity"])
        room = await self._livestream(connection)
        guest = await self.store.get_participant(room.id, identity)
        if guest is None:
            raise ApiError(404, f"{identity!r} is not in this room", "participant_not_found")
        if guest.guest:
            raise ForbiddenError("guests watch: give them a link of their own to come on stage",
                                 "guest_cannot_publish")
        if may_publish_by_role(room, guest.role, identity):
            raise ApiError(409, f"{identity!r} publishes in this room already", "already_on_stage")
        state = (await self.store.stage_states(room.id)).get(identity)
        if state == StageState.ON:
            raise ApiError(409, f"{identity!r} is on stage already", "already_on_stage")
        await self._move(room, identity, guest.name, StageMove.INVITED)
        return {}

    async def _answer(self, connection: Connection, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("accept"), bool) or set(
                data) != {"accept"}:
            raise ValidationError("accept", "send {accept: true | false}")
        claims = connection.claims
        room = await self._livestream(connection)
        state = (await self.store.stage_states(room.id)).get(claims.identity)
        if state != StageState.INVITED:
            raise ApiError(409, "there is no invitation on stage to answer", "not_invited")
        move = StageMove.ON if data["accept"] else StageMove.DECLINED
        await self._move(room, claims.identity, claims.name, move)
        # This connection's grant now, not when the event comes back: the page goes live next.
        new_state = StageState.ON if data["accept"] else None
        connection.grants = self.realtime.grants_in(room, claims, new_state)
        return {"grants": _grants(connection), "stage": None if new_state is None
                else new_state.value}

    async def _leave(self, connection: Connection, data: Any) -> dict[str, Any]:
        if data is None:
            data = {}
        if not isinstance(data, dict) or set(data) - {"identity"}:
            raise ValidationError("stage-leave", "send {identity?}")
        claims = connection.claims
        identity = check_identity(data.get("identity", claims.identity))
        if identity != claims.identity and not connection.can(Grant.MODERATE):
            raise ForbiddenError("only a host takes someone else off the stage", "missing_grant")
        room = await self._livestream(connection)
        if (await self.store.stage_states(room.id)).get(identity) is None:
            raise ApiError(409, f"{identity!r} is not on stage", "not_on_stage")
        participant = await self.store.get_participant(room.id, identity)
        await self._move(room, identity, participant.name if participant else identity,
                         StageMove.OFF)
        return {}

    async def _on_event(self, room: Room, event: RoomEvent) -> None:
        """Whichever node holds the person's connection gives or takes the grant."""
        if not isinstance(event, StageChanged):
            return
        state = StageState(event.move.value) if event.move == StageMove.ON else None
        for connection in list(self.realtime.connections.values()):
            claims = connection.claims
            if claims.room != room.id or claims.identity != event.identity:
                continue
            had = connection.can(Grant.PUBLISH)
            connection.grants = self.realtime.grants_in(room, claims, state)
            if had and not connection.can(Grant.PUBLISH):
                await self._stop_publishing(connection)
