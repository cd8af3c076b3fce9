"""The shared store: rooms and participants in Redis, so that every node sees the same state.

Layout under ``prefix`` (default ``fairwire``):

- ``{prefix}:room:{id}`` — the room as JSON (:meth:`Room.to_dict`);
- ``{prefix}:rooms`` — sorted set of room ids scored by ``created_at``, for ordered listing;
- ``{prefix}:room:{id}:participants`` — hash identity -> participant JSON;
- ``{prefix}:node:{node_id}:participants`` — set of ``room_id\\x00identity`` a node holds, so that
  a restarted node's participants can be forgotten without scanning every room;
- ``{prefix}:room:{id}:events`` — the room's event log, a stream whose entry ids are
  ``0-{seq}`` (so ``XREAD`` and exclusive ``XRANGE`` work on sequence numbers), with fields
  ``at`` and ``e`` (the event's JSON without ``seq``); ``{prefix}:room:{id}:seq`` — its last
  sequence number; ``{prefix}:room:{id}:peak`` — the largest audience noted;
- ``{prefix}:room:{id}:stage`` — hash identity -> stage state (invited, on);
- ``{prefix}:link:{token_id}`` — a link token's record as JSON, expiring with the link, and
  ``{prefix}:room:{id}:links`` — sorted set of the room's link ids scored by issue time;
- ``{prefix}:room:{id}:questions`` — hash id -> question JSON; ``…:votes:{question}`` and
  ``…:voted:{identity}`` — who votes for a question, and what an identity votes for;
- ``{prefix}:room:{id}:chat`` — list of the last messages (JSON, newest first),
  ``…:chat-count`` — how many were sent, ``…:chat-muted`` — set of muted identities;
  ``…:languages`` — set of the languages people who came in read (for translation);
- ``{prefix}:room:{id}:visits`` — hash identity -> JSON list of its visits;
- ``{prefix}:appointment:{id}`` — an appointment as JSON, kept until
  :data:`APPOINTMENT_RETENTION` after its end; ``{prefix}:agenda:{identity}`` — sorted set of
  the ids of an identity's appointments (either side) by start, and
  ``{prefix}:appointments-due`` — those accepted whose meeting is not open yet, by start.

Every write that must check something first is one Lua script, so that Redis runs the check and
the write without another client in between. The scripts build the node-set keys from the prefix
rather than receiving them in KEYS: this targets a single Redis (or a primary with replicas), not
Redis Cluster.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Mapping
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from rooms.access import LinkRecord, StageState
from rooms.appointments import MAX_DURATION, Appointment, in_window
from rooms.events import RoomEvent, event_from_dict, event_to_dict
from rooms.invitations import MAX_LISTED_INVITATIONS, Invitation
from rooms.live import CHAT_HISTORY, ChatMessage, Question, Visit
from rooms.messages import MAX_DIRECT_MESSAGES, DirectMessage, conversation_key, mark_read
from rooms.model import Participant, Room, RoomKind, RoomStatus, ValidationError
from rooms.moderation import MeetingState
from rooms.store import (
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_EVENTS,
    AppointmentWrite,
    EventRange,
    RoomExistsError,
    RoomNotFoundError,
    WriteOutcome,
)

# Short enough for /readyz to answer promptly when Redis is gone; every command here is small.
SOCKET_TIMEOUT = 2.0
# MGET batch size for list_rooms: one round trip per batch without building huge replies.
MGET_BATCH = 500
# Invitations and the lists naming them are kept this long after the last change (seconds).
INVITATION_TTL = 30 * 24 * 3600
# An appointment is kept this long after its end (its parties' agendas show recent ones).
APPOINTMENT_RETENTION = 90 * 24 * 3600
# A room's set of languages read lasts this long after the last arrival that noted one.
LANGUAGES_READ_TTL = 24 * 3600

# An invitation written only over the one it was made from (compared as stored: the same
# serialisation on every node); a new one, only while its id is free, is listed for each party.
_PUT_INVITATION = """
local stored = redis.call('GET', KEYS[1])
if (stored or '') ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
if not stored then
  for i = 2, #KEYS do
    redis.call('LPUSH', KEYS[i], ARGV[4])
    redis.call('LTRIM', KEYS[i], 0, tonumber(ARGV[5]) - 1)
    redis.call('EXPIRE', KEYS[i], ARGV[3])
  end
end
return 1
"""

# SET NX and the index entry together, so a failed create leaves no trace and two concurrent
# creates of one id cannot both succeed. A re-created id starts with no participants.
_CREATE_ROOM = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('DEL', unpack(KEYS, 3))
return 1
"""

# Number the event, append it, trim the log by count (MAXLEN) and age (MINID of the first
# entry young enough, looking at a bounded number of the oldest per append).
_APPEND_EVENT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[3], '0-' .. seq, 'at', ARGV[2], 'e', ARGV[1])
local oldest = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 64)
local keep = nil
for _, entry in ipairs(oldest) do
  if tonumber(entry[2][2]) >= tonumber(ARGV[4]) then
    keep = entry[1]
    break
  end
end
if keep == nil and #oldest > 0 then
  keep = '0-' .. (tonumber(string.sub(oldest[#oldest][1], 3)) + 1)
end
if keep then redis.call('XTRIM', KEYS[3], 'MINID', keep) end
return seq
"""

_RECORD_AUDIENCE = """
local peak = tonumber(redis.call('GET', KEYS[1]) or '0')
local current = tonumber(ARGV[1])
if current > peak then
  redis.call('SET', KEYS[1], current)
  peak = current
end
return peak
"""

_SAVE_ROOM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# The room check and the write in one step: no participant is written for a missing room. A
# participant that moved to another node is taken out of its old node's set.
_PUT_PARTICIPANT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then
  local old_key = ARGV[4] .. ':node:' .. (cjson.decode(old).node_id or '') .. ':participants'
  if old_key ~= KEYS[3] then redis.call('SREM', old_key, ARGV[3]) end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"""

_REMOVE_PARTICIPANT = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
local node = cjson.decode(old).node_id or ''
redis.call('SREM', ARGV[3] .. ':node:' .. node .. ':participants', ARGV[2])
return old
"""

# The node set may hold stale entries (a participant since replaced by one on another node), so
# each entry is removed only if the stored participant still names this node.
_REMOVE_NODE_PARTICIPANTS = """
local removed = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local sep = string.find(member, '\\0', 1, true)
  if sep then
    local room_id = string.sub(member, 1, sep - 1)
    local identity = string.sub(member, sep + 1)
    local hash = ARGV[2] .. ':room:' .. room_id .. ':participants'
    local data = redis.call('HGET', hash, identity)
    if data and (cjson.decode(data).node_id or '') == ARGV[1] then
      redis.call('HDEL', hash, identity)
      table.insert(removed, room_id)
      table.insert(removed, data)
    end
  end
end
redis.call('DEL', KEYS[1])
return removed
"""


# The record keeps its expiry (KEEPTTL): a revoked link is forgotten when it would have expired.
_REVOKE_LINK = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local link = cjson.decode(raw)
if tonumber(link.expires_at) <= tonumber(ARGV[1]) then return false end
link.revoked = true
raw = cjson.encode(link)
redis.call('SET', KEYS[1], raw, 'KEEPTTL')
return raw
"""


# Vote or take the vote back, count, and write the count into the question: one step, so two
# nodes voting at once cannot lose a vote.
_TOGGLE_VOTE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local voting = 1
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('SREM', KEYS[3], ARGV[1])
  voting = 0
else
  redis.call('SADD', KEYS[2], ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[1])
end
local question = cjson.decode(raw)
question.votes = redis.call('SCARD', KEYS[2])
raw = cjson.encode(question)
redis.call('HSET', KEYS[1], ARGV[1], raw)
return {raw, voting}
"""

_ADD_CHAT = """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return redis.call('INCR', KEYS[2])
"""

# An identity's visits: a new one unless one is open; closing closes the open one.
_VISIT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local visits = raw and cjson.decode(raw) or {}
local last = visits[#visits]
local open = last ~= nil and last.left_at == cjson.null
if ARGV[2] == 'start' then
  if open then return 0 end
  table.insert(visits, cjson.decode(ARGV[3]))
else
  if not open then return 0 end
  last.left_at = math.max(tonumber(ARGV[3]), tonumber(last.joined_at))
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(visits))
return 1
"""


# Write an appointment over the version it was made from and, when exclusive, only if no
# accepted appointment of either party overlaps its slot: one step, so of two acceptances at
# once one wins and the other sees the overlap. Candidates are the parties' appointments that
# start less than the longest slot before its end.
_WRITE_APPOINTMENT = """
local stored = redis.call('GET', KEYS[1])
local version = stored and tostring(cjson.decode(stored).version) or ''
if version ~= ARGV[2] then return {'changed'} end
if ARGV[3] == '1' then
  local start = tonumber(ARGV[4])
  local low = '(' .. (start - tonumber(ARGV[8]))
  for i = 2, 3 do
    for _, other in ipairs(redis.call('ZRANGEBYSCORE', KEYS[i], low, '(' .. ARGV[5])) do
      if other ~= ARGV[6] then
        local raw = redis.call('GET', ARGV[7] .. ':appointment:' .. other)
        if raw then
          local found = cjson.decode(raw)
          if found.status == 'accepted' and tonumber(found['end']) > start then
            return {'overlap', raw}
          end
        end
      end
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[10])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[6])
if ARGV[9] == '1' then
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[6])
else
  redis.call('ZREM', KEYS[4], ARGV[6])
end
return {'written'}
"""


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class RedisStore:
    """:class:`rooms.store.Store` on Redis; one instance per node, many nodes per Redis."""

    def __init__(self, url: str, prefix: str = "fairwire", max_events: int = DEFAULT_MAX_EVENTS,
                 max_age: float = DEFAULT_MAX_AGE) -> None:
        self._prefix = prefix
        self._max_events = max_events
        self._max_age = max_age
        # from_url gives the client its own pool, which aclose() then closes with it.
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
        )
        self._create_room = self._redis.register_script(_CREATE_ROOM)
        self._save_room = self._redis.register_script(_SAVE_ROOM)
        self._put_participant = self._redis.register_script(_PUT_PARTICIPANT)
        self._remove_participant = self._redis.register_script(_REMOVE_PARTICIPANT)
        self._remove_node_participants = self._redis.register_script(_REMOVE_NODE_PARTICIPANTS)
        self._append_event = self._redis.register_script(_APPEND_EVENT)
        self._record_audience = self._redis.register_script(_RECORD_AUDIENCE)
        self._revoke_link = self._redis.register_script(_REVOKE_LINK)
        self._toggle_vote = self._redis.register_script(_TOGGLE_VOTE)
        self._add_chat = self._redis.register_script(_ADD_CHAT)
        self._visit = self._redis.register_script(_VISIT)
        self._write_appointment = self._redis.register_script(_WRITE_APPOINTMENT)
        self._put_invitation = self._redis.register_script(_PUT_INVITATION)

    @classmethod
    def from_url(cls, url: str, prefix: str = "fairwire", max_events: int = DEFAULT_MAX_EVENTS,
                 max_age: float = DEFAULT_MAX_AGE) -> RedisStore:
        return cls(url, prefix, max_events, max_age)

    # Keys ----------------------------------------------------------------------------------

    def _room_key(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}"

    def _index_key(self) -> str:
        return f"{self._prefix}:rooms"

    def _participants_key(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}:participants"

    def _node_key(self, node_id: str) -> str:
        return f"{self._prefix}:node:{node_id}:participants"

    def _events_key(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}:events"

    def _seq_key(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}:seq"

    def _peak_key(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}:peak"

    def _stage_key(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}:stage"

    def _live_key(self, room_id: str, what: str) -> str:
        return f"{self._prefix}:room:{room_id}:{what}"

    def _link_key(self, token_id: str) -> str:
        return f"{self._prefix}:link:{token_id}"

    def _room_links_key(self, room_id: str) -> str:
        return f"{self._prefix}:room:{room_id}:links"

    def _direct_key(self, conversation: str) -> str:
        return f"{self._prefix}:dm:{conversation.replace(' ', ':')}"

    def _unread_key(self, reader: str) -> str:
        return f"{self._prefix}:dm-unread:{reader}"

    def _read_until_key(self, reader: str) -> str:
        return f"{self._prefix}:dm-read:{reader}"

    def _invitation_key(self, invitation_id: str) -> str:
        return f"{self._prefix}:invitation:{invitation_id}"

    def _invitations_key(self, identity: str) -> str:
        return f"{self._prefix}:invitations:{identity}"
    def _appointment_key(self, appointment_id: str) -> str:
        return f"{self._prefix}:appointment:{appointment_id}"

    def _agenda_key(self, identity: str) -> str:
        return f"{self._prefix}:agenda:{identity}"

    def _due_key(self) -> str:
        return f"{self._prefix}:appointments-due"

    @staticmethod
    def _member(room_id: str, identity: str) -> str:
        return f"{room_id}\x00{identity}"

    # Store ---------------------------------------------------------------------------------

    async def ping(self) -> bool:
        # The client retries connection errors with backoff; readiness needs an answer now.
        try:
            async with asyncio.timeout(SOCKET_TIMEOUT):
                return bool(await self._redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()

    async def create_room(self, room: Room) -> None:
        created = await self._create_room(
            keys=[self._room_key(room.id), self._index_key(), self._participants_key(room.id),
                  self._events_key(room.id), self._seq_key(room.id), self._peak_key(room.id),
                  self._stage_key(room.id), self._live_key(room.id, "questions"),
                  self._live_key(room.id, "chat"), self._live_key(room.id, "chat-count"),
                  self._live_key(room.id, "chat-muted"), self._live_key(room.id, "visits"),
                  self._live_key(room.id, "meeting"), self._live_key(room.id, "languages")],
            args=[_dumps(room.to_dict()), room.created_at, room.id],
        )
        if not created:
            raise RoomExistsError(room.id)

    async def get_room(self, room_id: str) -> Room | None:
        raw = await self._redis.get(self._room_key(room_id))
        return None if raw is None else Room.from_dict(json.loads(raw))

    async def save_room(self, room: Room) -> None:
        saved = await self._save_room(
            keys=[self._room_key(room.id), self._index_key()],
            args=[_dumps(room.to_dict()), room.created_at, room.id],
        )
        if not saved:
            raise RoomNotFoundError(room.id)

    async def list_rooms(
        self,
        kind: RoomKind | None = None,
        status: RoomStatus | None = None,
        category: str | None = None,
    ) -> list[Room]:
        # The index is ordered by (created_at, id) like MemoryStore: equal scores sort by member.
        # decode_responses=True: replies are str, which redis-py's annotations cannot express.
        room_ids = cast(list[str], await self._redis.zrange(self._index_key(), 0, -1))
        rooms: list[Room] = []
        for start in range(0, len(room_ids), MGET_BATCH):
            batch = room_ids[start : start + MGET_BATCH]
            values = cast(
                list[str | None],
                await self._redis.mget([self._room_key(room_id) for room_id in batch]),
            )
            for raw in values:
                if raw is None:  # removed between ZRANGE and MGET
                    continue
                room = Room.from_dict(json.loads(raw))
                if (
                    (kind is None or room.kind == kind)
                    and (status is None or room.status == status)
                    and (category is None or room.category == category)
                ):
                    rooms.append(room)
        return rooms

    async def put_participant(self, room_id: str, participant: Participant) -> None:
        written = await self._put_participant(
            keys=[
                self._room_key(room_id),
                self._participants_key(room_id),
                self._node_key(participant.node_id),
            ],
            args=[
                participant.identity,
                _dumps(participant.to_dict()),
                self._member(room_id, participant.identity),
                self._prefix,
            ],
        )
        if not written:
            raise RoomNotFoundError(room_id)

    async def remove_participant(self, room_id: str, identity: str) -> Participant | None:
        raw = await self._remove_participant(
            keys=[self._participants_key(room_id)],
            args=[identity, self._member(room_id, identity), self._prefix],
        )
        return None if raw is None else Participant.from_dict(json.loads(raw))

    async def get_participant(self, room_id: str, identity: str) -> Participant | None:
        raw = await self._redis.hget(self._participants_key(room_id), identity)
        return None if raw is None else Participant.from_dict(json.loads(raw))

    async def list_participants(self, room_id: str) -> list[Participant]:
        values = cast(list[str], await self._redis.hvals(self._participants_key(room_id)))
        members = (Participant.from_dict(json.loads(raw)) for raw in values)
        return sorted(members, key=lambda p: (p.joined_at, p.identity))

    async def remove_node_participants(self, node_id: str) -> list[tuple[str, Participant]]:
        flat: list[str] = await self._remove_node_participants(
            keys=[self._node_key(node_id)], args=[node_id, self._prefix]
        )
        return [
            (flat[i], Participant.from_dict(json.loads(flat[i + 1])))
            for i in range(0, len(flat), 2)
        ]

    async def count_participants(self, room_id: str) -> int:
        return int(await self._redis.hlen(self._participants_key(room_id)))

    async def page_participants(self, room_id: str, cursor: str | None, limit: int
                                ) -> tuple[list[Participant], str | None]:
        if cursor is not None and not cursor.isdigit():
            raise ValidationError("cursor", "not a cursor this server gave")
        start = int(cursor) if cursor is not None else 0
        following, values = cast(tuple[int, dict[str, str]], await self._redis.hscan(
            self._participants_key(room_id), cursor=start, count=limit))
        members = sorted((Participant.from_dict(json.loads(raw)) for raw in values.values()),
                         key=lambda p: (p.joined_at, p.identity))
        return members, (str(following) if following else None)

    async def record_audience(self, room_id: str, current: int) -> int:
        return int(await self._record_audience(keys=[self._peak_key(room_id)], args=[current]))

    async def append_event(self, room_id: str, event: RoomEvent) -> RoomEvent:
        data = event_to_dict(event)
        del data["seq"]  # the entry id is the sequence number
        seq = await self._append_event(
            keys=[self._room_key(room_id), self._seq_key(room_id), self._events_key(room_id)],
            args=[_dumps(data), event.at, self._max_events, event.at - self._max_age],
        )
        if not seq:
            raise RoomNotFoundError(room_id)
        return event_from_dict({**data, "seq": int(seq)})

    @staticmethod
    def _entry(entry_id: str, fields: dict[str, str]) -> RoomEvent:
        return event_from_dict({**json.loads(fields["e"]), "seq": int(entry_id.split("-")[1])})

    async def read_events(self, room_id: str, after: int) -> EventRange:
        key = self._events_key(room_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._seq_key(room_id))
            pipe.xrange(key, "-", "+", count=1)
            pipe.xrange(key, f"(0-{after}", "+")
            last_raw, first, entries = await pipe.execute()
        last = int(last_raw or 0)
        events = tuple(self._entry(entry_id, fields) for entry_id, fields in entries)
        if not events:
            return EventRange((), last, complete=after == last)
        first_seq = int(first[0][0].split("-")[1])
        return EventRange(events, last, complete=first_seq <= after + 1)

    async def wait_events(self, positions: Mapping[str, int], block: float
                          ) -> dict[str, list[RoomEvent]]:
        if not positions:
            await asyncio.sleep(block)
            return {}
        keys = {self._events_key(room_id): room_id for room_id in positions}
        # BLOCK 0 would wait forever; the reply must come before the socket timeout.
        block_ms = max(1, min(int(block * 1000), int(SOCKET_TIMEOUT * 500)))
        streams: dict[Any, Any] = {key: f"0-{positions[room_id]}" for key, room_id in keys.items()}
        replies = cast(list[tuple[str, list[tuple[str, dict[str, str]]]]] | None,
                       await self._redis.xread(streams, block=block_ms))
        found: dict[str, list[RoomEvent]] = {}
        for key, entries in replies or ():
            found[keys[key]] = [self._entry(entry_id, fields) for entry_id, fields in entries]
        return found

    async def put_link(self, link: LinkRecord) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._link_key(link.token_id), _dumps(link.to_dict()),
                     exat=max(1, int(link.expires_at) + 1))
            pipe.zadd(self._room_links_key(link.room), {link.token_id: link.issued_at})
            await pipe.execute()

    async def list_links(self, room_id: str, now: float) -> list[LinkRecord]:
        index = self._room_links_key(room_id)
        token_ids = cast(list[str], await self._redis.zrevrange(index, 0, -1))
        links: list[LinkRecord] = []
        gone: list[str] = []
        for start in range(0, len(token_ids), MGET_BATCH):
            batch = token_ids[start : start + MGET_BATCH]
            values = cast(list[str | None],
                          await self._redis.mget([self._link_key(t) for t in batch]))
            for token_id, raw in zip(batch, values, strict=True):
                if raw is None:
                    gone.append(token_id)  # expired: its record went with it
                    continue
                link = LinkRecord.from_dict(json.loads(raw))
                if link.expires_at > now:
                    links.append(link)
        if gone:
            await self._redis.zrem(index, *gone)
        return links

    async def revoke_link(self, token_id: str, now: float) -> LinkRecord | None:
        raw = await self._revoke_link(keys=[self._link_key(token_id)], args=[now])
        return None if raw is None else LinkRecord.from_dict(json.loads(raw))

    async def revoked(self, token_ids: Collection[str]) -> set[str]:
        ids = list(token_ids)
        found: set[str] = set()
        for start in range(0, len(ids), MGET_BATCH):
            batch = ids[start : start + MGET_BATCH]
            values = cast(list[str | None],
                          await self._redis.mget([self._link_key(t) for t in batch]))
            found.update(token_id for token_id, raw in zip(batch, values, strict=True)
                         if raw is not None and json.loads(raw).get("revoked"))
        return found

    async def set_stage(self, room_id: str, identity: str, state: StageState | None) -> None:
        if state is None:
            await self._redis.hdel(self._stage_key(room_id), identity)
        else:
            await self._redis.hset(self._stage_key(room_id), identity, state.value)

    async def stage_states(self, room_id: str) -> dict[str, StageState]:
        raw = cast(dict[str, str], await self._redis.hgetall(self._stage_key(room_id)))
        return {identity: StageState(state) for identity, state in raw.items()}

    async def put_question(self, room_id: str, question: Question) -> None:
        await self._redis.hset(self._live_key(room_id, "questions"), question.id,
                               _dumps(question.to_dict()))

    async def get_question(self, room_id: str, question_id: str) -> Question | None:
        raw = await self._redis.hget(self._live_key(room_id, "questions"), question_id)
        return None if raw is None else Question.from_dict(json.loads(raw))

    async def list_questions(self, room_id: str) -> list[Question]:
        values = cast(list[str], await self._redis.hvals(self._live_key(room_id, "questions")))
        return sorted((Question.from_dict(json.loads(raw)) for raw in values),
                      key=lambda q: (q.at, q.id))

    async def toggle_vote(self, room_id: str, question_id: str, identity: str
                          ) -> tuple[Question, bool] | None:
        reply = await self._toggle_vote(
            keys=[self._live_key(room_id, "questions"),
                  self._live_key(room_id, f"votes:{question_id}"),
                  self._live_key(room_id, f"voted:{identity}")],
            args=[question_id, identity])
        if reply is None:
            return None
        raw, voting = reply
        return Question.from_dict(json.loads(raw)), bool(voting)

    async def voted(self, room_id: str, identity: str) -> set[str]:
        return set(cast(set[str], await self._redis.smembers(
            self._live_key(room_id, f"voted:{identity}"))))

    async def add_chat(self, room_id: str, message: ChatMessage) -> None:
        await self._add_chat(keys=[self._live_key(room_id, "chat"),
                                   self._live_key(room_id, "chat-count")],
                             args=[_dumps(message.to_dict()), CHAT_HISTORY])

    async def recent_chat(self, room_id: str) -> list[ChatMessage]:
        values = cast(list[str], await self._redis.lrange(self._live_key(room_id, "chat"), 0, -1))
        return [ChatMessage.from_dict(json.loads(raw)) for raw in reversed(values)]

    async def delete_chat(self, room_id: str, message_id: str) -> bool:
        key = self._live_key(room_id, "chat")
        for raw in cast(list[str], await self._redis.lrange(key, 0, -1)):
            if json.loads(raw)["id"] == message_id:
                return bool(await self._redis.lrem(key, 1, raw))
        return False

    async def chat_count(self, room_id: str) -> int:
        return int(await self._redis.get(self._live_key(room_id, "chat-count")) or 0)

    async def set_chat_muted(self, room_id: str, identity: str, muted: bool) -> None:
        key = self._live_key(room_id, "chat-muted")
        if muted:
            await self._redis.sadd(key, identity)
        else:
            await self._redis.srem(key, identity)

    async def chat_muted(self, room_id: str, identity: str) -> bool:
        return bool(await self._redis.sismember(self._live_key(room_id, "chat-muted"), identity))

    async def note_language(self, room_id: str, language: str) -> None:
        key = self._live_key(room_id, "languages")
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(key, language)
            # A language nobody brought for a day is no longer translated to.
            pipe.expire(key, LANGUAGES_READ_TTL)
            await pipe.execute()

    async def languages_read(self, room_id: str) -> frozenset[str]:
        members = await self._redis.smembers(self._live_key(room_id, "languages"))
        return frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def add_direct(self, message: DirectMessage) -> None:
        key = self._direct_key(message.conversation)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, _dumps(message.to_dict()))
            pipe.ltrim(key, -MAX_DIRECT_MESSAGES, -1)
            pipe.hincrby(self._unread_key(message.recipient), message.sender, 1)
            await pipe.execute()

    async def direct_history(self, a: str, b: str, before: float | None, limit: int
                             ) -> list[DirectMessage]:
        # The newest page is the list's tail; paging back reads the rest (the list is capped).
        start = -limit if before is None else 0
        raw = cast(list[str], await self._redis.lrange(
            self._direct_key(conversation_key(a, b)), start, -1))
        found = [m for m in (DirectMessage.from_dict(json.loads(r)) for r in raw)
                 if before is None or m.at < before][-limit:]
        read_until = {}
        for reader in {a, b}:
            marks = cast(dict[str, str], await self._redis.hgetall(self._read_until_key(reader)))
            read_until.update({(reader, s): float(v) for s, v in marks.items()})
        return [mark_read(m, read_until.get((m.recipient, m.sender))) for m in found]

    async def unread_direct(self, reader: str) -> dict[str, int]:
        raw = cast(dict[str, str], await self._redis.hgetall(self._unread_key(reader)))
        return {s: int(n) for s, n in raw.items() if int(n)}

    async def mark_direct_read(self, reader: str, sender: str, now: float) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._unread_key(reader), sender)
            pipe.hset(self._read_until_key(reader), sender, now)
            await pipe.execute()

    async def get_meeting(self, room_id: str) -> MeetingState | None:
        raw = await self._redis.get(self._live_key(room_id, "meeting"))
        return None if raw is None else MeetingState.from_dict(json.loads(raw))

    async def put_meeting(self, room_id: str, state: MeetingState) -> None:
        await self._redis.set(self._live_key(room_id, "meeting"), _dumps(state.to_dict()))

    async def put_invitation(self, invitation: Invitation, previous: Invitation | None = None
                             ) -> bool:
        parties = invitation.parties()
        written = await self._put_invitation(
            keys=[self._invitation_key(invitation.id),
                  *(self._invitations_key(identity) for identity in parties)],
            args=[_dumps(invitation.to_dict()),
                  "" if previous is None else _dumps(previous.to_dict()),
                  INVITATION_TTL, invitation.id, MAX_LISTED_INVITATIONS])
        return bool(written)

    async def get_invitation(self, invitation_id: str) -> Invitation | None:
        raw = await self._redis.get(self._invitation_key(invitation_id))
        return None if raw is None else Invitation.from_dict(json.loads(raw))

    async def list_invitations(self, identity: str, limit: int) -> list[Invitation]:
        ids = cast(list[str], await self._redis.lrange(self._invitations_key(identity),
                                                       0, limit - 1))
        if not ids:
            return []
        raw = cast(list[str | None], await self._redis.mget(
            [self._invitation_key(i) for i in ids]))
        return [Invitation.from_dict(json.loads(r)) for r in raw if r is not None]

    async def visit_started(self, room_id: str, visit: Visit) -> None:
        await self._visit(keys=[self._live_key(room_id, "visits")],
                          args=[visit.identity, "start", _dumps(visit.to_dict())])

    async def visit_ended(self, room_id: str, identity: str, at: float) -> None:
        await self._visit(keys=[self._live_key(room_id, "visits")], args=[identity, "end", at])

    async def visits(self, room_id: str) -> list[Visit]:
        values = cast(list[str], await self._redis.hvals(self._live_key(room_id, "visits")))
        return [Visit.from_dict(item) for raw in values for item in json.loads(raw)]

    async def write_appointment(self, appointment: Appointment, previous: Appointment | None,
                                *, exclusive: bool) -> AppointmentWrite:
        reply = cast(list[str], await self._write_appointment(
            keys=[self._appointment_key(appointment.id),
                  self._agenda_key(appointment.organizer.identity),
                  self._agenda_key(appointment.counterpart.identity), self._due_key()],
            args=[_dumps(appointment.to_dict()),
                  "" if previous is None else str(previous.version),
                  "1" if exclusive else "0", appointment.start, appointment.end,
                  appointment.id, self._prefix, MAX_DURATION,
                  "1" if appointment.awaits_opening else "0",
                  appointment.end + APPOINTMENT_RETENTION]))
        outcome = WriteOutcome(reply[0])
        found = Appointment.from_dict(json.loads(reply[1])) if len(reply) > 1 else None
        return AppointmentWrite(outcome, found)

    async def get_appointment(self, appointment_id: str) -> Appointment | None:
        raw = await self._redis.get(self._appointment_key(appointment_id))
        return None if raw is None else Appointment.from_dict(json.loads(raw))

    async def _appointments(self, index: str, low: str, high: str) -> list[Appointment]:
        """The appointments an index lists with a start in (low, high), forgetting those
        gone (past their retention)."""
        ids = cast(list[str], await self._redis.zrangebyscore(index, low, high))
        found: list[Appointment] = []
        gone: list[str] = []
        for start in range(0, len(ids), MGET_BATCH):
            batch = ids[start : start + MGET_BATCH]
            values = cast(list[str | None], await self._redis.mget(
                [self._appointment_key(i) for i in batch]))
            for appointment_id, raw in zip(batch, values, strict=True):
                if raw is None:
                    gone.append(appointment_id)
                else:
                    found.append(Appointment.from_dict(json.loads(raw)))
        if gone:
            await self._redis.zrem(index, *gone)
        return sorted(found, key=lambda a: (a.start, a.id))

    async def list_appointments(self, identity: str, low: float | None, high: float | None
                                ) -> list[Appointment]:
        found = await self._appointments(
            self._agenda_key(identity),
            "-inf" if low is None else f"({low - MAX_DURATION}",
            "+inf" if high is None else f"({high}")
        return [a for a in found if in_window(a, low, high)]

    async def due_appointments(self, now: float, until: float) -> list[Appointment]:
        # Whatever started a longest slot ago has ended: it will never open (a missed one).
        await self._redis.zremrangebyscore(self._due_key(), "-inf", now - MAX_DURATION)
        found = await self._appointments(self._due_key(), f"({now - MAX_DURATION}",
                                         f"({until}")
        return [a for a in found if a.awaits_opening and a.end > now]
