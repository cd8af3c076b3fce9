"""Video invitations over socket.io (issue #10): a call rings the invitee on every page they
have open, in any room; accepting opens a private meeting for the two, the server issuing both
their links. The rules are :mod:`rooms.invitations`; this module keeps invitations in the
store, rings, and opens the meetings.

- ``invite`` ``{to: [{identity, name}], meeting?}`` -> ``{invitation}``. One invitee is a call
  (its meeting opens on the accept); several, or ``meeting: true``, start a meeting for several
  at once: the inviter gets ``meeting-ready`` for it straight away. From inside a meeting its
  moderators (a host, its owner) ask people into *that* meeting; they come past the lobby.
  Guests neither invite nor are invited; at most 5 invitations in 30 s (``rate_limited``).
- Every party's connections get ``invitation`` ``{invitation}`` on each change (ringing,
  accepted, declined, missed after 30 s, cancelled), so every page rings and stops ringing.
- ``invite-answer`` ``{id, accept}`` -> ``{invitation, url?}``; accepting gives the invitee the
  meeting's address (their own link) in ``url`` and in ``meeting-ready``; a call's inviter gets
  ``meeting-ready`` with theirs. Refused: ``not_invited``, ``not_ringing`` (409).
- ``invite-cancel`` ``{id}`` -> ``{invitation}``: the inviter hangs up.
- ``invitations`` ``{limit?}`` -> ``{invitations}``: one's calls, newest first, declined and
  missed included (a call-back is a new ``invite``).
- ``meeting-ready`` ``{reason: "invitation", id, room, url}`` reaches only its holder's
  connections: ``url`` carries a link for them alone.

An invitation is ``{id, from, from_name, from_role, to: [{identity, name, answer,
answered_at}], created_at, rings_until, from_room, from_room_name, meeting, room}``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from rooms import Room, RoomKind, Store, ValidationError
from rooms.invitations import (
    MAX_LISTED_INVITATIONS,
    RING_SECONDS,
    Invitation,
    InvitationError,
    answer,
    cancel,
    new_invitation,
    settled,
)
from rooms.live import ChatRateLimit
from rooms.model import Grant
from rooms.moderation import MODERATORS, Action, actor_of
from signalling.auth import ForbiddenError, TokenIssuer
from signalling.errors import ApiError
from signalling.live import RateLimited
from signalling.meeting_rooms import (
    MEETING_LINK_TTL,
    Attendee,
    issue_meeting_link,
    open_private_meeting,
    room_url,
)
from signalling.messages import identity_room
from signalling.moderation import Moderation
from signalling.realtime import Connection, Realtime
from signalling.tasks import cancel_and_wait

log = logging.getLogger(__name__)

INVITE_BURST = 5
INVITE_WINDOW_SECONDS = 30.0
CHANGE_ATTEMPTS = 5  # writes that lost to another at once, before giving up
_STATUS = {"not_invited": 404, "not_inviter": 403, "not_ringing": 409}


def _fields(data: Any, allowed: set[str], required: set[str], event: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not required <= set(data) <= allowed:
        raise ValidationError(event, f"send {{{', '.join(sorted(allowed))}}}")
    return data


def _attendee(connection: Connection) -> Attendee:
    claims = connection.claims
    return Attendee(claims.identity, claims.name, claims.role, claims.language)


class Invitations:
    def __init__(self, realtime: Realtime, store: Store, tokens: TokenIssuer,
                 moderation: Moderation) -> None:
        self.realtime = realtime
        self.store = store
        self.tokens = tokens
        self.moderation = moderation
        self.limit = ChatRateLimit(burst=INVITE_BURST, window=INVITE_WINDOW_SECONDS)
        self.ring_seconds = RING_SECONDS
        self._ringing: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        realtime.on("invite", self._invite)
        realtime.on("invite-answer", self._answer)
        realtime.on("invite-cancel", self._cancel)
        realtime.on("invitations", self._list)

    async def close(self) -> None:
        for handle in self._ringing.values():
            handle.cancel()
        self._ringing.clear()
        for task in list(self._tasks):
            await cancel_and_wait(task)

    @staticmethod
    def _caller(connection: Connection) -> Attendee:
        if connection.claims.guest:
            raise ForbiddenError("guests cannot invite: open your own link", "forbidden")
        return _attendee(connection)

    # -- requests -----------------------------------------------------------------------

    async def _invite(self, connection: Connection, data: Any) -> dict[str, Any]:
        caller = self._caller(connection)
        body = _fields(data, {"to", "meeting"}, {"to"}, "invite")
        now = time.time()
        room = await self.store.get_room(connection.claims.room)
        into = room if room is not None and self._moderates(connection, room) else None
        invitation = new_invitation(
            inviter=caller.identity, inviter_name=caller.name, inviter_role=caller.role,
            to=body["to"], now=now, meeting=bool(body.get("meeting")),
            from_room=room.id if room is not None else "",
            from_room_name=room.name if room is not None else "",
            room=into.id if into is not None else "", ring_seconds=self.ring_seconds)
        wait = self.limit.retry_after(caller.identity, now)
        if wait > 0:
            raise RateLimited(wait)
        if into is not None:
            # Asked into the meeting the inviter moderates: past its lobby and its lock.
            await self.moderation.act(connection, Action.INVITE, {
                "identities": [i.identity for i in invitation.invitees]})
        elif invitation.meeting:
            opened = await open_private_meeting(
                self.store, self.tokens, name=self._meeting_name(invitation), owner=caller,
                others=(), now=now, expected=[i.identity for i in invitation.invitees])
            invitation = dataclasses.replace(invitation, room=opened.room.id)
            await self._meeting_ready(invitation, caller.identity, opened.url(caller.identity))
        if not await self.store.put_invitation(invitation):
            raise ApiError(409, "try again", "conflict")  # a new id that was taken: never seen
        await self._announce(invitation)
        self._ring_out_later(invitation)
        log.info("invitation %s: %s -> %s%s", invitation.id, caller.identity,
                 ",".join(i.identity for i in invitation.invitees),
                 f" into {invitation.room}" if invitation.room else "")
        return {"invitation": invitation.to_dict()}

    async def _answer(self, connection: Connection, data: Any) -> dict[str, Any]:
        caller = self._caller(connection)
        body = _fields(data, {"id", "accept"}, {"id", "accept"}, "invite-answer")
        if not isinstance(body["accept"], bool):
            raise ValidationError("accept", "true to accept, false to decline")
        now = time.time()
        # The answer is stored first: of two pages (or nodes) answering at once one wins, and
        # only the winner opens the meeting.
        answered = await self._change(body["id"], caller.identity, lambda invitation: answer(
            invitation, caller.identity, body["accept"], now))
        url = None
        if body["accept"]:
            answered, url = await self._let_in(answered, caller, now)
        await self._announce(answered)
        if not answered.ringing(time.time()):
            self._stop_ringing(answered.id)
        log.info("invitation %s: %s %s", answered.id, caller.identity,
                 "accepted" if body["accept"] else "declined")
        reply: dict[str, Any] = {"invitation": answered.to_dict()}
        if url is not None:
            reply["url"] = url
        return reply

    async def _cancel(self, connection: Connection, data: Any) -> dict[str, Any]:
        caller = self._caller(connection)
        body = _fields(data, {"id"}, {"id"}, "invite-cancel")
        now = time.time()
        cancelled = await self._change(body["id"], caller.identity,
                                       lambda invitation: cancel(invitation, caller.identity, now))
        self._stop_ringing(cancelled.id)
        await self._announce(cancelled)
        return {"invitation": cancelled.to_dict()}

    async def _list(self, connection: Connection, data: Any) -> dict[str, Any]:
        caller = self._caller(connection)
        body = _fields(data or {}, {"limit"}, set(), "invitations")
        limit = body.get("limit", 50)
        if isinstance(limit, bool) or not isinstance(limit, int) or not (
                1 <= limit <= MAX_LISTED_INVITATIONS):
            raise ValidationError("limit", f"1 to {MAX_LISTED_INVITATIONS}")
        now = time.time()
        found = await self.store.list_invitations(caller.identity, limit)
        return {"invitations": [settled(i, now).to_dict() for i in found]}

    # -- meetings -----------------------------------------------------------------------

    async def _let_in(self, invitation: Invitation, invitee: Attendee, now: float
                      ) -> tuple[Invitation, str]:
        """The invitee accepted: open the call's meeting for the two, or give them a link to
        the meeting they were asked into. Returns the invitation and the invitee's address."""
        if not invitation.room:
            inviter = Attendee(invitation.inviter, invitation.inviter_name,
                               invitation.inviter_role)
            opened = await open_private_meeting(
                self.store, self.tokens, name=self._meeting_name(invitation), owner=inviter,
                others=[invitee], now=now)
            room_id = opened.room.id
            invitation = await self._change(invitation.id, invitee.identity, lambda stored: (
                dataclasses.replace(stored, room=room_id)))
            await self._meeting_ready(invitation, inviter.identity, opened.url(inviter.identity))
            url = opened.url(invitee.identity)
        else:
            room = await self.store.get_room(invitation.room)
            if room is None or room.kind != RoomKind.MEETING:
                raise ApiError(409, "that meeting is over", "meeting_ended")
            link = await issue_meeting_link(self.store, self.tokens, room, invitee,
                                            min(MEETING_LINK_TTL, self.tokens.max_ttl), now)
            url = room_url(room.id, link.token)
        await self._meeting_ready(invitation, invitee.identity, url)
        return invitation, url

    @staticmethod
    def _meeting_name(invitation: Invitation) -> str:
        names = [invitation.inviter_name, *(i.name for i in invitation.invitees)]
        return ", ".join(names)[:200]

    @staticmethod
    def _moderates(connection: Connection, room: Room) -> bool:
        claims = connection.claims
        return room.kind == RoomKind.MEETING and connection.joined and actor_of(
            identity=claims.identity, owner=room.owner,
            moderates=claims.can(Grant.MODERATE)) in MODERATORS

    async def _meeting_ready(self, invitation: Invitation, identity: str, url: str) -> None:
        await self.realtime.sio.emit("meeting-ready", {
            "reason": "invitation", "id": invitation.id, "room": invitation.room, "url": url,
        }, room=identity_room(identity))

    # -- ringing ------------------------------------------------------------------------

    async def _announce(self, invitation: Invitation) -> None:
        payload = {"invitation": invitation.to_dict()}
        for identity in invitation.parties():
            await self.realtime.sio.emit("invitation", payload, room=identity_room(identity))

    def _ring_out_later(self, invitation: Invitation) -> None:
        loop = asyncio.get_running_loop()
        self._ringing[invitation.id] = loop.call_at(
            loop.time() + max(0.0, invitation.rings_until - time.time()) + 0.05,
            self._spawn_ring_out, invitation.id)

    def _spawn_ring_out(self, invitation_id: str) -> None:
        self._ringing.pop(invitation_id, None)
        task = asyncio.ensure_future(self._ring_out(invitation_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ring_out(self, invitation_id: str) -> None:
        """Nobody answered in time: whoever still rang missed it, and both sides are told."""
        invitation = await self.store.get_invitation(invitation_id)
        if invitation is None:
            return
        now = time.time()
        missed = await self._change(invitation_id, invitation.inviter,
                                    lambda stored: settled(stored, now))
        if missed != invitation:
            await self._announce(missed)

    def _stop_ringing(self, invitation_id: str) -> None:
        handle = self._ringing.pop(invitation_id, None)
        if handle is not None:
            handle.cancel()

    # -- state --------------------------------------------------------------------------

    async def _change(self, invitation_id: object, identity: str,
                      change: Callable[[Invitation], Invitation]) -> Invitation:
        """``change`` the stored invitation (as ``identity``, one of its parties) until the
        store takes it over the very version it was made from: nodes need no lock."""
        for _ in range(CHANGE_ATTEMPTS):
            current = await self._invitation(invitation_id, identity)
            try:
                changed = change(current)
            except InvitationError as exc:
                raise ApiError(_STATUS.get(exc.code, 409), exc.message, exc.code) from None
            if changed == current or await self.store.put_invitation(changed, current):
                return changed
        raise ApiError(409, "the invitation keeps changing: try again", "conflict")

    async def _invitation(self, invitation_id: object, identity: str) -> Invitation:
        if not isinstance(invitation_id, str):
            raise ValidationError("id", "the invitation's id")
        invitation = await self.store.get_invitation(invitation_id)
        if invitation is None or identity not in invitation.parties():
            raise ApiError(404, "no such invitation", "not_found")
        return invitation

