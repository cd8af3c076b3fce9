"""rooms.model: request validation, the room lifecycle and grants."""

from __future__ import annotations

from typing import Any

import pytest

from rooms.model import (
    DEFAULT_GRANTS,
    OPT_IN_GRANTS,
    ROOM_ID_RE,
    Grant,
    Role,
    Room,
    RoomKind,
    RoomStatus,
    ValidationError,
    Visibility,
    grantable,
    grants_for,
    room_from_request,
)

NOW = 1_700_000_000.0


def refused(data: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        room_from_request(data, NOW)
    return caught.value


# room_from_request ---------------------------------------------------------------------------


def test_minimal_request_defaults() -> None:
    r = room_from_request({"name": "  Booth 12  ", "kind": "livestream"}, NOW)
    assert ROOM_ID_RE.match(r.id)
    assert r.name == "Booth 12"
    assert r.kind is RoomKind.LIVESTREAM
    assert r.status is RoomStatus.SCHEDULED
    assert r.record is True  # livestreams are recorded unless told otherwise
    assert r.languages == ("en",)
    assert r.created_at == NOW and r.started_at is None and r.ended_at is None
    assert room_from_request({"name": "m", "kind": "meeting"}, NOW).record is False


def test_full_request() -> None:
    r = room_from_request(
        {
            "id": "booth-12", "name": "青岛 生产线", "kind": "meeting", "category": "机械",
            "owner": "li@example.com", "scheduled_start": 100, "scheduled_end": 200.5,
            "record": True, "languages": ["zh-CN", "en"], "status": "live",
        },
        NOW,
    )
    assert r == Room(
        id="booth-12", name="青岛 生产线", kind=RoomKind.MEETING, category="机械",
        owner="li@example.com", scheduled_start=100.0, scheduled_end=200.5,
        status=RoomStatus.LIVE, record=True, languages=("zh-CN", "en"), created_at=NOW,
        started_at=NOW, visibility=Visibility.PRIVATE,  # meetings are private unless told
    )


def test_unknown_field() -> None:
    error = refused({"name": "x", "kind": "meeting", "colour": "red"})
    assert error.field == "colour"
    assert error.message == "unknown field"


@pytest.mark.parametrize("missing", ["name", "kind"])
def test_missing_required(missing: str) -> None:
    data = {"name": "x", "kind": "meeting"}
    del data[missing]
    error = refused(data)
    assert (error.field, error.message) == (missing, "is required")


@pytest.mark.parametrize("name", ["", "   ", 5, None, "a\nb", "x" * 201])
def test_bad_name(name: object) -> None:
    assert refused({"name": name, "kind": "meeting"}).field == "name"


@pytest.mark.parametrize("kind", ["webinar", "", None, 1, "LIVESTREAM"])
def test_bad_kind(kind: object) -> None:
    error = refused({"name": "x", "kind": kind})
    assert error.field == "kind"
    assert "livestream" in error.message and "meeting" in error.message


@pytest.mark.parametrize("room_id", ["", "-lead", "has space", "a" * 65, "a:b", 7])
def test_bad_id(room_id: object) -> None:
    assert refused({"id": room_id, "name": "x", "kind": "meeting"}).field == "room"


@pytest.mark.parametrize("end", [100, 99.9, 0])
def test_end_not_after_start(end: float) -> None:
    error = refused({"name": "x", "kind": "meeting", "scheduled_start": 100, "scheduled_end": end})
    assert error.field == "scheduled_end"


@pytest.mark.parametrize("value", ["100", True, -1, 2**34, float("nan"), [1]])
def test_bad_timestamp(value: object) -> None:
    assert refused({"name": "x", "kind": "meeting", "scheduled_start": value}).field == (
        "scheduled_start"
    )


def test_timestamps_may_be_null() -> None:
    r = room_from_request(
        {"name": "x", "kind": "meeting", "scheduled_start": None, "scheduled_end": 5}, NOW
    )
    assert r.scheduled_start is None and r.scheduled_end == 5.0


@pytest.mark.parametrize(
    "languages",
    [[], "en", ["en_US"], ["EN"], ["english"], [1], ["en", ""], ["en"] * 17, None],
)
def test_bad_languages(languages: object) -> None:
    assert refused({"name": "x", "kind": "meeting", "languages": languages}).field == "languages"


@pytest.mark.parametrize("record", ["yes", 1, 0, None, "true"])
def test_record_must_be_bool(record: object) -> None:
    error = refused({"name": "x", "kind": "livestream", "record": record})
    assert (error.field, error.message) == ("record", "must be true or false")


def test_ended_status_refused() -> None:
    error = refused({"name": "x", "kind": "meeting", "status": "ended"})
    assert error.field == "status"
    assert refused({"name": "x", "kind": "meeting", "status": "paused"}).field == "status"


def test_bad_owner_and_category() -> None:
    assert refused({"name": "x", "kind": "meeting", "owner": "no spaces"}).field == "identity"
    assert refused({"name": "x", "kind": "meeting", "category": 3}).field == "category"
    assert refused({"name": "x", "kind": "meeting", "category": "c" * 101}).field == "category"


def test_validation_error_text() -> None:
    error = ValidationError("name", "must not be empty")
    assert str(error) == "name: must not be empty"
    assert isinstance(error, ValueError)


# Room.with_status ----------------------------------------------------------------------------


def scheduled() -> Room:
    return Room(id="r", name="r", kind=RoomKind.LIVESTREAM, created_at=1.0)


def test_scheduled_live_ended() -> None:
    live = scheduled().with_status(RoomStatus.LIVE, now=10.0)
    assert (live.status, live.started_at, live.ended_at) == (RoomStatus.LIVE, 10.0, None)
    ended = live.with_status(RoomStatus.ENDED, now=20.0)
    assert (ended.status, ended.started_at, ended.ended_at) == (RoomStatus.ENDED, 10.0, 20.0)
    assert ended.created_at == 1.0 and ended.name == "r"


def test_scheduled_room_can_be_cancelled() -> None:
    cancelled = scheduled().with_status(RoomStatus.ENDED, now=5.0)
    assert (cancelled.status, cancelled.started_at, cancelled.ended_at) == (
        RoomStatus.ENDED, None, 5.0
    )


def test_same_status_is_a_no_op() -> None:
    live = scheduled().with_status(RoomStatus.LIVE, now=10.0)
    assert live.with_status(RoomStatus.LIVE, now=99.0) is live


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (RoomStatus.LIVE, RoomStatus.SCHEDULED),
        (RoomStatus.ENDED, RoomStatus.LIVE),
        (RoomStatus.ENDED, RoomStatus.SCHEDULED),
    ],
)
def test_backward_transitions_refused(start: RoomStatus, target: RoomStatus) -> None:
    r = Room(id="r", name="r", kind=RoomKind.MEETING, status=start)
    with pytest.raises(ValidationError) as caught:
        r.with_status(target, now=1.0)
    assert caught.value.field == "status"
    assert caught.value.message == f"cannot go from {start.value} to {target.value}"


# Grants --------------------------------------------------------------------------------------


def test_default_grants_table() -> None:
    assert set(DEFAULT_GRANTS) == set(Role)
    assert Grant.PUBLISH not in DEFAULT_GRANTS[Role.VISITOR]
    assert DEFAULT_GRANTS[Role.VISITOR] == {Grant.SUBSCRIBE}
    assert Grant.MODERATE in DEFAULT_GRANTS[Role.HOST]
    assert DEFAULT_GRANTS[Role.HOST] == set(Grant) - {Grant.START_LIVE}
    for role in (Role.EXHIBITOR, Role.BUYER):
        assert DEFAULT_GRANTS[role] == {Grant.PUBLISH, Grant.SUBSCRIBE}
    assert all(Grant.SUBSCRIBE in grants for grants in DEFAULT_GRANTS.values())


def test_grants_for_defaults() -> None:
    for role in Role:
        assert grants_for(role) == DEFAULT_GRANTS[role]


def test_start_live_is_nobody_s_by_default() -> None:
    assert all(Grant.START_LIVE not in grants for grants in DEFAULT_GRANTS.values())
    assert all(Grant.START_LIVE not in grants_for(role) for role in Role)
    assert set(OPT_IN_GRANTS) == {Role.EXHIBITOR, Role.HOST}
    assert grantable(Role.EXHIBITOR) == {Grant.PUBLISH, Grant.SUBSCRIBE, Grant.START_LIVE,
                                         Grant.RECORD}
    assert grantable(Role.HOST) == set(Grant)
    assert grantable(Role.BUYER) == DEFAULT_GRANTS[Role.BUYER]
    assert grantable(Role.VISITOR) == {Grant.SUBSCRIBE}


def test_grants_for_adds_start_live_when_named() -> None:
    """The one exception to "narrow, never widen": exhibitor and host links that name it."""
    wanted = [Grant.PUBLISH, Grant.SUBSCRIBE, Grant.START_LIVE]
    assert grants_for(Role.EXHIBITOR, wanted) == set(wanted)
    assert grants_for(Role.EXHIBITOR, [Grant.START_LIVE]) == {Grant.START_LIVE}
    assert grants_for(Role.HOST, [*DEFAULT_GRANTS[Role.HOST], Grant.START_LIVE]) == set(Grant)


def test_grants_for_narrowing() -> None:
    assert grants_for(Role.EXHIBITOR, [Grant.SUBSCRIBE]) == {Grant.SUBSCRIBE}
    assert grants_for(Role.HOST, iter([Grant.MODERATE, Grant.MODERATE])) == {Grant.MODERATE}
    assert grants_for(Role.BUYER, []) == frozenset()


@pytest.mark.parametrize(
    ("role", "requested", "named"),
    [
        (Role.VISITOR, [Grant.PUBLISH], "publish"),
        (Role.VISITOR, [Grant.SUBSCRIBE, Grant.MODERATE, Grant.RECORD], "moderate, record"),
        (Role.BUYER, [Grant.MODERATE], "moderate"),
        (Role.EXHIBITOR, [Grant.MODERATE, Grant.PUBLISH], "moderate"),
        (Role.BUYER, [Grant.RECORD], "record"),
        (Role.EXHIBITOR, [Grant.START_LIVE, Grant.MODERATE], "moderate"),
        (Role.BUYER, [Grant.PUBLISH, Grant.START_LIVE], "start-live"),
        (Role.VISITOR, [Grant.START_LIVE], "start-live"),
    ],
)
def test_grants_for_refuses_widening(role: Role, requested: list[Grant], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        grants_for(role, requested)
    assert caught.value.field == "grants"
    assert caught.value.message == f"role {role.value!r} may not hold {named}"
