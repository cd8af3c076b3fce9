"""The web pages people open: the fair's room list (``/``), its livestream schedule
(``/schedule``), a room (``/room/{room_id}``), the organisers' console (``/console``) and the
replays (``/replays``, ``/replay/{replay_id}``).

Pages are static files in ``signalling/web/``; everything dynamic is fetched by their scripts
(``GET /api/rooms``, socket.io). Third-party browser code comes from npm with a lock file
(``signalling/web/package-lock.json``, installed by ``npm ci``); nothing is vendored in git.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from signalling.errors import Handler, error_response

WEB_DIR = Path(__file__).resolve().parent / "web"
# Browser code from npm, served at /static/vendor/{name}.
VENDOR = {
    "socket.io.min.js": WEB_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js",
    # The light build: HLS with fMP4 and MPEG-TS, without subtitles, EME or alternate audio.
    "hls.min.js": WEB_DIR / "node_modules" / "hls.js" / "dist" / "hls.light.min.js",
}

# Only our own scripts and styles; media from getUserMedia / peer connections are blob-free
# MediaStreams (srcObject) and need no media-src entry.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)

PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

routes = web.RouteTableDef()


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / name, headers=PAGE_HEADERS)


@routes.get("/")
async def index(request: web.Request) -> web.FileResponse:
    return _page("index.html")


@routes.get("/console")
async def console(request: web.Request) -> web.FileResponse:
    # The operator's key or a host token is entered on the page and kept in its session.
    return _page("console.html")


@routes.get("/schedule")
async def schedule(request: web.Request) -> web.FileResponse:
    # The livestreams by day and category; schedule.js fetches GET /api/rooms?from=&to=.
    return _page("schedule.html")


@routes.get("/room/{room_id}")
async def room(request: web.Request) -> web.FileResponse:
    # The room id and the token are read by room.js; an unknown room is reported there.
    return _page("room.html")


@routes.get("/replays")
async def replays(request: web.Request) -> web.FileResponse:
    # The replays one's link (or the console's credential) opens; replay.js lists them.
    return _page("replay.html")


@routes.get("/replay/{replay_id}")
async def replay(request: web.Request) -> web.FileResponse:
    return _page("replay.html")


async def vendor_file(request: web.Request) -> web.StreamResponse:
    path = VENDOR.get(request.match_info["name"])
    if path is None:
        return error_response(404, "not_found", "no such file")
    if not path.is_file():
        return error_response(503, "assets_missing", "run make run / npm ci in signalling/web")
    return web.FileResponse(
        path,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@web.middleware
async def _static_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-cache")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def add_static(app: web.Application) -> None:
    """Serve ``signalling/web/`` at ``/static/`` and the npm packages' files from node_modules."""
    # The specific route first: the static resource below would otherwise claim the prefix.
    app.router.add_get("/static/vendor/{name}", vendor_file)
    app.router.add_static("/static/", WEB_DIR, follow_symlinks=False, append_version=False)
    app.middlewares.append(_static_headers)
