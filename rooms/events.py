"""What happens in a room, as frozen values: the entries of its sequenced event log.

Every event has one JSON shape, the same in the store and on the wire
(``{"seq", "type", "at", ...}``): participants appear as others see them
(:meth:`Participant.public_dict`), never with grants or node placement. ``seq`` is 0 until the
store appends the event and numbers it; ``at`` is the time it happened (seconds, passed in).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rooms.live import ChatMessage, Question
from rooms.model import Participant, Room
from rooms.moderation import MeetingState


class EventType(enum.StrEnum):
    PARTICIPANT_JOINED = "participant-joined"
    PARTICIPANT_UPDATED = "participant-updated"
    PARTICIPANT_LEFT = "participant-left"
    ROOM_STATUS = "room-status"
    STAGE = "stage"
    PROGRAM = "program"
    QUESTION = "question"
    CHAT = "chat"
    CHAT_DELETED = "chat-deleted"
    CHAT_MUTED = "chat-muted"
    MEETING = "meeting"
    TRANSLATION = "translation"


class StageMove(enum.StrEnum):
    """What happened on a livestream's stage: a host invited someone, who accepted (``on``) or
    declined; ``off`` is stepping down, or being taken off by a host."""

    INVITED = "invited"
    ON = "on"
    DECLINED = "declined"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class _ParticipantEvent:
    participant: Participant
    at: float
    seq: int = 0

    def fields(self) -> dict[str, Any]:
        return {"participant": self.participant.public_dict()}


@dataclass(frozen=True, slots=True)
class ParticipantJoined(_ParticipantEvent):
    """Someone is listed now (a join, or a newer connection of the same identity)."""

    type = EventType.PARTICIPANT_JOINED


@dataclass(frozen=True, slots=True)
class ParticipantUpdated(_ParticipantEvent):
    """A listed participant changed (its tracks, for one)."""

    type = EventType.PARTICIPANT_UPDATED


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    """Someone is no longer listed: gone, or back in a livestream's audience."""

    identity: str
    at: float
    seq: int = 0
    type = EventType.PARTICIPANT_LEFT

    def fields(self) -> dict[str, Any]:
        return {"identity": self.identity}


@dataclass(frozen=True, slots=True)
class StageChanged:
    identity: str
    name: str
    move: StageMove
    at: float
    seq: int = 0
    type = EventType.STAGE

    def fields(self) -> dict[str, Any]:
        return {"identity": self.identity, "name": self.name, "state": self.move.value}


@dataclass(frozen=True, slots=True)
class ProgramChanged:
    """What a livestream's viewers see and hear now: one video and one audio track (ids of
    publications), either may be None."""

    video: str | None
    audio: str | None
    at: float
    seq: int = 0
    type = EventType.PROGRAM

    def fields(self) -> dict[str, Any]:
        return {"program": {"video": self.video, "audio": self.audio}}


@dataclass(frozen=True, slots=True)
class QuestionChanged:
    """A question was asked, voted on, answered, pinned or hidden: its new state, as everyone
    sees it (a hidden one without its text)."""

    question: Question
    at: float
    seq: int = 0
    type = EventType.QUESTION

    def fields(self) -> dict[str, Any]:
        return {"question": self.question.public_dict()}


@dataclass(frozen=True, slots=True)
class ChatPosted:
    message: ChatMessage
    at: float
    seq: int = 0
    type = EventType.CHAT

    def fields(self) -> dict[str, Any]:
        return {"message": self.message.to_dict()}


@dataclass(frozen=True, slots=True)
class MessageTranslated:
    """Machine translations of a chat message or a question (``kind``), by target language:
    ``{lang: {"text": ..., "provider": ..., "from": source language}}``. They follow the
    original, which went out at once; a page shows the one in its reader's language."""

    kind: str  # "chat" or "question"
    id: str
    translations: Mapping[str, Mapping[str, str]]
    at: float
    seq: int = 0
    type = EventType.TRANSLATION

    def fields(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id,
                "translations": {lang: dict(t) for lang, t in self.translations.items()}}


@dataclass(frozen=True, slots=True)
class ChatDeleted:
    id: str
    at: float
    seq: int = 0
    type = EventType.CHAT_DELETED

    def fields(self) -> dict[str, Any]:
        return {"id": self.id}


@dataclass(frozen=True, slots=True)
class ChatMuted:
    identity: str
    muted: bool
    at: float
    seq: int = 0
    type = EventType.CHAT_MUTED

    def fields(self) -> dict[str, Any]:
        return {"identity": self.identity, "muted": self.muted}


@dataclass(frozen=True, slots=True)
class RoomStatusChanged:
    """The room's record changed: its status, whether someone publishes, or an edit."""

    room: Room
    at: float
    seq: int = 0
    type = EventType.ROOM_STATUS

    def fields(self) -> dict[str, Any]:
        return {"room": self.room.to_dict()}


@dataclass(frozen=True, slots=True)
class MeetingChanged:
    """A meeting's moderation changed (lobby, lock, mutes, hands, floor...): its new state."""

    meeting: MeetingState
    at: float
    seq: int = 0
    type = EventType.MEETING

    def fields(self) -> dict[str, Any]:
        return {"meeting": self.meeting.to_dict()}


RoomEvent = (ParticipantJoined | ParticipantUpdated | ParticipantLeft | RoomStatusChanged
             | StageChanged | ProgramChanged | QuestionChanged | ChatPosted | ChatDeleted
             | ChatMuted | MeetingChanged | MessageTranslated)


def numbered(event: RoomEvent, seq: int) -> RoomEvent:
    """The event as the store appended it, with its sequence number."""
    return dataclasses.replace(event, seq=seq)


def event_to_dict(event: RoomEvent) -> dict[str, Any]:
    return {"seq": event.seq, "type": event.type.value, "at": event.at, **event.fields()}


def event_from_dict(data: Mapping[str, Any]) -> RoomEvent:
    """The inverse of :func:`event_to_dict`; raises ``ValueError`` for a malformed entry."""
    try:
        kind = EventType(data["type"])
        seq, at = int(data["seq"]), float(data["at"])
        if kind == EventType.PARTICIPANT_JOINED:
            return ParticipantJoined(Participant.from_public(data["participant"]), at, seq)
        if kind == EventType.PARTICIPANT_UPDATED:
            return ParticipantUpdated(Participant.from_public(data["participant"]), at, seq)
        if kind == EventType.PARTICIPANT_LEFT:
            return ParticipantLeft(str(data["identity"]), at, seq)
        if kind == EventType.QUESTION:
            return QuestionChanged(Question.from_dict(data["question"]), at, seq)
        if kind == EventType.CHAT:
            return ChatPosted(ChatMessage.from_dict(data["message"]), at, seq)
        if kind == EventType.CHAT_DELETED:
            return ChatDeleted(str(data["id"]), at, seq)
        if kind == EventType.TRANSLATION:
            return MessageTranslated(
                str(data["kind"]), str(data["id"]),
                {str(lang): {str(k): str(v) for k, v in t.items()}
                 for lang, t in data["translations"].items()}, at, seq)
        if kind == EventType.CHAT_MUTED:
            return ChatMuted(str(data["identity"]), bool(data["muted"]), at, seq)
        if kind == EventType.PROGRAM:
            program = data["program"]
            return ProgramChanged(program.get("video"), program.get("audio"), at, seq)
        if kind == EventType.MEETING:
            return MeetingChanged(MeetingState.from_dict(data["meeting"]), at, seq)
        if kind == EventType.STAGE:
            return StageChanged(str(data["identity"]), str(data["name"]),
                                StageMove(data["state"]), at, seq)
        return RoomStatusChanged(Room.from_dict(data["room"]), at, seq)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed room event: {exc}") from None
