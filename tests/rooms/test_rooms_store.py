"""One suite for every Store: MemoryStore and RedisStore must behave the same."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from ports import free_port

from rooms.access import LinkRecord, StageState
from rooms.appointments import Appointment, Party, accept, cancel, opened, propose
from rooms.events import (
    ParticipantJoined,
    ParticipantLeft,
    RoomStatusChanged,
    event_from_dict,
    event_to_dict,
)
from rooms.invitations import answer as invitation_answer
from rooms.invitations import new_invitation
from rooms.live import CHAT_HISTORY, ChatMessage, Question, Visit
from rooms.messages import new_message
from rooms.model import (
    Grant,
    Participant,
    Role,
    Room,
    RoomKind,
    RoomStatus,
    Track,
    ValidationError,
)
from rooms.moderation import Actor, enter, initial_state
from rooms.presence import Presence, apply, change
from rooms.redis_store import RedisStore
from rooms.store import (
    MemoryStore,
    RoomExistsError,
    RoomNotFoundError,
    Store,
    WriteOutcome,
)

LOG_MAX_EVENTS = 5
LOG_MAX_AGE = 60.0


@pytest_asyncio.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        memory = MemoryStore(max_events=LOG_MAX_EVENTS, max_age=LOG_MAX_AGE)
        yield memory
        await memory.close()
    else:
        url = request.getfixturevalue("redis_store_url")
        shared = RedisStore(url, prefix="test", max_events=LOG_MAX_EVENTS, max_age=LOG_MAX_AGE)
        yield shared
        await shared.close()


def room(room_id: str, created_at: float = 1.0, **changes: object) -> Room:
    fields: dict[str, object] = {"id": room_id, "name": f"Room {room_id}",
                                 "kind": RoomKind.MEETING, "created_at": created_at}
    fields.update(changes)
    return Room(**fields)  # type: ignore[arg-type]


def person(
    identity: str, joined_at: float = 1.0, node_id: str = "n1", **changes: object
) -> Participant:
    fields: dict[str, object] = {
        "identity": identity, "name": identity.title(), "role": Role.BUYER,
        "grants": frozenset({Grant.SUBSCRIBE}), "joined_at": joined_at, "node_id": node_id,
    }
    fields.update(changes)
    return Participant(**fields)  # type: ignore[arg-type]


# Rooms ---------------------------------------------------------------------------------------


async def test_ping(store: Store) -> None:
    assert await store.ping() is True


async def test_create_and_get(store: Store) -> None:
    assert await store.get_room("a") is None
    await store.create_room(room("a"))
    assert await store.get_room("a") == room("a")


async def test_duplicate_id_refused_and_original_kept(store: Store) -> None:
    await store.create_room(room("a", name="first"))
    with pytest.raises(RoomExistsError):
        await store.create_room(room("a", name="second"))
    stored = await store.get_room("a")
    assert stored is not None and stored.name == "first"
    assert [r.id for r in await store.list_rooms()] == ["a"]


async def test_save_room(store: Store) -> None:
    await store.create_room(room("a"))
    live = room("a").with_status(RoomStatus.LIVE, now=5.0)
    await store.save_room(live)
    assert await store.get_room("a") == live
    assert await store.list_rooms(status=RoomStatus.LIVE) == [live]


async def test_save_missing_room(store: Store) -> None:
    with pytest.raises(RoomNotFoundError):
        await store.save_room(room("ghost"))
    assert await store.get_room("ghost") is None
    assert await store.list_rooms() == []


async def test_round_trip_every_room_field(store: Store) -> None:
    full = Room(
        id="booth-7_A", name="青岛啤酒 生产线直播", kind=RoomKind.LIVESTREAM,
        category="食品饮料", owner="exhibitor@example.com", scheduled_start=1_700_000_000.5,
        scheduled_end=1_700_003_600.25, status=RoomStatus.ENDED, record=True,
        languages=("zh-CN", "en", "ko"), created_at=1_699_999_999.125,
        started_at=1_700_000_001.0, ended_at=1_700_003_000.0,
    )
    bare = Room(id="bare", name="x", kind=RoomKind.MEETING)  # every optional left at None/""
    await store.create_room(full)
    await store.create_room(bare)
    assert await store.get_room(full.id) == full
    assert await store.get_room(bare.id) == bare
    got = await store.get_room(bare.id)
    assert got is not None and got.scheduled_start is None and got.ended_at is None


async def test_list_rooms_oldest_first(store: Store) -> None:
    for room_id, created in [("c", 3.0), ("a", 1.0), ("b", 2.0), ("z", 0.5), ("b2", 2.0)]:
        await store.create_room(room(room_id, created))
    # equal created_at: by id
    assert [r.id for r in await store.list_rooms()] == ["z", "a", "b", "b2", "c"]


async def test_list_rooms_filters(store: Store) -> None:
    rooms = [
        room("m-live-food", 1.0, status=RoomStatus.LIVE, category="food"),
        room("s-sched-food", 2.0, kind=RoomKind.LIVESTREAM, category="food"),
        room("s-live-tools", 3.0, kind=RoomKind.LIVESTREAM, status=RoomStatus.LIVE,
             category="tools"),
        room("m-ended-tools", 4.0, status=RoomStatus.ENDED, category="tools"),
        room("s-live-food", 5.0, kind=RoomKind.LIVESTREAM, status=RoomStatus.LIVE,
             category="food"),
        room("m-sched-none", 6.0),
    ]
    for r in reversed(rooms):
        await store.create_room(r)

    async def ids(**filters: object) -> list[str]:
        return [r.id for r in await store.list_rooms(**filters)]  # type: ignore[arg-type]

    assert await ids() == [r.id for r in rooms]
    assert await ids(kind=RoomKind.MEETING) == ["m-live-food", "m-ended-tools", "m-sched-none"]
    assert await ids(kind=RoomKind.LIVESTREAM) == ["s-sched-food", "s-live-tools", "s-live-food"]
    assert await ids(status=RoomStatus.LIVE) == ["m-live-food", "s-live-tools", "s-live-food"]
    assert await ids(status=RoomStatus.SCHEDULED) == ["s-sched-food", "m-sched-none"]
    assert await ids(status=RoomStatus.ENDED) == ["m-ended-tools"]
    assert await ids(category="food") == ["m-live-food", "s-sched-food", "s-live-food"]
    assert await ids(category="") == ["m-sched-none"]
    assert await ids(category="nothing") == []
    assert await ids(kind=RoomKind.LIVESTREAM, status=RoomStatus.LIVE) == [
        "s-live-tools", "s-live-food"
    ]
    assert await ids(kind=RoomKind.LIVESTREAM, category="food") == ["s-sched-food", "s-live-food"]
    assert await ids(status=RoomStatus.LIVE, category="food") == ["m-live-food", "s-live-food"]
    assert await ids(
        kind=RoomKind.LIVESTREAM, status=RoomStatus.LIVE, category="food"
    ) == ["s-live-food"]
    assert await ids(kind=RoomKind.MEETING, status=RoomStatus.LIVE, category="tools") == []


async def test_list_many_rooms(store: Store) -> None:
    # More rooms than one MGET batch in RedisStore.
    for i in range(1234):
        await store.create_room(room(f"r{i:05d}", float(i), category="odd" if i % 2 else "even"))
    listed = await store.list_rooms(category="odd")
    assert [r.id for r in listed] == [f"r{i:05d}" for i in range(1, 1234, 2)]
    assert len(await store.list_rooms()) == 1234


# Participants --------------------------------------------------------------------------------


async def test_participants_put_get_list_in_join_order(store: Store) -> None:
    await store.create_room(room("a"))
    await store.put_participant("a", person("carol", 3.0))
    await store.put_participant("a", person("alice", 1.0))
    await store.put_participant("a", person("bob", 2.0))
    await store.put_participant("a", person("aaron", 2.0))  # same time: by identity
    members = await store.list_participants("a")
    assert [p.identity for p in members] == ["alice", "aaron", "bob", "carol"]
    assert await store.get_participant("a", "bob") == person("bob", 2.0)
    assert await store.get_participant("a", "nobody") is None
    assert await store.list_participants("other") == []


async def test_put_replaces_same_identity(store: Store) -> None:
    await store.create_room(room("a"))
    await store.put_participant("a", person("alice", 1.0))
    moved = person("alice", 1.0, tracks=(Track("t1", "video", "VP8"),), node_id="n2")
    await store.put_participant("a", moved)
    assert await store.list_participants("a") == [moved]
    # It moved to n2: n1 no longer holds it, n2 does.
    assert await store.remove_node_participants("n1") == []
    assert await store.remove_node_participants("n2") == [("a", moved)]


async def test_remove_participant(store: Store) -> None:
    await store.create_room(room("a"))
    await store.put_participant("a", person("alice"))
    await store.put_participant("a", person("bob", 2.0))
    assert await store.remove_participant("a", "alice") == person("alice")
    assert await store.remove_participant("a", "alice") is None
    assert await store.remove_participant("missing-room", "bob") is None
    assert [p.identity for p in await store.list_participants("a")] == ["bob"]
    # Removed participants are forgotten by their node too.
    assert await store.remove_node_participants("n1") == [("a", person("bob", 2.0))]


async def test_put_participant_into_missing_room(store: Store) -> None:
    with pytest.raises(RoomNotFoundError):
        await store.put_participant("ghost", person("alice"))
    assert await store.list_participants("ghost") == []
    assert await store.remove_node_participants("n1") == []


async def test_remove_node_participants_only_that_node(store: Store) -> None:
    await store.create_room(room("a"))
    await store.create_room(room("b", 2.0))
    await store.put_participant("a", person("alice", 1.0, node_id="n1"))
    await store.put_participant("a", person("bob", 2.0, node_id="n2"))
    await store.put_participant("b", person("carol", 3.0, node_id="n1"))
    await store.put_participant("b", person("alice", 4.0, node_id="n2"))  # same identity, b
    removed = await store.remove_node_participants("n1")
    assert sorted(removed, key=lambda pair: pair[0]) == [
        ("a", person("alice", 1.0, node_id="n1")),
        ("b", person("carol", 3.0, node_id="n1")),
    ]
    assert [p.identity for p in await store.list_participants("a")] == ["bob"]
    assert [p.identity for p in await store.list_participants("b")] == ["alice"]
    assert await store.remove_node_participants("n1") == []
    assert await store.remove_node_participants("unknown") == []
    assert len(await store.remove_node_participants("n2")) == 2
    assert await store.list_participants("a") == []


async def test_round_trip_every_participant_field(store: Store) -> None:
    await store.create_room(room("a"))
    full = Participant(
        identity="wang.wei@factory-3", name="王伟 (工厂三号线)", role=Role.HOST,
        grants=frozenset(Grant), joined_at=1_700_000_000.75, language="zh-CN",
        node_id="node-2",
        tracks=(
            Track("mic", "audio", "opus", "microphone"),
            Track("cam", "video", "H264", "camera"),
            Track("enc", "video", "", "encoder"),
        ),
    )
    bare = Participant(identity="v1", name="访客", role=Role.VISITOR, grants=frozenset(),
                       joined_at=0.0)
    await store.put_participant("a", full)
    await store.put_participant("a", bare)
    assert await store.get_participant("a", full.identity) == full
    assert await store.get_participant("a", bare.identity) == bare
    assert await store.list_participants("a") == [bare, full]
    assert await store.remove_node_participants("") == [("a", bare)]


# Redis only ----------------------------------------------------------------------------------

@pytest.mark.redis
async def test_redis_ping_false_when_unreachable() -> None:
    unreachable = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    try:
        started = time.monotonic()
        assert await unreachable.ping() is False
        assert time.monotonic() - started < 3.0
    finally:
        await unreachable.close()


@pytest.mark.redis
async def test_redis_two_nodes_share_state(redis_store_url: str) -> None:
    node1 = RedisStore(redis_store_url)
    node2 = RedisStore.from_url(redis_store_url)
    try:
        await node1.create_room(room("shared", name="展位 12"))
        assert await node2.get_room("shared") == room("shared", name="展位 12")
        with pytest.raises(RoomExistsError):
            await node2.create_room(room("shared"))
        await node2.put_participant("shared", person("bob", node_id="node-2"))
        await node1.put_participant("shared", person("alice", 0.5, node_id="node-1"))
        assert [p.identity for p in await node1.list_participants("shared")] == ["alice", "bob"]
        await node2.save_room(room("shared").with_status(RoomStatus.LIVE, 9.0))
        assert [r.id for r in await node1.list_rooms(status=RoomStatus.LIVE)] == ["shared"]
        # node-2 died: node1 cleans up after it.
        assert await node1.remove_node_participants("node-2") == [
            ("shared", person("bob", node_id="node-2"))
        ]
        assert [p.identity for p in await node2.list_participants("shared")] == ["alice"]
    finally:
        await node1.close()
        await node2.close()


@pytest.mark.redis
async def test_redis_prefixes_are_separate(redis_store_url: str) -> None:
    one = RedisStore(redis_store_url, prefix="one")
    two = RedisStore(redis_store_url, prefix="two")
    try:
        await one.create_room(room("a"))
        await two.create_room(room("a"))
        await one.put_participant("a", person("alice"))
        assert await two.list_participants("a") == []
        assert await two.remove_node_participants("n1") == []
        assert len(await one.list_participants("a")) == 1
    finally:
        await one.close()
        await two.close()


@pytest.mark.redis
async def test_redis_concurrent_create_one_winner(redis_store_url: str) -> None:
    stores = [RedisStore(redis_store_url) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(stores[i % 4].create_room(room("race", name=f"n{i}")) for i in range(20)),
            return_exceptions=True,
        )
        winners = [i for i, r in enumerate(results) if r is None]
        assert len(winners) == 1
        assert all(isinstance(r, RoomExistsError) for r in results if r is not None)
        stored = await stores[0].get_room("race")
        assert stored is not None and stored.name == f"n{winners[0]}"
        assert [r.id for r in await stores[1].list_rooms()] == ["race"]
    finally:
        for s in stores:
            await s.close()


# The event log -------------------------------------------------------------------------------


async def test_appended_events_are_numbered_and_read_back_in_order(store: Store) -> None:
    await store.create_room(room("log"))
    alice = person("alice", tracks=(Track(id="t1", kind="video", codec="H264",
                                          profile="high"),))
    first = await store.append_event("log", ParticipantJoined(alice.public(), at=10.0))
    second = await store.append_event("log", ParticipantLeft("alice", at=11.0))
    assert (first.seq, second.seq) == (1, 2)
    assert first == ParticipantJoined(alice.public(), at=10.0, seq=1)
    everything = await store.read_events("log", 0)
    assert everything.events == (first, second)
    assert everything.last_seq == 2 and everything.complete
    since_first = await store.read_events("log", 1)
    assert since_first.events == (second,) and since_first.complete
    up_to_date = await store.read_events("log", 2)
    assert up_to_date.events == () and up_to_date.complete
    # A number beyond the log's (a room since re-created) needs a snapshot.
    assert not (await store.read_events("log", 7)).complete
    with pytest.raises(RoomNotFoundError):
        await store.append_event("missing", ParticipantLeft("x", at=1.0))


async def test_the_log_is_trimmed_by_count_and_by_age(store: Store) -> None:
    await store.create_room(room("busy"))
    for i in range(LOG_MAX_EVENTS + 3):
        await store.append_event("busy", ParticipantLeft(f"p{i}", at=100.0 + i))
    kept = await store.read_events("busy", 0)
    assert [e.seq for e in kept.events] == list(range(4, LOG_MAX_EVENTS + 4))
    assert not kept.complete  # 1..3 are gone: the reader needs a snapshot
    assert (await store.read_events("busy", 3)).complete
    assert not (await store.read_events("busy", 2)).complete
    # An hour later, the next append drops everything older than the log's age.
    late = await store.append_event("busy", ParticipantLeft("late", at=100.0 + LOG_MAX_AGE + 10))
    assert [e.seq for e in (await store.read_events("busy", 0)).events] == [late.seq]
    assert (await store.read_events("busy", late.seq - 1)).complete


async def test_wait_events_returns_what_follows_each_position(store: Store) -> None:
    await store.create_room(room("r1"))
    await store.create_room(room("r2"))
    assert await store.wait_events({"r1": 0, "r2": 0}, block=0.05) == {}
    waiter = asyncio.ensure_future(store.wait_events({"r1": 0, "r2": 0}, block=2.0))
    await asyncio.sleep(0.05)
    appended = await store.append_event("r2", ParticipantLeft("bob", at=5.0))
    assert await asyncio.wait_for(waiter, 3) == {"r2": [appended]}
    more = await store.append_event("r2", ParticipantLeft("carol", at=6.0))
    assert await store.wait_events({"r1": 0, "r2": 1}, block=0.05) == {"r2": [more]}
    assert await store.wait_events({"r1": 0, "r2": 2}, block=0.05) == {}


async def test_the_same_events_give_the_same_presence_in_any_store(store: Store) -> None:
    meeting = room("deal", status=RoomStatus.LIVE)
    await store.create_room(meeting)
    alice, bob = person("alice", session_id="s1"), person("bob", joined_at=2.0)
    alice_speaking = person("alice", session_id="s1",
                            tracks=(Track(id="a", kind="audio", codec="opus"),))
    steps = [(None, alice), (None, bob), (alice, alice_speaking), (bob, None)]
    for before, after in steps:
        event = change(meeting.kind, before, after, now=20.0)
        assert event is not None
        await store.append_event("deal", event)
    await store.append_event("deal", RoomStatusChanged(meeting.with_status(
        RoomStatus.ENDED, now=30.0), at=30.0))
    state = Presence()
    for event in (await store.read_events("deal", 0)).events:
        state = apply(state, event)
    assert state.seq == 5 and state.identities() == ["alice"]
    assert state.listed[0].tracks[0].codec == "opus"
    assert state.status == RoomStatus.ENDED
    # Every stored event has one JSON shape, and it round-trips.
    for event in (await store.read_events("deal", 0)).events:
        assert event_from_dict(event_to_dict(event)) == event


async def test_counting_paging_and_the_audience_peak(store: Store) -> None:
    await store.create_room(room("show", kind=RoomKind.LIVESTREAM))
    for i in range(12):
        await store.put_participant("show", person(f"v{i:02}", joined_at=float(i)))
    assert await store.count_participants("show") == 12
    seen: list[str] = []
    cursor: str | None = None
    for step in range(20):
        page, cursor = await store.page_participants("show", cursor, 5)
        seen += [p.identity for p in page]
        if step == 0:  # someone already listed leaves: nobody after them is skipped
            await store.remove_participant("show", page[0].identity)
        if cursor is None:
            break
    assert set(seen) == {f"v{i:02}" for i in range(12)}
    with pytest.raises(ValidationError):
        await store.page_participants("show", "not-a-cursor", 5)
    assert await store.record_audience("show", 12) == 12
    assert await store.record_audience("show", 7) == 12
    assert await store.record_audience("show", 15) == 15


# Links and the stage ---------------------------------------------------------------------------


def a_link(token_id: str, room_id: str = "r", issued_at: float = 100.0,
           expires_at: float | None = None) -> LinkRecord:
    return LinkRecord(token_id=token_id, room=room_id, identity=f"id-{token_id}",
                      name="Wang 王", role=Role.BUYER, issued_at=issued_at,
                      expires_at=expires_at if expires_at is not None else time.time() + 600)


async def test_links_are_listed_newest_first_and_revoked(store: Store) -> None:
    now = time.time()
    await store.put_link(a_link("a1", issued_at=now - 30))
    await store.put_link(a_link("b2", issued_at=now - 20))
    await store.put_link(a_link("c3", room_id="other", issued_at=now - 10))
    await store.put_link(a_link("d4", issued_at=now - 40, expires_at=now + 1))
    assert [link.token_id for link in await store.list_links("r", now)] == ["b2", "a1", "d4"]
    # Expired links are not listed, and cannot be revoked any more (they let nobody in).
    assert [link.token_id for link in await store.list_links("r", now + 2)] == ["b2", "a1"]
    assert await store.revoke_link("d4", now + 2) is None
    revoked = await store.revoke_link("a1", now)
    assert revoked is not None and revoked.revoked and revoked.name == "Wang 王"
    assert await store.revoke_link("zz", now) is None
    assert await store.revoked(["a1", "b2", "c3", "zz"]) == {"a1"}
    assert await store.revoked([]) == set()
    listed = {link.token_id: link.revoked for link in await store.list_links("r", now)}
    assert listed == {"a1": True, "b2": False, "d4": False}


async def test_stage_states(store: Store) -> None:
    await store.create_room(room("r", kind=RoomKind.LIVESTREAM))
    assert await store.stage_states("r") == {}
    await store.set_stage("r", "wang", StageState.INVITED)
    await store.set_stage("r", "li", StageState.INVITED)
    await store.set_stage("r", "wang", StageState.ON)
    await store.set_stage("r", "li", None)
    assert await store.stage_states("r") == {"wang": StageState.ON}
    await store.set_stage("r", "nobody", None)
    assert await store.stage_states("other") == {}


# Questions, chat and visits --------------------------------------------------------------------


async def test_questions_and_votes(store: Store) -> None:
    await store.create_room(room("r", kind=RoomKind.LIVESTREAM))
    first = Question("q1", "wang", "Wang", "MOQ for 5 kW pumps?", at=10.0, offset=None)
    second = Question("q2", "li", "Li", "Lead time to Hamburg?", at=5.0, offset=2.5)
    await store.put_question("r", first)
    await store.put_question("r", second)
    assert [q.id for q in await store.list_questions("r")] == ["q2", "q1"]
    assert await store.get_question("r", "q2") == second
    assert await store.toggle_vote("r", "q1", "li") == (dataclasses.replace(first, votes=1), True)
    assert (await store.toggle_vote("r", "q1", "anna"))[0].votes == 2  # type: ignore[index]
    # A second vote by the same identity takes it back.
    again = await store.toggle_vote("r", "q1", "li")
    assert again is not None and again[0].votes == 1 and again[1] is False
    assert await store.voted("r", "anna") == {"q1"} and await store.voted("r", "li") == set()
    assert await store.toggle_vote("r", "nope", "li") is None
    # An edit keeps the count the votes made.
    answered = dataclasses.replace((await store.get_question("r", "q1")), answered=True)  # type: ignore[arg-type]
    await store.put_question("r", answered)
    assert (await store.get_question("r", "q1")) == answered and answered.votes == 1


async def test_chat_keeps_the_last_messages_and_counts_all(store: Store) -> None:
    await store.create_room(room("r"))
    for i in range(CHAT_HISTORY + 5):
        await store.add_chat("r", ChatMessage(f"m{i}", "wang", "Wang", f"hello {i}", float(i)))
    recent = await store.recent_chat("r")
    assert len(recent) == CHAT_HISTORY
    assert (recent[0].id, recent[-1].id) == ("m5", f"m{CHAT_HISTORY + 4}")
    assert await store.chat_count("r") == CHAT_HISTORY + 5
    assert await store.delete_chat("r", "m10") and not await store.delete_chat("r", "m10")
    assert "m10" not in {m.id for m in await store.recent_chat("r")}
    assert not await store.chat_muted("r", "wang")
    await store.set_chat_muted("r", "wang", True)
    assert await store.chat_muted("r", "wang") and not await store.chat_muted("r", "li")
    await store.set_chat_muted("r", "wang", False)
    assert not await store.chat_muted("r", "wang")


async def test_visits_open_and_close(store: Store) -> None:
    await store.create_room(room("r", kind=RoomKind.LIVESTREAM))
    await store.visit_started("r", Visit("wang", "Wang", Role.BUYER, 100.0))
    await store.visit_started("r", Visit("wang", "Wang", Role.BUYER, 105.0))  # already in
    await store.visit_started("r", Visit("li", "Li", Role.VISITOR, 110.0))
    await store.visit_ended("r", "wang", 130.0)
    await store.visit_ended("r", "wang", 140.0)  # nothing open: nothing changes
    await store.visit_started("r", Visit("wang", "Wang", Role.BUYER, 150.0))
    visits = sorted(await store.visits("r"), key=lambda v: (v.identity, v.joined_at))
    assert visits == [Visit("li", "Li", Role.VISITOR, 110.0),
                      Visit("wang", "Wang", Role.BUYER, 100.0, 130.0),
                      Visit("wang", "Wang", Role.BUYER, 150.0)]


async def test_a_meetings_moderation_round_trips_and_a_new_room_starts_clean(
        store: Store) -> None:
    await store.create_room(Room(id="deal", name="Deal", kind=RoomKind.MEETING))
    assert await store.get_meeting("deal") is None
    state, _ = enter(initial_state(lobby=True), identity="li", name="Li",
                     actor=Actor.PARTICIPANT, now=5.0)
    state = dataclasses.replace(state, muted={"wu": frozenset({"audio"})}, hands=("wu",))
    await store.put_meeting("deal", state)
    assert await store.get_meeting("deal") == state


async def test_direct_messages_are_kept_for_both_sides_with_unread_counts(store: Store) -> None:
    sent = [new_message("buyer-li", "Li", "valve-co", f"question {n}", 100.0 + n)
            for n in range(5)]
    for message in sent:
        await store.add_direct(message)
    await store.add_direct(new_message("valve-co", "Valve", "buyer-li", "answer", 110.0))
    assert await store.unread_direct("valve-co") == {"buyer-li": 5}
    assert await store.unread_direct("buyer-li") == {"valve-co": 1}
    both = await store.direct_history("valve-co", "buyer-li", None, 50)
    assert [m.text for m in both] == [*(m.text for m in sent), "answer"]
    assert await store.direct_history("buyer-li", "valve-co", None, 2) == both[-2:]
    assert [m.text for m in await store.direct_history("buyer-li", "valve-co", 102.0, 50)] == [
        "question 0", "question 1"]
    await store.mark_direct_read("valve-co", "buyer-li", 103.0)
    assert await store.unread_direct("valve-co") == {}
    read = [m.read for m in await store.direct_history("valve-co", "buyer-li", None, 50)]
    assert read == [True, True, True, True, False, False]


async def test_invitations_are_listed_for_everyone_and_changed_once(store: Store) -> None:
    call = new_invitation(inviter="ana", inviter_name="Ana", inviter_role=Role.BUYER,
                          to=[{"identity": "bo", "name": "Bo"}], now=10.0)
    meeting = new_invitation(inviter="bo", inviter_name="Bo", inviter_role=Role.EXHIBITOR,
                             to=[{"identity": "ana"}, {"identity": "cy"}], now=20.0)
    assert await store.put_invitation(call)
    assert await store.put_invitation(meeting)
    assert not await store.put_invitation(call)  # its id is taken
    declined = invitation_answer(call, "bo", accept=False, now=12.0)
    accepted = invitation_answer(call, "bo", accept=True, now=12.0)
    assert await store.put_invitation(declined, call)  # a change is not listed twice
    # Another node's answer made from the same read comes second and is refused.
    assert not await store.put_invitation(accepted, call)
    assert [i.id for i in await store.list_invitations("ana", 10)] == [meeting.id, call.id]
    assert await store.list_invitations("bo", 10) == [meeting, declined]
    assert await store.list_invitations("cy", 1) == [meeting]
    assert await store.list_invitations("dee", 10) == []
    assert await store.get_invitation(call.id) == declined
    assert await store.get_invitation("nope") is None


# Appointments --------------------------------------------------------------------------------

SLOT_NOW = 1_800_000_000.0
HOUR = 3600


def slot(appointment_id: str, organizer: str, counterpart: str, start_hour: float,
         hours: float = 1.0) -> Appointment:
    start = SLOT_NOW + start_hour * HOUR
    return propose(appointment_id, Party(organizer, organizer.title(), Role.BUYER),
                   counterpart, None, f"Meeting {appointment_id}", start, start + hours * HOUR,
                   SLOT_NOW)


def answered(offer: Appointment) -> Appointment:
    return accept(offer, Party(offer.counterpart.identity, "Answerer", Role.EXHIBITOR),
                  SLOT_NOW)


async def booked(store: Store, offer: Appointment) -> Appointment:
    """Proposed and accepted, as the API does it."""
    assert (await store.write_appointment(offer, None, exclusive=True)).outcome == \
        WriteOutcome.WRITTEN
    yes = answered(offer)
    assert (await store.write_appointment(yes, offer, exclusive=True)).outcome == \
        WriteOutcome.WRITTEN
    return yes


async def test_appointments_are_written_over_their_version_and_listed_for_both_sides(
    store: Store,
) -> None:
    offer = slot("a1", "buyer-li", "valve-co", 2)
    assert (await store.write_appointment(offer, None, exclusive=True)).outcome == \
        WriteOutcome.WRITTEN
    # A second create of the id, or a change made from a stale read, is not written.
    assert (await store.write_appointment(offer, None, exclusive=True)).outcome == \
        WriteOutcome.CHANGED
    yes = answered(offer)
    assert (await store.write_appointment(yes, offer, exclusive=True)).outcome == \
        WriteOutcome.WRITTEN
    late = cancel(offer, "buyer-li", SLOT_NOW)
    assert (await store.write_appointment(late, offer, exclusive=False)).outcome == \
        WriteOutcome.CHANGED
    assert await store.get_appointment("a1") == yes
    assert await store.get_appointment("nope") is None
    later = slot("a2", "pump-co", "buyer-li", 5)
    await store.write_appointment(later, None, exclusive=False)
    assert await store.list_appointments("buyer-li", None, None) == [yes, later]
    assert await store.list_appointments("valve-co", None, None) == [yes]
    assert await store.list_appointments("nobody", None, None) == []
    # The window is [low, high): a slot that ends at low or starts at high is outside it.
    start, end = yes.start, yes.end
    assert await store.list_appointments("buyer-li", end, None) == [later]
    assert await store.list_appointments("buyer-li", end - 1, start + 1) == [yes]
    assert await store.list_appointments("buyer-li", None, start) == []


async def test_an_accepted_appointment_of_either_side_refuses_what_overlaps_it(
    store: Store,
) -> None:
    ten = await booked(store, slot("ten", "buyer-li", "valve-co", 2))
    # The exhibitor is busy then: another buyer's proposal half an hour in is refused.
    other_buyer = await store.write_appointment(slot("b", "buyer-wu", "valve-co", 2.5), None,
                                                exclusive=True)
    assert (other_buyer.outcome, other_buyer.conflict) == (WriteOutcome.OVERLAP, ten)
    # So is the buyer, with anyone; back to back is fine.
    assert (await store.write_appointment(slot("c", "buyer-li", "pump-co", 1.5), None,
                                          exclusive=True)).outcome == WriteOutcome.OVERLAP
    after = slot("d", "buyer-li", "pump-co", 3)
    assert (await store.write_appointment(after, None, exclusive=True)).outcome == \
        WriteOutcome.WRITTEN
    # A proposal that overlaps only proposals is fine; accepting it while one of them was
    # accepted meanwhile is not.
    first = slot("e", "buyer-wu", "pump-co", 3.5)
    second = slot("f", "buyer-zhao", "pump-co", 3.5)
    for offer in (first, second):
        assert (await store.write_appointment(offer, None, exclusive=True)).outcome == \
            WriteOutcome.WRITTEN
    assert (await store.write_appointment(answered(first), first, exclusive=True)).outcome \
        == WriteOutcome.WRITTEN
    refused = await store.write_appointment(answered(second), second, exclusive=True)
    assert (refused.outcome, refused.conflict) == (WriteOutcome.OVERLAP, answered(first))
    # Cancelled, it is in nobody's way.
    off = cancel(ten, "valve-co", SLOT_NOW)
    assert (await store.write_appointment(off, ten, exclusive=False)).outcome == \
        WriteOutcome.WRITTEN
    assert (await store.write_appointment(slot("b", "buyer-wu", "valve-co", 2.5), None,
                                          exclusive=True)).outcome == WriteOutcome.WRITTEN


async def test_due_appointments_are_the_accepted_ones_not_opened_yet(store: Store) -> None:
    soon = await booked(store, slot("soon", "buyer-li", "valve-co", 1))
    later = await booked(store, slot("later", "buyer-li", "valve-co", 4))
    await store.write_appointment(slot("asked", "buyer-wu", "valve-co", 1), None,
                                  exclusive=False)
    assert await store.due_appointments(SLOT_NOW, SLOT_NOW + 2 * HOUR) == [soon]
    assert await store.due_appointments(SLOT_NOW, SLOT_NOW + 5 * HOUR) == [soon, later]
    # Under way it is still due; once it ends, or its meeting is open, it is not.
    assert await store.due_appointments(SLOT_NOW + 1.5 * HOUR, SLOT_NOW + 2 * HOUR) == [soon]
    assert await store.due_appointments(SLOT_NOW + 2 * HOUR, SLOT_NOW + 3 * HOUR) == []
    done = opened(soon, "room-1")
    assert (await store.write_appointment(done, soon, exclusive=False)).outcome == \
        WriteOutcome.WRITTEN
    assert await store.due_appointments(SLOT_NOW, SLOT_NOW + 5 * HOUR) == [later]
    assert await store.get_appointment("soon") == done


@pytest.mark.redis
async def test_redis_concurrent_accepts_of_overlapping_slots_one_winner(
    redis_store_url: str,
) -> None:
    stores = [RedisStore(redis_store_url) for _ in range(4)]
    try:
        offers = [slot(f"o{i}", f"buyer-{i}", "valve-co", 2 + i / 10) for i in range(8)]
        for offer in offers:
            await stores[0].write_appointment(offer, None, exclusive=True)
        results = await asyncio.gather(*(
            stores[i % 4].write_appointment(answered(offer), offer, exclusive=True)
            for i, offer in enumerate(offers)))
        outcomes = [r.outcome for r in results]
        assert outcomes.count(WriteOutcome.WRITTEN) == 1
        assert outcomes.count(WriteOutcome.OVERLAP) == 7
        listed = await stores[1].list_appointments("valve-co", None, None)
        assert sum(a.status == "accepted" for a in listed) == 1
    finally:
        for s in stores:
            await s.close()
