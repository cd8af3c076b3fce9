import sys

import pytest

from sfu.nack import NackResponder


def test_same_seq_not_resent_within_interval() -> None:
    nack = NackResponder(min_interval_ms=100)
    assert nack.should_resend(500, 1_000)
    assert not nack.should_resend(500, 1_050)
    assert not nack.should_resend(500, 1_099)
    assert nack.should_resend(500, 1_100)
    assert not nack.should_resend(500, 1_150)  # window restarts at the resend


def test_different_seqs_are_independent() -> None:
    nack = NackResponder(min_interval_ms=100)
    assert nack.should_resend(1, 0)
    assert nack.should_resend(2, 0)
    assert nack.should_resend(65535, 0)
    assert not nack.should_resend(1, 10)
    assert not nack.should_resend(2, 10)


def test_slot_reuse_by_another_seq_forgets_old_one() -> None:
    nack = NackResponder(min_interval_ms=100, capacity=16)
    assert nack.should_resend(3, 0)
    assert nack.should_resend(19, 1)  # same slot, different seq: allowed
    assert nack.should_resend(3, 2)  # forgotten (bounded memory), allowed again


def test_memory_is_bounded() -> None:
    nack = NackResponder(capacity=64)
    before = sys.getsizeof(nack._seqs), sys.getsizeof(nack._sent_ms)
    for seq in range(200_000):
        nack.should_resend(seq & 0xFFFF, seq)
    assert (sys.getsizeof(nack._seqs), sys.getsizeof(nack._sent_ms)) == before
    assert len(nack._seqs) == 64


def test_capacity_must_be_power_of_two() -> None:
    with pytest.raises(ValueError):
        NackResponder(capacity=100)
