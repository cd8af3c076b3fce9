"""Video invitations between identities (issue #10): a buyer calls an exhibitor (or the reverse)
from whatever page they have open, or starts a meeting for several people. Values and rules
only; no I/O, time passed in.

An invitation rings each invitee for :data:`RING_SECONDS`; each answers (accept, decline) or
lets it ring out (missed); the inviter may hang up first (cancelled). A call (one invitee) opens
its meeting when the invitee accepts; a meeting for several is open from the start and each
invitee who accepts comes in. Invitations are kept after they are answered, so both sides see
the declined and the missed ("missed call" with a call-back).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rooms.live import new_id
from rooms.model import MAX_NAME_CHARS, Role, ValidationError, check_identity

RING_SECONDS = 30.0
MAX_INVITEES = 12
# A person's list of calls keeps this many, newest first.
MAX_LISTED_INVITATIONS = 100


class InvitationError(Exception):
    """A request the invitation's state refuses; ``code`` is the API's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Answer(enum.StrEnum):
    RINGING = "ringing"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    MISSED = "missed"  # rang out unanswered
    CANCELLED = "cancelled"  # the inviter hung up first


@dataclass(frozen=True, slots=True)
class Invitee:
    identity: str
    name: str
    answer: Answer = Answer.RINGING
    answered_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"identity": self.identity, "name": self.name, "answer": self.answer.value,
                "answered_at": self.answered_at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Invitee:
        answered = data.get("answered_at")
        return cls(str(data["identity"]), str(data["name"]), Answer(data["answer"]),
                   None if answered is None else float(answered))


@dataclass(frozen=True, slots=True)
class Invitation:
    id: str
    inviter: str
    inviter_name: str
    inviter_role: Role
    invitees: tuple[Invitee, ...]
    created_at: float
    rings_until: float
    # Where the inviter was (a booth, a livestream): what the invitee's ring names.
    from_room: str = ""
    from_room_name: str = ""
    # A meeting for several (open from the start) rather than a call (opens on the accept).
    meeting: bool = False
    room: str = ""  # the meeting's room, once it is open

    def invitee(self, identity: str) -> Invitee | None:
        return next((i for i in self.invitees if i.identity == identity), None)

    def parties(self) -> tuple[str, ...]:
        """Everyone it concerns: the inviter and the invitees."""
        return (self.inviter, *(i.identity for i in self.invitees))

    def ringing(self, now: float) -> bool:
        return now < self.rings_until and any(i.answer == Answer.RINGING for i in self.invitees)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "from": self.inviter, "from_name": self.inviter_name,
                "from_role": self.inviter_role.value,
                "to": [i.to_dict() for i in self.invitees], "created_at": self.created_at,
                "rings_until": self.rings_until, "from_room": self.from_room,
                "from_room_name": self.from_room_name, "meeting": self.meeting,
                "room": self.room}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Invitation:
        return cls(id=str(data["id"]), inviter=str(data["from"]),
                   inviter_name=str(data["from_name"]), inviter_role=Role(data["from_role"]),
                   invitees=tuple(Invitee.from_dict(i) for i in data["to"]),
                   created_at=float(data["created_at"]),
                   rings_until=float(data["rings_until"]),
                   from_room=str(data.get("from_room", "")),
                   from_room_name=str(data.get("from_room_name", "")),
                   meeting=bool(data.get("meeting")), room=str(data.get("room", "")))


def new_invitation(*, inviter: str, inviter_name: str, inviter_role: Role, to: object,
                   now: float, from_room: str = "", from_room_name: str = "",
                   meeting: bool | None = None, room: str = "",
                   ring_seconds: float = RING_SECONDS) -> Invitation:
    """Validated: 1 to 12 others, each ``{identity, name?}`` once. One invitee is a call unless
    ``meeting`` says otherwise; several are always a meeting."""
    if not isinstance(to, list) or not 1 <= len(to) <= MAX_INVITEES:
        raise ValidationError("to", f"a list of 1 to {MAX_INVITEES} people: {{identity, name}}")
    invitees: dict[str, Invitee] = {}
    for person in to:
        if not isinstance(person, dict) or not isinstance(person.get("identity"), str):
            raise ValidationError("to", "each person is {identity, name}")
        try:
            identity = check_identity(person["identity"])
        except ValidationError as bad:
            raise ValidationError("to", bad.message) from None
        if identity == inviter:
            raise ValidationError("to", "invite someone else")
        name = person.get("name", identity)
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            raise ValidationError("to", f"a name is a non-empty string of at most "
                                        f"{MAX_NAME_CHARS}")
        invitees.setdefault(identity, Invitee(identity, name.strip()))
    several = len(invitees) > 1
    return Invitation(id=new_id(), inviter=inviter, inviter_name=inviter_name,
                      inviter_role=inviter_role, invitees=tuple(invitees.values()),
                      created_at=now, rings_until=now + ring_seconds, from_room=from_room,
                      from_room_name=from_room_name,
                      meeting=several or bool(meeting) or bool(room), room=room)


def settled(invitation: Invitation, now: float) -> Invitation:
    """The invitation as it stands at ``now``: whoever still rings past the time missed it."""
    if now < invitation.rings_until:
        return invitation
    return _replace_ringing(invitation, Answer.MISSED, invitation.rings_until)


def answer(invitation: Invitation, identity: str, accept: bool, now: float) -> Invitation:
    """``identity`` accepts or declines. Refused: ``not_invited``, and ``not_ringing`` once it
    rang out, was hung up or was answered already."""
    current = settled(invitation, now)
    invitee = current.invitee(identity)
    if invitee is None:
        raise InvitationError("not_invited", "this invitation is not for you")
    if invitee.answer != Answer.RINGING:
        raise InvitationError("not_ringing", f"this invitation is {invitee.answer.value}")
    reply = Answer.ACCEPTED if accept else Answer.DECLINED
    return _with_invitees(current, (
        dataclasses.replace(i, answer=reply, answered_at=now) if i.identity == identity else i
        for i in current.invitees))


def cancel(invitation: Invitation, identity: str, now: float) -> Invitation:
    """The inviter hangs up: whoever still rings is told it was cancelled."""
    if identity != invitation.inviter:
        raise InvitationError("not_inviter", "only who invited can cancel the invitation")
    current = settled(invitation, now)
    if not current.ringing(now):
        raise InvitationError("not_ringing", "nobody is ringing any more")
    return _replace_ringing(current, Answer.CANCELLED, now)


def _replace_ringing(invitation: Invitation, to: Answer, at: float) -> Invitation:
    if all(i.answer != Answer.RINGING for i in invitation.invitees):
        return invitation
    return _with_invitees(invitation, (
        dataclasses.replace(i, answer=to, answered_at=at) if i.answer == Answer.RINGING else i
        for i in invitation.invitees))


def _with_invitees(invitation: Invitation, invitees: Iterable[Invitee]) -> Invitation:
    return dataclasses.replace(invitation, invitees=tuple(invitees))
