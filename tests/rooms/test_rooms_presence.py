"""Presence as a fold over room events: pure, no store, time passed in."""

from __future__ import annotations

import dataclasses

import pytest

from rooms.events import ParticipantJoined, ParticipantLeft, ParticipantUpdated
from rooms.model import Grant, Participant, Role, Room, RoomKind, Track
from rooms.presence import Presence, SequenceGap, apply, change


def person(identity: str, joined_at: float = 1.0, **changes: object) -> Participant:
    fields: dict[str, object] = {
        "identity": identity, "name": identity.title(), "role": Role.BUYER,
        "grants": frozenset({Grant.SUBSCRIBE}), "joined_at": joined_at, "node_id": "n1",
    }
    fields.update(changes)
    return Participant(**fields)  # type: ignore[arg-type]


def room(room_id: str) -> Room:
    return Room(id=room_id, name=room_id, kind=RoomKind.MEETING)


def test_presence_changes_list_stage_members_and_count_the_audience() -> None:
    visitor = person("v", role=Role.VISITOR)
    host = person("h", role=Role.HOST, session_id="a")
    livestream = RoomKind.LIVESTREAM
    assert change(livestream, None, visitor, 1.0) is None  # counted, not listed
    assert change(livestream, visitor, None, 1.0) is None
    assert change(RoomKind.MEETING, None, visitor, 1.0) == ParticipantJoined(visitor.public(), 1.0)
    assert change(livestream, None, host, 1.0) == ParticipantJoined(host.public(), 1.0)
    moved = person("h", role=Role.HOST, session_id="b")  # the same identity, a new connection
    assert change(livestream, host, moved, 2.0) == ParticipantJoined(moved.public(), 2.0)
    with_tracks = person("h", role=Role.HOST, session_id="a",
                         tracks=(Track(id="t", kind="video"),))
    assert change(livestream, host, with_tracks, 3.0) == ParticipantUpdated(
        with_tracks.public(), 3.0)
    # A buyer who goes on stage is listed while publishing, then back in the audience.
    buyer = person("b", role=Role.BUYER)
    on_stage = person("b", role=Role.BUYER, tracks=(Track(id="t", kind="video"),))
    assert change(livestream, buyer, on_stage, 4.0) == ParticipantJoined(on_stage.public(), 4.0)
    assert change(livestream, on_stage, buyer, 5.0) == ParticipantLeft("b", 5.0)
    assert change(livestream, host, None, 6.0) == ParticipantLeft("h", 6.0)


def test_presence_folds_joins_leaves_replacements_and_track_changes() -> None:
    a1, b = person("a", session_id="1").public(), person("b").public()
    a2 = person("a", session_id="2", joined_at=5.0).public()
    a2_tracks = dataclasses.replace(a2, tracks=(Track(id="t", kind="audio"),))
    events = [ParticipantJoined(a1, 1.0, 1), ParticipantJoined(b, 2.0, 2),
              ParticipantJoined(a2, 5.0, 3), ParticipantUpdated(a2_tracks, 6.0, 4),
              ParticipantLeft("b", 7.0, 5), ParticipantUpdated(b, 8.0, 6)]
    state = Presence()
    states = []
    for event in events:
        state = apply(state, event)
        states.append(state.identities())
    assert states == [["a"], ["a", "b"], ["b", "a"], ["b", "a"], ["a"], ["a", "b"]]
    assert state.listed[0] == a2_tracks
    assert apply(state, events[2]) is state  # already applied: nothing changes
    with pytest.raises(SequenceGap):
        apply(state, ParticipantLeft("a", 9.0, 8))
    # A snapshot read after the log stood at 2, then the events after it, converge.
    snapshot = Presence.snapshot(room("m"), [person("b"), person("a", session_id="2",
                                                                 joined_at=5.0)], seq=2)
    for event in events[2:]:
        snapshot = apply(snapshot, event)
    assert snapshot.identities() == state.identities() == ["a", "b"]
