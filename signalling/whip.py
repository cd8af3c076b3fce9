"""WHIP ingest (RFC 9725) and WHEP playback (draft-ietf-wish-whep) over the SFU.

Call :func:`setup` from ``create_app``: it adds the routes, the session registry, CORS headers on
every ``/whip/`` and ``/whep/`` response, and closes every session at shutdown.

- ``POST /whip/{room}`` (``publish`` grant) and ``POST /whep/{room}[?publisher=<identity>]``
  (``subscribe`` grant) take an ``application/sdp`` offer and answer ``201 Created`` with the SDP
  answer (all our candidates: aiortc gathers before answering, §4.3.2), ``Location`` of the
  session (relative unless ``public_url`` is set: RFC 9110 §10.2.2 allows it), a strong ``ETag``
  for the ICE session (§4.3.1), ``Accept-Patch`` and one ``Link: rel="ice-server"`` per
  configured STUN/TURN URL (§4.6).
- ``PATCH`` on the session URL: trickle ICE with an ``application/trickle-ice-sdpfrag`` body
  (RFC 8840) -> ``204`` without ETag (§4.3.2). ``If-Match`` is required: ``428`` when missing,
  ``412`` when stale (§4.3.1, RFC 6585 §3). aiortc cannot restart ICE, so a fragment with new
  ice-ufrag/ice-pwd gets ``422`` and the session keeps its ICE session (§4.3.1, §4.3.3).
- ``DELETE`` on the session URL -> ``200 OK`` (§3); the owner or a ``moderate`` holder only.
  If-Match is ignored there (§4.3.1).
- ``GET``/``HEAD`` -> ``204``: the resources have no representation (§4.1). Other methods ->
  ``405`` with ``Allow``. ``OPTIONS`` answers CORS preflights (§4.2) with ``Accept-Post`` or
  ``Accept-Patch``; ``Link`` ice-server headers only on an OPTIONS that is not a CORS preflight
  (§4.6: SHOULD NOT on preflights, and clients should use the POST response).
- One WHIP session per identity and room: a new POST replaces the old session (an encoder that
  reconnects after a network drop must not be locked out until consent freshness expires the
  old one). The tracks move to the new connection, so WHEP viewers keep one stream.
- In a livestream a WHEP player gets the room's program (one video and one audio track that
  follow the studio's switches, see :mod:`signalling.program`) unless ``?publisher=`` names
  whose tracks it wants; in a meeting, everyone's publications (or that publisher's).
- A WHEP session of publications ends when every track it plays is unpublished (WHEP has no
  server-initiated renegotiation); a program session stays while its sources come and go. A
  WHEP POST while nothing matching is published (or on air) -> ``409 no_publication``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
from typing import Literal

from aiohttp import hdrs, web
from multidict import CIMultiDict

from rooms import Grant, RoomKind, RoomNotFoundError, RoomStatus, ValidationError
from rooms.model import Room, check_identity
from sfu.sessions import Publisher, SdpError, Selection, Subscriber
from signalling.auth import Claims, ForbiddenError, bearer_token, require_grant
from signalling.credentials import SessionCredentials
from signalling.errors import ApiError, Handler
from signalling.keys import CREDENTIALS, MEDIA, MODERATION, REALTIME, SETTINGS, SFU, STORE

log = logging.getLogger(__name__)

SDP = "application/sdp"
TRICKLE_ICE_SDPFRAG = "application/trickle-ice-sdpfrag"  # RFC 8840 §9.1
WHIP_SOURCE = "encoder"
Kind = Literal["whip", "whep"]

ENDPOINT_METHODS = "GET, HEAD, OPTIONS, POST"
SESSION_METHODS = "DELETE, GET, HEAD, OPTIONS, PATCH"
CORS_ALLOW_HEADERS = "Authorization, Content-Type, If-Match"
CORS_EXPOSE_HEADERS = "Location, ETag, Link, Accept-Patch, Accept-Post"
CORS_MAX_AGE = "86400"

_ICE_UFRAG_RE = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)
_ICE_PWD_RE = re.compile(r"^a=ice-pwd:(\S+)", re.MULTILINE)
_BUNDLE_RE = re.compile(r"^a=group:BUNDLE((?: +\S+)+)", re.MULTILINE)


@dataclasses.dataclass(eq=False, slots=True)
class HttpSession:
    """One WHIP or WHEP session: a peer connection addressed by an unguessable URL."""

    id: str
    kind: Kind
    room_id: str
    identity: str
    peer: Publisher | Subscriber
    token_id: str  # of the link it came in with: revoking the link ends the session
    # RFC 9110 §8.8.3: a strong entity-tag naming the ICE session (RFC 9725 §4.3.1).
    etag: str = dataclasses.field(default_factory=lambda: f'"{secrets.token_hex(8)}"')

    @property
    def path(self) -> str:
        return f"/{self.kind}/{self.room_id}/{self.id}"


class HttpSessions:
    """Every WHIP/WHEP session of this node, by id."""

    def __init__(self) -> None:
        self._sessions: dict[str, HttpSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, session: HttpSession) -> None:
        self._sessions[session.id] = session

    def get(self, kind: Kind, room_id: str, session_id: str) -> HttpSession | None:
        session = self._sessions.get(session_id)
        if session is None or session.kind != kind or session.room_id != room_id:
            return None
        return session

    def discard(self, session_id: str, peer: Publisher | Subscriber) -> HttpSession | None:
        session = self._sessions.get(session_id)
        if session is None or session.peer is not peer:
            return None
        return self._sessions.pop(session_id)

    # CredentialHolder: an encoder holds no credential to renew, but its link may be revoked.

    def token_ids(self) -> set[str]:
        return {s.token_id for s in self._sessions.values() if s.token_id}

    async def revoke(self, token_ids: set[str]) -> None:
        for session in list(self._sessions.values()):
            if session.token_id in token_ids:
                log.info("%s %s ended: its link was revoked", session.kind, session.id)
                await session.peer.close()

    async def renew(self, credentials: SessionCredentials, now: float) -> None:
        return None

    def publisher_of(self, room_id: str, identity: str) -> HttpSession | None:
        return next((s for s in self._sessions.values() if s.kind == "whip"
                     and s.room_id == room_id and s.identity == identity), None)

    async def close(self) -> None:
        for session in list(self._sessions.values()):
            try:
                await session.peer.close()
            except Exception:
                log.exception("closing %s session %s failed", session.kind, session.id)
        self._sessions.clear()


WHIP_SESSIONS: web.AppKey[HttpSessions] = web.AppKey("whip_sessions", HttpSessions)

routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    """Routes, session registry, CORS on every response, sessions closed at shutdown."""
    app[WHIP_SESSIONS] = HttpSessions()
    app[CREDENTIALS].watch(app[WHIP_SESSIONS])
    app.add_routes(routes)
    app.on_response_prepare.append(_add_cors_headers)
    app.on_shutdown.append(_close_sessions)


async def _close_sessions(app: web.Application) -> None:
    await app[WHIP_SESSIONS].close()


# -- helpers ------------------------------------------------------------------------------------


def _kind(request: web.Request) -> Kind:
    return "whep" if request.path.startswith("/whep/") else "whip"


async def _authenticate(request: web.Request, room_id: str) -> Claims:
    """401 without a valid bearer token (RFC 9725 §4.7.1), 403 for a token of another room."""
    claims = await request.app[CREDENTIALS].verify(
        bearer_token(request.headers.get(hdrs.AUTHORIZATION)))
    if claims.room != room_id:
        raise ForbiddenError(f"token is for room {claims.room!r}, not {room_id!r}", "wrong_room")
    return claims


async def _open_room(request: web.Request, claims: Claims, grant: Grant
                     ) -> tuple[Room, frozenset[Grant]]:
    """The room must exist and not have ended; the caller's grants in it must hold ``grant``
    (in a livestream only its hosts, owner and people on stage publish)."""
    store = request.app[STORE]
    room = await store.get_room(claims.room)
    if room is None or (claims.guest and not room.public):
        raise RoomNotFoundError(claims.room)
    if room.status == RoomStatus.ENDED:
        raise ApiError(409, "this room has ended", "room_ended")
    stage = (await store.stage_states(room.id)).get(claims.identity)
    grants = request.app[REALTIME].grants_in(room, claims, stage)
    require_grant(grants, grant)
    await request.app[MODERATION].may_publish(room, claims.identity)
    return room, grants


async def _read_body(request: web.Request, content_type: str) -> str:
    """The body as text: 415 for another media type, 413 past client_max_size, 400 if empty."""
    if request.content_type != content_type:
        raise ApiError(415, f"expected Content-Type: {content_type}")
    raw = await request.read()  # aiohttp enforces client_max_size: 413 past it
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not UTF-8 text", "invalid_sdp") from None
    if not text.strip():
        raise ApiError(400, "the body is empty", "invalid_sdp")
    return text


def _ice_server_links(request: web.Request) -> list[str]:
    # RFC 9725 §4.6 / RFC 8288: one Link per STUN/TURN server URI (RFC 7064, RFC 7065).
    return [f'<{url}>; rel="ice-server"' for url in request.app[SETTINGS].ice_servers]


def _location(request: web.Request, session: HttpSession) -> str:
    public_url = request.app[SETTINGS].public_url
    return f"{public_url.rstrip('/')}{session.path}" if public_url else session.path


def _created(request: web.Request, session: HttpSession, answer: str) -> web.Response:
    headers: CIMultiDict[str] = CIMultiDict()
    headers[hdrs.LOCATION] = _location(request, session)
    headers[hdrs.ETAG] = session.etag
    headers["Accept-Patch"] = TRICKLE_ICE_SDPFRAG  # RFC 5789 §3.1
    for link in _ice_server_links(request):
        headers.add(hdrs.LINK, link)
    return web.Response(status=201, body=answer.encode(), content_type=SDP, headers=headers)


async def _session_of(request: web.Request, *, moderator_may: bool) -> HttpSession:
    room_id = request.match_info["room"]
    claims = await _authenticate(request, room_id)
    session = request.app[WHIP_SESSIONS].get(_kind(request), room_id,
                                             request.match_info["session"])
    if session is None:
        raise ApiError(404, "no such session", "session_not_found")
    if claims.identity != session.identity and not (
        moderator_may and claims.can(Grant.MODERATE)
    ):
        raise ForbiddenError("this session belongs to another identity", "not_session_owner")
    return session


# -- WHIP ---------------------------------------------------------------------------------------


@routes.post("/whip/{room}")
async def whip_publish(request: web.Request) -> web.Response:
    """RFC 9725 §4.2: the encoder's offer in, our answer and the session URL out."""
    room_id = request.match_info["room"]
    claims = await _authenticate(request, room_id)
    _, grants = await _open_room(request, claims, Grant.PUBLISH)
    offer = await _read_body(request, SDP)
    app = request.app
    sessions, sfu, media = app[WHIP_SESSIONS], app[SFU], app[MEDIA]
    previous = sessions.publisher_of(room_id, claims.identity)
    session_id = secrets.token_urlsafe(18)  # RFC 9725 §6: unguessable session URLs

    async def closed(publisher: Publisher) -> None:
        ended = sessions.discard(session_id, publisher)
        if ended is not None:
            await app[REALTIME].unseat(room_id, ended.identity, f"whip:{session_id}")
        sfu.forget_if_empty(room_id)

    publisher = sfu.room(room_id).publisher(claims.identity, on_closed=closed)
    replacing = previous.peer if previous is not None else None
    assert replacing is None or isinstance(replacing, Publisher)
    try:
        answer = await publisher.answer(offer, [WHIP_SOURCE] * offer.count("m="),
                                        replacing=replacing)
        sessions.add(HttpSession(session_id, "whip", room_id, claims.identity, publisher,
                                 claims.token_id))
        # The new participant record first, so that closing the old session leaves it alone.
        # An encoder publishing over WHIP appears in the room like any participant.
        await app[REALTIME].seat(claims, f"whip:{session_id}", grants=grants)
        if replacing is not None:
            await replacing.close()  # its remaining (unmatched) tracks are unpublished
        # Tracks published before the participant existed (or moved from the replaced
        # session) are not on its record yet.
        await media.update_tracks(room_id, claims.identity)
    except SdpError as exc:
        await publisher.close()
        raise ApiError(400, str(exc), "invalid_sdp") from None
    except BaseException:
        await publisher.close()
        raise
    session = sessions.get("whip", room_id, session_id)
    if session is None:  # the connection failed while we were answering
        raise ApiError(409, "the connection closed during setup", "connection_closed")
    log.info("whip %s: %s publishes in %s%s", session_id, claims.identity, room_id,
             " (replacing its previous session)" if replacing else "")
    return _created(request, session, answer)


# -- WHEP ---------------------------------------------------------------------------------------


@routes.post("/whep/{room}")
async def whep_play(request: web.Request) -> web.Response:
    """draft-ietf-wish-whep: the player's offer in, our answer and the session URL out."""
    room_id = request.match_info["room"]
    claims = await _authenticate(request, room_id)
    room, _ = await _open_room(request, claims, Grant.SUBSCRIBE)
    publisher_identity = request.query.get("publisher") or None
    if publisher_identity is not None:
        try:
            publisher_identity = check_identity(publisher_identity)
        except ValidationError:
            raise ValidationError("publisher", "not a valid identity") from None
    # A livestream's players watch its program (what the studio puts on air, following its
    # switches), unless they ask for one publisher's tracks.
    program = room.kind == RoomKind.LIVESTREAM and publisher_identity is None
    offer = await _read_body(request, SDP)
    app = request.app
    sessions, sfu = app[WHIP_SESSIONS], app[SFU]
    existing = sfu.rooms.get(room_id)
    if program:
        on_air = existing is not None and any(existing.program.to_dict().values())
    else:
        on_air = existing is not None and any(
            p.identity != claims.identity
            and (publisher_identity is None or p.identity == publisher_identity)
            for p in existing.publications)
    if not on_air:
        who = f" by {publisher_identity!r}" if publisher_identity else ""
        raise ApiError(409, f"nothing is published{who} in room {room_id!r} yet: "
                       "retry when the stream has started", "no_publication")
    session_id = secrets.token_urlsafe(18)

    async def closed(subscriber: Subscriber) -> None:
        sessions.discard(session_id, subscriber)
        sfu.forget_if_empty(room_id)

    async def publications_changed(subscriber: Subscriber) -> None:
        # WHEP cannot renegotiate: once every track this session plays is gone, end it so
        # that the player sees the stream end (RTCP BYE, DTLS close) and can POST again.
        # The program's tracks outlive their sources: a program player stays on.
        if not program and subscriber.bindings and not any(
            p in subscriber.room.publications for p in subscriber.bindings
        ):
            await subscriber.close()

    subscriber = sfu.room(room_id).subscriber(
        claims.identity, on_closed=closed,
        selection=Selection(program=True) if program else Selection(
            identities=None if publisher_identity is None else frozenset({publisher_identity})),
        on_negotiation_needed=publications_changed,
    )
    try:
        answer = await subscriber.answer(offer)
    except SdpError as exc:
        await subscriber.close()
        raise ApiError(400, str(exc), "invalid_sdp") from None
    except BaseException:
        await subscriber.close()
        raise
    session = HttpSession(session_id, "whep", room_id, claims.identity, subscriber,
                          claims.token_id)
    sessions.add(session)
    return _created(request, session, answer)


# -- session URLs -------------------------------------------------------------------------------


async def session_delete(request: web.Request) -> web.Response:
    """RFC 9725 §3/§4.2: end the session, free its resources, answer 200 OK."""
    session = await _session_of(request, moderator_may=True)
    await session.peer.close()
    request.app[WHIP_SESSIONS].discard(session.id, session.peer)
    log.info("%s %s ended by DELETE", session.kind, session.id)
    return web.Response(status=200)


async def session_patch(request: web.Request) -> web.Response:
    """RFC 9725 §4.3: trickle ICE; ICE restarts are refused with 422."""
    session = await _session_of(request, moderator_may=False)
    if request.content_type != TRICKLE_ICE_SDPFRAG:
        raise ApiError(415, f"expected Content-Type: {TRICKLE_ICE_SDPFRAG}")
    if_match = request.headers.get(hdrs.IF_MATCH)
    if if_match is None:
        raise ApiError(428, "If-Match with the session's ETag is required",
                       "precondition_required")
    if not etag_matches(if_match, session.etag):
        raise ApiError(412, "If-Match does not match the current ICE session",
                       "precondition_failed")
    fragment = parse_sdpfrag(await _read_body(request, TRICKLE_ICE_SDPFRAG))
    remote = session.peer.pc.remoteDescription
    remote_sdp = remote.sdp if remote is not None else ""
    current_ufrag = _ICE_UFRAG_RE.search(remote_sdp)
    current_pwd = _ICE_PWD_RE.search(remote_sdp)
    if (fragment.ufrag is not None and current_ufrag is not None
            and fragment.ufrag != current_ufrag.group(1)) or (
            fragment.pwd is not None and current_pwd is not None
            and fragment.pwd != current_pwd.group(1)):
        raise ApiError(422, "ICE restart is not supported: keep the current ICE session, or "
                       "DELETE this session and POST a new offer", "ice_restart_unsupported")
    bundle = _BUNDLE_RE.search(remote_sdp)
    bundled = bundle.group(1).split() if bundle else []
    for candidate in fragment.candidates:
        mid = candidate.mid
        if mid is not None and mid in bundled:
            mid = bundled[0]  # RFC 9143: the bundle's transport is the first m-line's
        try:
            await session.peer.add_ice_candidate({
                "candidate": candidate.line, "sdpMid": mid,
                "sdpMLineIndex": candidate.mline_index if mid is None else None,
            })
        except Exception as exc:
            # RFC 9725 §4.3.2: discard what cannot be used and go on with the rest.
            log.debug("%s %s: discarded candidate %r: %s", session.kind, session.id,
                      candidate.line, exc)
    if fragment.end_of_candidates:
        try:
            await session.peer.add_ice_candidate({"candidate": ""})
        except Exception as exc:  # a second end-of-candidates
            log.debug("%s %s: end-of-candidates: %s", session.kind, session.id, exc)
    return web.Response(status=204)  # no ETag on a trickle answer (§4.3.2)


async def session_get(request: web.Request) -> web.Response:
    """RFC 9725 §4.1: no representation is defined, so 2xx with no content."""
    session = request.app[WHIP_SESSIONS].get(_kind(request), request.match_info["room"],
                                             request.match_info["session"])
    if session is None:
        raise ApiError(404, "no such session", "session_not_found")
    return web.Response(status=204)


async def endpoint_get(request: web.Request) -> web.Response:
    return web.Response(status=204)  # RFC 9725 §4.1


def _options(methods: str, accept: tuple[str, str]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        """CORS preflight (Fetch standard; RFC 9725 §4.2) and plain OPTIONS."""
        headers: CIMultiDict[str] = CIMultiDict({hdrs.ALLOW: methods, accept[0]: accept[1]})
        if hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
            headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = methods
            headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = CORS_ALLOW_HEADERS
            headers[hdrs.ACCESS_CONTROL_MAX_AGE] = CORS_MAX_AGE
        elif accept[0] == "Accept-Post":
            # §4.6: ICE servers on OPTIONS only for clients that cannot wait for the POST
            # answer, and never on a CORS preflight.
            for link in _ice_server_links(request):
                headers.add(hdrs.LINK, link)
        return web.Response(status=200, headers=headers)

    return handler


for _kind_name in ("whip", "whep"):
    _endpoint = f"/{_kind_name}/{{room}}"
    _session = f"/{_kind_name}/{{room}}/{{session}}"
    routes.get(_endpoint)(endpoint_get)
    routes.options(_endpoint)(_options(ENDPOINT_METHODS, ("Accept-Post", SDP)))
    routes.delete(_session)(session_delete)
    routes.patch(_session)(session_patch)
    routes.get(_session)(session_get)
    routes.options(_session)(_options(SESSION_METHODS, ("Accept-Patch", TRICKLE_ICE_SDPFRAG)))


# -- CORS on every response (errors included) ---------------------------------------------------


async def _add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not request.path.startswith(("/whip/", "/whep/")):
        return
    origins = request.app[SETTINGS].cors_origins
    origin = request.headers.get(hdrs.ORIGIN)
    if "*" in origins:
        allowed = "*"
    elif origin is not None and origin in origins:
        allowed = origin
        response.headers.add(hdrs.VARY, "Origin")
    else:
        return
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allowed
    response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = CORS_EXPOSE_HEADERS


# -- RFC 8840 SDP fragments ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class FragmentCandidate:
    line: str  # "candidate:..." (RFC 8839 §5.1)
    mid: str | None
    mline_index: int


@dataclasses.dataclass(frozen=True, slots=True)
class SdpFragment:
    ufrag: str | None
    pwd: str | None
    candidates: tuple[FragmentCandidate, ...]
    end_of_candidates: bool


def parse_sdpfrag(text: str) -> SdpFragment:
    """An ``application/trickle-ice-sdpfrag`` body (RFC 8840 §9); 400 when malformed."""
    from aiortc.sdp import candidate_from_sdp

    ufrag: str | None = None
    pwd: str | None = None
    found: list[tuple[str, int]] = []
    mids: dict[int, str] = {}
    end = False
    mline_index = 0
    seen_media = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise ApiError(400, f"line {number} is not an SDP line", "invalid_sdpfrag")
        name, _, value = line[2:].partition(":")
        if line.startswith("m="):
            mline_index += 1 if seen_media else 0
            seen_media = True
        elif name == "mid" and value:
            mids.setdefault(mline_index, value.strip())
        elif name == "ice-ufrag":
            ufrag = value.strip()
        elif name == "ice-pwd":
            pwd = value.strip()
        elif line == "a=end-of-candidates":
            end = True
        elif name == "candidate":
            try:
                candidate_from_sdp(value)
            except (ValueError, IndexError, KeyError, AssertionError):  # aiortc asserts
                raise ApiError(400, f"line {number}: not an ICE candidate (RFC 8839 §5.1)",
                               "invalid_sdpfrag") from None
            found.append((f"candidate:{value}", mline_index))
    # a=mid may come before or after the candidates of its m-line (RFC 8840 §4.4 example).
    candidates = tuple(FragmentCandidate(line, mids.get(index), index) for line, index in found)
    return SdpFragment(ufrag, pwd, candidates, end)


def etag_matches(if_match: str, etag: str) -> bool:
    """RFC 9110 §13.1.1: ``*`` or a list of entity-tags, compared strongly."""
    tags = [tag.strip() for tag in if_match.split(",")]
    return "*" in tags or etag in tags
