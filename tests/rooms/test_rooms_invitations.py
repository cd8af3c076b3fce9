"""Video invitations: ringing, answers, ringing out, hanging up; each refusal with its code."""

from __future__ import annotations

import pytest

from rooms.invitations import (
    RING_SECONDS,
    Answer,
    Invitation,
    InvitationError,
    answer,
    cancel,
    new_invitation,
    settled,
)
from rooms.model import Role, ValidationError

NOW = 1000.0


def call(to: object = None, **extra: object) -> Invitation:
    return new_invitation(inviter="ana", inviter_name="Ana", inviter_role=Role.BUYER,
                          to=[{"identity": "bo", "name": "Bo"}] if to is None else to,
                          now=NOW, **extra)  # type: ignore[arg-type]


def answers(invitation: Invitation) -> dict[str, Answer]:
    return {i.identity: i.answer for i in invitation.invitees}


def test_a_call_rings_its_invitee_until_answered() -> None:
    invitation = call(from_room="booth-7", from_room_name="Valves, hall 3")
    assert not invitation.meeting and invitation.ringing(NOW)
    assert invitation.parties() == ("ana", "bo")
    accepted = answer(invitation, "bo", accept=True, now=NOW + 3)
    assert answers(accepted) == {"bo": Answer.ACCEPTED}
    assert accepted.invitees[0].answered_at == NOW + 3
    assert not accepted.ringing(NOW + 4)
    assert Invitation.from_dict(accepted.to_dict()) == accepted


def test_several_invitees_make_a_meeting_each_answering_for_themselves() -> None:
    invitation = call([{"identity": "bo"}, {"identity": "cy", "name": " Cy "}, {"identity": "bo"}])
    assert invitation.meeting
    assert [(i.identity, i.name) for i in invitation.invitees] == [("bo", "bo"), ("cy", "Cy")]
    declined = answer(invitation, "cy", accept=False, now=NOW + 1)
    assert declined.ringing(NOW + 1)  # bo still rings
    assert answers(declined) == {"bo": Answer.RINGING, "cy": Answer.DECLINED}
    assert call(meeting=True).meeting  # one invitee, asked into a meeting


def test_unanswered_rings_out_as_missed_at_the_ring_time() -> None:
    invitation = call()
    assert settled(invitation, NOW + RING_SECONDS - 0.1) == invitation
    missed = settled(invitation, NOW + RING_SECONDS + 5)
    assert answers(missed) == {"bo": Answer.MISSED}
    assert missed.invitees[0].answered_at == NOW + RING_SECONDS
    with pytest.raises(InvitationError) as refused:
        answer(invitation, "bo", accept=True, now=NOW + RING_SECONDS)
    assert refused.value.code == "not_ringing"


def test_the_inviter_hangs_up_and_nobody_rings() -> None:
    cancelled = cancel(call(), "ana", NOW + 2)
    assert answers(cancelled) == {"bo": Answer.CANCELLED}
    for who, code in (("bo", "not_inviter"), ("ana", "not_ringing")):
        with pytest.raises(InvitationError) as refused:
            cancel(cancelled, who, NOW + 3)
        assert refused.value.code == code


def test_answers_only_from_the_invited_and_only_once() -> None:
    invitation = call()
    with pytest.raises(InvitationError) as refused:
        answer(invitation, "eve", accept=True, now=NOW)
    assert refused.value.code == "not_invited"
    declined = answer(invitation, "bo", accept=False, now=NOW)
    with pytest.raises(InvitationError) as again:
        answer(declined, "bo", accept=True, now=NOW + 1)
    assert again.value.code == "not_ringing"


@pytest.mark.parametrize("to", [
    [], "bo", [{"identity": "ana"}], [{"name": "x"}], [{"identity": "has space"}],
    [{"identity": "bo", "name": ""}], [{"identity": f"p{n}"} for n in range(13)],
])
def test_bad_invitee_lists_are_refused(to: object) -> None:
    with pytest.raises(ValidationError) as refused:
        call(to)
    assert refused.value.field == "to"
