"""A livestream's questions, its chat and its attendance, as values and pure rules: no I/O,
time passed in. The store keeps them (they outlive the room's bounded event log); every change
is also a room event, so each page applies it as it happens.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rooms.model import Role, ValidationError

MAX_QUESTION_CHARS = 500
MAX_CHAT_CHARS = 1000
CHAT_HISTORY = 200  # messages a joining page gets
# A chatter may send this many messages in this many seconds (a person typing never does).
CHAT_BURST = 5
CHAT_WINDOW_SECONDS = 10.0
# Who the figures count as the audience: hosts and exhibitors run the show.
VIEWER_ROLES = frozenset({Role.BUYER, Role.VISITOR})


def new_id() -> str:
    return secrets.token_hex(6)


def _message_text(field_name: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(field_name, "must be a string")
    text = value.strip()
    if not text:
        raise ValidationError(field_name, "must not be empty")
    if len(text) > limit:
        raise ValidationError(field_name, f"longer than {limit} characters ({len(text)})")
    # Line breaks and tabs are fine in a message; other control characters are not.
    if any((ord(ch) < 32 and ch not in "\n\t") or 127 <= ord(ch) < 160 for ch in text):
        raise ValidationError(field_name, "contains control characters")
    return text


def question_text(value: object) -> str:
    return _message_text("text", value, MAX_QUESTION_CHARS)


def chat_text(value: object) -> str:
    return _message_text("text", value, MAX_CHAT_CHARS)


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    identity: str
    name: str
    text: str
    at: float
    offset: float | None = None  # seconds since the live started: where the replay shows it
    votes: int = 0
    answered: bool = False
    pinned: bool = False
    hidden: bool = False
    # When moderators first pinned it over the video: the replay's chapters.
    pinned_at: float | None = None
    # The language it was written in (the asker's, ISO 639-1), "" when unknown: what it is
    # translated from.
    language: str = ""

    def with_pinned(self, pinned: bool, now: float) -> Question:
        first = self.pinned_at if self.pinned_at is not None or not pinned else now
        return dataclasses.replace(self, pinned=pinned, pinned_at=first)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "identity": self.identity, "name": self.name, "text": self.text,
                "at": self.at, "offset": self.offset, "votes": self.votes,
                "answered": self.answered, "pinned": self.pinned, "hidden": self.hidden,
                "pinned_at": self.pinned_at, "language": self.language}

    def public_dict(self) -> dict[str, Any]:
        """As everyone sees it: a hidden question without its text."""
        body = self.to_dict()
        if self.hidden:
            body["text"] = ""
        return body

    def seen_by(self, identity: str, moderator: bool) -> dict[str, Any]:
        return self.to_dict() if moderator or identity == self.identity else self.public_dict()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Question:
        return cls(id=str(data["id"]), identity=str(data["identity"]), name=str(data["name"]),
                   text=str(data["text"]), at=float(data["at"]),
                   offset=None if data.get("offset") is None else float(data["offset"]),
                   votes=int(data.get("votes", 0)), answered=bool(data.get("answered")),
                   pinned=bool(data.get("pinned")), hidden=bool(data.get("hidden")),
                   pinned_at=None if data.get("pinned_at") is None
                   else float(data["pinned_at"]), language=str(data.get("language") or ""))


def ranked(questions: Iterable[Question]) -> list[Question]:
    """The queue as moderators work it: open before answered, most votes first, then oldest."""
    return sorted(questions, key=lambda q: (q.answered, -q.votes, q.at, q.id))


@dataclass(frozen=True, slots=True)
class ChatMessage:
    id: str
    identity: str
    name: str
    text: str
    at: float
    language: str = ""  # the sender's (ISO 639-1), "" when unknown

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "identity": self.identity, "name": self.name, "text": self.text,
                "at": self.at, "language": self.language}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatMessage:
        return cls(id=str(data["id"]), identity=str(data["identity"]), name=str(data["name"]),
                   text=str(data["text"]), at=float(data["at"]),
                   language=str(data.get("language") or ""))


@dataclass(slots=True)
class ChatRateLimit:
    """At most ``burst`` messages per identity in any ``window`` seconds (a sliding window,
    so the answer can say exactly when the next one is allowed)."""

    burst: int = CHAT_BURST
    window: float = CHAT_WINDOW_SECONDS
    _sent: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, identity: str, now: float) -> float:
        """0 when ``identity`` may send now (and counts it), else the seconds to wait."""
        times = self._sent.setdefault(identity, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.burst:
            return times[0] + self.window - now
        times.append(now)
        return 0.0

    def forget(self, identity: str) -> None:
        self._sent.pop(identity, None)


@dataclass(frozen=True, slots=True)
class Visit:
    """One stay of one person in a room: joined, and left (None while still there)."""

    identity: str
    name: str
    role: Role
    joined_at: float
    left_at: float | None = None

    def seconds(self, now: float) -> float:
        return max(0.0, (self.left_at if self.left_at is not None else now) - self.joined_at)

    def to_dict(self) -> dict[str, Any]:
        return {"identity": self.identity, "name": self.name, "role": self.role.value,
                "joined_at": self.joined_at, "left_at": self.left_at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Visit:
        return cls(identity=str(data["identity"]), name=str(data["name"]),
                   role=Role(data["role"]), joined_at=float(data["joined_at"]),
                   left_at=None if data.get("left_at") is None else float(data["left_at"]))


def attendance(visits: Iterable[Visit], now: float) -> list[dict[str, Any]]:
    """Each person's visits and watch time, in the order they first came."""
    people: dict[str, dict[str, Any]] = {}
    for visit in sorted(visits, key=lambda v: (v.joined_at, v.identity)):
        person = people.setdefault(visit.identity, {
            "identity": visit.identity, "name": visit.name, "role": visit.role.value,
            "sessions": [], "watch_seconds": 0.0})
        person["sessions"].append({"joined_at": visit.joined_at, "left_at": visit.left_at})
        person["watch_seconds"] = round(person["watch_seconds"] + visit.seconds(now), 3)
    return list(people.values())


def watch_figures(visits: Iterable[Visit], now: float) -> dict[str, float | int]:
    """Unique viewers, their total and average watch time (hosts and exhibitors not counted)."""
    seconds: dict[str, float] = {}
    for visit in visits:
        if visit.role in VIEWER_ROLES:
            seconds[visit.identity] = seconds.get(visit.identity, 0.0) + visit.seconds(now)
    total = sum(seconds.values())
    return {"unique_viewers": len(seconds), "total_watch_seconds": round(total, 3),
            "average_watch_seconds": round(total / len(seconds), 3) if seconds else 0.0}
