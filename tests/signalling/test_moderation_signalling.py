"""A meeting's moderation over socket.io, enforced by the node: the lobby, a moderator's mute
that stops forwarding (and that the participant cannot lift), removal that bars re-entry, the
lock, the floor's time box and the end; against an in-process server with aiortc participants."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack
from socketio_media import Participant

from config import load_config
from rooms import Role, RoomKind
from rooms.model import Room
from signalling.app import create_app
from signalling.keys import SFU, STORE, TOKENS

ServerFactory = Callable[..., Awaitable[TestServer]]
ENV = {"FAIRWIRE_API_KEY": "test-api-key-of-some-length", "FAIRWIRE_DATA_DIR": "/tmp/fw"}


async def start(aiohttp_server: ServerFactory, owner: str = "",
                lobby: bool = False) -> TestServer:
    server = await aiohttp_server(create_app(load_config(environ=ENV)))
    await server.app[STORE].create_room(Room(  # type: ignore[index]
        id="deal", name="Valve price talk", kind=RoomKind.MEETING, owner=owner, lobby=lobby))
    return server


async def arrive(server: TestServer, people: list[Participant], identity: str,
                 role: Role) -> tuple[Participant, dict[str, Any]]:
    person = Participant(server, identity, role, room="deal")
    people.append(person)
    return person, await person.connect()


async def act(person: Participant, action: str, **data: Any) -> dict[str, Any]:
    reply: dict[str, Any] = await person.sio.call("meeting", {"action": action, **data})
    return reply


def meeting_states(person: Participant) -> list[dict[str, Any]]:
    """The meeting's states as the person's page saw them, newest last (never empty)."""
    return [{"floor": None, "waiting": [], "muted": {}}] + [
        data["meeting"] for event, data in person.events
        if event == "room-event" and data["type"] == "meeting"]


async def eventually(check: Callable[[], bool], seconds: float = 5) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.02)


async def test_newcomers_wait_in_the_lobby_of_a_hosted_meeting_until_admitted(
    aiohttp_server: ServerFactory, people: list[Participant]
) -> None:
    server = await start(aiohttp_server, lobby=True)  # a host runs it, with a lobby
    host, joined = await arrive(server, people, "host-1", Role.HOST)
    assert joined["meeting"]["lobby"] is True and "self" in joined
    buyer, held = await arrive(server, people, "buyer-li", Role.BUYER)
    assert held["lobby"] is True and "self" not in held  # no seat, no media
    assert (await buyer.sio.call("subscribe", {}))["error"]["code"] == "not_joined"
    await eventually(lambda: any(s["waiting"] for s in meeting_states(host)))
    assert meeting_states(host)[-1]["waiting"][0]["identity"] == "buyer-li"
    # Only a moderator admits.
    refused = await act(buyer, "admit", identity="buyer-li")
    assert refused["error"]["code"] == "not_joined"
    assert "meeting" in await act(host, "admit", identity="buyer-li")
    await buyer.wait_event("meeting-admitted")
    seated = await buyer.sio.call("join", {})
    assert "self" in seated and seated["meeting"]["waiting"] == []

    denied, _ = await arrive(server, people, "buyer-wu", Role.BUYER)
    await act(host, "deny", identity="buyer-wu")
    assert (await denied.wait_event("meeting-denied"))["reason"] == "denied"


async def test_a_moderators_mute_stops_forwarding_and_only_a_moderator_lifts_it(
    aiohttp_server: ServerFactory, people: list[Participant]
) -> None:
    server = await start(aiohttp_server, owner="valve-co")
    owner, _ = await arrive(server, people, "valve-co", Role.EXHIBITOR)
    buyer, _ = await arrive(server, people, "buyer-li", Role.BUYER)
    assert "sdp" in await buyer.publish()
    await owner.subscribe()
    await owner.wait_frames("audio", 20)
    await owner.wait_frames("video", 10)

    # A buyer may not mute anyone.
    assert (await act(buyer, "mute", identity="valve-co", kind="audio"))["error"]["code"] == (
        "forbidden")
    state = (await act(owner, "mute", identity="buyer-li", kind="audio"))["meeting"]
    assert state["muted"] == {"buyer-li": ["audio"]}
    sfu_room = server.app[SFU].rooms["deal"]  # type: ignore[index]
    [audio] = [p for p in sfu_room.publications if p.kind == "audio"]
    assert audio.stream.held
    await asyncio.sleep(0.5)  # what was in flight arrives
    before = owner.frames["audio"]
    await asyncio.sleep(1.0)
    assert owner.frames["audio"] == before  # nothing of the buyer's microphone comes through
    await owner.wait_frames("video", 10)  # the camera still does

    refused = await buyer.sio.call("set-muted", {"kind": "audio", "muted": False})
    assert refused["error"]["code"] == "muted_by_moderator"
    asked = await act(buyer, "ask-unmute", kind="audio")
    assert asked["meeting"]["unmute_requests"] == [{"identity": "buyer-li", "kind": "audio"}]
    await act(owner, "allow-unmute", identity="buyer-li", kind="audio")
    assert not audio.stream.held
    await owner.wait_frames("audio", 20)
    assert await buyer.sio.call("set-muted", {"kind": "audio", "muted": False}) == {}

    # Video: held, then resumed on a keyframe asked for at once.
    await act(owner, "mute", identity="buyer-li", kind="video")
    await asyncio.sleep(0.5)
    before = owner.frames["video"]
    await asyncio.sleep(1.0)
    assert owner.frames["video"] == before
    await act(owner, "allow-unmute", identity="buyer-li", kind="video")
    await owner.wait_frames("video", 10)


async def test_a_removed_participant_is_cut_off_and_cannot_come_back(
    aiohttp_server: ServerFactory, people: list[Participant]
) -> None:
    server = await start(aiohttp_server, owner="valve-co")
    owner, _ = await arrive(server, people, "valve-co", Role.EXHIBITOR)
    buyer, _ = await arrive(server, people, "buyer-li", Role.BUYER)
    assert "sdp" in await buyer.publish()
    sfu_room = server.app[SFU].rooms["deal"]  # type: ignore[index]
    await eventually(lambda: any(p.identity == "buyer-li" for p in sfu_room.publications))
    await act(owner, "remove", identity="buyer-li")
    assert (await buyer.wait_event("meeting-left"))["reason"] == "removed"
    await eventually(lambda: not any(p.identity == "buyer-li" for p in sfu_room.publications),
                     seconds=1)  # media stop within 1 s
    again = Participant(server, "buyer-li", Role.BUYER, room="deal")
    people.append(again)
    assert (await again.connect())["error"]["code"] == "removed"


async def test_a_locked_meeting_refuses_newcomers_and_the_floor_times_out(
    aiohttp_server: ServerFactory, people: list[Participant]
) -> None:
    server = await start(aiohttp_server, owner="valve-co")
    owner, _ = await arrive(server, people, "valve-co", Role.EXHIBITOR)
    buyer, _ = await arrive(server, people, "buyer-li", Role.BUYER)
    await act(owner, "lock", on=True)
    late = Participant(server, "buyer-wu", Role.BUYER, room="deal")
    people.append(late)
    assert (await late.connect())["error"]["code"] == "meeting_locked"

    assert "sdp" in await buyer.publish()
    await act(buyer, "raise-hand")
    state = (await act(owner, "give-floor", seconds=1))["meeting"]
    assert state["floor"]["identity"] == "buyer-li" and state["hands"] == []
    await eventually(lambda: meeting_states(owner)[-1]["floor"] is not None)
    await eventually(lambda: meeting_states(owner)[-1]["floor"] is None, seconds=3)
    assert meeting_states(owner)[-1]["muted"] == {"buyer-li": ["audio"]}
    sfu_room = server.app[SFU].rooms["deal"]  # type: ignore[index]
    assert all(p.stream.held for p in sfu_room.publications
               if p.identity == "buyer-li" and p.kind == "audio")


async def test_the_end_ends_the_meeting_for_everyone(
    aiohttp_server: ServerFactory, people: list[Participant]
) -> None:
    server = await start(aiohttp_server, owner="valve-co")
    owner, _ = await arrive(server, people, "valve-co", Role.EXHIBITOR)
    buyer, _ = await arrive(server, people, "buyer-li", Role.BUYER)
    assert (await act(buyer, "end"))["error"]["code"] == "forbidden"
    await act(owner, "end")
    await eventually(lambda: any(
        event == "room-event" and data["type"] == "room-status"
        and data["room"]["status"] == "ended" for event, data in buyer.events))
    room = await server.app[STORE].get_room("deal")  # type: ignore[index]
    assert room is not None and room.status.value == "ended"


async def test_an_encoder_without_a_page_is_muted_and_removed_too(
    aiohttp_server: ServerFactory, people: list[Participant]
) -> None:
    server = await start(aiohttp_server, owner="valve-co")
    owner, _ = await arrive(server, people, "valve-co", Role.EXHIBITOR)
    token = server.app[TOKENS].issue_link(  # type: ignore[index]
        room="deal", identity="line-camera", name="Line camera", role=Role.EXHIBITOR).token
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        async with ClientSession() as http, http.post(
                str(server.make_url("/whip/deal")), data=pc.localDescription.sdp,
                headers={"Content-Type": "application/sdp",
                         "Authorization": f"Bearer {token}"}) as response:
            assert response.status == 201, await response.text()
            await pc.setRemoteDescription(RTCSessionDescription(await response.text(), "answer"))
        sfu_room = server.app[SFU].rooms["deal"]  # type: ignore[index]
        await eventually(lambda: any(p.identity == "line-camera" for p in sfu_room.publications))
        state = (await act(owner, "mute", identity="line-camera", kind="audio"))["meeting"]
        assert state["muted"] == {"line-camera": ["audio"]}
        assert all(p.stream.held for p in sfu_room.publications
                   if p.identity == "line-camera" and p.kind == "audio")
        await act(owner, "remove", identity="line-camera")
        await eventually(lambda: not any(p.identity == "line-camera"
                                         for p in sfu_room.publications), seconds=1)
    finally:
        await pc.close()
