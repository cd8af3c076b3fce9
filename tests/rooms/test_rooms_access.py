"""Grants by room kind, the stage, on-air, room edits and stage events: no I/O."""

from __future__ import annotations

import dataclasses

import pytest

from rooms.access import LinkRecord, StageState, may_go_live, on_air, room_grants
from rooms.events import StageChanged, StageMove, event_from_dict, event_to_dict
from rooms.model import (
    Grant,
    Role,
    Room,
    RoomKind,
    RoomStatus,
    ValidationError,
    Visibility,
    grants_for,
    room_edited,
    room_from_request,
)
from rooms.presence import Presence, apply

NOW = 1_700_000_000.0
BOOTH = Room(id="booth", name="CNC line", kind=RoomKind.LIVESTREAM, owner="acme")
DEAL = Room(id="deal", name="Deal", kind=RoomKind.MEETING)
PUB, SUB, MOD = Grant.PUBLISH, Grant.SUBSCRIBE, Grant.MODERATE


def grants(room: Room, role: Role, identity: str = "someone", *, guest: bool = False,
           stage: StageState | None = None) -> frozenset[Grant]:
    return room_grants(room, role, identity, grants_for(role), guest=guest, stage=stage)


def test_in_a_livestream_only_hosts_and_the_owner_publish() -> None:
    assert PUB in grants(BOOTH, Role.HOST)
    assert PUB in grants(BOOTH, Role.EXHIBITOR, "acme")
    assert grants(BOOTH, Role.EXHIBITOR, "rival") == {SUB}
    assert grants(BOOTH, Role.BUYER) == {SUB}
    assert grants(BOOTH, Role.VISITOR) == {SUB}
    # A booth without an owner is any exhibitor's.
    assert PUB in grants(dataclasses.replace(BOOTH, owner=""), Role.EXHIBITOR, "rival")


def test_the_stage_gives_publish_but_never_to_guests() -> None:
    assert grants(BOOTH, Role.BUYER, stage=StageState.ON) == {PUB, SUB}
    assert grants(BOOTH, Role.VISITOR, stage=StageState.ON) == {PUB, SUB}
    assert grants(BOOTH, Role.BUYER, stage=StageState.INVITED) == {SUB}
    assert grants(BOOTH, Role.VISITOR, guest=True, stage=StageState.ON) == {SUB}
    # A guest holds nothing but subscribe, whatever the token claims.
    assert room_grants(BOOTH, Role.HOST, "g", frozenset({PUB, SUB, MOD}), guest=True,
                       stage=None) == {SUB}


def test_in_a_meeting_every_invited_role_that_publishes_does() -> None:
    for role in (Role.HOST, Role.EXHIBITOR, Role.BUYER):
        assert PUB in grants(DEAL, role)
    assert grants(DEAL, Role.VISITOR) == {SUB}
    # A token narrowed to watching stays so.
    assert room_grants(DEAL, Role.BUYER, "b", frozenset({SUB}), guest=False, stage=None) == {SUB}


def test_who_starts_the_live() -> None:
    assert may_go_live(BOOTH, Role.EXHIBITOR, "acme") and may_go_live(BOOTH, Role.HOST, "h")
    assert not may_go_live(BOOTH, Role.EXHIBITOR, "rival")
    assert not may_go_live(BOOTH, Role.BUYER, "b")  # on stage, but it is not their show


def test_on_air_needs_someone_publishing_or_a_short_grace() -> None:
    live = BOOTH.with_status(RoomStatus.LIVE, NOW)
    assert not on_air(live, NOW, 60)  # marked live, nobody broadcasting: "starting soon"
    publishing = live.with_publishing(True, NOW)
    assert on_air(publishing, NOW + 3600, 60)
    stopped = publishing.with_publishing(False, NOW + 100)
    assert on_air(stopped, NOW + 159, 60) and not on_air(stopped, NOW + 160, 60)
    assert not on_air(BOOTH.with_publishing(True, NOW), NOW, 60)  # scheduled: not live yet
    assert publishing.with_publishing(True, NOW + 5) is publishing


def test_visibility_defaults_by_kind_and_survives_storage() -> None:
    stream = room_from_request({"name": "s", "kind": "livestream"}, NOW)
    meeting = room_from_request({"name": "m", "kind": "meeting"}, NOW)
    assert (stream.visibility, meeting.visibility) == (Visibility.PUBLIC, Visibility.PRIVATE)
    public_meeting = room_from_request({"name": "m", "kind": "meeting",
                                        "visibility": "public"}, NOW)
    assert public_meeting.public
    stored = dataclasses.replace(meeting, publishing=True, publishing_changed_at=NOW)
    assert Room.from_dict(stored.to_dict()) == stored
    # Rooms stored before visibility existed take their kind's default.
    legacy = {k: v for k, v in meeting.to_dict().items() if k != "visibility"}
    assert Room.from_dict(legacy).visibility == Visibility.PRIVATE
    with pytest.raises(ValidationError, match="visibility"):
        room_from_request({"name": "m", "kind": "meeting", "visibility": "secret"}, NOW)


def test_room_edits() -> None:
    edited = room_edited(BOOTH, {"name": " CNC line, hall 3 ", "record": False,
                                 "scheduled_start": 100, "scheduled_end": 200,
                                 "visibility": "private", "status": "live"}, NOW)
    assert (edited.name, edited.record, edited.visibility) == (
        "CNC line, hall 3", False, Visibility.PRIVATE)
    assert edited.status == RoomStatus.LIVE and edited.started_at == NOW
    assert room_edited(BOOTH, {"owner": None}, NOW).owner == ""
    for body, field in (({"kind": "meeting"}, "kind"), ({"id": "x"}, "id"),
                        ({"colour": "red"}, "colour"), ({}, "body"),
                        ({"scheduled_start": 300, "scheduled_end": 200}, "scheduled_end"),
                        ({"status": "scheduled"}, "status")):
        with pytest.raises(ValidationError) as caught:
            room_edited(edited, body, NOW)
        assert caught.value.field == field
    # An end that an edit of the start alone would put before it is refused too.
    with pytest.raises(ValidationError, match="scheduled_end"):
        room_edited(edited, {"scheduled_start": 250}, NOW)


def test_stage_events_fold_into_presence_and_round_trip() -> None:
    presence = Presence(seq=0)
    for seq, (identity, move) in enumerate([("wang", StageMove.INVITED), ("li", StageMove.INVITED),
                                            ("wang", StageMove.ON), ("li", StageMove.DECLINED)],
                                           start=1):
        event = StageChanged(identity, identity.title(), move, NOW, seq)
        assert event_from_dict(event_to_dict(event)) == event
        presence = apply(presence, event)
    assert presence.stage == {"wang": StageState.ON} and presence.seq == 4
    presence = apply(presence, StageChanged("wang", "Wang", StageMove.OFF, NOW, 5))
    assert presence.stage == {}
    assert event_to_dict(StageChanged("wang", "Wang", StageMove.ON, NOW, 6)) == {
        "seq": 6, "type": "stage", "at": NOW, "identity": "wang", "name": "Wang", "state": "on"}


def test_link_records_round_trip() -> None:
    link = LinkRecord("0123456789abcdef", "booth", "acme", "ACME 公司", Role.EXHIBITOR, NOW,
                      NOW + 3600)
    assert LinkRecord.from_dict(link.to_dict()) == link
    assert link.to_dict()["revoked"] is False
