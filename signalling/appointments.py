"""Appointments over REST and socket.io (issue #10, §5.3.1): a person proposes a time slot to
another, who accepts or declines; either cancels; each has an agenda in their own time zone and
as an iCalendar file; at the slot a private meeting opens for the two of them.

The caller is the identity of any room link (or session credential) they hold; the operator's
key has no identity, and guests book nothing (403 ``forbidden``). Only the two parties see an
appointment: anyone else gets 404, as for one that does not exist.

- ``POST /api/appointments`` ``{with, with_name?, title, start, end}`` -> 201, the appointment;
  409 ``overlap`` when the slot overlaps an accepted appointment of either side (of the other
  side's calendar the message says only that they are not free then); 429 past
  :data:`PROPOSALS_BURST` in :data:`PROPOSALS_WINDOW` seconds.
- ``GET /api/appointments/{id}``; ``POST /api/appointments/{id}/accept`` (409 ``overlap`` if
  it overlaps now), ``/decline``, ``/cancel`` -> the appointment; ``/join`` -> ``{room, url}``,
  a link of one's own into its meeting once open.
- ``GET /api/agenda?tz=&from=&to=`` -> ``{time_zone, from, to, appointments}``, each with
  ``start_local``/``end_local`` (ISO 8601 in ``tz``) beside ``start``/``end`` (UNIX seconds);
  ``GET /api/agenda.ics`` -> ``text/calendar`` (a calendar app sends the token as ``?token=``).

socket.io, to every connection of both parties (their identity rooms): ``appointment``
``{appointment}`` on every change; ``appointment-reminder`` ``{appointment, starts_in}``
:data:`~rooms.appointments.REMINDER_LEAD` before an accepted one; at its start
``meeting-ready`` ``{reason: "appointment", id, room, url}``, ``url`` being the receiving
party's own link (each party gets only theirs).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from rooms import Role, Store, ValidationError
from rooms.appointments import (
    AGENDA_RECENT,
    OPENING_CLAIM_TIMEOUT,
    REMINDER_LEAD,
    Appointment,
    AppointmentStatus,
    DueAction,
    Party,
    accept,
    agenda_entry,
    cancel,
    decline,
    due_action,
    opened,
    opening_claimed,
    propose,
    reminded,
    time_zone,
    to_icalendar,
)
from rooms.live import ChatRateLimit
from rooms.model import RoomStatus
from rooms.store import AppointmentWrite, WriteOutcome
from signalling.api import unix_query
from signalling.auth import Claims, ForbiddenError, TokenIssuer
from signalling.callers import caller_of, require_credentials
from signalling.errors import ApiError, read_json_object
from signalling.keys import APPOINTMENTS, STORE, TOKENS
from signalling.meeting_rooms import (
    MEETING_LINK_TTL,
    Attendee,
    issue_meeting_link,
    open_private_meeting,
    room_url,
)
from signalling.messages import identity_room
from signalling.realtime import Realtime
from signalling.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# Proposals per identity: a buyer books a handful of exhibitors in a row, not hundreds.
PROPOSALS_BURST = 10
PROPOSALS_WINDOW = 60.0
# How often the scheduler looks for appointments to remind of or to open.
SCHEDULER_INTERVAL = 5.0
# A change that lost a race (the other side answered at the same moment) is redone from a
# fresh read this many times; then the caller is told to try again.
WRITE_ATTEMPTS = 3
PROPOSAL_FIELDS = frozenset({"with", "with_name", "title", "start", "end"})
APPOINTMENT_ID_RE = re.compile(r"[0-9a-f]{16}")  # secrets.token_hex(8), as propose makes them

routes = web.RouteTableDef()


def party_of(claims: Claims) -> Party:
    """The caller as a side of an appointment: the name, role and language of their link."""
    return Party(claims.identity, claims.name, claims.role, claims.language)


def attendee(party: Party) -> Attendee:
    # A party's role is known once they booked or answered, before any meeting opens.
    return Attendee(party.identity, party.name, party.role or Role.BUYER, party.language)


def _not_found(appointment_id: str) -> ApiError:
    return ApiError(404, f"no appointment {appointment_id!r}", "appointment_not_found")


def _overlap(identity: str, candidate: Appointment, found: Appointment | None) -> ApiError:
    """409 for a slot in the way of an accepted appointment: the caller's own is named, of
    the other side's calendar nothing but that they are busy."""
    if found is not None and found.involves(identity):
        message = f"that time overlaps your accepted appointment “{found.title}”"
    else:
        message = f"{candidate.other(identity).name} is not available at that time"
    return ApiError(409, message, "overlap")


class Appointments:
    """Proposals, answers and cancellations, each told to both parties' connections."""

    def __init__(self, store: Store, realtime: Realtime) -> None:
        self.store = store
        self.realtime = realtime
        self.proposals = ChatRateLimit(burst=PROPOSALS_BURST, window=PROPOSALS_WINDOW)

    async def tell(self, event: str, appointment: Appointment, **extra: Any) -> None:
        payload = {"appointment": appointment.public_dict(), **extra}
        for identity in (appointment.organizer.identity, appointment.counterpart.identity):
            await self.realtime.sio.emit(event, payload, room=identity_room(identity))

    async def propose(self, claims: Claims, body: dict[str, Any], now: float) -> Appointment:
        unknown = set(body) - PROPOSAL_FIELDS
        if unknown:
            raise ValidationError(sorted(unknown)[0], "unknown field")
        for required in ("with", "title", "start", "end"):
            if required not in body:
                raise ValidationError(required, "is required")
        offer = propose(secrets.token_hex(8), party_of(claims), body["with"],
                        body.get("with_name"), body["title"], body["start"], body["end"], now)
        wait = self.proposals.retry_after(claims.identity, now)
        if wait > 0:
            raise ApiError(429, f"too many proposals: try again in {max(1, round(wait))} s",
                           "rate_limited", headers={"Retry-After": str(max(1, round(wait)))},
                           extra={"retry_after": round(wait, 1)})
        written = await self.store.write_appointment(offer, None, exclusive=True)
        if written.outcome == WriteOutcome.OVERLAP:
            raise _overlap(claims.identity, offer, written.conflict)
        log.info("appointment %s: %s proposes to %s", offer.id, claims.identity,
                 offer.counterpart.identity)
        await self.tell("appointment", offer)
        return offer

    async def seen_by(self, identity: str, appointment_id: str) -> Appointment:
        """The appointment, if ``identity`` is one of its parties (404 otherwise)."""
        found = (await self.store.get_appointment(appointment_id)
                 if APPOINTMENT_ID_RE.fullmatch(appointment_id) else None)
        if found is None or not found.involves(identity):
            raise _not_found(appointment_id)
        return found

    async def change(self, identity: str, appointment_id: str,
                     make: Callable[[Appointment], Appointment], *, exclusive: bool
                     ) -> Appointment:
        """Apply ``make`` (a transition, which refuses what it may not do) to the stored
        appointment and write it over what was read; a lost race is redone from a new read."""
        for _ in range(WRITE_ATTEMPTS):
            current = await self.seen_by(identity, appointment_id)
            changed = make(current)
            written: AppointmentWrite = await self.store.write_appointment(
                changed, current, exclusive=exclusive)
            if written.outcome == WriteOutcome.WRITTEN:
                log.info("appointment %s: %s by %s", changed.id, changed.status.value, identity)
                await self.tell("appointment", changed)
                return changed
            if written.outcome == WriteOutcome.OVERLAP:
                raise _overlap(identity, changed, written.conflict)
        raise ApiError(409, "the appointment changed meanwhile: try again", "conflict")


class AppointmentScheduler:
    """Reminds both parties of an accepted appointment ``lead`` seconds before it and opens
    its meeting at the start: once, however many nodes share the store (each step is written
    over the version it was decided on, so of two nodes one wins)."""

    def __init__(self, store: Store, tokens: TokenIssuer, appointments: Appointments, *,
                 lead: float = REMINDER_LEAD, interval: float = SCHEDULER_INTERVAL,
                 claim_timeout: float = OPENING_CLAIM_TIMEOUT) -> None:
        self.store = store
        self.tokens = tokens
        self.appointments = appointments
        self.lead = lead
        self.interval = interval
        self.claim_timeout = claim_timeout
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick(time.time())
            except asyncio.CancelledError:
                raise
            except Exception:  # the store went away for a moment: the next tick retries
                log.exception("appointment scheduler tick failed; retrying")

    async def tick(self, now: float) -> None:
        for appointment in await self.store.due_appointments(now, now + self.lead):
            action = due_action(appointment, now, self.lead, self.claim_timeout)
            if action == DueAction.REMIND:
                await self._remind(appointment, now)
            elif action == DueAction.OPEN:
                await self._open(appointment, now)

    async def _remind(self, appointment: Appointment, now: float) -> None:
        told = reminded(appointment)
        written = await self.store.write_appointment(told, appointment, exclusive=False)
        if written.outcome == WriteOutcome.WRITTEN:
            await self.appointments.tell("appointment-reminder", told,
                                         starts_in=max(0, round(told.start - now)))

    async def _open(self, appointment: Appointment, now: float) -> None:
        claimed = opening_claimed(appointment, now)
        written = await self.store.write_appointment(claimed, appointment, exclusive=False)
        if written.outcome != WriteOutcome.WRITTEN:
            return  # another node opens it, or it was cancelled meanwhile
        meeting = await open_private_meeting(
            self.store, self.tokens, name=claimed.title, owner=attendee(claimed.organizer),
            others=[attendee(claimed.counterpart)], now=now,
            scheduled_start=claimed.start, scheduled_end=claimed.end)
        done = opened(claimed, meeting.room.id)
        written = await self.store.write_appointment(done, claimed, exclusive=False)
        if written.outcome != WriteOutcome.WRITTEN:
            log.warning("appointment %s changed while its meeting %s opened: not announced",
                        claimed.id, meeting.room.id)
            return
        log.info("appointment %s: meeting %s open", done.id, meeting.room.id)
        await self.appointments.tell("appointment", done)
        sio = self.appointments.realtime.sio
        for party in (done.organizer, done.counterpart):
            await sio.emit("meeting-ready", {
                "reason": "appointment", "id": done.id, "room": meeting.room.id,
                "url": meeting.url(party.identity)}, room=identity_room(party.identity))


# -- HTTP ---------------------------------------------------------------------------------------


async def person_of(request: web.Request, *, query_token: bool = False) -> Claims:
    """The calling person: 401 without credentials, 403 for the API key and for guests."""
    caller = await caller_of(request, query_token=query_token)
    require_credentials(caller)
    claims = caller.claims
    if claims is None:
        raise ForbiddenError("appointments are a person's: call with their link, not the "
                             "API key", "forbidden")
    if claims.guest:
        raise ForbiddenError("guests do not book meetings: open your own link", "forbidden")
    return claims


def _known_query(request: web.Request, allowed: set[str]) -> None:
    unknown = set(request.query) - allowed
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown query parameter")


def _window(request: web.Request, now: float) -> tuple[float, float | None]:
    """The agenda's ``[from, to)``: from a week ago, open-ended, unless the query says."""
    low, high = unix_query(request, "from"), unix_query(request, "to")
    low = now - AGENDA_RECENT if low is None else low
    if high is not None and high <= low:
        raise ValidationError("to", "must be after from")
    return low, high


@routes.post("/api/appointments")
async def propose_appointment(request: web.Request) -> web.Response:
    claims = await person_of(request)
    body = await read_json_object(request)
    offer = await request.app[APPOINTMENTS].propose(claims, body, time.time())
    return web.json_response(offer.public_dict(), status=201,
                             headers={"Location": f"/api/appointments/{offer.id}"})


@routes.get("/api/appointments/{appointment_id}")
async def get_appointment(request: web.Request) -> web.Response:
    claims = await person_of(request)
    found = await request.app[APPOINTMENTS].seen_by(claims.identity,
                                                    request.match_info["appointment_id"])
    return web.json_response(found.public_dict())


async def _answer(request: web.Request, action: str) -> web.Response:
    claims = await person_of(request)
    now = time.time()
    by = party_of(claims)
    make: Callable[[Appointment], Appointment] = {
        "accept": lambda a: accept(a, by, now),
        "decline": lambda a: decline(a, by, now),
        "cancel": lambda a: cancel(a, by.identity, now),
    }[action]
    changed = await request.app[APPOINTMENTS].change(
        claims.identity, request.match_info["appointment_id"], make,
        exclusive=action == "accept")
    return web.json_response(changed.public_dict())


@routes.post("/api/appointments/{appointment_id}/accept")
async def accept_appointment(request: web.Request) -> web.Response:
    return await _answer(request, "accept")


@routes.post("/api/appointments/{appointment_id}/decline")
async def decline_appointment(request: web.Request) -> web.Response:
    return await _answer(request, "decline")


@routes.post("/api/appointments/{appointment_id}/cancel")
async def cancel_appointment(request: web.Request) -> web.Response:
    return await _answer(request, "cancel")


@routes.post("/api/appointments/{appointment_id}/join")
async def join_appointment(request: web.Request) -> web.Response:
    """A link of one's own into the appointment's meeting (for a page that was not open when
    ``meeting-ready`` went out)."""
    claims = await person_of(request)
    found = await request.app[APPOINTMENTS].seen_by(claims.identity,
                                                    request.match_info["appointment_id"])
    now = time.time()
    store = request.app[STORE]
    room = await store.get_room(found.room) if found.room is not None else None
    if room is None or found.status != AppointmentStatus.ACCEPTED or now >= found.end:
        raise ApiError(409, "this appointment's meeting is not open", "meeting_not_open")
    if room.status == RoomStatus.ENDED:
        raise ApiError(409, "this appointment's meeting has ended", "room_ended")
    party = found.organizer if claims.identity == found.organizer.identity else found.counterpart
    tokens = request.app[TOKENS]
    issued = await issue_meeting_link(store, tokens, room, attendee(party),
                                      min(MEETING_LINK_TTL, tokens.max_ttl), now)
    return web.json_response({"room": room.id, "url": room_url(room.id, issued.token)})


@routes.get("/api/agenda")
async def agenda(request: web.Request) -> web.Response:
    claims = await person_of(request)
    _known_query(request, {"tz", "from", "to"})
    zone = time_zone(request.query.get("tz") or "UTC")
    now = time.time()
    low, high = _window(request, now)
    found = await request.app[STORE].list_appointments(claims.identity, low, high)
    return web.json_response({
        "time_zone": zone.key, "from": low, "to": high,
        "appointments": [agenda_entry(a, claims.identity, zone, now) for a in found],
    }, headers={"Cache-Control": "no-store"})


@routes.get("/api/agenda.ics")
async def agenda_calendar(request: web.Request) -> web.Response:
    """The agenda (or one appointment of it, ``?id=``) as RFC 5545 iCalendar."""
    claims = await person_of(request, query_token=True)
    _known_query(request, {"token", "from", "to", "id"})
    now = time.time()
    if "id" in request.query:
        found = [await request.app[APPOINTMENTS].seen_by(claims.identity, request.query["id"])]
    else:
        low, high = _window(request, now)
        found = await request.app[STORE].list_appointments(claims.identity, low, high)
    name = f"fairwire-{found[0].id}.ics" if "id" in request.query else "fairwire-agenda.ics"
    return web.Response(
        text=to_icalendar(found, claims.identity, now), content_type="text/calendar",
        charset="utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"',
                                  "Cache-Control": "no-store"})
