"""The room feed's pure parts: when everyone is told the audience figure."""

from signalling.room_feed import noticeable


def test_everyone_is_told_when_the_audience_moved_by_a_tenth() -> None:
    assert noticeable(None, (0, 0))
    assert noticeable((3, 3), (4, 4))  # small rooms: every change
    assert not noticeable((1000, 1000), (1099, 1099))
    assert noticeable((1000, 1000), (1100, 1100))
    assert noticeable((1000, 1000), (900, 1000))
    assert not noticeable((1000, 1500), (950, 1500))
    # Telling a growing audience at sizes a tenth apart: about 11 N messages for N joins.
    told, messages = (0, 0), 0
    for size in range(1, 20_001):
        if noticeable(told, (size, size)):
            told, messages = (size, size), messages + size
    assert messages < 12 * 20_000
