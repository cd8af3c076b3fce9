"""The domain without I/O: rooms, participants, roles and grants.

Everything here is a frozen value; the store keeps them, the signalling layer turns them into
JSON. Validation of user input happens here so that every entry point (REST, socket.io, WHIP)
refuses the same things with the same words.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class RoomKind(enum.StrEnum):
    LIVESTREAM = "livestream"
    MEETING = "meeting"


class RoomStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


class Visibility(enum.StrEnum):
    """Public rooms are listed and watchable by anyone; private ones only with their token."""

    PUBLIC = "public"
    PRIVATE = "private"


class Delivery(enum.StrEnum):
    """How a livestream's viewers watch: real time over WebRTC, or live HLS (a few seconds
    behind, from any CDN) when a host sends them there because the node is full."""

    WEBRTC = "webrtc"
    HLS = "hls"


DEFAULT_VISIBILITY: Mapping[RoomKind, Visibility] = {
    RoomKind.LIVESTREAM: Visibility.PUBLIC,
    RoomKind.MEETING: Visibility.PRIVATE,
}


class Role(enum.StrEnum):
    EXHIBITOR = "exhibitor"
    BUYER = "buyer"
    HOST = "host"
    VISITOR = "visitor"


class Grant(enum.StrEnum):
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    MODERATE = "moderate"
    RECORD = "record"
    # Create livestreams of one's own (``POST /api/rooms``), e.g. after the show (§6.3.2).
    START_LIVE = "start-live"


# The one table every endpoint and event consults: what a role may do by default. A token may
# narrow this set (an exhibitor's assistant who only watches) but never widen it, with the one
# exception of OPT_IN_GRANTS.
DEFAULT_GRANTS: Mapping[Role, frozenset[Grant]] = {
    Role.EXHIBITOR: frozenset({Grant.PUBLISH, Grant.SUBSCRIBE}),
    Role.BUYER: frozenset({Grant.PUBLISH, Grant.SUBSCRIBE}),
    Role.HOST: frozenset({Grant.PUBLISH, Grant.SUBSCRIBE, Grant.MODERATE, Grant.RECORD}),
    Role.VISITOR: frozenset({Grant.SUBSCRIBE}),
}

# Grants that no role holds by default but that the operator may put on a link for these roles,
# by naming them in the link's ``grants``: an exhibitor allowed to start lives of their own.
OPT_IN_GRANTS: Mapping[Role, frozenset[Grant]] = {
    # An exhibitor who records (and stops recording) their own meetings and lives.
    Role.EXHIBITOR: frozenset({Grant.START_LIVE, Grant.RECORD}),
    Role.HOST: frozenset({Grant.START_LIVE}),
}

# Allowed status changes: scheduled -> live -> ended, and a scheduled room may be cancelled.
STATUS_TRANSITIONS: Mapping[RoomStatus, frozenset[RoomStatus]] = {
    RoomStatus.SCHEDULED: frozenset({RoomStatus.LIVE, RoomStatus.ENDED}),
    RoomStatus.LIVE: frozenset({RoomStatus.ENDED}),
    RoomStatus.ENDED: frozenset(),
}

ROOM_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
IDENTITY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_NAME_CHARS = 200
MAX_CATEGORY_CHARS = 100
MAX_LANGUAGES = 16


class ValidationError(ValueError):
    """User input that the domain refuses; ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def new_room_id() -> str:
    return secrets.token_urlsafe(9).replace("_", "x").replace("-", "y")


def grantable(role: Role) -> frozenset[Grant]:
    """Every grant a token for ``role`` may carry: its defaults and its opt-in grants."""
    return DEFAULT_GRANTS[role] | OPT_IN_GRANTS.get(role, frozenset())


def grants_for(role: Role, requested: Iterable[Grant] | None = None) -> frozenset[Grant]:
    """The grants a token for ``role`` carries: the role's defaults, or exactly ``requested``,
    which may narrow them and add the role's opt-in grants (:data:`OPT_IN_GRANTS`), nothing
    else. Opt-in grants are never implied: only a token that names them holds them."""
    if requested is None:
        return DEFAULT_GRANTS[role]
    wanted = frozenset(requested)
    extra = wanted - grantable(role)
    if extra:
        names = ", ".join(sorted(g.value for g in extra))
        raise ValidationError("grants", f"role {role.value!r} may not hold {names}")
    return wanted


def _text(field_name: str, value: object, limit: int, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValidationError(field_name, "must be a string")
    text = value.strip()
    if required and not text:
        raise ValidationError(field_name, "must not be empty")
    if len(text) > limit:
        raise ValidationError(field_name, f"longer than {limit} characters")
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text):
        raise ValidationError(field_name, "contains control characters")
    return text


def check_line(field_name: str, value: object, limit: int) -> str:
    """A required one-line text (a name, a title): trimmed, without control characters."""
    return _text(field_name, value, limit)


def check_identity(value: object) -> str:
    if not isinstance(value, str) or not IDENTITY_RE.match(value):
        raise ValidationError(
            "identity",
            "1-128 characters: letters, digits and . _ @ - (starting with a letter or digit)",
        )
    return value


def check_room_id(value: object) -> str:
    if not isinstance(value, str) or not ROOM_ID_RE.match(value):
        raise ValidationError("room", "1-64 characters: letters, digits, _ and -")
    return value


def check_language(value: object, field_name: str = "language") -> str:
    if not isinstance(value, str) or not LANGUAGE_RE.match(value):
        raise ValidationError(field_name, "a BCP 47 language tag such as 'en' or 'zh-CN'")
    return value


def _enum(cls: type[enum.StrEnum], field_name: str, value: object) -> Any:
    try:
        return cls(str(value))
    except ValueError:
        choices = ", ".join(member.value for member in cls)
        raise ValidationError(field_name, f"one of {choices}") from None


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    name: str
    kind: RoomKind
    category: str = ""
    owner: str = ""
    scheduled_start: float | None = None
    scheduled_end: float | None = None
    status: RoomStatus = RoomStatus.SCHEDULED
    record: bool = False
    languages: tuple[str, ...] = ("en",)
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    visibility: Visibility = Visibility.PUBLIC
    delivery: Delivery = Delivery.WEBRTC
    # A meeting's lobby at its start (its moderators turn it on and off later): newcomers wait.
    lobby: bool = False
    # Someone publishes in it now, and since when that is so (or no longer so).
    publishing: bool = False
    publishing_changed_at: float | None = None

    @property
    def public(self) -> bool:
        return self.visibility == Visibility.PUBLIC

    def with_publishing(self, publishing: bool, now: float) -> Room:
        if publishing == self.publishing:
            return self
        return dataclasses.replace(self, publishing=publishing, publishing_changed_at=now)

    def with_status(self, status: RoomStatus, now: float) -> Room:
        """The room moved to ``status`` at ``now``; refuses a move the lifecycle does not allow."""
        if status == self.status:
            return self
        if status not in STATUS_TRANSITIONS[self.status]:
            raise ValidationError(
                "status", f"cannot go from {self.status.value} to {status.value}"
            )
        changes: dict[str, Any] = {"status": status}
        if status == RoomStatus.LIVE:
            changes["started_at"] = now
        elif status == RoomStatus.ENDED:
            changes["ended_at"] = now
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind.value,
            "category": self.category,
            "owner": self.owner,
            "scheduled_start": self.scheduled_start,
            "scheduled_end": self.scheduled_end,
            "status": self.status.value,
            "record": self.record,
            "languages": list(self.languages),
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "visibility": self.visibility.value,
            "delivery": self.delivery.value,
            "lobby": self.lobby,
            "publishing": self.publishing,
            "publishing_changed_at": self.publishing_changed_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Room:
        kind = RoomKind(data["kind"])
        return cls(
            id=data["id"],
            name=data["name"],
            kind=kind,
            category=data.get("category", ""),
            owner=data.get("owner", ""),
            scheduled_start=data.get("scheduled_start"),
            scheduled_end=data.get("scheduled_end"),
            status=RoomStatus(data.get("status", "scheduled")),
            record=bool(data.get("record", False)),
            languages=tuple(data.get("languages", ("en",))),
            created_at=float(data.get("created_at", 0.0)),
            started_at=data.get("started_at"),
            ended_at=data.get("ended_at"),
            visibility=Visibility(data.get("visibility", DEFAULT_VISIBILITY[kind])),
            delivery=Delivery(data.get("delivery", Delivery.WEBRTC.value)),
            lobby=bool(data.get("lobby", False)),
            publishing=bool(data.get("publishing", False)),
            publishing_changed_at=data.get("publishing_changed_at"),
        )


ROOM_FIELDS = frozenset(
    {"id", "name", "kind", "category", "owner", "scheduled_start", "scheduled_end", "record",
     "languages", "status", "visibility", "delivery", "lobby"}
)
# What an edit may change: everything but the id and the kind (pages and links depend on them).
EDITABLE_ROOM_FIELDS = ROOM_FIELDS - {"id", "kind"}


def _timestamp(field_name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field_name, "a UNIX time in seconds, or null")
    if not 0 <= value < 2**34:
        raise ValidationError(field_name, "out of range")
    return float(value)


def _room_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The validated fields of ``data`` that a room can take (those present only)."""
    fields: dict[str, Any] = {}
    if "name" in data:
        fields["name"] = _text("name", data["name"], MAX_NAME_CHARS)
    if "category" in data:
        fields["category"] = _text("category", data["category"], MAX_CATEGORY_CHARS,
                                   required=False)
    if "owner" in data:
        owner = data["owner"]
        fields["owner"] = "" if owner is None or owner == "" else check_identity(owner)
    for name in ("scheduled_start", "scheduled_end"):
        if name in data:
            fields[name] = _timestamp(name, data[name])
    for flag in ("record", "lobby"):
        if flag in data:
            if not isinstance(data[flag], bool):
                raise ValidationError(flag, "must be true or false")
            fields[flag] = data[flag]
    if "languages" in data:
        raw = data["languages"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_LANGUAGES:
            raise ValidationError("languages", f"a list of 1 to {MAX_LANGUAGES} language tags")
        fields["languages"] = tuple(check_language(lang, "languages") for lang in raw)
    if "visibility" in data:
        fields["visibility"] = _enum(Visibility, "visibility", data["visibility"])
    if "status" in data:
        fields["status"] = _enum(RoomStatus, "status", data["status"])
    if "delivery" in data:
        fields["delivery"] = _enum(Delivery, "delivery", data["delivery"])
    return fields


def _check_schedule(start: float | None, end: float | None) -> None:
    if start is not None and end is not None and end <= start:
        raise ValidationError("scheduled_end", "must be after scheduled_start")


def room_from_request(data: Mapping[str, Any], now: float) -> Room:
    """Validate a create-room request body and build the room. Unknown fields are refused."""
    unknown = set(data) - ROOM_FIELDS
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown field")
    room_id = check_room_id(data["id"]) if "id" in data else new_room_id()
    if "name" not in data:
        raise ValidationError("name", "is required")
    if "kind" not in data:
        raise ValidationError("kind", "is required")
    kind = _enum(RoomKind, "kind", data["kind"])
    fields = _room_fields(data)
    _check_schedule(fields.get("scheduled_start"), fields.get("scheduled_end"))
    status = fields.pop("status", RoomStatus.SCHEDULED)
    if status == RoomStatus.ENDED:
        raise ValidationError("status", "a new room cannot be ended")
    fields.setdefault("record", kind == RoomKind.LIVESTREAM)
    fields.setdefault("visibility", DEFAULT_VISIBILITY[kind])
    return Room(
        id=room_id,
        kind=kind,
        status=status,
        created_at=now,
        started_at=now if status == RoomStatus.LIVE else None,
        **fields,
    )


def room_edited(room: Room, data: Mapping[str, Any], now: float) -> Room:
    """The room after an edit request (``PATCH``): any editable field, status through its
    lifecycle (:meth:`Room.with_status`). Unknown fields and the id or kind are refused."""
    unknown = set(data) - EDITABLE_ROOM_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationError(name, "cannot change" if name in ROOM_FIELDS else "unknown field")
    if not data:
        raise ValidationError("body", "name at least one field to change")
    fields = _room_fields(data)
    status = fields.pop("status", None)
    edited = dataclasses.replace(room, **fields)
    _check_schedule(edited.scheduled_start, edited.scheduled_end)
    return edited if status is None else edited.with_status(status, now)


@dataclass(frozen=True, slots=True)
class Track:
    """A track a participant publishes, as others see it."""

    id: str
    kind: str  # "audio" | "video"
    codec: str = ""  # "VP8", "H264", "opus"
    source: str = "camera"  # camera | microphone | screen | encoder
    profile: str = ""  # H.264: "constrained-baseline", "baseline", "main", "high", ...
    muted: bool = False  # its publisher turned it off (camera off, microphone muted)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "codec": self.codec, "profile": self.profile,
                "source": self.source, "muted": self.muted}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Track:
        return cls(
            id=data["id"], kind=data["kind"], codec=data.get("codec", ""),
            source=data.get("source", "camera"), profile=data.get("profile", ""),
            muted=bool(data.get("muted", False)),
        )


@dataclass(frozen=True, slots=True)
class Participant:
    identity: str
    name: str
    role: Role
    grants: frozenset[Grant]
    joined_at: float
    language: str = "en"
    node_id: str = ""
    # The connection that holds this identity now: a reconnect replaces it, and a late
    # disconnect of the older connection must not remove the newer one.
    session_id: str = ""
    tracks: tuple[Track, ...] = field(default=())
    guest: bool = False  # came in with a guest link: watches, never on stage

    def can(self, grant: Grant) -> bool:
        return grant in self.grants

    def to_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "name": self.name,
            "role": self.role.value,
            "grants": sorted(g.value for g in self.grants),
            "joined_at": self.joined_at,
            "language": self.language,
            "node_id": self.node_id,
            "session_id": self.session_id,
            "tracks": [t.to_dict() for t in self.tracks],
            "guest": self.guest,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Participant:
        return dataclasses.replace(
            cls.from_public(data),
            grants=frozenset(Grant(g) for g in data["grants"]),
            node_id=data.get("node_id", ""),
            session_id=data.get("session_id", ""),
            guest=bool(data.get("guest", False)),
        )

    @classmethod
    def from_public(cls, data: Mapping[str, Any]) -> Participant:
        """A participant as others see it (:meth:`public_dict`): no grants, node or session."""
        return cls(
            identity=data["identity"],
            name=data["name"],
            role=Role(data["role"]),
            grants=frozenset(),
            joined_at=float(data["joined_at"]),
            language=data.get("language", "en"),
            tracks=tuple(Track.from_dict(t) for t in data.get("tracks", ())),
        )

    def public(self) -> Participant:
        """This participant with only what others see (the shape events carry)."""
        return Participant.from_public(self.public_dict())

    def public_dict(self) -> dict[str, Any]:
        """What other participants see: no grants or node placement."""
        return {
            "identity": self.identity,
            "name": self.name,
            "role": self.role.value,
            "joined_at": self.joined_at,
            "language": self.language,
            "tracks": [t.to_dict() for t in self.tracks],
        }
