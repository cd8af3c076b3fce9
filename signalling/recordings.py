"""Recording livestreams on this node, and their replays over HTTP (issue #12).

A livestream whose ``record`` flag is on (the default for livestreams) is recorded while its
status is ``live``: its program's on-air video and audio, as packets (:mod:`recorder`), never
transcoded. One :class:`LiveRecording` per live: :class:`~recorder.track.RecordedTrack`
observers on the on-air publications follow the program's switches, hand their frames to a
bounded queue, and a thread of its own muxes them into segments, so neither a slow disk nor a
recorder error ever touches forwarding (both are counted). When the live ends the thread
finalises the replay. At start the node finalises what a crash left unfinished.

HTTP (replays need the room's ``subscribe`` grant, or the API key):

- ``GET /api/replays?room=&owner=&category=&limit=&cursor=`` -> ``{replays, next_cursor}``,
  newest first; ``GET /api/replays/{id}`` -> one replay. Their ``playback_url``,
  ``hls_url`` and ``thumbnail_url`` are signed for a while (``FAIRWIRE_REPLAY_URL_TTL``), so
  a ``<video>`` element, a player or a CDN fetches them without a token.
- ``GET /replays/{id}/s/{expires}.{signature}/{file}``: the files, with byte ranges (RFC 9110
  §14: one range -> ``206`` and ``Content-Range``; unsatisfiable -> ``416``). The signature
  is in the path so that an HLS playlist's relative URLs carry it to its segments. A tampered
  or expired signature -> ``403``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from recorder.media import EncodedFrame, TrackFormat
from recorder.replay import ReplayInfo, load_replay, recover
from recorder.replay import finalise as finalise_replay
from recorder.segments import SegmentWriter
from recorder.storage import (
    InvalidPath,
    LocalStorage,
    Storage,
    StorageError,
    check_recording_id,
)
from rooms import Room, RoomKind, RoomStatus, Store, ValidationError
from sfu.sessions import Sfu, SfuRoom
from signalling.callers import caller_of, require_credentials
from signalling.errors import ApiError
from signalling.files import UrlSigner, serve_file
from signalling.keys import RECORDINGS, SETTINGS, STORE
from signalling.program_tap import ProgramTap, participant_media
from signalling.tasks import cancel_and_wait

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

META = "recording.json"
RECONCILE_SECONDS = 1.0
# Ask for a keyframe when none came for this long, so that segments stay within 6 s (a crash
# loses one). Not more often: a recorder's request would hold a new viewer's back (PLI throttle).
KEYFRAME_EVERY_MS = 5000
PAGE_LIMIT, MAX_PAGE_LIMIT = 20, 100
# What is recorded: (room id, PROGRAM) for a livestream, (room id, identity) in a meeting.
RecordingKey = tuple[str, str]
PROGRAM = ""
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class RecordingMeta:
    """What the replay API tells besides the media: the room as it was at go-live."""

    id: str
    room: str
    title: str
    category: str
    owner: str | None
    started_at: float
    ended_at: float | None = None
    kind: str = "livestream"
    # A meeting is recorded per participant (no mixing: nothing is transcoded).
    participant: str | None = None
    participant_name: str | None = None
    owner_name: str | None = None

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "room": self.room, "title": self.title,
                           "category": self.category, "owner": self.owner,
                           "started_at": self.started_at, "ended_at": self.ended_at,
                           "kind": self.kind, "participant": self.participant,
                           "participant_name": self.participant_name,
                           "owner_name": self.owner_name})

    @classmethod
    def from_json(cls, text: str) -> RecordingMeta:
        raw = json.loads(text)
        return cls(id=str(raw["id"]), room=str(raw["room"]), title=str(raw["title"]),
                   category=str(raw.get("category") or ""), owner=raw.get("owner"),
                   started_at=float(raw["started_at"]),
                   ended_at=None if raw.get("ended_at") is None else float(raw["ended_at"]),
                   kind=str(raw.get("kind") or "livestream"), participant=raw.get("participant"),
                   participant_name=raw.get("participant_name"),
                   owner_name=raw.get("owner_name"))


def recording_id(room_id: str, started_at: float, participant: str | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started_at))
    who = "" if participant is None else _UNSAFE.sub("_", participant)[:40] + "."
    return f"{room_id}.{who}{stamp}.{int(started_at * 1000) % 1000:03d}"


class LiveRecording:
    """One live being recorded: a program tap whose writer makes segments, then the replay."""

    def __init__(self, storage: Storage, meta: RecordingMeta) -> None:
        self.storage = storage
        self.meta = meta
        self.disk_full_told = False
        self.segments = SegmentWriter(storage, meta.id)
        self.replay: ReplayInfo | None = None
        storage.write_bytes(meta.id, META, meta.to_json().encode())
        self.tap = ProgramTap(f"recorder {meta.id}", self, keyframe_every_ms=KEYFRAME_EVERY_MS)

    # FrameWriter, on the tap's thread

    def write(self, fmt: TrackFormat, frame: EncodedFrame) -> None:
        self.segments.write(fmt, frame)

    def close(self) -> None:
        self.segments.close()
        self.storage.write_bytes(self.meta.id, META, self.meta.to_json().encode())
        # Should this fail, the next start's recovery finalises the replay.
        self.replay = finalise_replay(self.storage, self.meta.id)

    # on the event loop

    def counters(self) -> dict[str, int]:
        stats = self.segments.stats
        return {"frames_written": stats.frames_written, "frames_dropped": self.tap.dropped,
                "frames_rejected": stats.frames_rejected, "write_errors": stats.write_errors,
                "segments": stats.segments, "bytes": stats.bytes,
                "recorder_errors": self.tap.tap_errors}

    @property
    def disk_full(self) -> bool:
        return self.segments.stats.disk_full

    async def stop(self, ended_at: float) -> ReplayInfo | None:
        self.meta = RecordingMeta(**{**_fields(self.meta), "ended_at": ended_at})
        await self.tap.stop()
        return self.replay


def _fields(meta: RecordingMeta) -> dict[str, Any]:
    return {name: getattr(meta, name) for name in RecordingMeta.__slots__}


def read_meta(storage: Storage, replay_id: str) -> RecordingMeta | None:
    try:
        if not storage.exists(replay_id, META):
            return None
        return RecordingMeta.from_json(storage.read(replay_id, META).decode())
    except (InvalidPath, StorageError, ValueError, KeyError):
        return None


def prune(storage: Storage, older_than_s: float, now: float) -> list[str]:
    """Delete the finished replays whose live ended more than ``older_than_s`` ago; return
    their ids. Recordings still being written (no replay yet) are never touched."""
    deleted = []
    for replay_id in storage.list_recordings():
        meta = read_meta(storage, replay_id)
        info = load_replay(storage, replay_id) if meta is not None else None
        if meta is None or info is None:
            continue
        ended = meta.ended_at if meta.ended_at is not None else meta.started_at + info.duration_s
        if now - ended > older_than_s:
            storage.delete_recording(replay_id)
            deleted.append(replay_id)
    return deleted


_AGE = re.compile(r"(\d+)([smhd])")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``3600s`` -> seconds."""
    match = _AGE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an age: {text!r} (say 30d, 12h, 90m or 3600s)")
    return int(match.group(1)) * _AGE_UNITS[match.group(2)]


class Recordings:
    """This node's recorder: which lives it records, and the replays in its storage."""

    def __init__(self, storage: Storage, store: Store, sfu: Sfu, secret: str,
                 url_ttl: int) -> None:
        self.storage = storage
        self.store = store
        self.sfu = sfu
        self.signer = UrlSigner(secret, "replay", url_ttl)
        self.live: dict[RecordingKey, LiveRecording] = {}
        self._task: asyncio.Task[None] | None = None
        self._recovery: asyncio.Future[None] | None = None
        self._busy = asyncio.Lock()
        self.replays_finished = 0
        self._finished_counters: dict[str, int] = {}  # of the recordings already stopped
        sfu.on_program(self._program_changed)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        # In the background: a long show's finalisation must not hold the node's start up.
        self._recovery = asyncio.ensure_future(self._recover())
        self._task = asyncio.ensure_future(self._reconcile_loop())

    async def _recover(self) -> None:
        try:
            active = {recording.meta.id for recording in self.live.values()}
            recovered = await asyncio.to_thread(recover, self.storage, active=active)
        except Exception:
            log.exception("recorder: recovery of unfinished recordings failed")
            return
        for info in recovered:
            log.info("replay %s recovered after a stop: %.1f s", info.id, info.duration_s)

    async def close(self) -> None:
        if self._recovery is not None:
            await self._recovery  # a thread: it cannot be cancelled, only waited for
        await cancel_and_wait(self._task)
        self._task = None
        for key in list(self.live):
            await self._stop(key)

    # -- what to record ---------------------------------------------------------------------

    async def _program_changed(self, room: SfuRoom) -> None:
        recording = self.live.get((room.id, PROGRAM))
        if recording is not None:
            recording.tap.follow(room)

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_SECONDS)
            try:
                await self.reconcile()
            except Exception:
                log.exception("recorder: reconcile failed")

    async def _wanted(self) -> dict[RecordingKey, tuple[Room, SfuRoom | None]]:
        """What should be recorded now. A livestream's program from go-live to its end (a
        publisher's short drop leaves a gap, not a second replay); in a meeting whose record
        flag is on, each participant's camera and microphone while they publish."""
        wanted: dict[RecordingKey, tuple[Room, SfuRoom | None]] = {}
        for room_id in set(self.sfu.rooms) | {key[0] for key in self.live}:
            room = await self.store.get_room(room_id)
            if room is None or not room.record or room.status == RoomStatus.ENDED:
                continue
            sfu_room = self.sfu.rooms.get(room_id)
            if room.kind == RoomKind.LIVESTREAM:
                if room.status == RoomStatus.LIVE and (
                        (room_id, PROGRAM) in self.live or (sfu_room is not None
                        and any(sfu_room.program.to_dict().values()))):
                    wanted[(room_id, PROGRAM)] = (room, sfu_room)
            elif sfu_room is not None:
                for identity in {p.identity for p in sfu_room.publications}:
                    wanted[(room_id, identity)] = (room, sfu_room)
        return wanted

    async def reconcile(self) -> None:
        """Start recording what should be, stop what should not; keyframe requests."""
        async with self._busy:
            wanted = await self._wanted()
            for key in [key for key in self.live if key not in wanted]:
                await self._stop(key)
            for key, (room, sfu_room) in wanted.items():
                recording = self.live.get(key)
                if recording is None:
                    if sfu_room is not None:
                        await self._start(key, room, sfu_room)
                    continue
                if key[1] != PROGRAM and sfu_room is not None:
                    # A participant's tracks come and go (a microphone added, a camera
                    # replaced): the tap follows what they send now.
                    recording.tap.follow_publications(participant_media(sfu_room, key[1]))
                recording.tap.ask_for_keyframes()
                if recording.disk_full and not recording.disk_full_told:
                    recording.disk_full_told = True
                    log.error("recording %s stopped: the disk is full (the live goes on)",
                              recording.meta.id)

    async def _name_of(self, room_id: str, identity: str) -> str | None:
        participant = await self.store.get_participant(room_id, identity) if identity else None
        return participant.name if participant is not None and participant.name else None

    async def _start(self, key: RecordingKey, room: Room, sfu_room: SfuRoom) -> None:
        now = time.time()
        participant = key[1] or None
        meta = RecordingMeta(
            recording_id(room.id, now, participant), room.id, room.name, room.category,
            room.owner, now, kind=room.kind.value, participant=participant,
            participant_name=await self._name_of(room.id, key[1]),
            owner_name=await self._name_of(room.id, room.owner))
        if key in self.live:  # started meanwhile (the lookups above yield)
            return
        recording = self.live[key] = LiveRecording(self.storage, meta)
        if participant is None:
            recording.tap.follow(sfu_room)
        else:
            recording.tap.follow_publications(participant_media(sfu_room, participant))
        log.info("recording %s: %s", room.id, meta.id)

    def stats(self) -> dict[str, int]:
        """For /metrics: lives being recorded, those stopped by a full disk, and the writers'
        counters since the node started."""
        totals = dict(self._finished_counters)
        for recording in self.live.values():
            for name, value in recording.counters().items():
                totals[name] = totals.get(name, 0) + value
        return {"recording": len(self.live),
                "disk_full": sum(r.disk_full for r in self.live.values()),
                "replays_finished": self.replays_finished, **totals}

    async def _stop(self, key: RecordingKey) -> None:
        # Out of `live` first: a program change while it finishes must not attach observers.
        recording = self.live.pop(key)
        replay = await recording.stop(time.time())
        for name, value in recording.counters().items():
            self._finished_counters[name] = self._finished_counters.get(name, 0) + value
        self.replays_finished += 1
        if replay is not None:
            log.info("replay %s: %.1f s, %d bytes", replay.id, replay.duration_s, replay.size)

    # -- replays ----------------------------------------------------------------------------

    def finished(self) -> list[tuple[RecordingMeta, ReplayInfo]]:
        out = []
        for replay_id in self.storage.list_recordings():
            meta = read_meta(self.storage, replay_id)
            info = load_replay(self.storage, replay_id) if meta is not None else None
            if meta is not None and info is not None and info.playback is not None:
                out.append((meta, info))
        out.sort(key=lambda pair: pair[0].started_at, reverse=True)
        return out

    def signed_prefix(self, replay_id: str, now: float) -> str:
        return f"/replays/{replay_id}/s/{self.signer.token(replay_id, now)}/"


# -- HTTP ---------------------------------------------------------------------------------------


def replay_body(recordings: Recordings, meta: RecordingMeta, info: ReplayInfo,
                now: float) -> dict[str, Any]:
    prefix = recordings.signed_prefix(meta.id, now)
    return {
        "id": meta.id,
        "room": meta.room,
        "title": meta.title,
        "category": meta.category,
        "owner": meta.owner,
        "owner_name": meta.owner_name,
        "kind": meta.kind,
        "participant": meta.participant,
        "participant_name": meta.participant_name,
        "start": meta.started_at,
        "end": meta.ended_at if meta.ended_at is not None else meta.started_at + info.duration_s,
        "duration": info.duration_s,
        "tracks": [{"kind": t.kind, "codec": t.codec, "width": t.width, "height": t.height}
                   for t in info.tracks],
        "size": info.size,
        "playback_url": prefix + info.playback if info.playback else None,
        "hls_url": prefix + info.hls if info.hls else None,
        "thumbnail_url": prefix + info.thumbnail if info.thumbnail else None,
        "url_expires_at": recordings.signer.expiry(now),
    }


@routes.get("/api/replays")
async def list_replays(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    require_credentials(caller)
    query = request.query
    unknown = set(query) - {"room", "owner", "category", "limit", "cursor"}
    if unknown:
        raise ValidationError(sorted(unknown)[0], "unknown query parameter")
    try:
        limit = int(query.get("limit", PAGE_LIMIT))
        offset = int(query.get("cursor", "0"))
    except ValueError:
        raise ValidationError("limit", "limit and cursor are whole numbers") from None
    if not 1 <= limit <= MAX_PAGE_LIMIT or offset < 0:
        raise ValidationError("limit", f"limit 1..{MAX_PAGE_LIMIT}, cursor from a previous page")
    recordings = request.app[RECORDINGS]
    found = [
        (meta, info) for meta, info in await asyncio.to_thread(recordings.finished)
        if caller.may_watch(meta.room)
        and query.get("room", meta.room) == meta.room
        and query.get("owner", meta.owner) == meta.owner
        and query.get("category", meta.category) == meta.category
    ]
    page = found[offset:offset + limit]
    now = time.time()
    more = offset + limit < len(found)
    return web.json_response({
        "replays": [replay_body(recordings, meta, info, now) for meta, info in page],
        "next_cursor": str(offset + limit) if more else None,
    })


def _replay_id(request: web.Request) -> str:
    replay_id = request.match_info["replay_id"]
    try:
        return check_recording_id(replay_id)
    except InvalidPath:
        raise ApiError(404, f"no replay {replay_id!r}", "replay_not_found") from None


@routes.get("/api/replays/{replay_id}")
async def get_replay(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    require_credentials(caller)
    replay_id = _replay_id(request)
    recordings = request.app[RECORDINGS]
    meta = read_meta(recordings.storage, replay_id)
    info = load_replay(recordings.storage, replay_id) if meta is not None else None
    # Someone else's replay is not disclosed: 404 as for one that does not exist.
    if meta is None or info is None or info.playback is None or not caller.may_watch(
            meta.room):
        raise ApiError(404, f"no replay {replay_id!r}", "replay_not_found")
    return web.json_response(replay_body(recordings, meta, info, time.time()))


@routes.get("/replays/{replay_id}/s/{signature}/{name:.+}")
async def replay_file(request: web.Request) -> web.StreamResponse:
    replay_id = _replay_id(request)
    recordings = request.app[RECORDINGS]
    recordings.signer.check(replay_id, request.match_info["signature"], time.time())
    name = request.match_info["name"]
    info = load_replay(recordings.storage, replay_id)
    if info is None or name not in info.files:
        raise ApiError(404, f"no file {name!r} in replay {replay_id!r}", "replay_not_found")
    storage = recordings.storage
    # A finished replay never changes: caches and CDNs keep it as long as the link lives.
    return await serve_file(request, name, storage.size(replay_id, name),
                            storage.open_read(replay_id, name),
                            "private, max-age=3600, immutable")


def setup(app: web.Application, sfu: Sfu) -> None:
    settings = app[SETTINGS]
    storage = LocalStorage.in_data_dir(settings.data_dir)
    app[RECORDINGS] = Recordings(storage, app[STORE], sfu, settings.jwt_secret,
                                 settings.replay_url_ttl)
    app.add_routes(routes)
    app.cleanup_ctx.append(_lifecycle)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    recordings = app[RECORDINGS]
    await recordings.start()
    yield
    await recordings.close()

