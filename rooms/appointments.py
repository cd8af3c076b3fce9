"""Appointments between two people (issue #10, requirement §5.3.1): a buyer proposes a time
slot to an exhibitor, who accepts or declines it; either side may cancel; shortly before the
slot both are reminded, and at its start a private meeting opens for the two of them. Values,
rules and the agenda's renderings (a person's time zone, an iCalendar file); no I/O, time is
passed in.

Nobody's accepted appointments overlap: a proposal or an acceptance whose slot overlaps an
accepted appointment of either side is refused. The store checks and writes in one step
(:meth:`rooms.store.Store.write_appointment`), so two acceptances at once cannot both win.
Slots are half-open, ``[start, end)``: a meeting may start when the previous one ends.

Every change makes a new value with ``version`` one higher; the store writes a change only
over the version it was made from, so a change made from a stale read is retried, never lost.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rooms.model import MAX_NAME_CHARS, Role, ValidationError, check_identity, check_line

MAX_TITLE_CHARS = 200
MIN_DURATION = 5 * 60
MAX_DURATION = 8 * 3600
# A form sent as the minute turns still books "now"; anything earlier is in the past.
PAST_SKEW = 60
MAX_AHEAD = 366 * 24 * 3600
# Both sides are reminded this long before the start.
REMINDER_LEAD = 5 * 60
# A node that claimed the opening of a meeting and died before saving its room: after this
# long another node opens it (opening takes milliseconds).
OPENING_CLAIM_TIMEOUT = 60
# The agenda shows appointments from this long ago unless asked otherwise.
AGENDA_RECENT = 7 * 24 * 3600
# RFC 5545 §3.1: content lines longer than 75 octets are folded, CRLF ends every line.
ICALENDAR_LINE_OCTETS = 75
ICALENDAR_CRLF = "\r\n"
ICALENDAR_PRODID = "-//Fairwire//Appointments//EN"
TIME_ZONE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,3}")
MAX_TIME_ZONE_CHARS = 64


class AppointmentStatus(enum.StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"


class DueAction(enum.Enum):
    """What the scheduler does for an accepted appointment now."""

    REMIND = "remind"
    OPEN = "open"


class AppointmentConflict(Exception):
    """The appointment's state does not allow this (HTTP 409); ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class AppointmentRefused(Exception):
    """This person may not do this to the appointment (HTTP 403)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Party:
    """One side of an appointment. ``role`` and ``language`` are those of the link they booked
    or answered with, and become their meeting link's (None: the counterpart has not answered)."""

    identity: str
    name: str
    role: Role | None = None
    language: str = "en"

    def to_dict(self) -> dict[str, Any]:
        return {"identity": self.identity, "name": self.name,
                "role": None if self.role is None else self.role.value,
                "language": self.language}

    def public_dict(self) -> dict[str, Any]:
        return {"identity": self.identity, "name": self.name}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Party:
        role = data.get("role")
        return cls(identity=str(data["identity"]), name=str(data["name"]),
                   role=None if role is None else Role(role),
                   language=str(data.get("language", "en")))


@dataclass(frozen=True, slots=True)
class Appointment:
    id: str
    organizer: Party
    counterpart: Party
    title: str
    start: int  # UNIX seconds, UTC
    end: int
    status: AppointmentStatus
    created_at: float
    answered_at: float | None = None
    cancelled_by: str | None = None
    room: str | None = None  # the meeting opened for it
    reminded: bool = False
    opening_claimed_at: float | None = None  # a node is opening its meeting (scheduler)
    version: int = 1

    @property
    def awaits_opening(self) -> bool:
        """Accepted and its meeting not opened yet: the scheduler watches it."""
        return self.status == AppointmentStatus.ACCEPTED and self.room is None

    def involves(self, identity: str) -> bool:
        return identity in (self.organizer.identity, self.counterpart.identity)

    def other(self, identity: str) -> Party:
        """The side that is not ``identity``."""
        return self.counterpart if identity == self.organizer.identity else self.organizer

    def to_dict(self) -> dict[str, Any]:
        """Everything, for the store."""
        return {
            "id": self.id, "organizer": self.organizer.to_dict(),
            "counterpart": self.counterpart.to_dict(), "title": self.title,
            "start": self.start, "end": self.end, "status": self.status.value,
            "created_at": self.created_at, "answered_at": self.answered_at,
            "cancelled_by": self.cancelled_by, "room": self.room, "reminded": self.reminded,
            "opening_claimed_at": self.opening_claimed_at, "version": self.version,
        }

    def public_dict(self) -> dict[str, Any]:
        """What the two parties see: no links' roles, no scheduler bookkeeping."""
        return {
            "id": self.id, "organizer": self.organizer.public_dict(),
            "counterpart": self.counterpart.public_dict(), "title": self.title,
            "start": self.start, "end": self.end, "status": self.status.value,
            "created_at": self.created_at, "answered_at": self.answered_at,
            "cancelled_by": self.cancelled_by, "room": self.room, "reminded": self.reminded,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Appointment:
        def optional_float(name: str) -> float | None:
            value = data.get(name)
            return None if value is None else float(value)

        room, cancelled_by = data.get("room"), data.get("cancelled_by")
        return cls(
            id=str(data["id"]), organizer=Party.from_dict(data["organizer"]),
            counterpart=Party.from_dict(data["counterpart"]), title=str(data["title"]),
            start=int(data["start"]), end=int(data["end"]),
            status=AppointmentStatus(data["status"]), created_at=float(data["created_at"]),
            answered_at=optional_float("answered_at"),
            cancelled_by=None if cancelled_by is None else str(cancelled_by),
            room=None if room is None else str(room), reminded=bool(data.get("reminded")),
            opening_claimed_at=optional_float("opening_claimed_at"),
            version=int(data.get("version", 1)),
        )


def _changed(appointment: Appointment, **changes: Any) -> Appointment:
    return dataclasses.replace(appointment, version=appointment.version + 1, **changes)


# -- proposing ------------------------------------------------------------------------------


def _unix_seconds(field_name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(field_name, "a UNIX time in seconds")
    if not 0 <= value < 2**34:
        raise ValidationError(field_name, "out of range")
    return math.floor(value)


def check_slot(start: object, end: object, now: float) -> tuple[int, int]:
    """A bookable slot: not in the past, within a year, 5 minutes to 8 hours long."""
    first, last = _unix_seconds("start", start), _unix_seconds("end", end)
    if last <= first:
        raise ValidationError("end", "must be after start")
    if not MIN_DURATION <= last - first <= MAX_DURATION:
        raise ValidationError("end", f"a slot lasts {MIN_DURATION // 60} minutes to "
                              f"{MAX_DURATION // 3600} hours")
    if first < now - PAST_SKEW:
        raise ValidationError("start", "is in the past")
    if first > now + MAX_AHEAD:
        raise ValidationError("start", "more than a year ahead")
    return first, last


def propose(appointment_id: str, organizer: Party, counterpart: object,
            counterpart_name: object, title: object, start: object, end: object,
            now: float) -> Appointment:
    """A validated proposal from ``organizer`` to someone else."""
    if not isinstance(counterpart, str):
        raise ValidationError("with", "the identity of the person to meet")
    try:
        other = check_identity(counterpart)
    except ValidationError as exc:
        raise ValidationError("with", exc.message) from None
    if other == organizer.identity:
        raise ValidationError("with", "book a meeting with someone else")
    name = other if counterpart_name is None else check_line("with_name", counterpart_name,
                                                              MAX_NAME_CHARS)
    first, last = check_slot(start, end, now)
    return Appointment(
        id=appointment_id, organizer=organizer, counterpart=Party(other, name),
        title=check_line("title", title, MAX_TITLE_CHARS), start=first, end=last,
        status=AppointmentStatus.PROPOSED, created_at=now)


# -- answering and cancelling ---------------------------------------------------------------


def _still_ahead(appointment: Appointment, now: float) -> None:
    if now >= appointment.end:
        raise AppointmentConflict("appointment_over", "this appointment's time is over")


def _answerable(appointment: Appointment, by: str, now: float) -> None:
    if by != appointment.counterpart.identity:
        raise AppointmentRefused("not_counterpart",
                                 f"only {appointment.counterpart.name} answers this proposal")
    if appointment.status == AppointmentStatus.CANCELLED:
        raise AppointmentConflict("appointment_cancelled", "this proposal was cancelled")
    if appointment.status != AppointmentStatus.PROPOSED:
        raise AppointmentConflict("already_answered",
                                  f"this proposal was {appointment.status.value} already")
    _still_ahead(appointment, now)


def accept(appointment: Appointment, by: Party, now: float) -> Appointment:
    """The counterpart accepts, with the link (name, role, language) they answer from."""
    _answerable(appointment, by.identity, now)
    return _changed(appointment, status=AppointmentStatus.ACCEPTED, answered_at=now,
                    counterpart=by)


def decline(appointment: Appointment, by: Party, now: float) -> Appointment:
    _answerable(appointment, by.identity, now)
    return _changed(appointment, status=AppointmentStatus.DECLINED, answered_at=now,
                    counterpart=by)


def cancel(appointment: Appointment, by: str, now: float) -> Appointment:
    """Either side calls off a proposal or an accepted appointment before its end."""
    if not appointment.involves(by):
        raise AppointmentRefused("forbidden", "only its two parties cancel an appointment")
    if appointment.status == AppointmentStatus.CANCELLED:
        raise AppointmentConflict("appointment_cancelled", "this appointment was cancelled "
                                  "already")
    if appointment.status == AppointmentStatus.DECLINED:
        raise AppointmentConflict("already_answered", "this proposal was declined")
    _still_ahead(appointment, now)
    return _changed(appointment, status=AppointmentStatus.CANCELLED, cancelled_by=by)


def actions_for(appointment: Appointment, viewer: str, now: float) -> list[str]:
    """What ``viewer`` may do with it now, as the page offers it."""
    if now >= appointment.end:
        return []
    status = appointment.status
    if status == AppointmentStatus.PROPOSED:
        return (["accept", "decline"] if viewer == appointment.counterpart.identity
                else ["cancel"])
    if status == AppointmentStatus.ACCEPTED:
        return ["join", "cancel"] if appointment.room is not None else ["cancel"]
    return []


# -- overlaps -------------------------------------------------------------------------------


def overlaps(a: Appointment, b: Appointment) -> bool:
    """Whether two slots share time; half-open, so back to back is fine."""
    return a.start < b.end and b.start < a.end


def conflict(candidate: Appointment, others: Iterable[Appointment]) -> Appointment | None:
    """An accepted appointment of either of ``candidate``'s parties (itself aside) whose slot
    overlaps it, if any."""
    for other in others:
        if (other.id != candidate.id and other.status == AppointmentStatus.ACCEPTED
                and (other.involves(candidate.organizer.identity)
                     or other.involves(candidate.counterpart.identity))
                and overlaps(candidate, other)):
            return other
    return None


def in_window(appointment: Appointment, low: float | None, high: float | None) -> bool:
    """Whether its slot meets ``[low, high)`` (unbounded on a side that is None)."""
    return ((low is None or appointment.end > low)
            and (high is None or appointment.start < high))


# -- the scheduler --------------------------------------------------------------------------


def due_action(appointment: Appointment, now: float, lead: float = REMINDER_LEAD,
               claim_timeout: float = OPENING_CLAIM_TIMEOUT) -> DueAction | None:
    """Remind from ``lead`` before the start until it; open the meeting from the start until
    the end, unless another node's claim to open it is younger than ``claim_timeout``."""
    if not appointment.awaits_opening or now >= appointment.end:
        return None
    if now >= appointment.start:
        claimed = appointment.opening_claimed_at
        if claimed is None or now - claimed >= claim_timeout:
            return DueAction.OPEN
        return None
    if not appointment.reminded and now >= appointment.start - lead:
        return DueAction.REMIND
    return None


def reminded(appointment: Appointment) -> Appointment:
    return _changed(appointment, reminded=True)


def opening_claimed(appointment: Appointment, now: float) -> Appointment:
    return _changed(appointment, opening_claimed_at=now)


def opened(appointment: Appointment, room_id: str) -> Appointment:
    return _changed(appointment, room=room_id)


# -- the agenda -----------------------------------------------------------------------------


def time_zone(name: object) -> ZoneInfo:
    """An IANA time zone by name (``Asia/Shanghai``, ``UTC``)."""
    if (not isinstance(name, str) or len(name) > MAX_TIME_ZONE_CHARS
            or not TIME_ZONE_RE.fullmatch(name)):
        raise ValidationError("tz", "an IANA time zone such as Asia/Shanghai")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError("tz", f"no time zone {name!r}: an IANA name such as "
                              "Asia/Shanghai") from None


def local_time(at: float, zone: ZoneInfo) -> str:
    """ISO 8601 with the zone's offset then, e.g. ``2026-12-01T10:00:00+08:00``."""
    return datetime.fromtimestamp(at, zone).isoformat(timespec="seconds")


def agenda_entry(appointment: Appointment, viewer: str, zone: ZoneInfo,
                 now: float) -> dict[str, Any]:
    """An appointment as ``viewer``'s agenda shows it: who it is with, which side they are,
    its times in their zone, and what they may do."""
    side = "organizer" if viewer == appointment.organizer.identity else "counterpart"
    return appointment.public_dict() | {
        "with": appointment.other(viewer).public_dict(),
        "side": side,
        "start_local": local_time(appointment.start, zone),
        "end_local": local_time(appointment.end, zone),
        "actions": actions_for(appointment, viewer, now),
    }


# -- iCalendar (RFC 5545) -------------------------------------------------------------------

ICALENDAR_STATUS = {
    AppointmentStatus.PROPOSED: "TENTATIVE",
    AppointmentStatus.ACCEPTED: "CONFIRMED",
    AppointmentStatus.DECLINED: "CANCELLED",
    AppointmentStatus.CANCELLED: "CANCELLED",
}


def icalendar_text(value: str) -> str:
    """RFC 5545 §3.3.11: backslash, semicolon, comma and line breaks escaped."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def fold_line(line: str) -> str:
    """RFC 5545 §3.1: at most 75 octets a line, never inside a UTF-8 character; a
    continuation line starts with a space, which counts."""
    pieces: list[str] = []
    current: list[str] = []
    size, limit = 0, ICALENDAR_LINE_OCTETS
    for char in line:
        octets = len(char.encode())
        if size + octets > limit:
            pieces.append("".join(current))
            current, size, limit = [], 0, ICALENDAR_LINE_OCTETS - 1
        current.append(char)
        size += octets
    pieces.append("".join(current))
    return (ICALENDAR_CRLF + " ").join(pieces)


def icalendar_utc(at: float) -> str:
    """RFC 5545 §3.3.5, form #2: a UTC date-time, ``20261201T020000Z``."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y%m%dT%H%M%SZ")


def _event(appointment: Appointment, viewer: str, now: float) -> list[str]:
    other = appointment.other(viewer)
    description = f"Meeting with {other.name} ({other.identity}) on Fairwire"
    if appointment.status == AppointmentStatus.PROPOSED:
        description += " (proposed, not accepted yet)"
    lines = [
        "BEGIN:VEVENT",
        f"UID:appointment-{appointment.id}@fairwire",
        f"DTSTAMP:{icalendar_utc(now)}",
        f"CREATED:{icalendar_utc(appointment.created_at)}",
        f"DTSTART:{icalendar_utc(appointment.start)}",
        f"DTEND:{icalendar_utc(appointment.end)}",
        # A calendar replaces its copy of this UID with the one of the higher sequence.
        f"SEQUENCE:{appointment.version}",
        f"SUMMARY:{icalendar_text(appointment.title)}",
        f"DESCRIPTION:{icalendar_text(description)}",
        f"STATUS:{ICALENDAR_STATUS[appointment.status]}",
    ]
    if appointment.status == AppointmentStatus.ACCEPTED:
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY",
                  f"DESCRIPTION:{icalendar_text(appointment.title)}",
                  f"TRIGGER:-PT{REMINDER_LEAD // 60}M", "END:VALARM"]
    return [*lines, "END:VEVENT"]


def to_icalendar(appointments: Iterable[Appointment], viewer: str, now: float) -> str:
    """``viewer``'s appointments as one VCALENDAR, times in UTC."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{ICALENDAR_PRODID}",
             "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
             # RFC 7986 §5.1, and the older property most calendar apps still read.
             "NAME:Fairwire agenda", "X-WR-CALNAME:Fairwire agenda"]
    for appointment in appointments:
        lines += _event(appointment, viewer, now)
    lines.append("END:VCALENDAR")
    return "".join(fold_line(line) + ICALENDAR_CRLF for line in lines)
