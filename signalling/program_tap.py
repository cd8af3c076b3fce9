"""A livestream's on-air program (or one participant's media) as timed frames, handed to a
writer on a thread of its own.

Recording (:mod:`signalling.recordings`) and live HLS (:mod:`signalling.live_hls`) each hold a
:class:`ProgramTap`: :class:`~recorder.track.RecordedTrack` observers on the on-air publications
follow the program's switches and put their frames on a bounded queue, and the tap's thread
drains it into a :class:`FrameWriter`. So neither a slow disk nor a writer's error ever touches
forwarding: a full queue drops frames and counts them, a failing writer is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from recorder.media import EncodedFrame, TrackFormat
from recorder.timeline import Timeline
from recorder.track import RecordedTrack
from sfu.sessions import Publication, SfuRoom

log = logging.getLogger(__name__)

# Frames waiting for the writer thread: ~20 s of a 30 fps live with its audio. Past it, frames
# are dropped and counted (a disk that cannot keep up must not grow memory without bound).
QUEUE_FRAMES = 2000
_STOP = object()


class FrameWriter(Protocol):
    """What a tap's thread feeds. Both run on that thread, never on the event loop."""

    def write(self, fmt: TrackFormat, frame: EncodedFrame) -> None:
        """One frame; must not raise for bad input (count it)."""

    def close(self) -> None:
        """The program ended: finish up (this may take long, e.g. a replay's finalisation)."""


def on_air(room: SfuRoom) -> dict[str, Publication | None]:
    """The room's program: its on-air video and audio publications."""
    program = room.program.to_dict()
    publications = {p.id: p for p in room.publications}
    return {kind: publications.get(program.get(kind) or "") for kind in ("video", "audio")}


def participant_media(room: SfuRoom, identity: str) -> dict[str, Publication | None]:
    """What one participant sends: the camera (else a screen or an encoder) and microphone."""
    chosen: dict[str, Publication | None] = {"video": None, "audio": None}
    for publication in room.publications:
        if publication.identity != identity or publication.kind not in chosen:
            continue
        current = chosen[publication.kind]
        if current is None or (publication.source in ("camera", "microphone")
                               and current.source not in ("camera", "microphone")):
            chosen[publication.kind] = publication
    return chosen


class ProgramTap:
    """Observers on a room's on-air video and audio, a queue, and a writer thread."""

    def __init__(self, name: str, writer: FrameWriter, *, keyframe_every_ms: float) -> None:
        self.writer = writer
        # Browsers send a keyframe only when asked (Chromium's own interval is minutes long):
        # ask when none came for this long, so that the writer can cut its segments.
        self.keyframe_every_ms = keyframe_every_ms
        self.timeline = Timeline()
        self.frames: queue.Queue[Any] = queue.Queue(QUEUE_FRAMES)
        self.dropped = 0
        self.last_keyframe_ms: float | None = None  # the tap's clock, as the sink saw them
        self.last_video_ms = 0.0
        self.tracks: dict[str, tuple[Publication, RecordedTrack]] = {}
        self.failed: BaseException | None = None
        self._name = name
        self._done = asyncio.get_running_loop().create_future()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _sink(self, fmt: TrackFormat, frame: EncodedFrame) -> None:
        if frame.kind == "video":
            self.last_video_ms = frame.pts_ms
            if frame.keyframe:
                self.last_keyframe_ms = frame.pts_ms
        try:
            self.frames.put_nowait((fmt, frame))
        except queue.Full:
            self.dropped += 1

    def follow(self, room: SfuRoom) -> None:
        """Tap what is on air now: observers move with the program's switches."""
        self.follow_publications(on_air(room))

    def follow_publications(self, selection: Mapping[str, Publication | None]) -> None:
        """Tap these publications (by kind); a kind not selected is no longer tapped."""
        for kind in ("video", "audio"):
            wanted = selection.get(kind)
            current = self.tracks.get(kind)
            if current is not None and current[0] is wanted:
                continue
            if current is not None:
                current[0].stream.remove_observer(current[1])
            if wanted is None:
                self.tracks.pop(kind, None)
                continue
            # One clock per publisher's connection: its audio and video share it.
            source = f"{wanted.identity}:{wanted.publisher.id}"
            if current is not None and current[1].format is not None and (
                    current[1].format.codec.lower() == wanted.codec.lower()):
                track = current[1]
                track.switch_source(source)
            else:
                track = RecordedTrack(wanted.codec, self.timeline, self._sink, source)
            wanted.stream.add_observer(track)
            self.tracks[kind] = (wanted, track)
            if kind == "video":
                wanted.request_keyframe()  # start on a keyframe, not at the next one

    def on_air_codec(self, kind: str) -> str | None:
        current = self.tracks.get(kind)
        return None if current is None else current[0].codec

    def ask_for_keyframes(self) -> None:
        """A keyframe to start on, after a loss, and one per ``keyframe_every_ms``."""
        since = None if self.last_keyframe_ms is None else (
            self.last_video_ms - self.last_keyframe_ms)
        for publication, track in self.tracks.values():
            if track.kind == "video" and (track.needs_keyframe or (
                    since is not None and since >= self.keyframe_every_ms)):
                publication.request_keyframe()

    @property
    def tap_errors(self) -> int:
        return sum(t.errors + t.sink_errors for _, t in self.tracks.values())

    async def stop(self) -> None:
        """Detach, let the thread write every frame before the stop and close the writer."""
        for publication, track in self.tracks.values():
            publication.stream.remove_observer(track)
        self.tracks.clear()
        # The stop mark waits for room in the queue: every frame before it is written.
        await asyncio.to_thread(self.frames.put, _STOP)
        await self._done

    def _run(self) -> None:
        try:
            while True:
                item = self.frames.get()
                if item is _STOP:
                    break
                self.writer.write(*item)
            self.writer.close()
        except BaseException as exc:
            self.failed = exc
            log.exception("%s failed", self._name)
        finally:
            loop = self._done.get_loop()
            with contextlib.suppress(RuntimeError):  # the loop is gone at interpreter exit
                loop.call_soon_threadsafe(_settle, self._done)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
