"""Video invitations over socket.io: the invitee rings on every page, in any room; accepting
opens a private meeting both can join with the links they are given; declined and missed calls
are listed for both; meetings for several, invitations from inside a meeting, guest links."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from socketio_media import Participant, online

from config import load_config
from rooms import Role, RoomKind
from rooms.model import Room, Visibility
from signalling.app import create_app
from signalling.keys import INVITATIONS, STORE, TOKENS

ServerFactory = Callable[..., Awaitable[TestServer]]
ENV = {"FAIRWIRE_API_KEY": "test-api-key-of-some-length", "FAIRWIRE_DATA_DIR": "/tmp/fw"}


@pytest.fixture
async def server(aiohttp_server: ServerFactory) -> TestServer:
    server = await aiohttp_server(create_app(load_config(environ=ENV)))
    store = server.app[STORE]  # type: ignore[index]
    await store.create_room(Room(id="booth", name="Valves, hall 3", kind=RoomKind.LIVESTREAM,
                                 owner="valve-co"))
    await store.create_room(Room(id="lounge", name="Lounge", kind=RoomKind.MEETING))
    return server


def answer_of(invitation: dict[str, Any], identity: str) -> str:
    return next(str(i["answer"]) for i in invitation["to"] if i["identity"] == identity)


def token_of(url: str) -> str:
    return url.split("?token=", 1)[1]


def room_of(url: str) -> str:
    return url.split("/room/", 1)[1].split("?", 1)[0]


async def test_an_accepted_call_opens_a_private_meeting_for_the_two(
    server: TestServer, people: list[Participant]
) -> None:
    buyer = await online(server, people, "buyer-li", Role.BUYER, "booth")
    at_booth = await online(server, people, "valve-co", Role.EXHIBITOR, "booth")
    elsewhere = await online(server, people, "valve-co", Role.EXHIBITOR, "lounge")
    sent = await buyer.sio.call("invite", {"to": [{"identity": "valve-co", "name": "Valve Co"}]})
    invitation = sent["invitation"]
    assert not invitation["meeting"] and invitation["from_room_name"] == "Valves, hall 3"
    for page in (at_booth, elsewhere):  # every page of the invitee rings
        ringing = await page.wait_event("invitation")
        assert answer_of(ringing["invitation"], "valve-co") == "ringing"
        assert ringing["invitation"]["from_name"] == "Buyer-Li"

    accepted = await elsewhere.sio.call("invite-answer", {"id": invitation["id"],
                                                          "accept": True})
    assert answer_of(accepted["invitation"], "valve-co") == "accepted"
    room_id = accepted["invitation"]["room"]
    assert room_of(accepted["url"]) == room_id
    ready = await buyer.wait_event("meeting-ready")
    assert (ready["reason"], ready["id"], ready["room"]) == ("invitation", invitation["id"],
                                                              room_id)
    await at_booth.wait_event("invitation",
                lambda d: answer_of(d["invitation"], "valve-co") == "accepted")
    # Each is given their own link, and only they are.
    own = await at_booth.wait_event("meeting-ready")
    assert own["url"] == accepted["url"] != ready["url"]
    tokens = server.app[TOKENS]  # type: ignore[index]
    await asyncio.sleep(0.2)
    for page, identity in ((buyer, "buyer-li"), (at_booth, "valve-co")):
        urls = [d["url"] for name, d in page.events if name == "meeting-ready"]
        assert [tokens.verify(token_of(u)).identity for u in urls] == [identity]
    room = await server.app[STORE].get_room(room_id)  # type: ignore[index]
    assert room is not None and room.kind == RoomKind.MEETING
    assert room.visibility == Visibility.PRIVATE and room.owner == "buyer-li"

    joined = []
    for identity, role, url in (("buyer-li", Role.BUYER, ready["url"]),
                                ("valve-co", Role.EXHIBITOR, accepted["url"])):
        person = Participant(server, identity, role, room=room_id, token=token_of(url))
        people.append(person)
        joined.append(await person.connect())
    # Both came past the meeting's lobby, and both are in.
    assert all("lobby" not in reply for reply in joined)
    assert {p["identity"] for p in joined[1]["participants"]} == {"buyer-li", "valve-co"}


async def test_declined_and_missed_calls_are_listed_for_both(
    server: TestServer, people: list[Participant]
) -> None:
    server.app[INVITATIONS].ring_seconds = 0.5  # type: ignore[index]
    buyer = await online(server, people, "buyer-li", Role.BUYER, "booth")
    exhibitor = await online(server, people, "valve-co", Role.EXHIBITOR, "booth")
    first = (await buyer.sio.call("invite", {"to": [{"identity": "valve-co"}]}))["invitation"]
    await exhibitor.sio.call("invite-answer", {"id": first["id"], "accept": False})
    told = await buyer.wait_event("invitation",
                       lambda d: answer_of(d["invitation"], "valve-co") == "declined")
    assert told["invitation"]["room"] == ""  # nothing opened

    second = (await buyer.sio.call("invite", {"to": [{"identity": "valve-co"}]}))["invitation"]
    for page in (buyer, exhibitor):  # rang out: both are told
        await page.wait_event("invitation", lambda d: d["invitation"]["id"] == second["id"]
                    and answer_of(d["invitation"], "valve-co") == "missed")
    late = await exhibitor.sio.call("invite-answer", {"id": second["id"], "accept": True})
    assert late["error"]["code"] == "not_ringing"

    offline = (await buyer.sio.call("invite", {"to": [{"identity": "away"}]}))["invitation"]
    cancelled = await buyer.sio.call("invite-cancel", {"id": offline["id"]})
    assert answer_of(cancelled["invitation"], "away") == "cancelled"

    for page, identity in ((buyer, "buyer-li"), (exhibitor, "valve-co")):
        listed = (await page.sio.call("invitations", {}))["invitations"]
        calls = [(i["id"], answer_of(i, "valve-co")) for i in listed
                 if i["id"] in (first["id"], second["id"])]
        assert calls == [(second["id"], "missed"), (first["id"], "declined")], identity
    stranger = await online(server, people, "nosy", Role.BUYER, "booth")
    refused = await stranger.sio.call("invite-answer", {"id": first["id"], "accept": True})
    assert refused["error"]["code"] == "not_found"


async def test_a_meeting_for_several_and_people_asked_in_from_inside_it(
    server: TestServer, people: list[Participant]
) -> None:
    host = await online(server, people, "host-1", Role.HOST, "booth")
    ana = await online(server, people, "ana", Role.BUYER, "booth")
    bo = await online(server, people, "bo", Role.EXHIBITOR, "booth")
    sent = await host.sio.call("invite", {"to": [{"identity": "ana"}, {"identity": "bo"}]})
    invitation = sent["invitation"]
    assert invitation["meeting"] and invitation["room"]
    mine = await host.wait_event("meeting-ready")  # the host goes in at once
    assert room_of(mine["url"]) == invitation["room"]
    accepted = await ana.sio.call("invite-answer", {"id": invitation["id"], "accept": True})
    await bo.sio.call("invite-answer", {"id": invitation["id"], "accept": False})
    in_meeting = Participant(server, "host-1", Role.HOST, room=invitation["room"],
                             token=token_of(mine["url"]))
    people.append(in_meeting)
    await in_meeting.connect()
    ana_in = Participant(server, "ana", Role.BUYER, room=invitation["room"],
                         token=token_of(accepted["url"]))
    people.append(ana_in)
    assert "lobby" not in await ana_in.connect()

    # The owner locks the meeting and asks one more person in: they walk past the lock.
    await in_meeting.sio.call("meeting", {"action": "lock", "on": True})
    cy = await online(server, people, "cy", Role.BUYER, "booth")
    more = (await in_meeting.sio.call("invite", {"to": [{"identity": "cy"}]}))["invitation"]
    assert more["room"] == invitation["room"] and more["meeting"]
    url = (await cy.sio.call("invite-answer", {"id": more["id"], "accept": True}))["url"]
    cy_in = Participant(server, "cy", Role.BUYER, room=invitation["room"], token=token_of(url))
    people.append(cy_in)
    assert "lobby" not in await cy_in.connect()
    # A participant who is not a moderator invites to a call of their own, not into it.
    own = (await ana_in.sio.call("invite", {"to": [{"identity": "bo"}]}))["invitation"]
    assert own["room"] == "" and not own["meeting"]


async def test_guest_links_wait_in_the_lobby_and_only_moderators_make_them(
    server: TestServer, people: list[Participant]
) -> None:
    buyer = await online(server, people, "buyer-li", Role.BUYER, "booth")
    await online(server, people, "valve-co", Role.EXHIBITOR, "booth")
    invitation = (await buyer.sio.call("invite", {"to": [{"identity": "valve-co"}]}))[
        "invitation"]
    await buyer.wait_event("invitation")
    exhibitor = people[1]
    accepted = await exhibitor.sio.call("invite-answer", {"id": invitation["id"],
                                                          "accept": True})
    ready = await buyer.wait_event("meeting-ready")
    owner = Participant(server, "buyer-li", Role.BUYER, room=ready["room"],
                        token=token_of(ready["url"]))
    people.append(owner)
    await owner.connect()
    made = await owner.sio.call("meeting", {"action": "guest-link", "name": "Mr Chen",
                                            "ttl": 3600})
    link = made["link"]
    assert link["name"] == "Mr Chen" and link["identity"].startswith("guest-")
    guest = Participant(server, link["identity"], Role.BUYER, room=ready["room"],
                        token=token_of(link["url"]))
    people.append(guest)
    assert (await guest.connect())["lobby"] is True  # outsiders wait to be admitted
    other = Participant(server, "valve-co", Role.EXHIBITOR, room=ready["room"],
                        token=token_of(accepted["url"]))
    people.append(other)
    await other.connect()
    refused = await other.sio.call("meeting", {"action": "guest-link", "name": "X"})
    assert refused["error"]["code"] == "forbidden"
    bad = await owner.sio.call("meeting", {"action": "guest-link", "name": ""})
    assert bad["error"]["code"] == "invalid_field"
    direct = await owner.sio.call("meeting", {"action": "invite", "identities": ["z"]})
    assert direct["error"]["code"] == "invalid_field"


async def test_guests_floods_and_bad_invitations_are_refused(
    server: TestServer, people: list[Participant]
) -> None:
    buyer = await online(server, people, "buyer-li", Role.BUYER, "booth")
    for body in ({}, {"to": []}, {"to": [{"identity": "buyer-li"}]}, {"to": "x"},
                 {"to": [{"identity": "a"}], "extra": 1}):
        reply = await buyer.sio.call("invite", body)
        assert reply["error"]["code"] == "invalid_field", body
    answers = [await buyer.sio.call("invite", {"to": [{"identity": f"p{n}"}]})
               for n in range(6)]
    assert [("error" in a) for a in answers] == [False] * 5 + [True]
    assert answers[-1]["error"]["code"] == "rate_limited"
    bad = await buyer.sio.call("invite-answer", {"id": answers[0]["invitation"]["id"],
                                                 "accept": "yes"})
    assert bad["error"]["code"] == "invalid_field"


async def test_two_pages_accepting_at_once_open_one_meeting(
    server: TestServer, people: list[Participant]
) -> None:
    buyer = await online(server, people, "buyer-li", Role.BUYER, "booth")
    tab_a = await online(server, people, "valve-co", Role.EXHIBITOR, "booth")
    tab_b = await online(server, people, "valve-co", Role.EXHIBITOR, "lounge")
    invitation = (await buyer.sio.call("invite", {"to": [{"identity": "valve-co"}]}))[
        "invitation"]
    replies = await asyncio.gather(*(
        tab.sio.call("invite-answer", {"id": invitation["id"], "accept": True})
        for tab in (tab_a, tab_b)))
    won = [r for r in replies if "url" in r]
    lost = [r for r in replies if "error" in r]
    assert len(won) == 1 and [r["error"]["code"] for r in lost] == ["not_ringing"]
    await buyer.wait_event("meeting-ready")
    await asyncio.sleep(0.3)
    readies = [d for name, d in buyer.events if name == "meeting-ready"]
    assert [d["room"] for d in readies] == [won[0]["invitation"]["room"]]  # one meeting
