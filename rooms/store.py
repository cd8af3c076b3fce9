"""Where rooms and participants live: the :class:`Store` protocol and the in-memory store.

The store is the authority on room state. socket.io's own rooms are only a delivery mechanism:
across nodes they are not shared and their pub/sub loses messages during reconnects.
"""

from __future__ import annotations

from typing import Protocol

from rooms.model import Participant, Room, RoomKind, RoomStatus


class RoomExistsError(Exception):
    """A room with that id exists already."""


class RoomNotFoundError(Exception):
    """No room with that id."""


class Store(Protocol):
    async def ping(self) -> bool:
        """True when the store can take work (for /readyz)."""

    async def close(self) -> None: ...

    async def create_room(self, room: Room) -> None:
        """Store a new room; raises :class:`RoomExistsError` if the id is taken."""

    async def get_room(self, room_id: str) -> Room | None: ...

    async def save_room(self, room: Room) -> None:
        """Replace a stored room; raises :class:`RoomNotFoundError` if it is not there."""

    async def list_rooms(
        self,
        kind: RoomKind | None = None,
        status: RoomStatus | None = None,
        category: str | None = None,
    ) -> list[Room]:
        """Rooms matching every given filter, oldest first."""

    async def put_participant(self, room_id: str, participant: Participant) -> None:
        """Add or replace (same identity) a participant; raises :class:`RoomNotFoundError`."""

    async def remove_participant(self, room_id: str, identity: str) -> Participant | None: ...

    async def get_participant(self, room_id: str, identity: str) -> Participant | None: ...

    async def list_participants(self, room_id: str) -> list[Participant]:
        """Participants of a room in the order they joined."""

    async def remove_node_participants(self, node_id: str) -> list[tuple[str, Participant]]:
        """Forget every participant a node held (the node stopped or restarted)."""


class MemoryStore:
    """The embedded default: one node, state in this process."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}
        self._participants: dict[str, dict[str, Participant]] = {}

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None

    async def create_room(self, room: Room) -> None:
        if room.id in self._rooms:
            raise RoomExistsError(room.id)
        self._rooms[room.id] = room
        self._participants[room.id] = {}

    async def get_room(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    async def save_room(self, room: Room) -> None:
        if room.id not in self._rooms:
            raise RoomNotFoundError(room.id)
        self._rooms[room.id] = room

    async def list_rooms(
        self,
        kind: RoomKind | None = None,
        status: RoomStatus | None = None,
        category: str | None = None,
    ) -> list[Room]:
        return sorted(
            (
                room
                for room in self._rooms.values()
                if (kind is None or room.kind == kind)
                and (status is None or room.status == status)
                and (category is None or room.category == category)
            ),
            key=lambda room: (room.created_at, room.id),
        )

    async def put_participant(self, room_id: str, participant: Participant) -> None:
        members = self._participants.get(room_id)
        if members is None:
            raise RoomNotFoundError(room_id)
        members[participant.identity] = participant

    async def remove_participant(self, room_id: str, identity: str) -> Participant | None:
        return self._participants.get(room_id, {}).pop(identity, None)

    async def get_participant(self, room_id: str, identity: str) -> Participant | None:
        return self._participants.get(room_id, {}).get(identity)

    async def list_participants(self, room_id: str) -> list[Participant]:
        members = self._participants.get(room_id, {})
        return sorted(members.values(), key=lambda p: (p.joined_at, p.identity))

    async def remove_node_participants(self, node_id: str) -> list[tuple[str, Participant]]:
        removed: list[tuple[str, Participant]] = []
        for room_id, members in self._participants.items():
            for identity, participant in list(members.items()):
                if participant.node_id == node_id:
                    del members[identity]
                    removed.append((room_id, participant))
        return removed
