"""Who is in a room, as a fold over its events: written without I/O, time passed in.

A room *lists* some of its participants to everyone and only *counts* the rest. Meetings are
small and list everyone. A livestream lists its hosts, its exhibitors and whoever publishes;
the audience (visitors, buyers who only watch) is counted, because thousands arrive in the
same minute and a list sent to each of them on every arrival costs O(N²).

:func:`apply` folds one event into a :class:`Presence`; :func:`change` says which event (if
any) a participant's arrival, change or departure makes. Applying an event whose effect the
state already has changes nothing, so a snapshot read *after* noting its sequence number,
then the events after that number, always converge on the room's state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from rooms.access import StageState
from rooms.events import (
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    RoomEvent,
    RoomStatusChanged,
    StageChanged,
    StageMove,
)
from rooms.model import Participant, Role, Room, RoomKind, RoomStatus

LISTED_ROLES_IN_LIVESTREAMS = frozenset({Role.HOST, Role.EXHIBITOR})


class SequenceGap(ValueError):
    """An event does not follow the state it is applied to: some were missed."""


def is_listed(kind: RoomKind, participant: Participant) -> bool:
    if kind == RoomKind.MEETING:
        return True
    return participant.role in LISTED_ROLES_IN_LIVESTREAMS or bool(participant.tracks)


@dataclass(frozen=True, slots=True)
class Presence:
    """A room's listed participants (in the order they were listed) and who is invited to or
    on its stage, as of event ``seq``."""

    seq: int = 0
    listed: tuple[Participant, ...] = field(default=())
    status: RoomStatus | None = None
    stage: Mapping[str, StageState] = field(default_factory=dict)

    @classmethod
    def snapshot(cls, room: Room, participants: list[Participant], seq: int,
                 stage: Mapping[str, StageState] | None = None) -> Presence:
        """The state from the store's participants, read after the log stood at ``seq``."""
        return cls(seq, tuple(p.public() for p in participants if is_listed(room.kind, p)),
                   room.status, dict(stage or {}))

    def identities(self) -> list[str]:
        return [p.identity for p in self.listed]


def _without(listed: tuple[Participant, ...], identity: str) -> tuple[Participant, ...]:
    return tuple(p for p in listed if p.identity != identity)


def apply(presence: Presence, event: RoomEvent) -> Presence:
    """The state after ``event``. Events at or before ``presence.seq`` change nothing; one
    beyond the next raises :class:`SequenceGap` (catch up from the log or a snapshot)."""
    if event.seq <= presence.seq:
        return presence
    if event.seq != presence.seq + 1:
        raise SequenceGap(f"event {event.seq} after state {presence.seq}")
    listed = presence.listed
    status = presence.status
    if isinstance(event, ParticipantJoined):
        # A newer connection of the same identity takes the old one's place, at the end.
        listed = (*_without(listed, event.participant.identity), event.participant)
    elif isinstance(event, ParticipantUpdated):
        identity = event.participant.identity
        if any(p.identity == identity for p in listed):
            listed = tuple(event.participant if p.identity == identity else p for p in listed)
        else:
            listed = (*listed, event.participant)
    elif isinstance(event, ParticipantLeft):
        listed = _without(listed, event.identity)
    elif isinstance(event, RoomStatusChanged):
        status = event.room.status
    elif isinstance(event, StageChanged):
        stage = dict(presence.stage)
        if event.move in (StageMove.DECLINED, StageMove.OFF):
            stage.pop(event.identity, None)
        else:
            stage[event.identity] = StageState(event.move.value)
        return dataclasses.replace(presence, seq=event.seq, stage=stage)
    return dataclasses.replace(presence, seq=event.seq, listed=listed, status=status)


def change(kind: RoomKind, before: Participant | None, after: Participant | None, now: float
           ) -> RoomEvent | None:
    """The event that a participant's seat changing from ``before`` to ``after`` makes
    (None for arriving or leaving: ``after`` / ``before`` is None), or None when the list
    does not change: an audience member came, changed or went."""
    was = before is not None and is_listed(kind, before)
    if after is None:
        return ParticipantLeft(before.identity, now) if was and before is not None else None
    if not is_listed(kind, after):
        return ParticipantLeft(after.identity, now) if was else None
    if not was or before is None or before.session_id != after.session_id:
        return ParticipantJoined(after.public(), now)
    return ParticipantUpdated(after.public(), now)
