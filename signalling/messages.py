"""One-to-one messages between identities over socket.io (issue #10), outside any room.

Every connection of an identity (a page in any room) is in that identity's socket.io room, so a
message reaches all of them; one written to someone offline waits in the store, and their next
connection is told how many are unread (``dm-unread``) and reads them with ``dm-history``.
Guests (anonymous visitors of public rooms) neither write nor receive.

- ``dm-send`` ``{to, text}`` -> ``{message}``; the recipient's and the sender's connections get
  ``dm`` ``{message}``. 1 to 1,000 characters; ``rate_limited`` (``retry_after``) past 5 in 10 s.
- ``dm-history`` ``{with, before?, limit?}`` -> ``{messages}``: the conversation, oldest first,
  at most ``limit`` (50; 200 at most) sent before ``before``.
- ``dm-read`` ``{with}`` -> ``{unread}``: everything from ``with`` is read now; the reader's
  other connections get ``dm-unread`` ``{unread}`` too.
- On connect: ``dm-unread`` ``{unread: {identity: count}}``.

A message is ``{id, from, from_name, to, text, at, read}``.
"""

from __future__ import annotations

import time
from typing import Any

from rooms import Store, ValidationError
from rooms.live import ChatRateLimit
from rooms.messages import new_message, page_limit
from rooms.model import check_identity
from signalling.auth import ForbiddenError
from signalling.live import RateLimited
from signalling.realtime import Connection, Realtime


def identity_room(identity: str) -> str:
    return f"identity:{identity}"


def _fields(data: Any, allowed: set[str], required: set[str], event: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not required <= set(data) <= allowed:
        raise ValidationError(event, f"send {{{', '.join(sorted(allowed))}}}")
    return data


class DirectMessages:
    def __init__(self, realtime: Realtime, store: Store) -> None:
        self.realtime = realtime
        self.store = store
        self.limit = ChatRateLimit()
        realtime.on_connect(self._connected)
        realtime.on("dm-send", self._send)
        realtime.on("dm-history", self._history)
        realtime.on("dm-read", self._read)

    @staticmethod
    def _writer(connection: Connection) -> str:
        if connection.claims.guest:
            raise ForbiddenError("guests cannot send or read messages: open your own link",
                                 "forbidden")
        return connection.claims.identity

    async def _connected(self, connection: Connection) -> None:
        if connection.claims.guest:
            return
        identity = connection.claims.identity
        await self.realtime.sio.enter_room(connection.sid, identity_room(identity))
        unread = await self.store.unread_direct(identity)
        if unread:
            await self.realtime.sio.emit("dm-unread", {"unread": unread}, to=connection.sid)

    async def _send(self, connection: Connection, data: Any) -> dict[str, Any]:
        sender = self._writer(connection)
        body = _fields(data, {"to", "text"}, {"to", "text"}, "dm-send")
        now = time.time()
        message = new_message(sender, connection.claims.name, body["to"], body["text"], now)
        wait = self.limit.retry_after(sender, now)
        if wait > 0:
            raise RateLimited(wait)
        await self.store.add_direct(message)
        payload = {"message": message.to_dict()}
        await self.realtime.sio.emit("dm", payload, room=identity_room(message.recipient))
        await self.realtime.sio.emit("dm", payload, room=identity_room(sender),
                                     skip_sid=connection.sid)
        return payload

    async def _history(self, connection: Connection, data: Any) -> dict[str, Any]:
        reader = self._writer(connection)
        body = _fields(data, {"with", "before", "limit"}, {"with"}, "dm-history")
        other = check_identity(body["with"])
        before = body.get("before")
        if before is not None and (isinstance(before, bool)
                                   or not isinstance(before, int | float)):
            raise ValidationError("before", "a time (seconds) from a previous page")
        messages = await self.store.direct_history(reader, other, before,
                                                   page_limit(body.get("limit")))
        return {"messages": [m.to_dict() for m in messages]}

    async def _read(self, connection: Connection, data: Any) -> dict[str, Any]:
        reader = self._writer(connection)
        other = check_identity(_fields(data, {"with"}, {"with"}, "dm-read")["with"])
        await self.store.mark_direct_read(reader, other, time.time())
        unread = await self.store.unread_direct(reader)
        await self.realtime.sio.emit("dm-unread", {"unread": unread}, room=identity_room(reader),
                                     skip_sid=connection.sid)
        return {"unread": unread}
