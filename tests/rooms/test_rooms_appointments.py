"""Appointments without I/O: proposals checked, answers and cancellations by the right side
once, half-open overlaps, the scheduler's decisions, an agenda in a time zone, iCalendar."""

from __future__ import annotations

import dataclasses

import pytest

from rooms.appointments import (
    ICALENDAR_LINE_OCTETS,
    MAX_DURATION,
    MIN_DURATION,
    OPENING_CLAIM_TIMEOUT,
    REMINDER_LEAD,
    Appointment,
    AppointmentConflict,
    AppointmentRefused,
    AppointmentStatus,
    DueAction,
    Party,
    accept,
    actions_for,
    agenda_entry,
    cancel,
    conflict,
    decline,
    due_action,
    fold_line,
    icalendar_text,
    opened,
    opening_claimed,
    overlaps,
    propose,
    reminded,
    time_zone,
    to_icalendar,
)
from rooms.model import Role, ValidationError

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
HOUR = 3600
BUYER = Party("buyer-li", "Li Wei", Role.BUYER, "zh")
EXHIBITOR = Party("valve-co", "Valve Co", Role.EXHIBITOR)


def proposal(start: float = NOW + HOUR, end: float | None = None,
             title: str = "GX-40 pricing", appointment_id: str = "a1") -> Appointment:
    return propose(appointment_id, BUYER, "valve-co", "Valve Co", title, start,
                   start + HOUR if end is None else end, NOW)


def accepted(start: float = NOW + HOUR, end: float | None = None,
             appointment_id: str = "a1") -> Appointment:
    return accept(proposal(start, end, appointment_id=appointment_id), EXHIBITOR, NOW)


def test_a_proposal_is_checked_and_kept_whole() -> None:
    made = proposal(NOW + HOUR + 0.7)
    assert (made.status, made.start, made.end - made.start) == (
        AppointmentStatus.PROPOSED, int(NOW) + HOUR, HOUR)
    assert made.counterpart == Party("valve-co", "Valve Co")  # role known once they answer
    assert Appointment.from_dict(made.to_dict()) == made
    assert "version" not in made.public_dict() and "role" not in made.public_dict()["organizer"]


@pytest.mark.parametrize(("start", "end", "field"), [
    (NOW + HOUR, NOW + HOUR, "end"),
    (NOW + HOUR, NOW + HOUR - 60, "end"),
    (NOW + HOUR, NOW + HOUR + MIN_DURATION - 1, "end"),
    (NOW + HOUR, NOW + HOUR + MAX_DURATION + 1, "end"),
    (NOW - 120, NOW + HOUR, "start"),
    (NOW + 400 * 24 * HOUR, NOW + 400 * 24 * HOUR + HOUR, "start"),
    ("tomorrow", NOW + HOUR, "start"),
    (True, NOW + HOUR, "start"),
    (float("nan"), NOW + HOUR, "start"),
])
def test_slots_that_cannot_be_booked(start: object, end: object, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        propose("a1", BUYER, "valve-co", None, "Pricing", start, end, NOW)
    assert refused.value.field == field


def test_a_slot_just_begun_is_still_bookable_and_the_bounds_hold() -> None:
    assert proposal(NOW - 30).start == int(NOW) - 30
    assert proposal(NOW + HOUR, NOW + HOUR + MIN_DURATION).end == int(NOW) + HOUR + MIN_DURATION
    assert proposal(NOW + HOUR, NOW + HOUR + MAX_DURATION).end == int(NOW) + HOUR + MAX_DURATION


@pytest.mark.parametrize(("counterpart", "name", "title", "field"), [
    ("buyer-li", None, "Pricing", "with"),
    ("x y", None, "Pricing", "with"),
    (42, None, "Pricing", "with"),
    ("valve-co", None, "", "title"),
    ("valve-co", None, "x" * 201, "title"),
    ("valve-co", None, "line\nbreak", "title"),
    ("valve-co", "", "Pricing", "with_name"),
])
def test_bad_proposals_name_their_field(counterpart: object, name: object, title: object,
                                        field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        propose("a1", BUYER, counterpart, name, title, NOW + HOUR, NOW + 2 * HOUR, NOW)
    assert refused.value.field == field


def test_only_the_counterpart_answers_and_only_once() -> None:
    offer = proposal()
    with pytest.raises(AppointmentRefused) as refused:
        accept(offer, BUYER, NOW)
    assert refused.value.code == "not_counterpart"
    yes = accept(offer, dataclasses.replace(EXHIBITOR, name="Valve Co Ltd"), NOW + 5)
    assert (yes.status, yes.answered_at, yes.version) == (AppointmentStatus.ACCEPTED, NOW + 5, 2)
    assert yes.counterpart.role == Role.EXHIBITOR and yes.counterpart.name == "Valve Co Ltd"
    for answer in (accept, decline):
        with pytest.raises(AppointmentConflict) as twice:
            answer(yes, EXHIBITOR, NOW + 6)
        assert twice.value.code == "already_answered"
    no = decline(offer, EXHIBITOR, NOW)
    assert no.status == AppointmentStatus.DECLINED
    with pytest.raises(AppointmentConflict) as declined_twice:
        decline(no, EXHIBITOR, NOW)
    assert declined_twice.value.code == "already_answered"


def test_either_side_cancels_once_and_nothing_is_answered_after_its_end() -> None:
    off = cancel(accepted(), "buyer-li", NOW)
    assert (off.status, off.cancelled_by) == (AppointmentStatus.CANCELLED, "buyer-li")
    assert cancel(proposal(), "valve-co", NOW).status == AppointmentStatus.CANCELLED
    with pytest.raises(AppointmentConflict) as again:
        cancel(off, "valve-co", NOW)
    assert again.value.code == "appointment_cancelled"
    with pytest.raises(AppointmentConflict) as answering:
        accept(cancel(proposal(), "buyer-li", NOW), EXHIBITOR, NOW)
    assert answering.value.code == "appointment_cancelled"
    with pytest.raises(AppointmentRefused):
        cancel(proposal(), "someone-else", NOW)
    with pytest.raises(AppointmentConflict) as late:
        accept(proposal(), EXHIBITOR, NOW + 2 * HOUR)
    assert late.value.code == "appointment_over"
    # Accepting a slot that has begun is fine: the meeting opens at once.
    assert accept(proposal(), EXHIBITOR, NOW + HOUR + 60).status == AppointmentStatus.ACCEPTED


def test_overlaps_are_half_open() -> None:
    ten = accepted(NOW + HOUR, appointment_id="ten")
    assert overlaps(ten, proposal(NOW + HOUR + 1800))
    assert overlaps(ten, proposal(NOW + HOUR - 1800))
    assert overlaps(ten, proposal(NOW + HOUR + 600, NOW + HOUR + 1200))  # inside
    assert not overlaps(ten, proposal(NOW + 2 * HOUR))  # back to back
    assert not overlaps(ten, proposal(NOW, NOW + HOUR))


def test_a_conflict_is_an_accepted_appointment_of_either_party() -> None:
    candidate = proposal(NOW + HOUR + 1800, appointment_id="new")
    theirs = dataclasses.replace(accepted(appointment_id="x"),
                                 organizer=Party("someone", "Someone"))
    assert conflict(candidate, [theirs]) == theirs  # the exhibitor is busy then
    strangers = dataclasses.replace(theirs, counterpart=Party("other", "Other"))
    assert conflict(candidate, [strangers]) is None
    assert conflict(candidate, [proposal(appointment_id="p")]) is None  # only accepted count
    assert conflict(accepted(appointment_id="new"), [accepted(appointment_id="new")]) is None


def test_the_scheduler_reminds_then_opens_once() -> None:
    meeting = accepted()
    start = meeting.start
    assert due_action(proposal(), start) is None
    assert due_action(meeting, start - REMINDER_LEAD - 1) is None
    assert due_action(meeting, start - REMINDER_LEAD) == DueAction.REMIND
    told = reminded(meeting)
    assert due_action(told, start - 1) is None
    assert due_action(told, start) == DueAction.OPEN
    assert due_action(meeting, start) == DueAction.OPEN  # late: open, no reminder any more
    claimed = opening_claimed(told, start)
    assert due_action(claimed, start + 5) is None  # another node is opening it
    assert due_action(claimed, start + OPENING_CLAIM_TIMEOUT) == DueAction.OPEN  # it died
    done = opened(claimed, "room-1")
    assert (done.room, done.awaits_opening, done.version) == ("room-1", False, 5)
    assert due_action(done, start + 10) is None
    assert due_action(meeting, meeting.end) is None  # missed entirely
    assert due_action(cancel(meeting, "buyer-li", NOW), start) is None


def test_actions_follow_the_side_and_the_state() -> None:
    assert actions_for(proposal(), "valve-co", NOW) == ["accept", "decline"]
    assert actions_for(proposal(), "buyer-li", NOW) == ["cancel"]
    assert actions_for(accepted(), "valve-co", NOW) == ["cancel"]
    assert actions_for(opened(accepted(), "r"), "buyer-li", NOW) == ["join", "cancel"]
    assert actions_for(accepted(), "buyer-li", NOW + 3 * HOUR) == []
    assert actions_for(decline(proposal(), EXHIBITOR, NOW), "buyer-li", NOW) == []


def test_the_agenda_in_a_time_zone() -> None:
    entry = agenda_entry(accepted(), "valve-co", time_zone("Asia/Shanghai"), NOW)
    assert (entry["start_local"], entry["end_local"]) == (
        "2027-01-15T17:00:00+08:00", "2027-01-15T18:00:00+08:00")
    assert entry["with"] == {"identity": "buyer-li", "name": "Li Wei"}
    assert entry["side"] == "counterpart" and entry["start"] == int(NOW) + HOUR
    summer = agenda_entry(proposal(NOW + 180 * 24 * HOUR), "buyer-li",
                          time_zone("Europe/Berlin"), NOW)
    assert summer["start_local"].endswith("+02:00")  # the offset of that day, not today's
    assert summer["side"] == "organizer"
    for bad in ("Mars/Olympus", "../etc/passwd", "/etc/localtime", "", "Asia/Shanghai\n", 8):
        with pytest.raises(ValidationError) as refused:
            time_zone(bad)
        assert refused.value.field == "tz"


def unfold(text: str) -> list[str]:
    """RFC 5545 §3.1 backwards: CRLF then a space or tab continues the line."""
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")[:-1]


def test_icalendar_escapes_and_folds() -> None:
    assert icalendar_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"
    long = "SUMMARY:" + "阀门" * 40  # 3 octets a character: folds must not split one
    folded = fold_line(long)
    lines = folded.split("\r\n")
    assert all(len(line.encode()) <= ICALENDAR_LINE_OCTETS for line in lines)
    assert all(line.startswith(" ") for line in lines[1:])
    assert "".join([lines[0], *(line[1:] for line in lines[1:])]) == long
    assert fold_line("SHORT:x") == "SHORT:x"


def test_an_icalendar_export_of_the_agenda() -> None:
    confirmed = dataclasses.replace(accepted(), title="Pricing, MOQ; terms")
    tentative = proposal(NOW + 3 * HOUR, appointment_id="a2")
    off = cancel(proposal(NOW + 5 * HOUR, appointment_id="a3"), "buyer-li", NOW)
    text = to_icalendar([confirmed, tentative, off], "valve-co", NOW)
    lines = unfold(text)
    assert lines[:3] == ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Fairwire//Appointments//EN"]
    assert lines[-1] == "END:VCALENDAR"
    assert lines.count("BEGIN:VEVENT") == lines.count("END:VEVENT") == 3
    first = lines[lines.index("BEGIN:VEVENT"):lines.index("END:VEVENT") + 1]
    assert "UID:appointment-a1@fairwire" in first
    assert "DTSTART:20270115T090000Z" in first and "DTEND:20270115T100000Z" in first
    assert "DTSTAMP:20270115T080000Z" in first
    assert "SUMMARY:Pricing\\, MOQ\\; terms" in first
    assert "DESCRIPTION:Meeting with Li Wei (buyer-li) on Fairwire" in first
    assert "STATUS:CONFIRMED" in first and "TRIGGER:-PT5M" in first
    assert [line for line in lines if line.startswith("STATUS:")] == [
        "STATUS:CONFIRMED", "STATUS:TENTATIVE", "STATUS:CANCELLED"]
    assert all(len(line.encode()) <= ICALENDAR_LINE_OCTETS for line in text.split("\r\n"))
