import pytest

from sfu.history import PacketHistory, StoredPacket


def test_hit_returns_stored_fields() -> None:
    history = PacketHistory()
    history.put(100, 9000, True, b"payload", 5)
    assert history.get(100) == StoredPacket(100, 9000, True, b"payload", 5)
    assert history.get(101) is None  # never seen


def test_overwritten_after_capacity() -> None:
    history = PacketHistory(capacity=16)
    for seq in range(0, 32):
        history.put(seq, seq * 10, False, bytes([seq]), 0)
    for seq in range(0, 16):
        assert history.get(seq) is None
    for seq in range(16, 32):
        record = history.get(seq)
        assert record is not None
        assert record.payload == bytes([seq])


def test_wraparound_at_65536() -> None:
    history = PacketHistory(capacity=8)
    seqs = [65533, 65534, 65535, 0, 1, 2]
    for seq in seqs:
        history.put(seq, seq, False, seq.to_bytes(2, "big"), 0)
    for seq in seqs:
        record = history.get(seq)
        assert record is not None
        assert record.payload == seq.to_bytes(2, "big")
    # 65535 and 7 share a slot; the newer one replaces it.
    history.put(7, 7, False, b"new", 0)
    assert history.get(65535) is None
    assert history.get(7) is not None


def test_stale_records_refused_when_now_given() -> None:
    history = PacketHistory(capacity=64, max_age_ms=1_000)
    history.put(1, 0, False, b"a", 10_000)
    assert history.get(1, 10_500) is not None
    assert history.get(1, 11_000) is not None
    assert history.get(1, 11_001) is None
    assert history.get(1) is not None  # no clock given: no age check


def test_no_max_age_means_no_age_check() -> None:
    history = PacketHistory(capacity=64)
    history.put(1, 0, False, b"a", 0)
    assert history.get(1, 10**9) is not None


def test_clear() -> None:
    history = PacketHistory(capacity=4)
    history.put(3, 0, False, b"a", 0)
    history.clear()
    assert history.get(3) is None


@pytest.mark.parametrize("capacity", [0, 3, 1000, 65536])
def test_capacity_must_be_power_of_two(capacity: int) -> None:
    with pytest.raises(ValueError):
        PacketHistory(capacity=capacity)
