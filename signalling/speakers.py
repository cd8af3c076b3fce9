"""Who is speaking, told to everyone in the room (issue #10): active speaker detection.

The SFU keeps, for each published audio track, the loudest RFC 6464 level its packets carried
since it was last asked (:meth:`sfu.forwarding.SourceStream.take_audio_level`). Four times a
second this module takes those levels in every room of this node, feeds them to the room's
:class:`rooms.speakers.SpeakerDetector` and, when who speaks changed, emits

- ``speakers`` ``{dominant, speaking}`` to everyone in the room, meetings and livestreams
  alike: ``dominant`` is the identity heard most (or null), ``speaking`` every identity
  speaking now, sorted.

The ``join`` acknowledgement carries ``speakers`` as this node knows them (the node that
forwards the room's media). A microphone its publisher turned off, or that a moderator holds,
is silent; the sound of a shared screen (``screen-audio``) is not a voice. A sample looks once
at each audio track of the room: its work does not grow with the audience.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from rooms import Room
from rooms.speakers import NOBODY, SpeakerDetector, Speakers, SpeakerSettings
from sfu.sessions import Sfu, SfuRoom
from signalling.realtime import Connection, Realtime, socket_room
from signalling.tasks import cancel_and_wait

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 0.25
NOT_A_VOICE = frozenset({"screen-audio"})


def voice_levels(room: SfuRoom) -> dict[str, int | None]:
    """For each identity publishing a voice in ``room``: the loudest level (-dBov) of its
    packets since the last call, None when nothing audible came. Takes the levels."""
    levels: dict[str, int | None] = {}
    for publication in room.publications:
        if publication.kind != "audio" or publication.source in NOT_A_VOICE:
            continue
        stream = publication.stream
        level = stream.take_audio_level()  # taken even when muted: never heard later
        audible = level >= 0 and not publication.muted and not stream.held
        identity = publication.identity
        known = levels.get(identity)
        if audible and (known is None or level < known):
            levels[identity] = level
        elif identity not in levels:
            levels[identity] = None
    return levels


class ActiveSpeakers:
    """Samples every room of this node's SFU and tells each room who speaks, on change."""

    def __init__(self, realtime: Realtime, sfu: Sfu, settings: SpeakerSettings | None = None,
                 interval: float = SAMPLE_SECONDS) -> None:
        self.realtime = realtime
        self.sfu = sfu
        self.settings = settings
        self.interval = interval
        self._detectors: dict[str, SpeakerDetector] = {}
        self._task: asyncio.Task[None] | None = None
        realtime.on_join(self._join_part)

    def speakers(self, room_id: str) -> Speakers:
        detector = self._detectors.get(room_id)
        return NOBODY if detector is None else detector.speakers

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._sample_loop())

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _join_part(self, connection: Connection, room: Room) -> dict[str, Any]:
        return {"speakers": self.speakers(room.id).to_dict()}

    async def _sample_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sample(time.monotonic())
            except Exception:
                log.exception("active speakers: sampling failed")

    async def sample(self, now: float) -> None:
        """One sample of every room (the loop's step; tests call it with their own time)."""
        rooms = self.sfu.rooms
        for room_id in [r for r in self._detectors if r not in rooms]:
            if self._detectors.pop(room_id).speakers != NOBODY:
                await self._tell(room_id, NOBODY)  # the room's media ended
        for room_id, room in list(rooms.items()):
            levels = voice_levels(room)
            detector = self._detectors.get(room_id)
            if detector is None:
                if not levels:
                    continue  # nobody publishes a voice: nothing to follow
                detector = self._detectors[room_id] = SpeakerDetector(self.settings)
            changed = detector.sample(levels, now)
            if changed is not None:
                await self._tell(room_id, changed)
            if not levels and detector.speakers == NOBODY:
                del self._detectors[room_id]

    async def _tell(self, room_id: str, speakers: Speakers) -> None:
        await self.realtime.sio.emit("speakers", speakers.to_dict(), room=socket_room(room_id))
