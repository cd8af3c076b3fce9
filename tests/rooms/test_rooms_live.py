"""Questions, chat limits and attendance figures: no I/O, time passed in."""

from __future__ import annotations

import pytest

from rooms.events import (
    ChatDeleted,
    ChatMuted,
    ChatPosted,
    ProgramChanged,
    QuestionChanged,
    event_from_dict,
    event_to_dict,
)
from rooms.live import (
    ChatMessage,
    ChatRateLimit,
    Question,
    Visit,
    attendance,
    chat_text,
    question_text,
    ranked,
    watch_figures,
)
from rooms.model import Role, ValidationError


def test_texts_are_trimmed_and_bounded() -> None:
    assert question_text("  两台泵的价格?\n ") == "两台泵的价格?"
    assert chat_text("line one\nline two") == "line one\nline two"
    for bad in ("", "   ", 5, "x" * 501, "bell\x07"):
        with pytest.raises(ValidationError):
            question_text(bad)
    assert chat_text("y" * 1000)
    with pytest.raises(ValidationError, match="1000"):
        chat_text("y" * 1001)


def test_the_queue_is_open_first_then_most_voted_then_oldest() -> None:
    questions = [Question("a", "u", "U", "t", at=1, votes=1),
                 Question("b", "u", "U", "t", at=2, votes=5, answered=True),
                 Question("c", "u", "U", "t", at=3, votes=3),
                 Question("d", "u", "U", "t", at=0.5, votes=1)]
    assert [q.id for q in ranked(questions)] == ["c", "d", "a", "b"]


def test_hidden_questions_keep_their_text_for_the_asker_and_moderators() -> None:
    question = Question("q", "wang", "Wang", "rude words", at=1, hidden=True)
    assert question.public_dict()["text"] == ""
    assert question.seen_by("wang", moderator=False)["text"] == "rude words"
    assert question.seen_by("host", moderator=True)["text"] == "rude words"
    assert question.seen_by("li", moderator=False)["text"] == ""
    assert Question.from_dict(question.to_dict()) == question


def test_chat_rate_limit_is_a_sliding_window_per_identity() -> None:
    limit = ChatRateLimit(burst=5, window=10.0)
    assert [limit.retry_after("wang", 100.0 + i * 0.1) for i in range(5)] == [0.0] * 5
    assert limit.retry_after("wang", 100.5) == pytest.approx(9.5)
    assert limit.retry_after("li", 100.5) == 0.0  # one chatter's flood holds back nobody else
    assert limit.retry_after("wang", 110.01) == 0.0  # the first one left the window


def test_attendance_and_watch_figures_count_viewers_only() -> None:
    visits = [Visit("wang", "Wang", Role.BUYER, 100.0, 130.0),
              Visit("wang", "Wang", Role.BUYER, 150.0, 160.0),
              Visit("li", "Li", Role.VISITOR, 120.0),
              Visit("acme", "ACME", Role.EXHIBITOR, 90.0)]
    report = {p["identity"]: p for p in attendance(visits, now=200.0)}
    assert report["wang"]["watch_seconds"] == 40.0 and len(report["wang"]["sessions"]) == 2
    assert report["li"]["watch_seconds"] == 80.0
    assert watch_figures(visits, now=200.0) == {
        "unique_viewers": 2, "total_watch_seconds": 120.0, "average_watch_seconds": 60.0}
    assert watch_figures([], now=1.0)["average_watch_seconds"] == 0.0


def test_live_events_round_trip() -> None:
    for event in (QuestionChanged(Question("q", "w", "W", "t", 1.0, 0.5, 2), 1.0, 3),
                  ChatPosted(ChatMessage("m", "w", "W", "hi", 2.0), 2.0, 4),
                  ChatDeleted("m", 3.0, 5), ChatMuted("w", True, 4.0, 6),
                  ProgramChanged("v1", None, 5.0, 7)):
        assert event_from_dict(event_to_dict(event)) == event
    hidden = QuestionChanged(Question("q", "w", "W", "secret", 1.0, hidden=True), 1.0, 8)
    assert event_to_dict(hidden)["question"]["text"] == ""


def test_a_question_remembers_when_it_was_first_pinned() -> None:
    question = Question("q1", "buyer", "Li", "FOB price?", at=100.0)
    pinned = question.with_pinned(True, 130.0)
    assert pinned.pinned and pinned.pinned_at == 130.0
    again = pinned.with_pinned(False, 150.0).with_pinned(True, 170.0)
    assert again.pinned and again.pinned_at == 130.0  # its chapter starts at the first pin
    assert question.with_pinned(False, 140.0).pinned_at is None
    assert Question.from_dict(again.to_dict()) == again
