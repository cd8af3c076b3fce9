"""Fixtures the socket.io tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from socketio_media import Participant


@pytest.fixture
async def people() -> AsyncIterator[list[Participant]]:
    """The test's socket.io clients: each disconnected (and its peer connections closed) after."""
    made: list[Participant] = []
    yield made
    for person in made:
        await person.close()
