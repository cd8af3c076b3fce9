"""Messages across languages on the live page, in a real Chromium against the real server.

An English-speaking buyer writes in the chat and asks a question; a Spanish-speaking buyer's
page (her link says ``es``) shows both in Spanish, translated offline by Apertium, marked as
machine translated, with the original one click away. Screenshots of both states, in the
page's English and Chinese, go to ``$FAIRWIRE_LIVE_SCREENSHOTS`` (default ``/tmp/c9/shots``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser import NewPage
from playwright.async_api import Page, expect
from room_page import RoomClients
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path(os.environ.get("FAIRWIRE_LIVE_SCREENSHOTS", "/tmp/c9/shots"))
ASKED = "What is the price of the machine?"
SAID = "The price is good."
SHOTS.mkdir(parents=True, exist_ok=True)


async def spanish_reader(new_page: NewPage, server: FairwireServer, room: str, ui: str
                         ) -> Page:
    page = await new_page()
    token = await server.token(room, "maria-buyer", "buyer", name="María López",
                               language="es")
    await page.goto(server.room_url(room, token, lang=ui))
    await page.wait_for_function("() => window.fairwire && window.fairwire.state === 'joined'")
    return page


async def test_a_spanish_reader_sees_english_chat_and_questions_in_spanish(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "pumps-live-translated"
    await server.create_room(id=room, name="Ningbo Pumps · QJ-200 launch", kind="livestream",
                             status="live", owner="ningbo-pumps")
    async with RoomClients(server, room) as people:
        await people.join("carlos", "buyer", name="Carlos Smith")
        page = await spanish_reader(new_page, server, room, ui="en")
        assert "error" not in await people.call("carlos", "question-ask", {"text": ASKED})
        assert "error" not in await people.call("carlos", "chat-send", {"text": SAID})

        message = page.locator("#chat .chat-message").filter(has_text="Carlos Smith")
        await expect(message.locator(".chat-text")).to_contain_text("precio", timeout=15_000)
        await expect(message.locator(".translation-mark")).to_have_text("Machine translated")
        question = page.locator("#questions .question")
        await expect(question.locator(".question-text")).to_contain_text("máquina",
                                                                         timeout=15_000)
        await expect(question.locator(".translation-mark")).to_have_text("Machine translated")
        await shot(page, "translated-chat-and-question-en")

        # The original, one click away, and back.
        await message.get_by_role("button", name="Show original").click()
        await expect(message.locator(".chat-text")).to_have_text(SAID)
        await expect(message.locator(".translation-mark")).to_have_text("Original")
        await shot(page, "translated-chat-original-shown-en")
        await message.get_by_role("button", name="Show translation").click()
        await expect(message.locator(".chat-text")).to_contain_text("precio")

        # Someone who comes in later gets the same translations with their join, in a page
        # whose own words are Chinese.
        later = await spanish_reader(new_page, server, room, ui="zh")
        late_message = later.locator("#chat .chat-message").filter(has_text="Carlos Smith")
        await expect(late_message.locator(".chat-text")).to_contain_text("precio")
        await expect(late_message.locator(".translation-mark")).to_have_text("机器翻译")
        await expect(late_message.get_by_role("button", name="显示原文")).to_be_visible()
        await shot(later, "translated-chat-and-question-zh")


async def shot(page: Page, name: str) -> None:
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
