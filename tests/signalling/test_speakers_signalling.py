"""Who speaks, over socket.io: an aiortc participant whose microphone carries the RFC 6464
level (as browsers send it) is named in a ``speakers`` event to everyone in the room once it
speaks, and the event clears when it falls silent or a moderator mutes it; in meetings and
livestreams alike, against an in-process server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from socketio_media import Participant
from tone import ToneTrack

from config import load_config
from rooms import Role, RoomKind
from rooms.model import Room
from signalling.app import create_app
from signalling.keys import STORE

ServerFactory = Callable[..., Awaitable[TestServer]]
ENV = {"FAIRWIRE_API_KEY": "test-api-key-of-some-length", "FAIRWIRE_DATA_DIR": "/tmp/fw"}
NOBODY = {"dominant": None, "speaking": []}


@pytest.fixture
async def people() -> AsyncIterator[list[Participant]]:
    made: list[Participant] = []
    yield made
    for person in made:
        await person.close()


async def start(aiohttp_server: ServerFactory, kind: RoomKind) -> TestServer:
    server = await aiohttp_server(create_app(load_config(environ=ENV)))
    await server.app[STORE].create_room(Room(  # type: ignore[index]
        id="talk", name="Valve price talk", kind=kind, owner="valve-co"))
    return server


async def arrive(server: TestServer, people: list[Participant], identity: str, role: Role
                 ) -> tuple[Participant, dict[str, Any]]:
    person = Participant(server, identity, role, room="talk")
    people.append(person)
    return person, await person.connect()


def speakers_seen(person: Participant) -> list[dict[str, Any]]:
    return [data for event, data in person.events if event == "speakers"]


async def next_speakers(person: Participant, expected: dict[str, Any], seconds: float = 5
                        ) -> float:
    """Wait for a ``speakers`` event equal to ``expected``; the seconds it took."""
    loop = asyncio.get_running_loop()
    started, seen = loop.time(), len(speakers_seen(person))
    async with asyncio.timeout(seconds):
        while expected not in speakers_seen(person)[seen:]:
            await asyncio.sleep(0.02)
    return loop.time() - started


@pytest.mark.parametrize(("kind", "speaker_role", "listener_role"), [
    (RoomKind.MEETING, Role.EXHIBITOR, Role.BUYER),
    (RoomKind.LIVESTREAM, Role.EXHIBITOR, Role.VISITOR),  # the audience hears who speaks
])
async def test_a_speaker_is_named_to_the_room_and_silence_clears_it(
    aiohttp_server: ServerFactory, people: list[Participant], kind: RoomKind,
    speaker_role: Role, listener_role: Role,
) -> None:
    server = await start(aiohttp_server, kind)
    speaker, joined = await arrive(server, people, "valve-co", speaker_role)
    assert joined["speakers"] == NOBODY
    listener, _ = await arrive(server, people, "buyer-li", listener_role)
    microphone = ToneTrack(speaking=False)
    assert "sdp" in await speaker.publish(microphone=microphone)
    await asyncio.sleep(1.0)
    assert speakers_seen(listener) == []  # silence is nobody speaking: nothing to tell

    microphone.speaking = True
    took = await next_speakers(listener, {"dominant": "valve-co", "speaking": ["valve-co"]})
    assert took < 2.0  # about 0.5 s of voice, sampled every 0.25 s
    assert speakers_seen(speaker)[-1]["dominant"] == "valve-co"  # its own page too
    late, rejoined = await arrive(server, people, "buyer-wu", listener_role)
    assert rejoined["speakers"] == {"dominant": "valve-co", "speaking": ["valve-co"]}

    microphone.speaking = False
    took = await next_speakers(listener, NOBODY)
    assert 1.2 <= took <= 2.5  # 1.5 s after the last voice
    assert speakers_seen(listener) == [  # one event per change, nothing in between
        {"dominant": "valve-co", "speaking": ["valve-co"]}, NOBODY]
    assert speakers_seen(late) == [NOBODY]


async def test_a_moderators_mute_silences_a_speaker(
    aiohttp_server: ServerFactory, people: list[Participant]
) -> None:
    server = await start(aiohttp_server, RoomKind.MEETING)
    owner, _ = await arrive(server, people, "valve-co", Role.EXHIBITOR)
    buyer, _ = await arrive(server, people, "buyer-li", Role.BUYER)
    assert "sdp" in await buyer.publish(microphone=ToneTrack(speaking=True))
    await next_speakers(owner, {"dominant": "buyer-li", "speaking": ["buyer-li"]})
    muted = await owner.sio.call("meeting", {"action": "mute", "identity": "buyer-li",
                                             "kind": "audio"})
    assert muted["meeting"]["muted"] == {"buyer-li": ["audio"]}
    # The tone goes on, but nobody hears it: it is not speaking any more.
    assert await next_speakers(owner, NOBODY) <= 2.5
