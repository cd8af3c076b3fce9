"""One-to-one messages as values: validation, conversations, unread counts, read marks."""

from __future__ import annotations

import pytest

from rooms.messages import (
    DirectMessage,
    conversation_key,
    mark_read,
    new_message,
    page_limit,
    unread_counts,
)
from rooms.model import ValidationError


def test_a_conversation_is_the_same_for_both_sides() -> None:
    assert conversation_key("buyer-li", "valve-co") == conversation_key("valve-co", "buyer-li")
    assert conversation_key("a", "b") != conversation_key("a", "c")


def test_messages_are_validated() -> None:
    message = new_message("buyer-li", "Li Wei", "valve-co", "  FOB price for 500 units?  ", 10.0)
    assert (message.recipient, message.text, message.read) == (
        "valve-co", "FOB price for 500 units?", False)
    assert DirectMessage.from_dict(message.to_dict()) == message
    for to, text in (("buyer-li", "hi"), ("bad id!", "hi"), (None, "hi"), ("valve-co", ""),
                     ("valve-co", "x" * 1001), ("valve-co", 5)):
        with pytest.raises(ValidationError):
            new_message("buyer-li", "Li Wei", to, text, 10.0)


def test_unread_counts_and_read_marks() -> None:
    sent = [new_message("buyer-li", "Li", "valve-co", f"m{n}", float(n)) for n in range(3)]
    sent.append(new_message("buyer-wu", "Wu", "valve-co", "hello", 5.0))
    sent.append(new_message("valve-co", "Valve", "buyer-li", "reply", 6.0))
    assert unread_counts(sent, "valve-co") == {"buyer-li": 3, "buyer-wu": 1}
    assert unread_counts(sent, "buyer-li") == {"valve-co": 1}
    assert mark_read(sent[1], read_until=1.0).read and not mark_read(sent[2], 1.0).read
    assert not mark_read(sent[0], None).read
    assert page_limit(None) == 50 and page_limit(10) == 10
    for bad in (0, 201, True, "5"):
        with pytest.raises(ValidationError):
            page_limit(bad)
