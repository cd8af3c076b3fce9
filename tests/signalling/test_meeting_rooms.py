"""Meetings the server opens: a private room, a link each, the invited past the lobby."""

from __future__ import annotations

import asyncio

from rooms import MemoryStore, RoomKind, RoomStatus
from rooms.model import Role, Visibility
from rooms.moderation import Actor, Entry, enter
from signalling.auth import TokenIssuer
from signalling.meeting_rooms import Attendee, open_private_meeting

NOW = 1_800_000_000.0


def test_opened_meeting_is_private_and_each_attendee_holds_a_link() -> None:
    store = MemoryStore()
    issuer = TokenIssuer("s" * 32, max_ttl=3600)
    opened = asyncio.run(open_private_meeting(
        store, issuer, name="Ana and Bo", owner=Attendee("ana", "Ana", Role.BUYER, "zh"),
        others=[Attendee("bo", "Bo", Role.EXHIBITOR)], now=NOW))
    room = opened.room
    assert room.kind == RoomKind.MEETING and room.visibility == Visibility.PRIVATE
    assert room.owner == "ana" and room.lobby
    assert room.status == RoomStatus.LIVE and room.started_at == NOW
    ana = issuer.verify(opened.links["ana"].token, now=NOW)
    bo = issuer.verify(opened.links["bo"].token, now=NOW)
    assert (ana.room, ana.role, ana.language) == (room.id, Role.BUYER, "zh")
    assert (bo.room, bo.identity, bo.name) == (room.id, "bo", "Bo")
    assert ana.expires_at == NOW + 3600  # never longer than the issuer allows
    assert opened.url("bo") == f"/room/{room.id}?token={opened.links['bo'].token}"
    links = asyncio.run(store.list_links(room.id, NOW))
    assert {link.identity for link in links} == {"ana", "bo"}
    state = asyncio.run(store.get_meeting(room.id))
    assert state is not None
    # The invited walk in; anyone else waits in the lobby.
    assert enter(state, identity="bo", name="Bo", actor=Actor.PARTICIPANT, now=NOW)[1] \
        == Entry.ENTER
    assert enter(state, identity="cy", name="Cy", actor=Actor.PARTICIPANT, now=NOW)[1] \
        == Entry.WAIT
