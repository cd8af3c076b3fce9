"""Appointments against an in-process server: REST proposals and answers told to both sides'
connections over socket.io, 409 for overlaps, the agenda in a time zone and as iCalendar, and
the scheduler (its clock passed in) reminding both and opening their meeting once, also with
two nodes on one Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from socketio_media import Participant, online

from config import load_config
from rooms import Role, RoomKind
from rooms.model import Room, Visibility
from signalling.app import create_app
from signalling.keys import APPOINTMENT_SCHEDULER, STORE, TOKENS

ServerFactory = Callable[..., Awaitable[TestServer]]
API_KEY = "test-api-key-of-some-length"
ENV = {"FAIRWIRE_API_KEY": API_KEY, "FAIRWIRE_DATA_DIR": "/tmp/fw"}
HOUR = 3600


async def start(aiohttp_server: ServerFactory, **env: str) -> TestServer:
    server = await aiohttp_server(create_app(load_config(environ=ENV | env)))
    store = server.app[STORE]  # type: ignore[index]
    if await store.get_room("booth") is None:
        await store.create_room(Room(id="booth", name="Booth", kind=RoomKind.LIVESTREAM,
                                     owner="valve-co"))
    return server


@pytest.fixture
async def server(aiohttp_server: ServerFactory) -> TestServer:
    return await start(aiohttp_server)


def link(server: TestServer, identity: str, role: Role, name: str | None = None,
         guest: bool = False) -> str:
    return server.app[TOKENS].issue_link(  # type: ignore[index]
        room="booth", identity=identity, name=name or identity.title(), role=role,
        guest=guest, language="zh" if role == Role.BUYER else "en").token


async def at_booth(server: TestServer, people: list[Participant], identity: str,
                   role: Role) -> Participant:
    return await online(server, people, identity, role, "booth", link(server, identity, role))


async def call(server: TestServer, method: str, path: str, token: str | None,
               body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        ClientSession() as http,
        http.request(method, server.make_url(path), headers=headers, json=body) as response,
    ):
        data = (await response.json() if response.content_type == "application/json"
                else await response.text())
        return response.status, data


def slot(hours_ahead: float, hours: float = 1.0) -> dict[str, int]:
    start = int(time.time() + hours_ahead * HOUR)
    return {"start": start, "end": start + int(hours * HOUR)}


async def book(server: TestServer, buyer: str, exhibitor: str, hours_ahead: float,
               title: str = "GX-40 pricing") -> dict[str, Any]:
    status, offer = await call(server, "POST", "/api/appointments", buyer, {
        "with": "valve-co", "with_name": "Valve Co", "title": title, **slot(hours_ahead)})
    assert status == 201, offer
    status, answer = await call(server, "POST", f"/api/appointments/{offer['id']}/accept",
                                exhibitor)
    assert status == 200, answer
    return dict(answer)


def received(person: Participant, event: str) -> list[Any]:
    return [data for name, data in person.events if name == event]


async def wait_for(person: Participant, event: str, count: int) -> list[Any]:
    async with asyncio.timeout(10):
        while len(received(person, event)) < count:
            await asyncio.sleep(0.02)
    return received(person, event)


async def test_a_proposal_accepted_is_told_to_both_and_on_both_agendas(
    server: TestServer, people: list[Participant]
) -> None:
    buyer_page = await at_booth(server, people, "buyer-li", Role.BUYER)
    exhibitor_page = await at_booth(server, people, "valve-co", Role.EXHIBITOR)
    buyer, exhibitor = link(server, "buyer-li", Role.BUYER, "Li Wei"), link(
        server, "valve-co", Role.EXHIBITOR, "Valve Co Ltd")
    when = slot(2)
    status, offer = await call(server, "POST", "/api/appointments", buyer, {
        "with": "valve-co", "with_name": "Valve Co", "title": "GX-40 pricing", **when})
    assert status == 201, offer
    assert (offer["status"], offer["start"], offer["end"]) == ("proposed", when["start"],
                                                              when["end"])
    assert offer["organizer"] == {"identity": "buyer-li", "name": "Li Wei"}
    for page in (buyer_page, exhibitor_page):
        told = await wait_for(page, "appointment", 1)
        assert told[0]["appointment"]["id"] == offer["id"]

    status, answer = await call(server, "POST", f"/api/appointments/{offer['id']}/accept",
                                exhibitor)
    assert status == 200 and answer["status"] == "accepted", answer
    assert answer["counterpart"] == {"identity": "valve-co", "name": "Valve Co Ltd"}
    for page in (buyer_page, exhibitor_page):
        told = await wait_for(page, "appointment", 2)
        assert told[1]["appointment"]["status"] == "accepted"

    status, agenda = await call(server, "GET", "/api/agenda?tz=Asia/Shanghai", exhibitor)
    assert status == 200, agenda
    assert agenda["time_zone"] == "Asia/Shanghai"
    [entry] = agenda["appointments"]
    assert entry["start"] == when["start"] and entry["start_local"].endswith("+08:00")
    assert entry["with"] == {"identity": "buyer-li", "name": "Li Wei"}
    assert (entry["side"], entry["actions"]) == ("counterpart", ["cancel"])
    status, mine = await call(server, "GET", "/api/agenda?tz=UTC", buyer)
    assert [e["start_local"][-6:] for e in mine["appointments"]] == ["+00:00"]
    assert mine["appointments"][0]["side"] == "organizer"
    status, one = await call(server, "GET", f"/api/appointments/{offer['id']}", buyer)
    assert status == 200 and one == answer


async def test_overlapping_proposals_and_accepts_are_refused_with_409(
    server: TestServer,
) -> None:
    buyer, exhibitor = link(server, "buyer-li", Role.BUYER), link(server, "valve-co",
                                                                  Role.EXHIBITOR)
    other_buyer = link(server, "buyer-wu", Role.BUYER)
    first = await book(server, buyer, exhibitor, 3, title="Secret pricing talk")
    # Another buyer asks for the exhibitor's busy hour: refused, without a word of whose
    # appointment is in the way or what it is about.
    half = {"start": first["start"] + 1800, "end": first["end"] + 1800}
    status, refused = await call(server, "POST", "/api/appointments", other_buyer, {
        "with": "valve-co", "with_name": "Valve Co", "title": "Samples", **half})
    assert status == 409 and refused["error"]["code"] == "overlap", refused
    message = refused["error"]["message"]
    assert "Valve Co" in message and "Secret" not in message and "buyer-li" not in message
    # The buyer's own calendar is theirs to hear about.
    status, own = await call(server, "POST", "/api/appointments", buyer, {
        "with": "pump-co", "title": "Pumps", **half})
    assert status == 409 and "Secret pricing talk" in own["error"]["message"], own
    # Back to back is fine.
    after = {"start": first["end"], "end": first["end"] + HOUR}
    status, _ = await call(server, "POST", "/api/appointments", other_buyer, {
        "with": "valve-co", "title": "Samples", **after})
    assert status == 201

    # Two proposals for one hour are fine until one is accepted: then the other is not.
    p1 = await call(server, "POST", "/api/appointments", buyer, {
        "with": "pump-co", "title": "Pumps", **slot(10)})
    p2 = await call(server, "POST", "/api/appointments", other_buyer, {
        "with": "pump-co", "title": "Pumps too", **slot(10.5)})
    assert p1[0] == p2[0] == 201
    pump = link(server, "pump-co", Role.EXHIBITOR)
    assert (await call(server, "POST", f"/api/appointments/{p1[1]['id']}/accept", pump))[0] \
        == 200
    status, late = await call(server, "POST", f"/api/appointments/{p2[1]['id']}/accept", pump)
    assert status == 409 and late["error"]["code"] == "overlap", late
    status, still = await call(server, "GET", f"/api/appointments/{p2[1]['id']}", pump)
    assert still["status"] == "proposed"


async def test_a_declined_proposal_is_listed_for_both_and_answering_twice_is_refused(
    server: TestServer,
) -> None:
    buyer, exhibitor = link(server, "buyer-li", Role.BUYER), link(server, "valve-co",
                                                                  Role.EXHIBITOR)
    status, offer = await call(server, "POST", "/api/appointments", buyer, {
        "with": "valve-co", "title": "Pricing", **slot(4)})
    path = f"/api/appointments/{offer['id']}"
    status, refused = await call(server, "POST", path + "/accept", buyer)
    assert status == 403 and refused["error"]["code"] == "not_counterpart"
    status, no = await call(server, "POST", path + "/decline", exhibitor)
    assert status == 200 and no["status"] == "declined"
    for token in (buyer, exhibitor):
        status, agenda = await call(server, "GET", "/api/agenda", token)
        assert [(e["id"], e["status"], e["actions"]) for e in agenda["appointments"]] == [
            (offer["id"], "declined", [])]
    for action, code in (("accept", "already_answered"), ("decline", "already_answered"),
                         ("cancel", "already_answered")):
        status, twice = await call(server, "POST", f"{path}/{action}", exhibitor)
        assert (status, twice["error"]["code"]) == (409, code), (action, twice)
    # Cancelled by either side, once.
    status, other = await call(server, "POST", "/api/appointments", buyer, {
        "with": "valve-co", "title": "Pricing", **slot(6)})
    other_path = f"/api/appointments/{other['id']}"
    assert (await call(server, "POST", other_path + "/cancel", exhibitor))[1]["cancelled_by"] \
        == "valve-co"
    status, again = await call(server, "POST", other_path + "/cancel", buyer)
    assert (status, again["error"]["code"]) == (409, "appointment_cancelled")


async def test_who_may_book_and_what_bad_input_gets(server: TestServer) -> None:
    buyer = link(server, "buyer-li", Role.BUYER)
    body = {"with": "valve-co", "title": "Pricing", **slot(2)}
    assert (await call(server, "POST", "/api/appointments", None, body))[1]["error"][
        "code"] == "missing_credentials"
    for token in (API_KEY, link(server, "guest-1", Role.VISITOR, guest=True)):
        status, refused = await call(server, "POST", "/api/appointments", token, body)
        assert (status, refused["error"]["code"]) == (403, "forbidden")
    for bad, field in (({**body, "with": "buyer-li"}, "with"),
                       ({**body, "end": body["start"]}, "end"),
                       ({**body, "start": 1_000, "end": 5_000}, "start"),
                       ({**body, "title": ""}, "title"),
                       ({**body, "colour": "red"}, "colour"),
                       ({k: v for k, v in body.items() if k != "title"}, "title")):
        status, refused = await call(server, "POST", "/api/appointments", buyer, bad)
        assert (status, refused["error"]["code"]) == (400, "invalid_field"), refused
        assert refused["error"]["message"].startswith(field), refused
    status, refused = await call(server, "GET", "/api/agenda?tz=Mars/Base", buyer)
    assert status == 400 and refused["error"]["message"].startswith("tz")
    status, refused = await call(server, "GET", "/api/agenda?from=10&to=5", buyer)
    assert status == 400 and refused["error"]["message"].startswith("to")
    # Someone else's appointment does not exist for a third person.
    status, offer = await call(server, "POST", "/api/appointments", buyer, body)
    stranger = link(server, "buyer-wu", Role.BUYER)
    for method, path in (("GET", ""), ("POST", "/accept"), ("POST", "/cancel")):
        status, hidden = await call(server, method, f"/api/appointments/{offer['id']}{path}",
                                    stranger)
        assert (status, hidden["error"]["code"]) == (404, "appointment_not_found")
    assert (await call(server, "GET", "/api/appointments/x'; DROP", buyer))[0] == 404
    # A flood of proposals is cut short.
    codes = [(await call(server, "POST", "/api/appointments", buyer, {
        **body, **slot(20 + n)}))[0] for n in range(12)]
    assert codes[:9] == [201] * 9 and codes[-1] == 429, codes


def unfold(text: str) -> list[str]:
    """RFC 5545 §3.1: CRLF line ends; CRLF then a space continues the line."""
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return text.replace("\r\n ", "").split("\r\n")[:-1]


def events(text: str) -> list[dict[str, str]]:
    """The VEVENTs of a calendar, each as property name -> value (parameters dropped)."""
    found: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in unfold(text):
        name, _, value = line.partition(":")
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT" and current is not None:
            found.append(current)
            current = None
        elif current is not None and name not in current:
            current[name.split(";")[0]] = value
    return found


async def test_the_agenda_as_an_icalendar_file_with_a_token_in_the_query(
    server: TestServer,
) -> None:
    buyer, exhibitor = link(server, "buyer-li", Role.BUYER), link(server, "valve-co",
                                                                  Role.EXHIBITOR)
    accepted = await book(server, buyer, exhibitor, 2, title="Pricing, MOQ; delivery")
    status, tentative = await call(server, "POST", "/api/appointments", buyer, {
        "with": "valve-co", "title": "Factory visit", **slot(30)})
    async with (
        ClientSession() as http,
        http.get(server.make_url(f"/api/agenda.ics?token={exhibitor}")) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
        assert "attachment" in response.headers["Content-Disposition"]
        text = (await response.read()).decode()
    lines = unfold(text)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert "VERSION:2.0" in lines
    first, second = events(text)
    start = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(accepted["start"]))
    assert first["UID"] == f"appointment-{accepted['id']}@fairwire"
    assert (first["DTSTART"], first["STATUS"]) == (start, "CONFIRMED")
    assert first["SUMMARY"] == "Pricing\\, MOQ\\; delivery"
    assert first["DESCRIPTION"].startswith("Meeting with Buyer-Li (buyer-li)")
    assert (second["UID"], second["STATUS"]) == (f"appointment-{tentative['id']}@fairwire",
                                                 "TENTATIVE")
    # One appointment alone; the header works too; without a token it does not.
    status, one = await call(server, "GET", f"/api/agenda.ics?id={tentative['id']}", buyer)
    assert status == 200 and [e["SUMMARY"] for e in events(one)] == ["Factory visit"]
    status, refused = await call(server, "GET", "/api/agenda.ics?token=not-a-token", None)
    assert (status, refused["error"]["code"]) == (401, "invalid_token")
    status, refused = await call(server, "GET", f"/api/agenda.ics?token={API_KEY}", None)
    assert status == 401  # the API key never in a URL
    assert (await call(server, "GET", "/api/agenda.ics", None))[0] == 401


async def test_the_scheduler_reminds_both_and_opens_their_meeting_once(
    server: TestServer, people: list[Participant]
) -> None:
    buyer_page = await at_booth(server, people, "buyer-li", Role.BUYER)
    exhibitor_page = await at_booth(server, people, "valve-co", Role.EXHIBITOR)
    buyer, exhibitor = link(server, "buyer-li", Role.BUYER), link(server, "valve-co",
                                                                  Role.EXHIBITOR)
    scheduler = server.app[APPOINTMENT_SCHEDULER]  # type: ignore[index]
    await scheduler.close()  # its clock is this test's: ticks at the times asked
    # Soon, so that the meeting's links (issued as of the tick) are valid already.
    appointment = await book(server, buyer, exhibitor, 20 / HOUR)
    begins = appointment["start"]

    await scheduler.tick(begins - 400)  # before the reminder's lead: nothing
    await scheduler.tick(begins - 60)
    await scheduler.tick(begins - 50)
    for page in (buyer_page, exhibitor_page):
        [reminder] = await wait_for(page, "appointment-reminder", 1)
        assert (reminder["appointment"]["id"], reminder["starts_in"]) == (appointment["id"], 60)

    await asyncio.gather(scheduler.tick(begins), scheduler.tick(begins))
    await scheduler.tick(begins + 10)
    ready = {}
    for identity, page in (("buyer-li", buyer_page), ("valve-co", exhibitor_page)):
        [told] = await wait_for(page, "meeting-ready", 1)
        assert (told["reason"], told["id"]) == ("appointment", appointment["id"])
        ready[identity] = told
    await asyncio.sleep(0.2)
    assert len(received(buyer_page, "meeting-ready")) == 1  # once, however many ticks
    assert len(received(buyer_page, "appointment-reminder")) == 1
    room_id = ready["buyer-li"]["room"]
    assert ready["valve-co"]["room"] == room_id
    room = await server.app[STORE].get_room(room_id)  # type: ignore[index]
    assert room.visibility == Visibility.PRIVATE and room.owner == "buyer-li"
    assert (room.scheduled_start, room.name) == (begins, "GX-40 pricing")

    # Each got their own link, which lets them into the meeting past its lobby.
    tokens = server.app[TOKENS]  # type: ignore[index]
    for identity, told in ready.items():
        url = urlparse(told["url"])
        assert url.path == f"/room/{room_id}"
        claims = tokens.verify(parse_qs(url.query)["token"][0])
        assert (claims.identity, claims.room) == (identity, room_id)
        assert claims.role == (Role.BUYER if identity == "buyer-li" else Role.EXHIBITOR)
        guest = Participant(server, identity, claims.role, room=room_id,
                            token=parse_qs(url.query)["token"][0])
        people.append(guest)
        joined = await guest.connect()
        assert "lobby" not in joined and joined["self"]["identity"] == identity, joined
    status, agenda = await call(server, "GET", "/api/agenda", buyer)
    assert agenda["appointments"][0]["room"] == room_id
    assert agenda["appointments"][0]["actions"] == ["join", "cancel"]
    # A page that missed meeting-ready asks for its link.
    status, again = await call(server, "POST", f"/api/appointments/{appointment['id']}/join",
                               exhibitor)
    assert status == 200 and again["room"] == room_id
    assert tokens.verify(parse_qs(urlparse(again["url"]).query)["token"][0]).identity == \
        "valve-co"
    status, hidden = await call(server, "POST", f"/api/appointments/{appointment['id']}/join",
                                link(server, "buyer-wu", Role.BUYER))
    assert (status, hidden["error"]["code"]) == (404, "appointment_not_found")


@pytest.mark.redis
async def test_two_nodes_open_the_meeting_once(
    aiohttp_server: ServerFactory, redis_store_url: str, people: list[Participant]
) -> None:
    node_a = await start(aiohttp_server, FAIRWIRE_REDIS_URL=redis_store_url,
                         FAIRWIRE_NODE_ID="node-a")
    node_b = await start(aiohttp_server, FAIRWIRE_REDIS_URL=redis_store_url,
                         FAIRWIRE_NODE_ID="node-b")
    for node in (node_a, node_b):
        await node.app[APPOINTMENT_SCHEDULER].close()  # type: ignore[index]
    buyer_page = await at_booth(node_a, people, "buyer-li", Role.BUYER)
    exhibitor_page = await at_booth(node_b, people, "valve-co", Role.EXHIBITOR)
    appointment = await book(node_a, link(node_a, "buyer-li", Role.BUYER),
                             link(node_b, "valve-co", Role.EXHIBITOR), 20 / HOUR)
    begins = appointment["start"]
    await asyncio.gather(*(node[APPOINTMENT_SCHEDULER].tick(at)  # type: ignore[index]
                           for node in (node_a.app, node_b.app)
                           for at in (begins - 60, begins - 59)))
    await asyncio.gather(*(node[APPOINTMENT_SCHEDULER].tick(at)  # type: ignore[index]
                           for node in (node_a.app, node_b.app) for at in (begins, begins + 1)))
    for page in (buyer_page, exhibitor_page):
        await wait_for(page, "meeting-ready", 1)
    await asyncio.sleep(0.3)
    for page in (buyer_page, exhibitor_page):
        assert len(received(page, "appointment-reminder")) == 1
        assert len(received(page, "meeting-ready")) == 1
    meetings = await node_a.app[STORE].list_rooms(kind=RoomKind.MEETING)  # type: ignore[index]
    assert [m.id for m in meetings] == [received(buyer_page, "meeting-ready")[0]["room"]]
