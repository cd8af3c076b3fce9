"""Live HLS on this node (issue #12): H.264 livestreams for audiences too large for WebRTC.

While a livestream is live and its program's video is H.264, a :class:`~signalling.program_tap.
ProgramTap` feeds a :class:`~recorder.hls.LiveHlsWriter` (remux only: fMP4 segments of ~2 s,
``EXT-X-PROGRAM-DATE-TIME``), in ``{data_dir}/live-hls/``. The tap asks the publisher for a
keyframe when none came for 2 s, so that segments can be cut at 2 s (OBS and hardware encoders
send one every 2 s by themselves). When the live ends the playlist gets ``EXT-X-ENDLIST`` and
stays a little while for players to finish; the replay takes over. Live HLS files are the
node's working set, not kept: a node that starts removes what a previous run left.

HTTP, with the same access rules as watching the live (a token of the room with the
``subscribe`` grant, or the API key):

- ``GET /hls/{room}/index.m3u8`` -> ``302`` to the playlist's signed address,
  ``/hls/{room}/s/{expires}.{signature}/index.m3u8``, whose segments are signed alike, so a
  player or a CDN needs no token after that. Expiries are rounded up to the hour: everyone
  sent within that hour shares the same URLs, and a CDN one copy of each segment. ``404
  hls_not_on_air`` while there is no H.264 live to serve.
- The signed files: the playlist cached for about one segment (``max-age=1``), segments and
  init sections immutable. A tampered or expired signature -> ``403``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import hdrs, web

from recorder.hls import PLAYLIST, LiveHlsWriter
from rooms import RoomKind, RoomStatus, Store
from sfu.sessions import Sfu, SfuRoom
from signalling.auth import ForbiddenError
from signalling.callers import caller_of, require_credentials, room_seen_by
from signalling.errors import ApiError
from signalling.files import UrlSigner, serve_file
from signalling.keys import LIVE_HLS, SETTINGS, STORE
from signalling.program_tap import ProgramTap
from signalling.tasks import cancel_and_wait

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

RECONCILE_SECONDS = 1.0
KEYFRAME_EVERY_MS = 2000
# An ended live's playlist (with EXT-X-ENDLIST) stays this long, for players still behind.
LINGER_SECONDS = 120.0
SIGNATURE_GRANULARITY_S = 3600
_FILE = re.compile(r"index\.m3u8|p\d{1,6}-(?:init\.mp4|\d{5,9}\.m4s)")


@dataclass(slots=True)
class LiveHlsStream:
    room_id: str
    public: bool
    directory: Path
    writer: LiveHlsWriter
    tap: ProgramTap
    ended_at: float | None = None
    counted: dict[str, int] = field(default_factory=dict)


class LiveHls:
    """This node's live HLS streams: which lives get one, and their files."""

    def __init__(self, root: Path, store: Store, sfu: Sfu, signer: UrlSigner) -> None:
        self.root = root
        self.store = store
        self.sfu = sfu
        self.signer = signer
        self.streams: dict[str, LiveHlsStream] = {}  # on air or lingering, by room
        self._task: asyncio.Task[None] | None = None
        self._busy = asyncio.Lock()
        self.started = 0
        sfu.on_program(self._program_changed)

    async def start(self) -> None:
        # Whatever a previous run left is no one's: its lives are over.
        await asyncio.to_thread(shutil.rmtree, self.root, True)
        self.root.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.ensure_future(self._reconcile_loop())

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        for stream in list(self.streams.values()):
            if stream.ended_at is None:
                await self._end(stream, time.time())

    async def _program_changed(self, room: SfuRoom) -> None:
        stream = self.streams.get(room.id)
        if stream is not None and stream.ended_at is None:
            stream.tap.follow(room)

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_SECONDS)
            try:
                await self.reconcile(time.time())
            except Exception:
                log.exception("live HLS: reconcile failed")

    def _h264_on_air(self, room_id: str) -> SfuRoom | None:
        sfu_room = self.sfu.rooms.get(room_id)
        if sfu_room is None:
            return None
        video = sfu_room.program.to_dict().get("video")
        for publication in sfu_room.publications:
            if publication.id == video and publication.codec.lower() == "h264":
                return sfu_room
        return None

    async def reconcile(self, now: float) -> None:
        """Start HLS for H.264 lives on air, end it for the others, forget lingering ones."""
        async with self._busy:
            for room_id in set(self.sfu.rooms) | set(self.streams):
                stream = self.streams.get(room_id)
                if stream is not None and stream.ended_at is not None:
                    if now - stream.ended_at >= LINGER_SECONDS:
                        del self.streams[room_id]
                        await asyncio.to_thread(shutil.rmtree, stream.directory, True)
                        continue
                room = await self.store.get_room(room_id)
                on_air = self._h264_on_air(room_id)
                wanted = (room is not None and room.kind == RoomKind.LIVESTREAM
                          and room.status == RoomStatus.LIVE and on_air is not None)
                running = stream is not None and stream.ended_at is None
                if wanted and not running and room is not None and on_air is not None:
                    if stream is not None:  # the previous one's files make way
                        await asyncio.to_thread(shutil.rmtree, stream.directory, True)
                    self._start(room_id, room.public, on_air, now)
                elif not wanted and running and stream is not None:
                    await self._end(stream, now)
                elif running and stream is not None:
                    stream.tap.ask_for_keyframes()

    def _start(self, room_id: str, public: bool, sfu_room: SfuRoom, now: float) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        directory = self.root / f"{room_id}.{stamp}"
        writer = LiveHlsWriter(directory)
        tap = ProgramTap(f"live HLS {room_id}", writer, keyframe_every_ms=KEYFRAME_EVERY_MS)
        stream = LiveHlsStream(room_id, public, directory, writer, tap)
        self.streams[room_id] = stream
        tap.follow(sfu_room)
        self.started += 1
        log.info("live HLS %s: on air", room_id)

    async def _end(self, stream: LiveHlsStream, now: float) -> None:
        stream.ended_at = now
        await stream.tap.stop()  # the writer's close lists the last segment, then ENDLIST
        log.info("live HLS %s: ended after %d segments", stream.room_id,
                 stream.writer.stats.segments)

    def stats(self) -> dict[str, int]:
        """For /metrics (``fairwire_live_hls{what=...}``)."""
        totals = {"streams": sum(s.ended_at is None for s in self.streams.values()),
                  "started": self.started, "segments": 0, "frames_written": 0,
                  "frames_rejected": 0, "frames_dropped": 0, "write_errors": 0}
        for stream in self.streams.values():
            stats = stream.writer.stats
            totals["segments"] += stats.segments
            totals["frames_written"] += stats.frames_written
            totals["frames_rejected"] += stats.frames_rejected
            totals["frames_dropped"] += stream.tap.dropped
            totals["write_errors"] += stats.write_errors
        return totals

    def signed_playlist(self, room_id: str, now: float) -> str:
        return f"/hls/{room_id}/s/{self.signer.token(room_id, now)}/{PLAYLIST}"


# -- HTTP ---------------------------------------------------------------------------------------


@routes.get("/hls/{room_id}/index.m3u8")
async def hls_entry(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    require_credentials(caller)
    room = await room_seen_by(request, caller)
    if not caller.may_watch(room.id):
        raise ForbiddenError("no 'subscribe' grant in this room", "missing_grant")
    live_hls = request.app[LIVE_HLS]
    stream = live_hls.streams.get(room.id)
    if stream is None or not (stream.directory / PLAYLIST).exists():
        raise ApiError(404, "this room has no HLS on air: it is not live, not yet, or its "
                       "video is not H.264", "hls_not_on_air")
    location = live_hls.signed_playlist(room.id, time.time())
    return web.Response(status=302, headers={hdrs.LOCATION: location,
                                             hdrs.CACHE_CONTROL: "no-store",
                                             hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: "*"})


@routes.get("/hls/{room_id}/s/{signature}/{name}")
async def hls_file(request: web.Request) -> web.StreamResponse:
    room_id = request.match_info["room_id"]
    live_hls = request.app[LIVE_HLS]
    live_hls.signer.check(room_id, request.match_info["signature"], time.time())
    name = request.match_info["name"]
    stream = live_hls.streams.get(room_id)
    path = None if stream is None or not _FILE.fullmatch(name) else stream.directory / name
    try:
        size = path.stat().st_size if path is not None else -1
        source = path.open("rb") if path is not None else None
    except FileNotFoundError:
        source = None
    if stream is None or source is None:
        raise ApiError(404, f"no live HLS file {name!r} in room {room_id!r}", "hls_not_found")
    scope = "public" if stream.public else "private"
    # Segments never change once listed; the playlist changes with every segment (~2 s).
    cache = (f"{scope}, max-age=1" if name == PLAYLIST
             else f"{scope}, max-age=86400, immutable")
    return await serve_file(request, name, size, source, cache)


def setup(app: web.Application, sfu: Sfu) -> None:
    settings = app[SETTINGS]
    signer = UrlSigner(settings.jwt_secret, "live-hls", settings.replay_url_ttl,
                       granularity=SIGNATURE_GRANULARITY_S)
    app[LIVE_HLS] = LiveHls(Path(settings.data_dir) / "live-hls", app[STORE], sfu, signer)
    app.add_routes(routes)
    app.cleanup_ctx.append(_lifecycle)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    live_hls = app[LIVE_HLS]
    await live_hls.start()
    yield
    await live_hls.close()
