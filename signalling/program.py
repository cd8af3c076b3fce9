"""A livestream's program over socket.io: several sources, one on air.

The owner exhibitor or a host brings several sources (browser camera, screen, WHIP encoders)
and picks which video and which audio are on air; viewers that subscribed with
``subscribe {program: true}`` receive one video and one audio track (MediaStream id
``"program"``) that follow each switch without renegotiation. What is on air lives in the
SFU's room (:class:`sfu.sessions.RoomProgram`, rules in :mod:`sfu.program`); every change is
told in the room's log as a ``program`` event.

Events (client -> server; see docs/socketio.md, "Program"):

- ``program-set`` ``{video?: track id, audio?: track id | null}`` (a moderator: ``moderate``,
  or the room's owner exhibitor) -> ``{program: {video, audio}}``

The join acknowledgement carries ``program``: ``{video, audio}`` in a livestream, else null.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rooms import Room, RoomKind, RoomNotFoundError, RoomStatus, Store, ValidationError
from rooms.access import is_moderator
from rooms.events import ProgramChanged
from sfu.program import KEEP, Choice, ProgramError
from sfu.sessions import Sfu, SfuRoom
from signalling.auth import ForbiddenError
from signalling.errors import ApiError
from signalling.realtime import Connection, Realtime

log = logging.getLogger(__name__)

_ERROR_STATUS = {"track_not_found": 404, "invalid_field": 400, "codec_mismatch": 409}
NOTHING_ON_AIR: dict[str, str | None] = {"video": None, "audio": None}


def _choice(data: dict[str, Any], kind: str) -> Choice:
    if kind not in data:
        return KEEP
    value = data[kind]
    if kind == "audio" and value is None:
        return None  # no audio on air
    if not isinstance(value, str) or not value:
        raise ValidationError(kind, f"the id of a published {kind} track"
                              + (", or null for no audio" if kind == "audio" else ""))
    return value


class ProgramSwitch:
    def __init__(self, realtime: Realtime, store: Store, sfu: Sfu) -> None:
        self.realtime = realtime
        self.store = store
        self.sfu = sfu
        realtime.on("program-set", self._set, joined=True)
        realtime.on_join(self._join_part)
        sfu.on_program(self._changed)

    def program_of(self, room_id: str) -> dict[str, str | None]:
        room = self.sfu.rooms.get(room_id)
        return dict(NOTHING_ON_AIR) if room is None else room.program.to_dict()

    async def _join_part(self, connection: Connection, room: Room) -> dict[str, Any]:
        if room.kind != RoomKind.LIVESTREAM:
            return {"program": None}
        return {"program": self.program_of(room.id)}

    async def _set(self, connection: Connection, data: Any) -> dict[str, Any]:
        claims = connection.claims
        room = await self.store.get_room(claims.room)
        if room is None:
            raise RoomNotFoundError(claims.room)
        if claims.guest or not is_moderator(room, claims.role, claims.identity,
                                            connection.grants):
            raise ForbiddenError("only the room's hosts and its owner pick what is on air")
        if room.kind != RoomKind.LIVESTREAM:
            raise ApiError(409, "only livestreams have a program: in a meeting everyone "
                           "sees everyone", "not_a_livestream")
        if not isinstance(data, dict) or not data or set(data) - {"video", "audio"}:
            raise ValidationError("program-set",
                                  "send {video?: track id, audio?: track id | null}")
        video, audio = _choice(data, "video"), _choice(data, "audio")
        sfu_room = self.sfu.rooms.get(room.id)
        if sfu_room is None:
            raise ApiError(404, "nothing is published in this room", "track_not_found")
        try:
            await sfu_room.program.choose(video=video, audio=audio)
        except ProgramError as exc:
            raise ApiError(_ERROR_STATUS.get(exc.code, 409), exc.message, exc.code) from None
        log.info("program-set %s by %s: %s", room.id, claims.identity,
                 sfu_room.program.to_dict())
        return {"program": sfu_room.program.to_dict()}

    async def _changed(self, sfu_room: SfuRoom) -> None:
        """The SFU's program changed (a choice, a source that went on air by itself, one that
        was unpublished): tell the livestream's log."""
        if self.sfu.rooms.get(sfu_room.id) is not sfu_room:
            return  # the room is being closed (it ended): nothing more to tell
        room = await self.store.get_room(sfu_room.id)
        if room is None or room.kind != RoomKind.LIVESTREAM or room.status == RoomStatus.ENDED:
            return
        program = sfu_room.program.to_dict()
        await self.realtime.feed.append(
            room.id, ProgramChanged(program["video"], program["audio"], time.time()))
