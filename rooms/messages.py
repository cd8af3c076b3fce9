"""One-to-one messages between identities, outside any room (issue #10): a buyer writes to an
exhibitor, who reads it whenever they come back. Values and rules only; no I/O.

A conversation is the pair of identities; each message keeps its sender's display name and
whether its recipient has read it. Unread counts are per sender, so a page can say "3 new
messages from Ningbo Pumps".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rooms.live import chat_text, new_id
from rooms.model import ValidationError, check_identity

HISTORY_PAGE = 50
MAX_HISTORY_PAGE = 200
# A conversation keeps its last this many messages.
MAX_DIRECT_MESSAGES = 5000


def conversation_key(a: str, b: str) -> str:
    """The same for both sides: the two identities in order (identities hold no spaces)."""
    first, second = sorted((a, b))
    return f"{first} {second}"


@dataclass(frozen=True, slots=True)
class DirectMessage:
    id: str
    sender: str
    sender_name: str
    recipient: str
    text: str
    at: float
    read: bool = False

    @property
    def conversation(self) -> str:
        return conversation_key(self.sender, self.recipient)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "from": self.sender, "from_name": self.sender_name,
                "to": self.recipient, "text": self.text, "at": self.at, "read": self.read}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DirectMessage:
        return cls(id=str(data["id"]), sender=str(data["from"]),
                   sender_name=str(data["from_name"]), recipient=str(data["to"]),
                   text=str(data["text"]), at=float(data["at"]), read=bool(data.get("read")))


def new_message(sender: str, sender_name: str, recipient: object, text: object,
                now: float) -> DirectMessage:
    """Validated: a real recipient other than oneself, 1 to 1,000 characters of text."""
    if not isinstance(recipient, str):
        raise ValidationError("to", "the identity to write to")
    to = check_identity(recipient)
    if to == sender:
        raise ValidationError("to", "write to someone else")
    return DirectMessage(new_id(), sender, sender_name, to, chat_text(text), now)


def mark_read(message: DirectMessage, read_until: float | None) -> DirectMessage:
    """The message as its recipient left it: read if sent before they last read."""
    read = read_until is not None and message.at <= read_until
    return message if read == message.read else DirectMessage(
        message.id, message.sender, message.sender_name, message.recipient, message.text,
        message.at, read)


def unread_counts(messages: Iterable[DirectMessage], reader: str) -> dict[str, int]:
    """Unread messages to ``reader``, by sender."""
    counts: dict[str, int] = {}
    for message in messages:
        if message.recipient == reader and not message.read:
            counts[message.sender] = counts.get(message.sender, 0) + 1
    return counts


def page_limit(value: object) -> int:
    if value is None:
        return HISTORY_PAGE
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HISTORY_PAGE:
        raise ValidationError("limit", f"1 to {MAX_HISTORY_PAGE}")
    return value
