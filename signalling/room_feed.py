"""Room events from the store's log to this node's socket.io clients: in order, once.

Every node follows the logs of the rooms it has clients in (one :meth:`Store.wait_events`
loop for all of them) and delivers each event to its own clients only
(:func:`signalling.fanout.broadcast`: socket.io's Redis pub/sub would deliver it once per node,
and out of order across nodes).
Folding the same events with :func:`rooms.presence.apply` keeps each followed room's
:class:`~rooms.presence.Presence`, which is the snapshot a joining client gets: no store read
that grows with the audience on a join.

Livestream audiences are counted, not listed. Once a second, for each followed livestream,
the node sends ``audience`` ``{current, peak}`` when the figure changed: to the room's team
(hosts and exhibitors, who watch it closely) every time, to everyone only when it moved by a
tenth since everyone was last told. So the figure costs each join O(1) bytes however large the
audience (a growing audience is told at sizes a geometric step apart), where telling all N
viewers every second would cost each of the joins that second O(N).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import socketio

from rooms import Room, RoomKind, RoomStatus, Store
from rooms.events import RoomEvent, RoomStatusChanged, event_to_dict
from rooms.presence import Presence, SequenceGap, apply
from signalling.fanout import broadcast

log = logging.getLogger(__name__)

# How long one wait for new events may block: it bounds how late a room this node starts
# following is included in the wait (its first events are never lost, only that late).
FOLLOW_BLOCK_SECONDS = 0.1
AUDIENCE_INTERVAL_SECONDS = 1.0
# Everyone is told the audience figure again when it moved by this share since they were last.
AUDIENCE_NOTICEABLE_SHARE = 0.1
# A position no log reaches: reading after it costs nothing and tells the last number.
_LATEST = 2**62

RoomEnded = Callable[[str], Awaitable[None]]
# Told each event this node delivers, after its clients: for what the node itself must do.
Observer = Callable[[Room, RoomEvent], Awaitable[None]]


def socket_room(room_id: str) -> str:
    return f"room:{room_id}"


def team_room(room_id: str) -> str:
    """The room's hosts and exhibitors: they get every change of the audience figure."""
    return f"room:{room_id}:team"


def noticeable(told: tuple[int, int] | None, figure: tuple[int, int]) -> bool:
    """Whether ``figure`` moved far enough from what everyone was ``told`` to tell them."""
    if told is None:
        return True
    return any(abs(new - old) >= max(1, old * AUDIENCE_NOTICEABLE_SHARE)
               for old, new in zip(told, figure, strict=True))


@dataclass(slots=True)
class _Followed:
    room: Room
    presence: Presence
    clients: int = 0
    told_team: tuple[int, int] | None = None
    told_everyone: tuple[int, int] | None = None


class RoomFeed:
    def __init__(self, store: Store, sio: socketio.AsyncServer, on_room_ended: RoomEnded) -> None:
        self.store = store
        self.sio = sio
        self._on_room_ended = on_room_ended
        self._followed: dict[str, _Followed] = {}
        self._starting: dict[str, asyncio.Future[_Followed]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._observers: list[Observer] = []

    def observe(self, observer: Observer) -> None:
        self._observers.append(observer)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._deliver_loop()),
                       asyncio.ensure_future(self._audience_loop())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # -- rooms this node has clients in ---------------------------------------------------------

    async def follow(self, room: Room) -> Presence:
        """A client of this node is in ``room``: deliver its events here; its presence now."""
        followed = self._followed.get(room.id)
        if followed is None:
            starting = self._starting.get(room.id)
            if starting is None:
                starting = self._starting[room.id] = asyncio.ensure_future(self._snapshot(room))
                try:
                    followed = await starting
                finally:
                    del self._starting[room.id]
                self._followed[room.id] = followed
            else:
                followed = await asyncio.shield(starting)
        followed.clients += 1
        return followed.presence

    async def _snapshot(self, room: Room) -> _Followed:
        # The number first, then the state: the events after it converge on the room's state.
        seq = (await self.store.read_events(room.id, _LATEST)).last_seq
        participants = await self.store.list_participants(room.id)
        stage = await self.store.stage_states(room.id)
        return _Followed(room, Presence.snapshot(room, participants, seq, stage))

    def unfollow(self, room_id: str) -> None:
        followed = self._followed.get(room_id)
        if followed is not None:
            followed.clients -= 1
            if followed.clients <= 0:
                del self._followed[room_id]

    async def append(self, room_id: str, event: RoomEvent) -> RoomEvent:
        """Log ``event``: every node following the room delivers it to its clients."""
        return await self.store.append_event(room_id, event)

    # -- what a joining or reconnecting client gets ---------------------------------------------

    async def catch_up(self, room_id: str, since: int | None) -> dict[str, Any]:
        """``{seq, snapshot, participants | events, audience}``: the events after ``since``
        when the log still has them all, else a snapshot of who is listed."""
        followed = self._followed.get(room_id)
        if followed is None:  # asked by a client that is not in the room (sync after leave)
            room = await self.store.get_room(room_id)
            if room is None:
                return {"seq": 0, "snapshot": True, "participants": [], "stage": {},
                        "audience": {"current": 0, "peak": 0}}
            followed = await self._snapshot(room)
        presence = await self._current(followed)
        audience = await self._audience(followed, presence)
        if since is not None:
            found = await self.store.read_events(room_id, since)
            if found.complete:
                return {"seq": found.last_seq, "snapshot": False,
                        "events": [event_to_dict(e) for e in found.events],
                        "audience": audience}
        return {"seq": presence.seq, "snapshot": True,
                "participants": [p.public_dict() for p in presence.listed],
                "stage": {identity: state.value for identity, state in presence.stage.items()},
                "audience": audience}

    async def audience(self, room_id: str) -> dict[str, int]:
        """``{current, peak}`` of a room a client of this node is in (zero for others)."""
        followed = self._followed.get(room_id)
        if followed is None:
            return {"current": 0, "peak": 0}
        return await self._audience(followed, await self._current(followed))

    async def _current(self, followed: _Followed) -> Presence:
        """What this node has folded, brought up to the log's end (a joiner's own arrival is
        usually there, not yet delivered): a copy, so that delivery still sends those events."""
        presence = followed.presence
        newer = await self.store.read_events(followed.room.id, presence.seq)
        if not newer.complete:
            return (await self._snapshot(followed.room)).presence
        for event in newer.events:
            presence = apply(presence, event)
        return presence

    async def _audience(self, followed: _Followed, presence: Presence) -> dict[str, int]:
        """``{current, peak}``: how many are watching and not listed, and the most so far."""
        if followed.room.kind != RoomKind.LIVESTREAM:
            return {"current": 0, "peak": 0}
        current = max(0, await self.store.count_participants(followed.room.id)
                      - len(presence.listed))
        peak = await self.store.record_audience(followed.room.id, current)
        return {"current": current, "peak": peak}

    # -- delivery -------------------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        while True:
            try:
                positions = {room_id: f.presence.seq for room_id, f in self._followed.items()}
                found = await self.store.wait_events(positions, block=FOLLOW_BLOCK_SECONDS)
                for room_id, events in found.items():
                    await self._deliver(room_id, events)
            except asyncio.CancelledError:
                raise
            except Exception:  # the store went away for a moment: keep following
                log.exception("following room events failed; retrying")
                await asyncio.sleep(1.0)

    async def _deliver(self, room_id: str, events: list[RoomEvent]) -> None:
        for event in events:
            followed = self._followed.get(room_id)
            if followed is None:
                return  # the last client left meanwhile
            try:
                followed.presence = apply(followed.presence, event)
            except SequenceGap:
                # Trimmed before this node read them: start over from the store's state. The
                # clients see the gap in the numbers and ask for a snapshot themselves.
                log.warning("room %s: events before %d were trimmed unread", room_id, event.seq)
                fresh = await self._snapshot(followed.room)
                followed.presence = fresh.presence
                continue
            await broadcast(self.sio, socket_room(room_id), "room-event", event_to_dict(event))
            if isinstance(event, RoomStatusChanged):
                followed.room = event.room
                if event.room.status == RoomStatus.ENDED:
                    await self._on_room_ended(room_id)
            for observer in self._observers:
                try:
                    await observer(followed.room, event)
                except Exception:
                    log.exception("room %s: handling event %d failed", room_id, event.seq)

    async def _audience_loop(self) -> None:
        while True:
            await asyncio.sleep(AUDIENCE_INTERVAL_SECONDS)
            for room_id, followed in list(self._followed.items()):
                if followed.room.kind != RoomKind.LIVESTREAM:
                    continue
                try:
                    figure = await self.audience(room_id)
                except Exception:
                    log.exception("audience of %s failed", room_id)
                    continue
                now = (figure["current"], figure["peak"])
                if now == followed.told_team:
                    continue
                followed.told_team = now
                if noticeable(followed.told_everyone, now):
                    followed.told_everyone = now
                    audience = socket_room(room_id)
                else:
                    audience = team_room(room_id)
                await broadcast(self.sio, audience, "audience", figure)
