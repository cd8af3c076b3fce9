"""The domain model and its state: rooms, participants, roles, grants, and their stores.

This package knows no network library: signalling/ turns its values into HTTP and socket.io.
"""

from rooms.model import (
    DEFAULT_GRANTS,
    Grant,
    Participant,
    Role,
    Room,
    RoomKind,
    RoomStatus,
    Track,
    ValidationError,
    grants_for,
)
from rooms.store import MemoryStore, RoomExistsError, RoomNotFoundError, Store

__all__ = [
    "DEFAULT_GRANTS",
    "Grant",
    "MemoryStore",
    "Participant",
    "Role",
    "Room",
    "RoomExistsError",
    "RoomKind",
    "RoomNotFoundError",
    "RoomStatus",
    "Store",
    "Track",
    "ValidationError",
    "grants_for",
]
