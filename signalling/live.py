"""A livestream's questions and chat over socket.io, and its figures over REST.

Questions and chat are kept in the store (they outlive the room's bounded log) and every change
is a room event (``question``, ``chat``, ``chat-deleted``, ``chat-muted``), so each page
applies it in order. Moderators are the room's hosts and its owner exhibitor
(:func:`rooms.access.is_moderator`); anyone else calling a moderator's event gets
``forbidden`` and nothing changes.

Events (client -> server; see docs/socketio.md, "Live Q&A and chat"):

- ``question-ask`` ``{text}`` -> ``{question}``; ``question-vote`` ``{id}`` -> ``{question,
  voted}``; ``question-answer`` ``{id, answered}``, ``question-hide`` ``{id, hidden}`` ->
  ``{question}``; ``question-pin`` ``{id | null}`` -> ``{}``
- ``chat-send`` ``{text}`` -> ``{message}``; ``chat-delete`` ``{id}``, ``chat-mute``
  ``{identity, muted}`` -> ``{}``

REST: ``GET /api/rooms/{id}/questions``, ``/stats`` and ``/attendance`` (JSON or CSV).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import logging
import time
from typing import Any

from aiohttp import web

from rooms import Grant, Room, RoomKind, RoomNotFoundError, Store, ValidationError
from rooms.access import is_moderator
from rooms.events import ChatDeleted, ChatMuted, ChatPosted, QuestionChanged
from rooms.live import (
    VIEWER_ROLES,
    ChatMessage,
    ChatRateLimit,
    Question,
    attendance,
    chat_text,
    new_id,
    question_text,
    watch_figures,
)
from rooms.model import check_identity
from signalling.auth import ForbiddenError
from signalling.callers import caller_of, require_credentials, require_moderator, room_seen_by
from signalling.errors import ApiError
from signalling.keys import LIVE, STORE
from signalling.metrics import Metrics
from signalling.realtime import Connection, Realtime
from signalling.translations import MessageTranslations, Written
from translate.languages import normalize

log = logging.getLogger(__name__)


def _fields(data: Any, names: set[str], event: str) -> dict[str, Any]:
    if not isinstance(data, dict) or set(data) != names:
        raise ValidationError(event, "send {" + ", ".join(sorted(names)) + "}")
    return data


def _question_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValidationError("id", "a question id")
    return value


class RateLimited(ApiError):
    """A chatter who sent too much; ``retry_after`` (seconds) says when the next may go."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(429, f"too many messages: try again in {max(1, round(retry_after))} s",
                         "rate_limited", extra={"retry_after": round(retry_after, 1)})


class Live:
    def __init__(self, realtime: Realtime, store: Store, metrics: Metrics,
                 translations: MessageTranslations | None = None) -> None:
        self.realtime = realtime
        self.store = store
        self.metrics = metrics
        self.translations = translations
        self.chat_limit = ChatRateLimit()
        on = realtime.on
        on("question-ask", self._ask, grant=Grant.SUBSCRIBE, joined=True)
        on("question-vote", self._vote, grant=Grant.SUBSCRIBE, joined=True)
        on("question-answer", self._answer, joined=True)
        on("question-pin", self._pin, joined=True)
        on("question-hide", self._hide, joined=True)
        on("chat-send", self._chat_send, grant=Grant.SUBSCRIBE, joined=True)
        on("chat-delete", self._chat_delete, joined=True)
        on("chat-mute", self._chat_mute, joined=True)
        realtime.on_join(self._join_part)

    # -- helpers ------------------------------------------------------------------------------

    async def _room(self, connection: Connection, *, livestream: bool = False) -> Room:
        room = await self.store.get_room(connection.claims.room)
        if room is None:
            raise RoomNotFoundError(connection.claims.room)
        if livestream and room.kind != RoomKind.LIVESTREAM:
            raise ApiError(409, "questions are for livestreams: in a meeting, just ask",
                           "not_a_livestream")
        return room

    @staticmethod
    def _moderates(connection: Connection, room: Room) -> bool:
        claims = connection.claims
        return is_moderator(room, claims.role, claims.identity, connection.grants)

    async def _moderator_room(self, connection: Connection, *, livestream: bool) -> Room:
        room = await self._room(connection, livestream=livestream)
        if not self._moderates(connection, room):
            raise ForbiddenError("only the room's hosts and its owner may do this")
        return room

    async def _question(self, room: Room, data: Any) -> Question:
        question = await self.store.get_question(room.id, _question_id(data.get("id")))
        if question is None:
            raise ApiError(404, "no such question in this room", "not_found")
        return question

    async def _changed(self, room: Room, question: Question) -> None:
        await self.store.put_question(room.id, question)
        await self.realtime.feed.append(room.id, QuestionChanged(question, time.time()))

    async def _join_part(self, connection: Connection, room: Room) -> dict[str, Any]:
        identity = connection.claims.identity
        chat = await self.store.recent_chat(room.id)
        part: dict[str, Any] = {
            "chat": [m.to_dict() for m in chat],
            "chat_muted": await self.store.chat_muted(room.id, identity),
        }
        written = [Written("chat", m.id, m.text, m.language) for m in chat]
        if room.kind == RoomKind.LIVESTREAM:
            moderator = self._moderates(connection, room)
            questions = await self.store.list_questions(room.id)
            part["qa"] = {
                "questions": [q.seen_by(identity, moderator) for q in questions],
                "voted": sorted(await self.store.voted(room.id, identity)),
            }
            written += [Written("question", q.id, q.text, q.language)
                        for q in questions if not q.hidden]
        if self.translations is not None:
            # What was translated before this page came in, in its reader's language.
            part["translations"] = await self.translations.for_reader(
                written, connection.claims.language)
        return part

    def _posted(self, room: Room, written: Written) -> None:
        if self.translations is not None:
            self.translations.posted(room, written)

    # -- questions ----------------------------------------------------------------------------

    async def _ask(self, connection: Connection, data: Any) -> dict[str, Any]:
        text = question_text(_fields(data, {"text"}, "question-ask")["text"])
        room = await self._room(connection, livestream=True)
        claims = connection.claims
        now = time.time()
        offset = None if room.started_at is None else round(max(0.0, now - room.started_at), 3)
        question = Question(new_id(), claims.identity, claims.name, text, now, offset,
                            language=normalize(claims.language) or "")
        await self._changed(room, question)
        self._posted(room, Written("question", question.id, text, question.language))
        self.metrics.live_activity.labels("questions_asked").inc()
        return {"question": question.to_dict()}

    async def _vote(self, connection: Connection, data: Any) -> dict[str, Any]:
        question_id = _question_id(_fields(data, {"id"}, "question-vote")["id"])
        room = await self._room(connection, livestream=True)
        toggled = await self.store.toggle_vote(room.id, question_id, connection.claims.identity)
        if toggled is None:
            raise ApiError(404, "no such question in this room", "not_found")
        question, voted = toggled
        await self.realtime.feed.append(room.id, QuestionChanged(question, time.time()))
        return {"question": question.seen_by(connection.claims.identity, False), "voted": voted}

    async def _answer(self, connection: Connection, data: Any) -> dict[str, Any]:
        body = _fields(data, {"id", "answered"}, "question-answer")
        if not isinstance(body["answered"], bool):
            raise ValidationError("answered", "true or false")
        room = await self._moderator_room(connection, livestream=True)
        question = await self._question(room, body)
        if question.answered != body["answered"]:
            question = dataclasses.replace(question, answered=body["answered"])
            await self._changed(room, question)
            if question.answered:
                self.metrics.live_activity.labels("questions_answered").inc()
        return {"question": question.to_dict()}

    async def _hide(self, connection: Connection, data: Any) -> dict[str, Any]:
        body = _fields(data, {"id", "hidden"}, "question-hide")
        if not isinstance(body["hidden"], bool):
            raise ValidationError("hidden", "true or false")
        room = await self._moderator_room(connection, livestream=True)
        question = await self._question(room, body)
        if question.hidden != body["hidden"]:
            # A hidden question is not left pinned over everyone's video.
            question = dataclasses.replace(question, hidden=body["hidden"],
                                           pinned=question.pinned and not body["hidden"])
            await self._changed(room, question)
        return {"question": question.to_dict()}

    async def _pin(self, connection: Connection, data: Any) -> dict[str, Any]:
        body = _fields(data, {"id"}, "question-pin")
        room = await self._moderator_room(connection, livestream=True)
        target = None if body["id"] is None else await self._question(room, body)
        if target is not None and target.hidden:
            raise ApiError(409, "a hidden question cannot be pinned", "question_hidden")
        # One pinned at a time: the old one comes down first.
        now = time.time()
        for question in await self.store.list_questions(room.id):
            if question.pinned and (target is None or question.id != target.id):
                await self._changed(room, question.with_pinned(False, now))
        if target is not None and not target.pinned:
            await self._changed(room, target.with_pinned(True, now))
        return {}

    # -- chat ---------------------------------------------------------------------------------

    async def _chat_send(self, connection: Connection, data: Any) -> dict[str, Any]:
        text = chat_text(_fields(data, {"text"}, "chat-send")["text"])
        claims = connection.claims
        room = await self._room(connection)
        if await self.store.chat_muted(room.id, claims.identity):
            raise ForbiddenError("a moderator muted you in this chat", "chat_muted")
        now = time.time()
        wait = self.chat_limit.retry_after(claims.identity, now)
        if wait > 0:
            raise RateLimited(wait)
        message = ChatMessage(new_id(), claims.identity, claims.name, text, now,
                              normalize(claims.language) or "")
        await self.store.add_chat(room.id, message)
        await self.realtime.feed.append(room.id, ChatPosted(message, now))
        self._posted(room, Written("chat", message.id, text, message.language))
        self.metrics.live_activity.labels("chat_messages").inc()
        return {"message": message.to_dict()}

    async def _chat_delete(self, connection: Connection, data: Any) -> dict[str, Any]:
        message_id = _question_id(_fields(data, {"id"}, "chat-delete")["id"])
        room = await self._moderator_room(connection, livestream=False)
        if not await self.store.delete_chat(room.id, message_id):
            raise ApiError(404, "no such message among the room's recent ones", "not_found")
        await self.realtime.feed.append(room.id, ChatDeleted(message_id, time.time()))
        return {}

    async def _chat_mute(self, connection: Connection, data: Any) -> dict[str, Any]:
        body = _fields(data, {"identity", "muted"}, "chat-mute")
        identity = check_identity(body["identity"])
        if not isinstance(body["muted"], bool):
            raise ValidationError("muted", "true or false")
        room = await self._moderator_room(connection, livestream=False)
        await self.store.set_chat_muted(room.id, identity, body["muted"])
        await self.realtime.feed.append(room.id, ChatMuted(identity, body["muted"], time.time()))
        return {}

    # -- figures --------------------------------------------------------------------------------

    async def stats(self, room: Room) -> dict[str, Any]:
        now = time.time()
        current = await self._audience_now(room)
        questions = await self.store.list_questions(room.id)
        return {
            "current": current,
            "peak": await self.store.record_audience(room.id, current),
            **watch_figures(await self.store.visits(room.id), now),
            "questions_asked": len(questions),
            "questions_answered": sum(q.answered for q in questions),
            "chat_messages": await self.store.chat_count(room.id),
        }

    async def _audience_now(self, room: Room) -> int:
        figure = await self.realtime.feed.audience(room.id)
        if figure["current"] or room.kind != RoomKind.LIVESTREAM:
            return figure["current"]
        # No client of this node is in the room: count from the store.
        return sum(p.role in VIEWER_ROLES and not p.tracks
                   for p in await self.store.list_participants(room.id))


# -- REST -------------------------------------------------------------------------------------

routes = web.RouteTableDef()


@routes.get("/api/rooms/{room_id}/questions")
async def list_questions(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    require_credentials(caller)
    room = await room_seen_by(request, caller)
    claims = caller.claims
    if not caller.operator and (claims is None or claims.room != room.id
                                or not claims.can(Grant.SUBSCRIBE)):
        raise ForbiddenError("a token of this room with the subscribe grant lists its questions",
                             "missing_grant")
    moderator = caller.moderates(room)
    identity = claims.identity if claims is not None else ""
    questions = await request.app[STORE].list_questions(room.id)
    return web.json_response({"questions": [q.seen_by(identity, moderator) for q in questions]})


@routes.get("/api/rooms/{room_id}/stats")
async def room_stats(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    room = await room_seen_by(request, caller)
    require_moderator(caller, room)
    return web.json_response(await request.app[LIVE].stats(room))


ATTENDANCE_CSV_FIELDS = ("identity", "name", "role", "joined_at", "left_at", "watch_seconds")


def _iso(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat(
        timespec="seconds").replace("+00:00", "Z")


@routes.get("/api/rooms/{room_id}/attendance")
async def room_attendance(request: web.Request) -> web.Response:
    """Who came when and stayed how long: the post-show report, in JSON or CSV."""
    caller = await caller_of(request)
    room = await room_seen_by(request, caller)
    require_moderator(caller, room)
    now = time.time()
    people = attendance(await request.app[STORE].visits(room.id), now)
    if "text/csv" not in request.headers.get("Accept", ""):
        return web.json_response({"attendance": people})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 §2
    writer.writerow(ATTENDANCE_CSV_FIELDS)
    for person in people:
        for visit in person["sessions"]:
            left = visit["left_at"]
            stayed = (left if left is not None else now) - visit["joined_at"]
            writer.writerow([person["identity"], person["name"], person["role"],
                             _iso(visit["joined_at"]), _iso(left), f"{max(0.0, stayed):.1f}"])
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition":
                                 f'attachment; filename="attendance-{room.id}.csv"'})
