"""The meeting's moderation rules, directly: the permission table and the state machine."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from rooms.moderation import (
    MODERATORS,
    PERMISSIONS,
    Action,
    Actor,
    Admitted,
    Entry,
    Expel,
    MeetingState,
    ModerationError,
    ResumeForwarding,
    StopForwarding,
    actor_of,
    decide,
    enter,
    initial_state,
    left,
    tick,
)

PRESENT = frozenset({"host-1", "owner-1", "buyer-1", "target"})

# Valid data for each action, against the prepared state below.
VALID: dict[Action, dict[str, Any]] = {
    Action.SET_LOBBY: {"on": False},
    Action.ADMIT: {"identity": "newcomer"},
    Action.DENY: {"identity": "newcomer"},
    Action.LOCK: {"on": True},
    Action.MUTE: {"identity": "target", "kind": "video"},
    Action.ALLOW_UNMUTE: {"identity": "target", "kind": "audio"},
    Action.ASK_UNMUTE: {"kind": "audio"},
    Action.REMOVE: {"identity": "target"},
    Action.RAISE_HAND: {},
    Action.LOWER_HAND: {},
    Action.GIVE_FLOOR: {},
    Action.END_FLOOR: {},
    Action.END: {},
    Action.INVITE: {"identities": ["newcomer-2"]},
    Action.GUEST_LINK: {},
}


def prepared() -> MeetingState:
    state, _ = enter(initial_state(lobby=True), identity="newcomer", name="New",
                     actor=Actor.PARTICIPANT, now=1.0)
    state, _ = decide(state, Action.RAISE_HAND, {}, identity="target", actor=Actor.PARTICIPANT,
                      present=PRESENT, now=2.0)
    state, _ = decide(state, Action.MUTE, {"identity": "target", "kind": "audio"},
                      identity="host-1", actor=Actor.HOST, present=PRESENT, now=3.0)
    return state


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("actor", list(Actor))
def test_every_action_by_every_actor_follows_the_table(action: Action, actor: Actor) -> None:
    # The one acting: the muted target for the actions on oneself, else someone else.
    own = action in (Action.ASK_UNMUTE, Action.RAISE_HAND, Action.LOWER_HAND)
    identity = "target" if own else f"{actor.value}-1"
    try:
        decide(prepared(), action, VALID[action], identity=identity, actor=actor,
               present=PRESENT, now=10.0)
    except ModerationError as exc:
        assert actor not in PERMISSIONS[action], (action, actor, exc.code)
        assert exc.code == "forbidden"
    else:
        assert actor in PERMISSIONS[action], (action, actor)


def test_the_table_lets_moderators_do_everything_and_others_only_act_on_themselves() -> None:
    assert all(MODERATORS <= allowed for allowed in PERMISSIONS.values())
    assert {a for a, allowed in PERMISSIONS.items() if Actor.PARTICIPANT in allowed} == {
        Action.ASK_UNMUTE, Action.RAISE_HAND, Action.LOWER_HAND}
    assert set(PERMISSIONS) == set(Action)
    with pytest.raises(ModerationError) as refused:
        decide(prepared(), Action.LOWER_HAND, {"identity": "target"}, identity="buyer-1",
               actor=Actor.PARTICIPANT, present=PRESENT, now=5.0)
    assert refused.value.code == "forbidden"


def test_actors() -> None:
    assert actor_of(identity="h", owner="o", moderates=True) == Actor.HOST
    assert actor_of(identity="o", owner="o", moderates=False) == Actor.OWNER
    assert actor_of(identity="b", owner="o", moderates=False) == Actor.PARTICIPANT
    assert actor_of(identity="b", owner="", moderates=False) == Actor.PARTICIPANT


def test_the_lobby_holds_newcomers_until_admitted_or_denied() -> None:
    state = initial_state(lobby=True)
    state, entry = enter(state, identity="buyer-1", name="Li", actor=Actor.PARTICIPANT, now=1.0)
    assert entry == Entry.WAIT and [w.identity for w in state.lobby_queue] == ["buyer-1"]
    state, again = enter(state, identity="buyer-1", name="Li", actor=Actor.PARTICIPANT, now=2.0)
    assert again == Entry.WAIT and len(state.lobby_queue) == 1  # still once, from 1.0
    state, entry = enter(state, identity="host-1", name="H", actor=Actor.HOST, now=2.0)
    assert entry == Entry.ENTER  # moderators never wait
    state, effects = decide(state, Action.ADMIT, {"identity": "buyer-1"}, identity="host-1",
                            actor=Actor.HOST, present=frozenset({"host-1"}), now=3.0)
    assert effects == [Admitted("buyer-1")] and not state.lobby_queue
    # Admitted once, a reconnect comes straight in.
    assert enter(state, identity="buyer-1", name="Li", actor=Actor.PARTICIPANT, now=4.0)[1] == (
        Entry.ENTER)
    state, _ = enter(state, identity="buyer-2", name="Wu", actor=Actor.PARTICIPANT, now=5.0)
    state, effects = decide(state, Action.DENY, {"identity": "buyer-2"}, identity="host-1",
                            actor=Actor.HOST, present=frozenset({"host-1"}), now=6.0)
    assert effects == [Expel("buyer-2", "denied")] and not state.lobby_queue
    with pytest.raises(ModerationError) as missing:
        decide(state, Action.ADMIT, {"identity": "nobody"}, identity="host-1", actor=Actor.HOST,
               present=frozenset(), now=7.0)
    assert missing.value.code == "not_waiting"


def test_turning_the_lobby_off_lets_everyone_waiting_in() -> None:
    state = initial_state(lobby=True)
    for who in ("a", "b"):
        state, _ = enter(state, identity=who, name=who, actor=Actor.PARTICIPANT, now=1.0)
    state, effects = decide(state, Action.SET_LOBBY, {"on": False}, identity="owner-1",
                            actor=Actor.OWNER, present=frozenset(), now=2.0)
    assert effects == [Admitted("a"), Admitted("b")] and state.admitted == {"a", "b"}


def test_a_locked_meeting_lets_nobody_new_in_but_those_already_admitted() -> None:
    state, _ = enter(initial_state(lobby=False), identity="buyer-1", name="Li",
                     actor=Actor.PARTICIPANT, now=1.0)
    state, _ = decide(state, Action.LOCK, {"on": True}, identity="host-1", actor=Actor.HOST,
                      present=frozenset({"buyer-1"}), now=2.0)
    with pytest.raises(ModerationError) as refused:
        enter(state, identity="buyer-2", name="Wu", actor=Actor.PARTICIPANT, now=3.0)
    assert refused.value.code == "meeting_locked"
    assert enter(state, identity="buyer-1", name="Li", actor=Actor.PARTICIPANT, now=3.0)[1] == (
        Entry.ENTER)
    assert enter(state, identity="host-2", name="H2", actor=Actor.HOST, now=3.0)[1] == Entry.ENTER


def test_a_moderators_mute_holds_until_a_moderator_lifts_it() -> None:
    state = prepared()  # the host muted target's audio
    assert state.is_muted("target", "audio")
    state, effects = decide(state, Action.ASK_UNMUTE, {"kind": "audio"}, identity="target",
                            actor=Actor.PARTICIPANT, present=PRESENT, now=4.0)
    assert effects == [] and state.unmute_requests == (("target", "audio"),)
    with pytest.raises(ModerationError) as not_muted:
        decide(state, Action.ASK_UNMUTE, {"kind": "video"}, identity="target",
               actor=Actor.PARTICIPANT, present=PRESENT, now=4.0)
    assert not_muted.value.code == "not_muted"
    state, effects = decide(state, Action.ALLOW_UNMUTE, {"identity": "target", "kind": "audio"},
                            identity="owner-1", actor=Actor.OWNER, present=PRESENT, now=5.0)
    assert effects == [ResumeForwarding("target", "audio")]
    assert not state.is_muted("target", "audio") and not state.unmute_requests
    state, effects = decide(state, Action.MUTE, {"identity": "target", "kind": "video"},
                            identity="host-1", actor=Actor.HOST, present=PRESENT, now=6.0)
    assert effects == [StopForwarding("target", "video")]
    # Muting again changes nothing and stops nothing twice.
    assert decide(state, Action.MUTE, {"identity": "target", "kind": "video"},
                  identity="host-1", actor=Actor.HOST, present=PRESENT, now=7.0)[1] == []
    with pytest.raises(ModerationError):
        decide(state, Action.MUTE, {"identity": "target", "kind": "smell"}, identity="host-1",
               actor=Actor.HOST, present=PRESENT, now=7.0)


def test_a_removed_participant_is_out_and_stays_out() -> None:
    state, effects = decide(prepared(), Action.REMOVE, {"identity": "target"},
                            identity="host-1", actor=Actor.HOST, present=PRESENT, now=5.0)
    assert effects == [Expel("target", "removed")]
    assert "target" not in state.hands and "target" in state.removed
    with pytest.raises(ModerationError) as refused:
        enter(state, identity="target", name="T", actor=Actor.PARTICIPANT, now=6.0)
    assert refused.value.code == "removed"


def test_hands_queue_in_order_and_the_floor_goes_to_the_first() -> None:
    state = initial_state(lobby=False)
    for who in ("b", "a", "c"):
        state, _ = decide(state, Action.RAISE_HAND, {}, identity=who, actor=Actor.PARTICIPANT,
                          present=frozenset("abc"), now=1.0)
    assert state.hands == ("b", "a", "c")
    state, _ = decide(state, Action.LOWER_HAND, {}, identity="a", actor=Actor.PARTICIPANT,
                      present=frozenset("abc"), now=2.0)
    state, _ = decide(state, Action.GIVE_FLOOR, {"seconds": 5}, identity="h", actor=Actor.HOST,
                      present=frozenset("abch"), now=10.0)
    assert state.floor is not None and state.floor.identity == "b"
    assert state.floor.until == 15.0 and state.hands == ("c",)
    # The time box runs out: the speaker is muted, the next may be called.
    assert tick(state, 14.9) == (state, [])
    state, effects = tick(state, 15.0)
    assert effects == [StopForwarding("b", "audio")] and state.floor is None
    assert state.is_muted("b", "audio")
    state, effects = decide(state, Action.GIVE_FLOOR, {}, identity="h", actor=Actor.HOST,
                            present=frozenset("abch"), now=16.0)
    assert state.floor is not None and state.floor.identity == "c" and state.floor.until is None
    with pytest.raises(ModerationError) as nobody:
        decide(state, Action.GIVE_FLOOR, {}, identity="h", actor=Actor.HOST,
               present=frozenset("abch"), now=17.0)
    assert nobody.value.code == "no_hands"
    # The floor lifts a moderator's mute on the speaker's microphone.
    state, effects = decide(state, Action.GIVE_FLOOR, {"identity": "b", "seconds": 30},
                            identity="h", actor=Actor.HOST, present=frozenset("abch"), now=18.0)
    assert effects == [ResumeForwarding("b", "audio")] and not state.is_muted("b", "audio")
    for bad in (0, -1, 4000, True, "5"):
        with pytest.raises(ModerationError):
            decide(state, Action.GIVE_FLOOR, {"identity": "c", "seconds": bad}, identity="h",
                   actor=Actor.HOST, present=frozenset("abch"), now=19.0)


def test_the_end_expels_everyone_and_nobody_comes_back() -> None:
    state, effects = decide(prepared(), Action.END, {}, identity="owner-1", actor=Actor.OWNER,
                            present=PRESENT, now=9.0)
    assert state.ended and {e.identity for e in effects if isinstance(e, Expel)} == PRESENT
    with pytest.raises(ModerationError) as ended:
        enter(state, identity="host-1", name="H", actor=Actor.HOST, now=10.0)
    assert ended.value.code == "meeting_ended"
    with pytest.raises(ModerationError):
        decide(state, Action.RAISE_HAND, {}, identity="buyer-1", actor=Actor.PARTICIPANT,
               present=PRESENT, now=10.0)


def test_leaving_takes_ones_hand_and_floor_along_and_state_round_trips() -> None:
    state = prepared()
    state, _ = decide(state, Action.GIVE_FLOOR, {"identity": "buyer-1", "seconds": 60},
                      identity="host-1", actor=Actor.HOST, present=PRESENT, now=4.0)
    assert MeetingState.from_dict(state.to_dict()) == state
    gone = left(left(state, "target"), "buyer-1")
    assert gone.hands == () and gone.floor is None and not gone.unmute_requests
    assert gone.is_muted("target", "audio")  # a mute outlives a reconnect


def test_whom_a_moderator_invites_walks_past_the_lobby_and_the_lock() -> None:
    state = dataclasses.replace(initial_state(lobby=True), locked=True,
                                removed=frozenset({"gone"}))
    state, effects = decide(state, Action.INVITE, {"identities": ["bo", "cy"]},
                            identity="owner-1", actor=Actor.OWNER, present=PRESENT, now=1.0)
    assert not effects
    for who in ("bo", "cy"):
        assert enter(state, identity=who, name=who, actor=Actor.PARTICIPANT, now=2.0)[1] == (
            Entry.ENTER)
    for data, code in (({"identities": ["gone"]}, "removed"), ({"identities": []}, "invalid_field"),
                       ({}, "invalid_field")):
        with pytest.raises(ModerationError) as refused:
            decide(state, Action.INVITE, data, identity="owner-1", actor=Actor.OWNER,
                   present=PRESENT, now=3.0)
        assert refused.value.code == code
