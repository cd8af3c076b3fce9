"""The domain model and its state: rooms, participants, roles, grants, room events and the
reducers that fold them (presence), and their stores.

The model, events and reducers know no network library and do no I/O (time is passed in):
signalling/ turns their values into HTTP and socket.io. ``redis_store`` is the one module that
talks to a server, behind the :class:`Store` protocol.
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
