"""Headless Chromium for the browser tests, driven by Playwright (``playwright.async_api``).

Design (pytest-asyncio 1.x, ``asyncio_mode = auto``, default fixture loop scope ``function``):

* ``browser`` is **session-scoped and runs in the session event loop**
  (``@pytest_asyncio.fixture(scope="session", loop_scope="session")``): one Chromium for the whole
  run, because Chromium is CPU-hungry on 2 cores. Playwright objects are bound to the loop that
  created them, so
* every test that uses ``browser`` or ``new_page`` must run in that same loop: put
  ``pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]`` at the top of
  the test module. A test left in its own function loop fails with "attached to a different loop".
* ``new_page`` is function-scoped but also runs in the session loop
  (``@pytest_asyncio.fixture(loop_scope="session")``). It is a factory:
  ``page = await new_page()`` opens a page in a fresh browser context (own cookies, storage and
  permissions: two pages are two different people), and every page and context it made is closed
  when the test ends.
* Fixtures that the tests combine with these (e.g. ``fairwire_server``) are synchronous, so they
  have no loop of their own to disagree with.

Chromium is the system one at ``/usr/bin/chromium`` (Playwright's own download does not work
here) with fake camera/microphone and no permission prompts; Playwright gives it a fresh profile.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    # Without this a page that has not called getUserMedia hides host candidates behind .local.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
DEFAULT_TIMEOUT_MS = 15_000

NewPage = Callable[..., Awaitable[Page]]


def chromium_installed() -> bool:
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not chromium_installed():
        pytest.fail("chromium is not installed: apt-get install chromium", pytrace=False)
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            # Playwright's headless flag would add the old headless mode: ours is in args.
            headless=True,
        )
        try:
            yield instance
        finally:
            await instance.close()


@pytest_asyncio.fixture(loop_scope="session")
async def new_page(browser: Browser) -> AsyncIterator[NewPage]:
    """``await new_page(**context_options)``: a page in its own context, closed after the test."""
    contexts: list[BrowserContext] = []

    async def make(**context_options: Any) -> Page:
        options: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
        options.update(context_options)
        context = await browser.new_context(**options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return await context.new_page()

    try:
        yield make
    finally:
        for context in contexts:
            await context.close()
