"""Private meetings the server opens on people's behalf (issue #10): an accepted invitation, a
multi-party meeting someone starts, an appointment at its time.

The room is a private meeting owned by whoever started it; everyone asked in gets a link of
their own (kept as a :class:`rooms.access.LinkRecord`, so the console lists and revokes it like
any other) and is admitted past the lobby from the start. The lobby is on for everyone else: a
guest link's holder, or anyone the operator sends later, waits until a moderator admits them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rooms import Room, RoomKind, RoomStatus, Store
from rooms.access import LinkRecord
from rooms.model import Role, Visibility, new_room_id
from rooms.moderation import initial_state
from signalling.auth import IssuedToken, TokenIssuer

# A meeting link outlives a long negotiation and the day's follow-ups, not the show.
MEETING_LINK_TTL = 12 * 3600


@dataclass(frozen=True, slots=True)
class Attendee:
    identity: str
    name: str
    role: Role
    language: str = "en"


@dataclass(frozen=True, slots=True)
class OpenedMeeting:
    room: Room
    links: Mapping[str, IssuedToken]  # identity -> that attendee's link

    def url(self, identity: str) -> str:
        """The room page address for ``identity``: what their page opens."""
        return room_url(self.room.id, self.links[identity].token)


def room_url(room_id: str, token: str) -> str:
    return f"/room/{room_id}?token={token}"


async def open_private_meeting(
    store: Store, issuer: TokenIssuer, *, name: str, owner: Attendee,
    others: Iterable[Attendee], now: float, ttl: int = MEETING_LINK_TTL,
    scheduled_start: float | None = None, scheduled_end: float | None = None,
    expected: Iterable[str] = (),
) -> OpenedMeeting:
    """Create the meeting room and a link for each attendee, all admitted past the lobby, as
    are the ``expected`` (invited, their links to come when they accept)."""
    attendees = {owner.identity: owner}
    for attendee in others:
        attendees.setdefault(attendee.identity, attendee)
    # Opened when its people are about to come in: it is on from the start.
    room = Room(id=new_room_id(), name=name, kind=RoomKind.MEETING, owner=owner.identity,
                visibility=Visibility.PRIVATE, lobby=True, created_at=now,
                status=RoomStatus.LIVE, started_at=now,
                scheduled_start=scheduled_start, scheduled_end=scheduled_end)
    await store.create_room(room)
    state = initial_state(lobby=True)
    await store.put_meeting(room.id, dataclasses.replace(
        state, admitted=frozenset(attendees) | frozenset(expected)))
    ttl = min(ttl, issuer.max_ttl)
    links = {identity: await issue_meeting_link(store, issuer, room, attendee, ttl, now)
             for identity, attendee in attendees.items()}
    return OpenedMeeting(room, links)


async def issue_meeting_link(store: Store, issuer: TokenIssuer, room: Room, attendee: Attendee,
                             ttl: int, now: float) -> IssuedToken:
    issued = issuer.issue_link(room=room.id, identity=attendee.identity, name=attendee.name,
                               role=attendee.role, ttl=ttl, language=attendee.language, now=now)
    await store.put_link(LinkRecord(
        token_id=issued.token_id, room=room.id, identity=attendee.identity, name=attendee.name,
        role=attendee.role, issued_at=issued.issued_at, expires_at=issued.expires_at))
    return issued
