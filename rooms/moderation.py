"""A meeting's moderation as one pure state machine: lobby, lock, forced mutes, removal, raised
hands, the floor with its time box, and the end. No I/O; time is passed in.

The wiring (signalling) keeps one :class:`MeetingState` per meeting, feeds every request through
:func:`decide` (which consults :data:`PERMISSIONS`, the one table of who may do what) and
:func:`tick` (the floor's time box), stores the new state and carries out the returned
:class:`Effect` values: stop or resume forwarding a track in the SFU, end someone's media, tell
the pages. So every entry point enforces the same rules, and the rules are tested directly.

Who is who: the meeting's *owner* is the identity in ``Room.owner`` (the buyer, exhibitor or host
who started it); *hosts* hold the ``moderate`` grant. Both moderate. Everyone else, guests
included, acts only on themselves (raise a hand, ask to unmute).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("audio", "video")
MAX_FLOOR_SECONDS = 3600


class Action(enum.StrEnum):
    SET_LOBBY = "lobby"  # {on}: newcomers wait to be admitted
    ADMIT = "admit"  # {identity}
    DENY = "deny"  # {identity}
    LOCK = "lock"  # {on}: nobody new may come in, not even with a valid token
    MUTE = "mute"  # {identity, kind}: the SFU stops forwarding it; only a moderator lifts it
    ALLOW_UNMUTE = "allow-unmute"  # {identity, kind}: lifts a moderator's mute
    ASK_UNMUTE = "ask-unmute"  # {kind}: one's own, to the moderators
    REMOVE = "remove"  # {identity}: out now, and not back into this meeting
    RAISE_HAND = "raise-hand"  # {}: one's own
    LOWER_HAND = "lower-hand"  # {identity?}: one's own, or a moderator lowers anyone's
    GIVE_FLOOR = "give-floor"  # {identity?, seconds?}: the next raised hand when no identity
    END_FLOOR = "end-floor"  # {}
    END = "end"  # {}: the meeting ends for everyone
    # {identities}: asked in by a moderator (an invitation), they walk past the lobby and the
    # lock; someone removed is not asked back this way.
    INVITE = "invite"
    GUEST_LINK = "guest-link"  # {}: a link for someone outside the platform (they wait)


class Actor(enum.StrEnum):
    """Who acts, as the permission table knows them."""

    HOST = "host"
    OWNER = "owner"
    PARTICIPANT = "participant"  # anyone else in the meeting, guests included


MODERATORS = frozenset({Actor.HOST, Actor.OWNER})
EVERYONE = frozenset(Actor)

# The one table every entry point consults: which actors may take each action.
PERMISSIONS: Mapping[Action, frozenset[Actor]] = {
    Action.SET_LOBBY: MODERATORS,
    Action.ADMIT: MODERATORS,
    Action.DENY: MODERATORS,
    Action.LOCK: MODERATORS,
    Action.MUTE: MODERATORS,
    Action.ALLOW_UNMUTE: MODERATORS,
    Action.ASK_UNMUTE: EVERYONE,
    Action.REMOVE: MODERATORS,
    Action.RAISE_HAND: EVERYONE,
    Action.LOWER_HAND: EVERYONE,  # one's own; someone else's is a moderator's (see decide)
    Action.GIVE_FLOOR: MODERATORS,
    Action.END_FLOOR: MODERATORS,
    Action.END: MODERATORS,
    Action.INVITE: MODERATORS,
    Action.GUEST_LINK: MODERATORS,
}


def actor_of(*, identity: str, owner: str, moderates: bool) -> Actor:
    if moderates:
        return Actor.HOST
    if owner and identity == owner:
        return Actor.OWNER
    return Actor.PARTICIPANT


class ModerationError(Exception):
    """A request the rules refuse; ``code`` is the contract's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- state ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Waiting:
    identity: str
    name: str
    since: float


@dataclass(frozen=True, slots=True)
class Floor:
    identity: str
    since: float
    until: float | None  # the time box's end, or None for an open floor


@dataclass(frozen=True, slots=True)
class MeetingState:
    lobby: bool = False
    locked: bool = False
    ended: bool = False
    lobby_queue: tuple[Waiting, ...] = ()
    admitted: frozenset[str] = frozenset()  # came past the lobby: a reconnect does not wait
    removed: frozenset[str] = frozenset()
    # Tracks a moderator muted, by identity: the SFU forwards none of them.
    muted: Mapping[str, frozenset[str]] = field(default_factory=dict)
    unmute_requests: tuple[tuple[str, str], ...] = ()  # (identity, kind), in order
    hands: tuple[str, ...] = ()  # raised, in order
    floor: Floor | None = None

    def is_muted(self, identity: str, kind: str) -> bool:
        return kind in self.muted.get(identity, frozenset())

    def to_dict(self) -> dict[str, Any]:
        return {
            "lobby": self.lobby, "locked": self.locked, "ended": self.ended,
            "waiting": [{"identity": w.identity, "name": w.name, "since": w.since}
                        for w in self.lobby_queue],
            "admitted": sorted(self.admitted), "removed": sorted(self.removed),
            "muted": {identity: sorted(kinds) for identity, kinds in sorted(self.muted.items())
                      if kinds},
            "unmute_requests": [{"identity": i, "kind": k} for i, k in self.unmute_requests],
            "hands": list(self.hands),
            "floor": None if self.floor is None else {
                "identity": self.floor.identity, "since": self.floor.since,
                "until": self.floor.until},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MeetingState:
        floor = data.get("floor")
        return cls(
            lobby=bool(data.get("lobby")), locked=bool(data.get("locked")),
            ended=bool(data.get("ended")),
            lobby_queue=tuple(Waiting(str(w["identity"]), str(w["name"]), float(w["since"]))
                              for w in data.get("waiting", ())),
            admitted=frozenset(data.get("admitted", ())),
            removed=frozenset(data.get("removed", ())),
            muted={str(i): frozenset(k) for i, k in dict(data.get("muted", {})).items()},
            unmute_requests=tuple((str(r["identity"]), str(r["kind"]))
                                  for r in data.get("unmute_requests", ())),
            hands=tuple(str(h) for h in data.get("hands", ())),
            floor=None if not floor else Floor(str(floor["identity"]), float(floor["since"]),
                                               None if floor.get("until") is None
                                               else float(floor["until"])),
        )


def initial_state(*, lobby: bool) -> MeetingState:
    """A new meeting: the lobby is on by default for meetings a host runs."""
    return MeetingState(lobby=lobby)


# -- effects --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StopForwarding:
    identity: str
    kind: str


@dataclass(frozen=True, slots=True)
class ResumeForwarding:
    identity: str
    kind: str  # video resumes on a keyframe: the wiring asks the publisher for one


@dataclass(frozen=True, slots=True)
class Expel:
    """End this identity's presence and media in the meeting now."""

    identity: str
    reason: str  # "removed" | "denied" | "ended"


@dataclass(frozen=True, slots=True)
class Admitted:
    identity: str


Effect = StopForwarding | ResumeForwarding | Expel | Admitted


# -- entry ----------------------------------------------------------------------------------


class Entry(enum.StrEnum):
    ENTER = "enter"
    WAIT = "wait"  # in the lobby until admitted or denied


def enter(state: MeetingState, *, identity: str, name: str, actor: Actor, now: float
          ) -> tuple[MeetingState, Entry]:
    """Someone with a valid token asks to come in. Raises ModerationError when they may not:
    ``meeting_ended``, ``removed`` (not back after a removal), ``meeting_locked``."""
    if state.ended:
        raise ModerationError("meeting_ended", "this meeting has ended")
    if identity in state.removed:
        raise ModerationError("removed", "a moderator removed you from this meeting")
    inside = identity in state.admitted
    if actor in MODERATORS:
        return _admit(state, identity), Entry.ENTER
    if state.locked and not inside:
        raise ModerationError("meeting_locked", "this meeting is locked: nobody new may join")
    if state.lobby and not inside:
        if all(w.identity != identity for w in state.lobby_queue):
            state = dataclasses.replace(
                state, lobby_queue=(*state.lobby_queue, Waiting(identity, name, now)))
        return state, Entry.WAIT
    return _admit(state, identity), Entry.ENTER


def _admit(state: MeetingState, identity: str) -> MeetingState:
    return dataclasses.replace(
        state, admitted=state.admitted | {identity},
        lobby_queue=tuple(w for w in state.lobby_queue if w.identity != identity))


def left(state: MeetingState, identity: str) -> MeetingState:
    """Someone left (their last connection went): their hand and requests go with them."""
    floor = None if state.floor is not None and state.floor.identity == identity else state.floor
    return dataclasses.replace(
        state,
        lobby_queue=tuple(w for w in state.lobby_queue if w.identity != identity),
        hands=tuple(h for h in state.hands if h != identity),
        unmute_requests=tuple(r for r in state.unmute_requests if r[0] != identity),
        floor=floor)


# -- requests -------------------------------------------------------------------------------


def _kind(value: object) -> str:
    if value not in KINDS:
        raise ModerationError("invalid_field", "kind must be 'audio' or 'video'")
    return str(value)


def _identity(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ModerationError("invalid_field", "identity must name a participant")
    return value


def _mute(state: MeetingState, identity: str, kind: str) -> MeetingState:
    muted = dict(state.muted)
    muted[identity] = muted.get(identity, frozenset()) | {kind}
    return dataclasses.replace(
        state, muted=muted,
        unmute_requests=tuple(r for r in state.unmute_requests if r != (identity, kind)))


def _unmute(state: MeetingState, identity: str, kind: str) -> MeetingState:
    muted = dict(state.muted)
    left_kinds = muted.get(identity, frozenset()) - {kind}
    if left_kinds:
        muted[identity] = left_kinds
    else:
        muted.pop(identity, None)
    return dataclasses.replace(
        state, muted=muted,
        unmute_requests=tuple(r for r in state.unmute_requests if r != (identity, kind)))


def decide(state: MeetingState, action: Action, data: Mapping[str, Any], *, identity: str,
           actor: Actor, present: frozenset[str], now: float
           ) -> tuple[MeetingState, list[Effect]]:
    """One request by ``identity`` (acting as ``actor``); ``present``: who is in the meeting now.
    Returns the new state and what the wiring must do; raises ModerationError (``forbidden``
    when the table refuses, others when the request makes no sense)."""
    if actor not in PERMISSIONS[action]:
        raise ModerationError("forbidden", f"{actor.value} may not {action.value}")
    if state.ended:
        raise ModerationError("meeting_ended", "this meeting has ended")
    effects: list[Effect] = []
    if action == Action.SET_LOBBY:
        state = dataclasses.replace(state, lobby=bool(data.get("on", True)))
        if not state.lobby:  # everyone waiting comes in
            for waiting in state.lobby_queue:
                effects.append(Admitted(waiting.identity))
            state = dataclasses.replace(
                state, admitted=state.admitted | {w.identity for w in state.lobby_queue},
                lobby_queue=())
    elif action == Action.LOCK:
        state = dataclasses.replace(state, locked=bool(data.get("on", True)))
    elif action in (Action.ADMIT, Action.DENY):
        target = _identity(data.get("identity"))
        if all(w.identity != target for w in state.lobby_queue):
            raise ModerationError("not_waiting", f"{target!r} is not in the lobby")
        if action == Action.ADMIT:
            state = _admit(state, target)
            effects.append(Admitted(target))
        else:
            state = dataclasses.replace(
                state, lobby_queue=tuple(w for w in state.lobby_queue if w.identity != target))
            effects.append(Expel(target, "denied"))
    elif action == Action.MUTE:
        target, kind = _identity(data.get("identity")), _kind(data.get("kind"))
        if target not in present:
            raise ModerationError("not_found", f"{target!r} is not in this meeting")
        if not state.is_muted(target, kind):
            state = _mute(state, target, kind)
            effects.append(StopForwarding(target, kind))
    elif action == Action.ALLOW_UNMUTE:
        target, kind = _identity(data.get("identity")), _kind(data.get("kind"))
        if state.is_muted(target, kind):
            state = _unmute(state, target, kind)
            effects.append(ResumeForwarding(target, kind))
    elif action == Action.ASK_UNMUTE:
        kind = _kind(data.get("kind"))
        if not state.is_muted(identity, kind):
            raise ModerationError("not_muted", "a moderator has not muted this: just unmute")
        if (identity, kind) not in state.unmute_requests:
            state = dataclasses.replace(
                state, unmute_requests=(*state.unmute_requests, (identity, kind)))
    elif action == Action.REMOVE:
        target = _identity(data.get("identity"))
        if target == identity:
            raise ModerationError("invalid_field", "leave the meeting instead")
        state = left(dataclasses.replace(state, removed=state.removed | {target},
                                         admitted=state.admitted - {target}), target)
        effects.append(Expel(target, "removed"))
    elif action == Action.RAISE_HAND:
        if identity not in state.hands:
            state = dataclasses.replace(state, hands=(*state.hands, identity))
    elif action == Action.LOWER_HAND:
        target = data.get("identity") or identity
        if target != identity and actor not in MODERATORS:
            raise ModerationError("forbidden", "only a moderator lowers someone else's hand")
        state = dataclasses.replace(state, hands=tuple(h for h in state.hands if h != target))
    elif action == Action.GIVE_FLOOR:
        state, effects = _give_floor(state, data, present, now)
    elif action == Action.END_FLOOR:
        state = dataclasses.replace(state, floor=None)
    elif action == Action.END:
        state = dataclasses.replace(state, ended=True, floor=None, hands=(), lobby_queue=())
        effects.extend(Expel(who, "ended") for who in sorted(present))
    elif action == Action.INVITE:
        invited = data.get("identities")
        if not isinstance(invited, list | tuple | frozenset) or not invited:
            raise ModerationError("invalid_field", "identities: whom to ask in")
        targets = {_identity(who) for who in invited}
        removed = sorted(targets & state.removed)
        if removed:
            raise ModerationError("removed", f"{removed[0]!r} was removed from this meeting")
        state = dataclasses.replace(state, admitted=state.admitted | targets)
    return state, effects


def _give_floor(state: MeetingState, data: Mapping[str, Any], present: frozenset[str],
                now: float) -> tuple[MeetingState, list[Effect]]:
    target = data.get("identity")
    if target is None:
        waiting = [h for h in state.hands if h in present]
        if not waiting:
            raise ModerationError("no_hands", "nobody has raised a hand")
        target = waiting[0]
    target = _identity(target)
    if target not in present:
        raise ModerationError("not_found", f"{target!r} is not in this meeting")
    seconds = data.get("seconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)
                                or not 0 < seconds <= MAX_FLOOR_SECONDS):
        raise ModerationError("invalid_field",
                              f"seconds: a time box of 1 to {MAX_FLOOR_SECONDS} seconds")
    until = None if seconds is None else now + float(seconds)
    state = dataclasses.replace(state, floor=Floor(target, now, until),
                                hands=tuple(h for h in state.hands if h != target))
    effects: list[Effect] = []
    # Whoever is given the floor may speak: a moderator's mute of their audio is lifted.
    if state.is_muted(target, "audio"):
        state = _unmute(state, target, "audio")
        effects.append(ResumeForwarding(target, "audio"))
    return state, effects


def tick(state: MeetingState, now: float) -> tuple[MeetingState, list[Effect]]:
    """Time passes: a floor whose time box ran out ends, and its speaker is muted."""
    floor = state.floor
    if floor is None or floor.until is None or now < floor.until:
        return state, []
    state = _mute(dataclasses.replace(state, floor=None), floor.identity, "audio")
    return state, [StopForwarding(floor.identity, "audio")]
