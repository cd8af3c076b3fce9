"""Who is calling a REST endpoint: anonymous, the operator (API key), or the bearer of a room's
link or session credential. One place decides what each may see and manage."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import hdrs, web

from rooms import Grant, Role, Room, RoomNotFoundError, ValidationError
from rooms.access import is_moderator
from rooms.model import check_room_id
from signalling.auth import AuthError, Claims, ForbiddenError, bearer_token, is_api_key
from signalling.keys import CREDENTIALS, SETTINGS, STORE


@dataclass(frozen=True, slots=True)
class Caller:
    operator: bool = False
    claims: Claims | None = None

    def sees(self, room: Room) -> bool:
        """Public rooms are anyone's; a private one is its token holders' and the operator's."""
        return room.public or self.operator or (
            self.claims is not None and self.claims.room == room.id and not self.claims.guest)

    def may_watch(self, room_id: str) -> bool:
        """The operator, or a token of that room with the ``subscribe`` grant."""
        return self.operator or (self.claims is not None and self.claims.room == room_id
                                 and self.claims.can(Grant.SUBSCRIBE))

    def manages(self, room_id: str) -> bool:
        """The operator, or a host of that room (the ``moderate`` grant)."""
        return self.operator or (self.claims is not None and self.claims.room == room_id
                                 and self.claims.can(Grant.MODERATE) and not self.claims.guest)

    def owns(self, room: Room) -> bool:
        claims = self.claims
        return (claims is not None and claims.room == room.id and not claims.guest
                and claims.role == Role.EXHIBITOR and room.owner == claims.identity)

    def moderates(self, room: Room) -> bool:
        """The operator, a host or the owner: who runs the room's Q&A, chat and figures."""
        claims = self.claims
        return self.operator or (claims is not None and claims.room == room.id
                                 and not claims.guest
                                 and is_moderator(room, claims.role, claims.identity,
                                                  claims.grants))


async def caller_of(request: web.Request, *, query_token: bool = False) -> Caller:
    """Who sent ``request``: its ``Authorization: Bearer`` credential, or with
    ``query_token`` (for what cannot send headers: a calendar app fetching an ``.ics``) a link
    or session token in ``?token=``; never the API key there, which would end up in logs."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        token = request.query.get("token", "") if query_token else ""
        return Caller(claims=await request.app[CREDENTIALS].verify(token)) if token else Caller()
    credential = bearer_token(header)
    if is_api_key(credential, request.app[SETTINGS].api_key):
        return Caller(operator=True)
    if credential.count(".") != 2:  # not a JWT (RFC 7519 §3): a mistyped API key
        raise AuthError("invalid API key", "invalid_api_key")
    return Caller(claims=await request.app[CREDENTIALS].verify(credential))


async def room_seen_by(request: web.Request, caller: Caller | None) -> Room:
    """The path's room, if it exists and ``caller`` may see it (else 404 either way: a private
    room's existence is not disclosed). ``None``: no visibility check."""
    room_id = request.match_info["room_id"]
    try:
        check_room_id(room_id)
    except ValidationError:
        raise RoomNotFoundError(room_id) from None
    room = await request.app[STORE].get_room(room_id)
    if room is None or (caller is not None and not caller.sees(room)):
        raise RoomNotFoundError(room_id)
    return room


def require_credentials(caller: Caller) -> None:
    if not caller.operator and caller.claims is None:
        raise AuthError("send the API key or a token of this room", "missing_credentials")


def require_moderator(caller: Caller, room: Room) -> None:
    require_credentials(caller)
    if not caller.moderates(room):
        raise ForbiddenError("only the room's hosts, its owner and the operator see this")
