"""A room participant in Python: a python-socketio client with an aiortc peer connection to
send (fake camera and microphone) and one to receive, negotiating as the room page does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import socketio
from aiohttp.test_utils import TestServer
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from rooms import Role
from signalling.keys import TOKENS


class Participant:
    """A socket.io client with a sending and a receiving peer connection, like the room page."""

    def __init__(self, server: TestServer, identity: str, role: Role, *, room: str = "fair",
                 token: str | None = None) -> None:
        self.server = server
        self.identity = identity
        self.role = role
        self.room = room
        self.token = token
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.frames = {"audio": 0, "video": 0}
        self.offers = 0
        self.sending: RTCPeerConnection | None = None
        self.receiving: RTCPeerConnection | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.sio.on("*", self._on_event)
        self.sio.on("subscriber-offer", self._on_offer)

    async def _on_event(self, event: str, data: Any) -> None:
        self.events.append((event, data))

    async def _on_offer(self, offer: dict[str, Any]) -> None:
        self.offers += 1
        await self._answer(offer)

    async def connect(self) -> dict[str, Any]:
        token = self.token or self.server.app[TOKENS].issue_link(
            room=self.room, identity=self.identity, name=self.identity.title(),
            role=self.role).token
        await self.sio.connect(str(self.server.make_url("/")), auth={"token": token},
                               transports=["websocket"])
        reply: dict[str, Any] = await self.sio.call("join", {})
        return reply

    async def publish(self, event: str = "publish", microphone: MediaStreamTrack | None = None,
                      **extra: Any) -> dict[str, Any]:
        """Publish a fake camera and ``microphone`` (default: aiortc's silence)."""
        pc = RTCPeerConnection()
        pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        pc.addTransceiver(microphone or AudioStreamTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        reply: dict[str, Any] = await self.sio.call(
            event, {"type": "offer", "sdp": pc.localDescription.sdp, **extra})
        if "sdp" in reply:
            await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
            if self.sending is not None:
                await self.sending.close()
            self.sending = pc
        else:
            await pc.close()
        return reply

    async def subscribe(self, **selection: Any) -> dict[str, Any]:
        reply: dict[str, Any] = await self.sio.call("subscribe", selection)
        if "sdp" in reply:
            await self._answer(reply)
        return reply

    async def _answer(self, offer: dict[str, Any]) -> None:
        if self.receiving is None:
            self.receiving = RTCPeerConnection()
            self.receiving.on("track", self._on_track)
        pc = self.receiving
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        reply = await self.sio.call("subscribe-answer",
                                    {"type": "answer", "sdp": pc.localDescription.sdp})
        assert reply == {}, reply

    def _on_track(self, track: MediaStreamTrack) -> None:
        async def consume() -> None:
            while True:
                try:
                    await track.recv()
                except MediaStreamError:
                    return
                self.frames[track.kind] += 1

        self.tasks.append(asyncio.ensure_future(consume()))

    async def wait_frames(self, kind: str, count: int) -> None:
        start = self.frames[kind]
        async with asyncio.timeout(10):
            while self.frames[kind] < start + count:
                await asyncio.sleep(0.02)

    async def wait_event(self, name: str, matches: Callable[[Any], bool] | None = None) -> Any:
        """The first ``name`` event received (that ``matches``, when given), waiting for it."""
        async with asyncio.timeout(10):
            while True:
                for event, data in self.events:
                    if event == name and (matches is None or matches(data)):
                        return data
                await asyncio.sleep(0.02)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.sio.disconnect()
        for pc in (self.sending, self.receiving):
            if pc is not None:
                await pc.close()


async def online(server: TestServer, people: list[Participant], identity: str, role: Role,
                 room: str = "fair", token: str | None = None) -> Participant:
    """A connected and joined client, closed at the test's end with the ``people`` fixture."""
    person = Participant(server, identity, role, room=room, token=token)
    people.append(person)
    await person.connect()
    return person
