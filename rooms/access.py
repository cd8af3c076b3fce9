"""Who may do what in a room, without I/O: grants by room kind, the stage, links, on-air.

A token says who its bearer is and what its role may do anywhere (:data:`DEFAULT_GRANTS`,
possibly narrowed). What they may do *in a room* also depends on the room: in a livestream only
its hosts and its owner exhibitor publish, and whoever a host invited on stage; in a meeting
everyone invited whose role publishes does. :func:`room_grants` is the one place that says so.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rooms.model import Grant, Role, Room, RoomKind, RoomStatus


class StageState(enum.StrEnum):
    """Where a livestream viewer stands with the stage a host invited them onto."""

    INVITED = "invited"
    ON = "on"


def may_publish_by_role(room: Room, role: Role, identity: str) -> bool:
    """Whether ``role`` publishes in ``room`` without an invitation on stage."""
    if room.kind == RoomKind.MEETING:
        return True  # the role's own grants decide (visitors watch)
    if role == Role.HOST:
        return True
    return role == Role.EXHIBITOR and room.owner in ("", identity)


def room_grants(room: Room, role: Role, identity: str, token_grants: frozenset[Grant], *,
                guest: bool, stage: StageState | None) -> frozenset[Grant]:
    """The grants a token's bearer holds in ``room`` now."""
    grants = set(token_grants)
    if guest:
        # Guests watch: whatever the token says, they never publish or moderate.
        return frozenset(grants & {Grant.SUBSCRIBE})
    if not may_publish_by_role(room, role, identity):
        grants.discard(Grant.PUBLISH)
        if stage == StageState.ON:
            grants.add(Grant.PUBLISH)
    return frozenset(grants)


def is_moderator(room: Room, role: Role, identity: str, grants: frozenset[Grant]) -> bool:
    """Who runs a room's Q&A, chat and program: its hosts (``moderate``) and its owner."""
    return Grant.MODERATE in grants or (role == Role.EXHIBITOR and room.owner == identity
                                        and room.owner != "")


def may_go_live(room: Room, role: Role, identity: str) -> bool:
    """Whether this participant's publishing starts a scheduled room's live: its owner (any
    exhibitor when it has none) or a host, never a buyer on stage."""
    if role == Role.HOST:
        return True
    return role == Role.EXHIBITOR and room.owner in ("", identity)


def on_air(room: Room, now: float, grace: float) -> bool:
    """A live room that someone publishes in, or did until less than ``grace`` ago: the
    programme says LIVE only then ("starting soon" for a live room nobody broadcasts in)."""
    if room.status != RoomStatus.LIVE:
        return False
    if room.publishing:
        return True
    changed = room.publishing_changed_at
    return changed is not None and now - changed < grace


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """A link token as the console lists it: never the token itself, which is not kept."""

    token_id: str
    room: str
    identity: str
    name: str
    role: Role
    issued_at: float
    expires_at: float
    revoked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "room": self.room, "identity": self.identity,
                "name": self.name, "role": self.role.value, "issued_at": self.issued_at,
                "expires_at": self.expires_at, "revoked": self.revoked}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkRecord:
        return cls(token_id=str(data["token_id"]), room=str(data["room"]),
                   identity=str(data["identity"]), name=str(data["name"]),
                   role=Role(data["role"]), issued_at=float(data["issued_at"]),
                   expires_at=float(data["expires_at"]), revoked=bool(data.get("revoked")))
