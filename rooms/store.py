"""Where rooms, participants and room events live: the :class:`Store` protocol and the
in-memory store.

The store is the authority on room state. socket.io's own rooms are only a delivery mechanism:
across nodes they are not shared and their pub/sub loses messages during reconnects. So what
happens in a room is a sequenced log in the store, bounded by count and age, which every node
follows (:meth:`Store.wait_events`) to deliver each event to its own clients, in order, once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import itertools
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from rooms.access import LinkRecord, StageState
from rooms.appointments import Appointment, conflict, in_window
from rooms.events import RoomEvent, numbered
from rooms.invitations import MAX_LISTED_INVITATIONS, Invitation
from rooms.live import CHAT_HISTORY, ChatMessage, Question, Visit
from rooms.messages import (
    MAX_DIRECT_MESSAGES,
    DirectMessage,
    conversation_key,
    mark_read,
)
from rooms.model import Participant, Room, RoomKind, RoomStatus, ValidationError
from rooms.moderation import MeetingState

DEFAULT_MAX_EVENTS = 1000
DEFAULT_MAX_AGE = 3600.0
MAX_KEPT_INVITATIONS = 100_000


@dataclass(frozen=True, slots=True)
class EventRange:
    """The events of a room after some sequence number, as far as the log still has them."""

    events: tuple[RoomEvent, ...]
    last_seq: int  # the room's newest sequence number
    complete: bool  # False: events right after the asked number were trimmed away


class WriteOutcome(enum.Enum):
    WRITTEN = "written"
    CHANGED = "changed"  # not over the version it was made from: read again and redo
    OVERLAP = "overlap"  # an accepted appointment of either side is in the way


@dataclass(frozen=True, slots=True)
class AppointmentWrite:
    outcome: WriteOutcome
    conflict: Appointment | None = None  # OVERLAP: the accepted appointment in the way


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

    async def count_participants(self, room_id: str) -> int:
        """How many participants the room has (constant time)."""

    async def page_participants(self, room_id: str, cursor: str | None, limit: int
                                ) -> tuple[list[Participant], str | None]:
        """About ``limit`` participants from ``cursor`` (None: the start) and the cursor of the
        next page (None: no more). Every participant present throughout is returned (once, or
        in Redis at least once); a cursor this store did not give raises ValidationError."""

    async def record_audience(self, room_id: str, current: int) -> int:
        """Note the room's audience size; returns the largest noted so far (its peak)."""

    async def append_event(self, room_id: str, event: RoomEvent) -> RoomEvent:
        """Append to the room's log; returns the event with its sequence number (1, 2, ...).
        Trims the log to its size and to events no older than its age, as of ``event.at``."""

    async def read_events(self, room_id: str, after: int) -> EventRange:
        """The room's events with a sequence number above ``after``, oldest first."""

    async def wait_events(self, positions: Mapping[str, int], block: float
                          ) -> dict[str, list[RoomEvent]]:
        """Events after each room's position, waiting up to ``block`` seconds for the first;
        rooms without new events are left out. Events trimmed meanwhile are skipped: the
        caller sees the gap in the sequence numbers."""


    async def put_link(self, link: LinkRecord) -> None:
        """Note a link token issued (kept until it expires)."""

    async def list_links(self, room_id: str, now: float) -> list[LinkRecord]:
        """The room's unexpired links, newest first."""

    async def revoke_link(self, token_id: str, now: float) -> LinkRecord | None:
        """Mark a link revoked until it expires; None (and nothing changes) if unknown."""

    async def revoked(self, token_ids: Collection[str]) -> set[str]:
        """Which of these token ids are revoked (one round trip however many)."""

    async def set_stage(self, room_id: str, identity: str, state: StageState | None) -> None:
        """Where ``identity`` stands with the room's stage (None: off it, not invited)."""

    async def stage_states(self, room_id: str) -> dict[str, StageState]: ...

    # A livestream's questions, chat and attendance (kept for the whole live, and after it).

    async def put_question(self, room_id: str, question: Question) -> None: ...

    async def get_question(self, room_id: str, question_id: str) -> Question | None: ...

    async def list_questions(self, room_id: str) -> list[Question]:
        """In the order they were asked."""

    async def toggle_vote(self, room_id: str, question_id: str, identity: str
                          ) -> tuple[Question, bool] | None:
        """Add ``identity``'s vote, or take it back if it had one: the question with its new
        count and whether the identity votes for it now; None for an unknown question."""

    async def voted(self, room_id: str, identity: str) -> set[str]:
        """The ids of the questions ``identity`` votes for."""

    async def add_chat(self, room_id: str, message: ChatMessage) -> None:
        """Keep a message among the room's last :data:`CHAT_HISTORY`, and count it."""

    async def recent_chat(self, room_id: str) -> list[ChatMessage]:
        """The last messages kept, oldest first."""

    async def delete_chat(self, room_id: str, message_id: str) -> bool: ...

    async def chat_count(self, room_id: str) -> int:
        """Messages ever sent in the room (deleted ones included)."""

    async def set_chat_muted(self, room_id: str, identity: str, muted: bool) -> None: ...

    async def chat_muted(self, room_id: str, identity: str) -> bool: ...

    async def note_language(self, room_id: str, language: str) -> None:
        """Someone who reads ``language`` came into the room (constant time)."""

    async def languages_read(self, room_id: str) -> frozenset[str]:
        """The languages of the people who came into the room (a handful, whatever the
        audience): what its messages are translated to."""

    async def visit_started(self, room_id: str, visit: Visit) -> None:
        """``visit.identity`` came in (nothing changes while it has a visit open: a second
        tab, a reconnect before the old connection was noticed gone)."""

    async def visit_ended(self, room_id: str, identity: str, at: float) -> None:
        """Close ``identity``'s open visit, if any."""

    async def visits(self, room_id: str) -> list[Visit]: ...

    # A meeting's moderation (rooms.moderation): one value per meeting.

    async def get_meeting(self, room_id: str) -> MeetingState | None: ...

    async def put_meeting(self, room_id: str, state: MeetingState) -> None: ...

    # Video invitations (rooms.invitations), listed for everyone they concern.

    async def put_invitation(self, invitation: Invitation, previous: Invitation | None = None
                             ) -> bool:
        """Store it new (``previous`` None: only while no invitation has its id; the newest
        are listed first for each of its parties) or as a change of ``previous`` (only while
        that is what is stored). False: it changed meanwhile: read it again and redo."""

    async def get_invitation(self, invitation_id: str) -> Invitation | None: ...

    async def list_invitations(self, identity: str, limit: int) -> list[Invitation]:
        """The last ``limit`` invitations ``identity`` made or got, newest first."""

    # One-to-one messages between identities (rooms.messages), kept for both sides.

    async def add_direct(self, message: DirectMessage) -> None: ...

    async def direct_history(self, a: str, b: str, before: float | None, limit: int
                             ) -> list[DirectMessage]:
        """The last ``limit`` messages between ``a`` and ``b`` sent before ``before`` (all
        when None), oldest first, each marked read as its recipient last read."""

    async def unread_direct(self, reader: str) -> dict[str, int]:
        """Unread messages to ``reader`` by sender."""

    async def mark_direct_read(self, reader: str, sender: str, now: float) -> None:
        """``reader`` read everything ``sender`` sent them until ``now``."""

    # Appointments between identities (rooms.appointments).

    async def write_appointment(self, appointment: Appointment, previous: Appointment | None,
                                *, exclusive: bool) -> AppointmentWrite:
        """Store ``appointment`` if what is stored is still ``previous`` (None: nothing, a new
        one) and, when ``exclusive``, no accepted appointment of either party overlaps it;
        the check and the write are one step."""

    async def get_appointment(self, appointment_id: str) -> Appointment | None: ...

    async def list_appointments(self, identity: str, low: float | None, high: float | None
                                ) -> list[Appointment]:
        """``identity``'s appointments (either side, any status) whose slot meets
        ``[low, high)``, by start."""

    async def due_appointments(self, now: float, until: float) -> list[Appointment]:
        """Accepted appointments whose meeting is not open yet, that start before ``until``
        and have not ended at ``now``, by start."""


class MemoryStore:
    """The embedded default: one node, state in this process."""

    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS,
                 max_age: float = DEFAULT_MAX_AGE) -> None:
        self._rooms: dict[str, Room] = {}
        self._participants: dict[str, dict[str, Participant]] = {}
        self._max_events = max_events
        self._max_age = max_age
        self._events: dict[str, deque[RoomEvent]] = {}
        self._last_seq: dict[str, int] = {}
        self._peaks: dict[str, int] = {}
        self._links: dict[str, LinkRecord] = {}
        self._stage: dict[str, dict[str, StageState]] = {}
        self._questions: dict[str, dict[str, Question]] = {}
        self._votes: dict[tuple[str, str], set[str]] = {}  # (room, question) -> identities
        self._chat: dict[str, deque[ChatMessage]] = {}
        self._chat_counts: dict[str, int] = {}
        self._chat_muted: dict[str, set[str]] = {}
        self._languages: dict[str, set[str]] = {}
        self._visits: dict[str, list[Visit]] = {}
        self._meetings: dict[str, MeetingState] = {}
        self._invitations: dict[str, Invitation] = {}  # oldest first
        self._invitations_of: dict[str, deque[str]] = {}  # identity -> ids, newest first
        self._directs: dict[str, list[DirectMessage]] = {}  # by conversation, oldest first
        self._unread: dict[str, dict[str, int]] = {}  # reader -> sender -> count
        self._read_until: dict[tuple[str, str], float] = {}  # (reader, sender) -> time
        self._appointments: dict[str, Appointment] = {}
        self._agendas: dict[str, set[str]] = {}  # identity -> appointment ids
        # Set and replaced on every append: wakes whoever waits in wait_events.
        self._appended = asyncio.Event()

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None

    async def create_room(self, room: Room) -> None:
        if room.id in self._rooms:
            raise RoomExistsError(room.id)
        self._rooms[room.id] = room
        self._participants[room.id] = {}
        self._events[room.id] = deque(maxlen=self._max_events)
        self._last_seq[room.id] = 0
        self._peaks[room.id] = 0
        self._stage[room.id] = {}
        self._meetings.pop(room.id, None)

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

    async def count_participants(self, room_id: str) -> int:
        return len(self._participants.get(room_id, {}))

    async def page_participants(self, room_id: str, cursor: str | None, limit: int
                                ) -> tuple[list[Participant], str | None]:
        # The cursor is the last one returned, so people leaving never shift the next page.
        members = await self.list_participants(room_id)
        if cursor is not None:
            joined_at, _, identity = cursor.partition(":")
            try:
                last = (float(joined_at), identity)
            except ValueError:
                raise ValidationError("cursor", "not a cursor this server gave") from None
            members = [p for p in members if (p.joined_at, p.identity) > last]
        page = members[:limit]
        if len(members) <= limit:
            return page, None
        return page, f"{page[-1].joined_at!r}:{page[-1].identity}"

    async def record_audience(self, room_id: str, current: int) -> int:
        peak = max(self._peaks.get(room_id, 0), current)
        self._peaks[room_id] = peak
        return peak

    async def append_event(self, room_id: str, event: RoomEvent) -> RoomEvent:
        log = self._events.get(room_id)
        if log is None:
            raise RoomNotFoundError(room_id)
        seq = self._last_seq[room_id] + 1
        self._last_seq[room_id] = seq
        appended = numbered(event, seq)
        log.append(appended)  # the deque's maxlen trims by count
        cutoff = event.at - self._max_age
        while log and log[0].at < cutoff:
            log.popleft()
        woken, self._appended = self._appended, asyncio.Event()
        woken.set()
        return appended

    async def read_events(self, room_id: str, after: int) -> EventRange:
        return self._range(room_id, after)

    def _range(self, room_id: str, after: int) -> EventRange:
        log = self._events.get(room_id, deque())
        last = self._last_seq.get(room_id, 0)
        if not log or log[-1].seq <= after:
            # Nothing newer to give: complete when the asker is up to date (a number beyond
            # ours comes from a room since re-created: it needs a snapshot).
            return EventRange((), last, complete=after == last)
        first = log[0].seq
        skip = max(0, after - first + 1)
        events = tuple(itertools.islice(log, skip, None))
        return EventRange(events, last, complete=first <= after + 1)

    async def wait_events(self, positions: Mapping[str, int], block: float
                          ) -> dict[str, list[RoomEvent]]:
        found = self._new_events(positions)
        if not found and positions:
            waiting = self._appended
            try:
                await asyncio.wait_for(waiting.wait(), block)
            except TimeoutError:
                return {}
            found = self._new_events(positions)
        elif not positions:
            await asyncio.sleep(block)
        return found

    def _new_events(self, positions: Mapping[str, int]) -> dict[str, list[RoomEvent]]:
        found: dict[str, list[RoomEvent]] = {}
        for room_id, after in positions.items():
            if self._last_seq.get(room_id, 0) > after:
                events = self._range(room_id, after).events
                if events:
                    found[room_id] = list(events)
        return found

    async def put_link(self, link: LinkRecord) -> None:
        self._forget_expired_links(link.issued_at)
        self._links[link.token_id] = link

    def _forget_expired_links(self, now: float) -> None:
        for token_id in [k for k, link in self._links.items() if link.expires_at <= now]:
            del self._links[token_id]

    async def list_links(self, room_id: str, now: float) -> list[LinkRecord]:
        return sorted((link for link in self._links.values()
                       if link.room == room_id and link.expires_at > now),
                      key=lambda link: (-link.issued_at, link.token_id))

    async def revoke_link(self, token_id: str, now: float) -> LinkRecord | None:
        link = self._links.get(token_id)
        if link is None or link.expires_at <= now:
            return None
        link = self._links[token_id] = dataclasses.replace(link, revoked=True)
        return link

    async def revoked(self, token_ids: Collection[str]) -> set[str]:
        return {token_id for token_id in token_ids
                if (link := self._links.get(token_id)) is not None and link.revoked}

    async def set_stage(self, room_id: str, identity: str, state: StageState | None) -> None:
        states = self._stage.setdefault(room_id, {})
        if state is None:
            states.pop(identity, None)
        else:
            states[identity] = state

    async def stage_states(self, room_id: str) -> dict[str, StageState]:
        return dict(self._stage.get(room_id, {}))

    async def add_direct(self, message: DirectMessage) -> None:
        messages = self._directs.setdefault(message.conversation, [])
        messages.append(message)
        del messages[:-MAX_DIRECT_MESSAGES]
        unread = self._unread.setdefault(message.recipient, {})
        unread[message.sender] = unread.get(message.sender, 0) + 1

    async def direct_history(self, a: str, b: str, before: float | None, limit: int
                             ) -> list[DirectMessage]:
        found = [m for m in self._directs.get(conversation_key(a, b), [])
                 if before is None or m.at < before][-limit:]
        return [mark_read(m, self._read_until.get((m.recipient, m.sender))) for m in found]

    async def unread_direct(self, reader: str) -> dict[str, int]:
        return {s: n for s, n in self._unread.get(reader, {}).items() if n}

    async def mark_direct_read(self, reader: str, sender: str, now: float) -> None:
        self._unread.get(reader, {}).pop(sender, None)
        self._read_until[(reader, sender)] = now

    async def write_appointment(self, appointment: Appointment, previous: Appointment | None,
                                *, exclusive: bool) -> AppointmentWrite:
        stored = self._appointments.get(appointment.id)
        if (stored.version if stored else None) != (previous.version if previous else None):
            return AppointmentWrite(WriteOutcome.CHANGED)
        if exclusive:
            others = (self._appointments[i] for party in (appointment.organizer.identity,
                                                          appointment.counterpart.identity)
                      for i in self._agendas.get(party, ()))
            found = conflict(appointment, others)
            if found is not None:
                return AppointmentWrite(WriteOutcome.OVERLAP, found)
        self._appointments[appointment.id] = appointment
        for party in (appointment.organizer.identity, appointment.counterpart.identity):
            self._agendas.setdefault(party, set()).add(appointment.id)
        return AppointmentWrite(WriteOutcome.WRITTEN)

    async def get_appointment(self, appointment_id: str) -> Appointment | None:
        return self._appointments.get(appointment_id)

    async def list_appointments(self, identity: str, low: float | None, high: float | None
                                ) -> list[Appointment]:
        found = (self._appointments[i] for i in self._agendas.get(identity, ()))
        return sorted((a for a in found if in_window(a, low, high)),
                      key=lambda a: (a.start, a.id))

    async def due_appointments(self, now: float, until: float) -> list[Appointment]:
        return sorted((a for a in self._appointments.values()
                       if a.awaits_opening and a.start < until and a.end > now),
                      key=lambda a: (a.start, a.id))

    async def get_meeting(self, room_id: str) -> MeetingState | None:
        return self._meetings.get(room_id)

    async def put_invitation(self, invitation: Invitation, previous: Invitation | None = None
                             ) -> bool:
        if self._invitations.get(invitation.id) != previous:
            return False
        new = previous is None
        self._invitations[invitation.id] = invitation
        if len(self._invitations) > MAX_KEPT_INVITATIONS:  # nobody lists the oldest any more
            del self._invitations[next(iter(self._invitations))]
        if new:
            for identity in invitation.parties():
                listed = self._invitations_of.setdefault(identity, deque(
                    maxlen=MAX_LISTED_INVITATIONS))
                listed.appendleft(invitation.id)
        return True

    async def get_invitation(self, invitation_id: str) -> Invitation | None:
        return self._invitations.get(invitation_id)

    async def list_invitations(self, identity: str, limit: int) -> list[Invitation]:
        ids = itertools.islice(self._invitations_of.get(identity, ()), limit)
        return [self._invitations[i] for i in ids if i in self._invitations]

    async def put_meeting(self, room_id: str, state: MeetingState) -> None:
        self._meetings[room_id] = state

    async def put_question(self, room_id: str, question: Question) -> None:
        self._questions.setdefault(room_id, {})[question.id] = question

    async def get_question(self, room_id: str, question_id: str) -> Question | None:
        return self._questions.get(room_id, {}).get(question_id)

    async def list_questions(self, room_id: str) -> list[Question]:
        return sorted(self._questions.get(room_id, {}).values(), key=lambda q: (q.at, q.id))

    async def toggle_vote(self, room_id: str, question_id: str, identity: str
                          ) -> tuple[Question, bool] | None:
        question = self._questions.get(room_id, {}).get(question_id)
        if question is None:
            return None
        voters = self._votes.setdefault((room_id, question_id), set())
        voting = identity not in voters
        if voting:
            voters.add(identity)
        else:
            voters.discard(identity)
        question = dataclasses.replace(question, votes=len(voters))
        self._questions[room_id][question_id] = question
        return question, voting

    async def voted(self, room_id: str, identity: str) -> set[str]:
        return {question_id for (room, question_id), voters in self._votes.items()
                if room == room_id and identity in voters}

    async def add_chat(self, room_id: str, message: ChatMessage) -> None:
        self._chat.setdefault(room_id, deque(maxlen=CHAT_HISTORY)).append(message)
        self._chat_counts[room_id] = self._chat_counts.get(room_id, 0) + 1

    async def recent_chat(self, room_id: str) -> list[ChatMessage]:
        return list(self._chat.get(room_id, ()))

    async def delete_chat(self, room_id: str, message_id: str) -> bool:
        messages = self._chat.get(room_id, deque())
        for message in messages:
            if message.id == message_id:
                messages.remove(message)
                return True
        return False

    async def chat_count(self, room_id: str) -> int:
        return self._chat_counts.get(room_id, 0)

    async def set_chat_muted(self, room_id: str, identity: str, muted: bool) -> None:
        muted_ones = self._chat_muted.setdefault(room_id, set())
        if muted:
            muted_ones.add(identity)
        else:
            muted_ones.discard(identity)

    async def chat_muted(self, room_id: str, identity: str) -> bool:
        return identity in self._chat_muted.get(room_id, set())

    async def note_language(self, room_id: str, language: str) -> None:
        self._languages.setdefault(room_id, set()).add(language)

    async def languages_read(self, room_id: str) -> frozenset[str]:
        return frozenset(self._languages.get(room_id, ()))

    async def visit_started(self, room_id: str, visit: Visit) -> None:
        visits = self._visits.setdefault(room_id, [])
        if not any(v.identity == visit.identity and v.left_at is None for v in visits):
            visits.append(visit)

    async def visit_ended(self, room_id: str, identity: str, at: float) -> None:
        visits = self._visits.get(room_id, [])
        for index, visit in enumerate(visits):
            if visit.identity == identity and visit.left_at is None:
                visits[index] = dataclasses.replace(visit, left_at=max(at, visit.joined_at))

    async def visits(self, room_id: str) -> list[Visit]:
        return list(self._visits.get(room_id, []))
