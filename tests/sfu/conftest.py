"""What the SFU tests with real peer connections share: a node's Sfu, and clients to close."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from test_sessions import Clients

from sfu.sessions import Sfu


@pytest.fixture
async def sfu() -> AsyncIterator[Sfu]:
    instance = Sfu()
    yield instance
    await instance.close()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    made = Clients()
    yield made
    await made.close()
