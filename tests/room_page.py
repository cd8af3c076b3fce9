"""The room page driven in Chromium: join it, and read what its subscriber connection decodes."""

from __future__ import annotations

import asyncio
from typing import Any

from browser import NewPage
from playwright.async_api import Page
from server_process import FairwireServer

# Resolves, in the page, once video frames are decoded and audio packets arrive on the
# subscriber connection; returns milliseconds since the page started subscribing.
FIRST_MEDIA_JS = """
async () => {
  const started = window.fairwire.subscribeStartedAt;
  for (;;) {
    const pc = window.fairwire.subscriberPc;
    if (pc) {
      let frames = 0, audio = 0;
      (await pc.getStats()).forEach((s) => {
        if (s.type !== "inbound-rtp") return;
        if (s.kind === "video") frames += s.framesDecoded || 0;
        if (s.kind === "audio") audio += s.packetsReceived || 0;
      });
      if (frames > 0 && audio > 0) return performance.now() - started;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
"""

INBOUND_JS = """
async () => {
  const out = {frames: 0, audio: 0, width: 0};
  (await window.fairwire.subscriberPc.getStats()).forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    if (s.kind === "video") { out.frames += s.framesDecoded || 0; out.width = s.frameWidth || 0; }
    if (s.kind === "audio") out.audio += s.packetsReceived || 0;
  });
  return out;
}
"""


async def open_room(new_page: NewPage, server: FairwireServer, room: str, identity: str,
                    role: str) -> Page:
    page = await new_page()
    token = await server.token(room, identity, role, name=identity.title())
    await page.goto(server.room_url(room, token, lang="en"))
    await page.wait_for_function("() => window.fairwire && window.fairwire.state === 'joined'")
    return page


async def first_media_ms(page: Page) -> float:
    elapsed: float = await asyncio.wait_for(page.evaluate(FIRST_MEDIA_JS), timeout=20)
    return elapsed


async def inbound(page: Page) -> dict[str, Any]:
    stats: dict[str, Any] = await page.evaluate(INBOUND_JS)
    return stats
