"""Small helpers the benchmarks share (they run as scripts: this folder is on sys.path)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable


async def gather_bounded(coros: Iterable[Awaitable[None]], limit: int) -> None:
    """Await every coroutine, at most ``limit`` at a time."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[None]) -> None:
        async with semaphore:
            await coro

    await asyncio.gather(*(one(c) for c in coros))
