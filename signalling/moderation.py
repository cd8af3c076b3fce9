"""A meeting's moderation over socket.io, enforced in the SFU (issue #10).

The rules are :mod:`rooms.moderation` (one pure state machine and one permission table); this
module keeps each meeting's state in the store, feeds it every request, and carries out what
the rules say:

- ``meeting`` ``{action, ...}`` -> ``{meeting}`` for every action of
  :class:`rooms.moderation.Action` (``lobby``, ``admit``, ``deny``, ``lock``, ``mute``,
  ``allow-unmute``, ``ask-unmute``, ``remove``, ``raise-hand``, ``lower-hand``, ``give-floor``,
  ``end-floor``, ``end``); refused with ``forbidden`` (403) when the table says so. Every
  change is a ``meeting`` room event carrying the new state, so every page shows it in order;
  the join acknowledgement of a meeting carries ``meeting`` too.
- Joining a meeting goes through :func:`rooms.moderation.enter`: a newcomer while the lobby is
  on (``Room.lobby`` at the start, then the moderators' choice) gets ``{lobby: true, room,
  meeting}`` instead of a seat and waits on the connection until ``meeting-admitted`` (join
  again) or ``meeting-denied``; a locked meeting refuses newcomers
  (``meeting_locked``), a removed identity is refused (``removed``) with any token.
- A moderator's mute holds the track in the SFU at once (:meth:`sfu.forwarding.SourceStream.
  hold`: nobody receives it, the recorder neither), also a track published later; the
  participant's own ``set-muted {muted: false}`` is refused (``muted_by_moderator``) until a
  moderator allows it; video resumes on a keyframe asked for at once.
- ``remove`` ends the identity's connections (``meeting-left {reason: "removed"}`` first) and
  its encoders' sessions: its media stop at once.
- ``end`` ends the room for everyone (as ``PATCH {status: "ended"}`` does).
- The floor's time box is checked four times a second: at zero the speaker is muted.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from rooms import Grant, Room, RoomKind, RoomStatus, Store, ValidationError
from rooms.events import MeetingChanged
from rooms.model import MAX_NAME_CHARS, Role
from rooms.moderation import (
    Action,
    Actor,
    Admitted,
    Effect,
    Entry,
    Expel,
    MeetingState,
    ModerationError,
    ResumeForwarding,
    StopForwarding,
    actor_of,
    decide,
    enter,
    initial_state,
    left,
    tick,
)
from sfu.sessions import Publication, Sfu
from signalling.auth import ForbiddenError, TokenIssuer
from signalling.errors import ApiError
from signalling.media import MediaSignalling
from signalling.meeting_rooms import Attendee, issue_meeting_link, room_url
from signalling.realtime import Connection, Realtime
from signalling.tasks import cancel_and_wait

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25
# A guest link lasts the day by default, a week at most: it is for one negotiation.
GUEST_LINK_TTL = 24 * 3600
MAX_GUEST_TTL = 7 * 24 * 3600
_STATUS = {"forbidden": 403, "removed": 403, "meeting_locked": 403, "meeting_ended": 409,
           "not_waiting": 409, "not_muted": 409, "no_hands": 409, "not_found": 404,
           "invalid_field": 400}


def _api_error(exc: ModerationError) -> ApiError:
    return ApiError(_STATUS.get(exc.code, 400), exc.message, exc.code)


class Moderation:
    def __init__(self, realtime: Realtime, store: Store, sfu: Sfu,
                 media: MediaSignalling, tokens: TokenIssuer) -> None:
        self.realtime = realtime
        self.store = store
        self.tokens = tokens
        self.sfu = sfu
        self.media = media
        self._locks: dict[str, asyncio.Lock] = {}
        self._timed: set[str] = set()  # meetings whose floor has a time box
        self._waiting: dict[tuple[str, str], set[str]] = {}  # (room, identity) -> sids
        self._task: asyncio.Task[None] | None = None
        realtime.on("meeting", self._request, joined=True)
        realtime.on_join_gate(self._gate)
        realtime.on_join(self._join_part)
        realtime.on_disconnect(self._disconnected)
        media.unmute_refusal = self._unmute_refusal
        media.on_published(self._published)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._tick_loop())

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    # -- state --------------------------------------------------------------------------

    def _lock(self, room_id: str) -> asyncio.Lock:
        return self._locks.setdefault(room_id, asyncio.Lock())

    async def state_of(self, room: Room) -> MeetingState:
        state = await self.store.get_meeting(room.id)
        if state is None:
            # The room says whether it starts with a lobby (a host-run meeting usually does).
            return initial_state(lobby=room.lobby)
        if state.floor is not None and state.floor.until is not None:
            self._timed.add(room.id)  # a time box set before this node (re)started runs on
        return state

    async def _save(self, room_id: str, before: MeetingState, after: MeetingState,
                    now: float) -> None:
        if after == before:
            return
        await self.store.put_meeting(room_id, after)
        if after.floor is not None and after.floor.until is not None:
            self._timed.add(room_id)
        else:
            self._timed.discard(room_id)
        await self.realtime.feed.append(room_id, MeetingChanged(after, now))

    def _present(self, room_id: str) -> frozenset[str]:
        """Who is in the meeting: its pages, and whoever publishes (an encoder has no page)."""
        pages = {c.claims.identity for c in self.realtime.connections.values()
                 if c.joined and c.claims.room == room_id}
        sfu_room = self.sfu.rooms.get(room_id)
        encoders = set() if sfu_room is None else {p.identity for p in sfu_room.publications}
        return frozenset(pages | encoders)

    @staticmethod
    def _actor(connection: Connection, room: Room) -> Actor:
        claims = connection.claims
        return actor_of(identity=claims.identity, owner="" if claims.guest else room.owner,
                        moderates=claims.can(Grant.MODERATE) and not claims.guest)

    async def _meeting(self, room_id: str) -> Room:
        room = await self.store.get_room(room_id)
        if room is None or room.kind != RoomKind.MEETING:
            raise ApiError(409, "moderation is for meetings", "not_a_meeting")
        return room

    # -- entry --------------------------------------------------------------------------

    async def _gate(self, connection: Connection, room: Room) -> dict[str, Any] | None:
        if room.kind != RoomKind.MEETING:
            return None
        claims = connection.claims
        now = time.time()
        async with self._lock(room.id):
            before = await self.state_of(room)
            try:
                after, entry = enter(before, identity=claims.identity, name=claims.name,
                                     actor=self._actor(connection, room), now=now)
            except ModerationError as exc:
                raise _api_error(exc) from None
            await self._save(room.id, before, after, now)
        key = (room.id, claims.identity)
        if entry == Entry.WAIT:
            self._waiting.setdefault(key, set()).add(connection.sid)
            return {"lobby": True, "room": room.to_dict(), "meeting": after.to_dict()}
        self._waiting.pop(key, None)
        return None

    async def _join_part(self, connection: Connection, room: Room) -> dict[str, Any]:
        if room.kind != RoomKind.MEETING:
            return {}
        return {"meeting": (await self.state_of(room)).to_dict()}

    async def _disconnected(self, connection: Connection) -> None:
        claims = connection.claims
        key = (claims.room, claims.identity)
        waiting = self._waiting.get(key)
        if waiting is not None:
            waiting.discard(connection.sid)
            if not waiting:
                del self._waiting[key]
        others = any(c.sid != connection.sid and c.claims.room == claims.room
                     and c.claims.identity == claims.identity
                     for c in self.realtime.connections.values())
        if others:
            return
        room = await self.store.get_room(claims.room)
        if room is None or room.kind != RoomKind.MEETING:
            return
        async with self._lock(room.id):
            before = await self.state_of(room)
            await self._save(room.id, before, left(before, claims.identity), time.time())

    # -- requests -----------------------------------------------------------------------

    async def _request(self, connection: Connection, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("action"), str):
            raise ApiError(400, "send {action, ...}", "invalid_field")
        try:
            action = Action(data["action"])
        except ValueError:
            raise ApiError(400, f"unknown action {data['action']!r}", "invalid_field") from None
        if action == Action.INVITE:
            raise ApiError(400, "ask people in with the invite event: it rings them",
                           "invalid_field")
        if action == Action.GUEST_LINK:
            return await self._guest_link(connection, data)
        return {"meeting": (await self.act(connection, action, data)).to_dict()}

    async def act(self, connection: Connection, action: Action, data: dict[str, Any]
                  ) -> MeetingState:
        """``connection`` takes ``action`` in the meeting it joined, as the table allows."""
        room = await self._meeting(connection.claims.room)
        now = time.time()
        async with self._lock(room.id):
            before = await self.state_of(room)
            try:
                after, effects = decide(before, action, data, identity=connection.claims.identity,
                                        actor=self._actor(connection, room),
                                        present=self._present(room.id), now=now)
            except ModerationError as exc:
                raise _api_error(exc) from None
            await self._save(room.id, before, after, now)
        await self._carry_out(room, effects)
        if action == Action.END:
            await self._end(room, now)
        log.info("meeting %s: %s by %s", room.id, action.value, connection.claims.identity)
        return after

    async def _guest_link(self, connection: Connection, data: dict[str, Any]
                          ) -> dict[str, Any]:
        """A link for someone outside the platform: a named seat in this meeting only, until
        it expires; its holder waits in the lobby like any newcomer."""
        unknown = set(data) - {"action", "name", "ttl"}
        if unknown:
            raise ValidationError(sorted(unknown)[0], "unknown field")
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            raise ValidationError("name", f"the guest's name: 1 to {MAX_NAME_CHARS} characters")
        ttl = data.get("ttl", GUEST_LINK_TTL)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 60 <= ttl <= MAX_GUEST_TTL:
            raise ValidationError("ttl", f"whole seconds from 60 to {MAX_GUEST_TTL}")
        state = await self.act(connection, Action.GUEST_LINK, data)
        room = await self._meeting(connection.claims.room)
        guest = Attendee(f"guest-{secrets.token_hex(6)}", name.strip(), Role.BUYER,
                         connection.claims.language)
        issued = await issue_meeting_link(self.store, self.tokens, room, guest,
                                          min(ttl, self.tokens.max_ttl), time.time())
        return {"meeting": state.to_dict(),
                "link": {"url": room_url(room.id, issued.token), "token_id": issued.token_id,
                         "identity": guest.identity, "name": guest.name,
                         "expires_at": issued.expires_at}}

    async def _carry_out(self, room: Room, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, StopForwarding | ResumeForwarding):
                for publication in self._publications(room.id, effect.identity, effect.kind):
                    self._apply_mute(publication, isinstance(effect, StopForwarding))
            elif isinstance(effect, Admitted):
                for sid in self._waiting.pop((room.id, effect.identity), set()):
                    await self.realtime.sio.emit("meeting-admitted", {}, to=sid)
            elif isinstance(effect, Expel) and effect.reason != "ended":
                await self._expel(room.id, effect.identity, effect.reason)

    def _publications(self, room_id: str, identity: str, kind: str) -> list[Publication]:
        sfu_room = self.sfu.rooms.get(room_id)
        if sfu_room is None:
            return []
        return [p for p in sfu_room.publications if p.identity == identity and p.kind == kind]

    @staticmethod
    def _apply_mute(publication: Publication, held: bool) -> None:
        if held:
            publication.stream.hold()
        elif publication.stream.held:
            publication.stream.release()
            publication.request_keyframe()  # video restarts now, not at its next keyframe

    async def _expel(self, room_id: str, identity: str, reason: str) -> None:
        event = "meeting-denied" if reason == "denied" else "meeting-left"
        for sid in self._waiting.pop((room_id, identity), set()):
            await self.realtime.sio.emit(event, {"reason": reason}, to=sid)
            await self.realtime.sio.disconnect(sid)
        for connection in list(self.realtime.connections.values()):
            claims = connection.claims
            if claims.room == room_id and claims.identity == identity:
                await self.realtime.sio.emit(event, {"reason": reason}, to=connection.sid)
                await self.media.close_connection_media(connection)
                await self.realtime.sio.disconnect(connection.sid)
        sfu_room = self.sfu.rooms.get(room_id)
        if sfu_room is not None:  # encoders (WHIP) of that identity too
            for publisher in {p.publisher for p in sfu_room.publications
                              if p.identity == identity}:
                await publisher.close()

    async def _end(self, room: Room, now: float) -> None:
        current = await self.store.get_room(room.id)
        if current is None or current.status == RoomStatus.ENDED:
            return
        ended = current.with_status(RoomStatus.ENDED, now)
        await self.store.save_room(ended)
        await self.realtime.room_changed(ended)
        await self.sfu.close_room(room.id)

    # -- the SFU's side -----------------------------------------------------------------

    async def _unmute_refusal(self, room_id: str, identity: str, kind: str) -> None:
        room = await self.store.get_room(room_id)
        if room is None or room.kind != RoomKind.MEETING:
            return
        if (await self.state_of(room)).is_muted(identity, kind):
            raise ForbiddenError("a moderator muted you: ask to unmute", "muted_by_moderator")

    async def _published(self, publication: Publication) -> None:
        room = await self.store.get_room(publication.room.id)
        if room is None or room.kind != RoomKind.MEETING:
            return
        if (await self.state_of(room)).is_muted(publication.identity, publication.kind):
            publication.stream.hold()  # republishing does not undo a moderator's mute

    async def may_publish(self, room: Room, identity: str) -> None:
        """For WHIP: a removed identity publishes nothing in that meeting again."""
        if room.kind == RoomKind.MEETING and identity in (await self.state_of(room)).removed:
            raise ForbiddenError("a moderator removed you from this meeting", "removed")

    # -- the floor's time box -----------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            for room_id in list(self._timed):
                try:
                    await self._tick(room_id, time.time())
                except Exception:
                    log.exception("meeting %s: floor timer failed", room_id)

    async def _tick(self, room_id: str, now: float) -> None:
        room = await self.store.get_room(room_id)
        if room is None:
            self._timed.discard(room_id)
            return
        async with self._lock(room_id):
            before = await self.state_of(room)
            after, effects = tick(before, now)
            await self._save(room_id, before, after, now)
        await self._carry_out(room, effects)
