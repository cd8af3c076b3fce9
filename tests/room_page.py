"""The room page driven in Chromium: join it, and read what its subscriber connection decodes."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
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
                    role: str, name: str | None = None, lang: str = "en") -> Page:
    page = await new_page()
    token = await server.token(room, identity, role, name=name or identity.title())
    await page.goto(server.room_url(room, token, lang=lang))
    await page.wait_for_function("() => window.fairwire && window.fairwire.state === 'joined'")
    return page


async def first_media_ms(page: Page) -> float:
    elapsed: float = await asyncio.wait_for(page.evaluate(FIRST_MEDIA_JS), timeout=20)
    return elapsed


async def inbound(page: Page) -> dict[str, Any]:
    stats: dict[str, Any] = await page.evaluate(INBOUND_JS)
    return stats


# -- presence ------------------------------------------------------------------------------

LISTED_JS = "() => window.fairwire.participants.map((p) => p.identity).sort()"


async def listed(page: Page) -> list[str]:
    """The identities in the page's participant list (its presence state), sorted."""
    identities: list[str] = await page.evaluate(LISTED_JS)
    return identities


async def shown(page: Page) -> list[str]:
    """The identities the page's participant list shows (the DOM), sorted."""
    identities: list[str] = await page.locator("#participants li[data-identity]").evaluate_all(
        "(items) => items.map((li) => li.dataset.identity).sort()")
    return identities


async def page_seq(page: Page) -> int:
    seq: int = await page.evaluate("window.fairwire.seq")
    return seq


class RoomClients:
    """Other people in a room, as python-socketio clients that join like the page does.

    ``async with RoomClients(server, room) as clients``: ``await clients.join(identity, role)``
    connects one (websocket, ``auth={"token": ...}``) and returns its join acknowledgement;
    ``await clients.leave(identity)`` disconnects it; leaving the block disconnects the rest.
    """

    def __init__(self, server: FairwireServer, room: str) -> None:
        self.server = server
        self.room = room
        self.clients: dict[str, socketio.AsyncClient] = {}

    async def __aenter__(self) -> RoomClients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(self.leave(identity) for identity in list(self.clients)))

    async def token(self, identity: str, role: str, name: str | None = None) -> str:
        return await self.server.token(self.room, identity, role,
                                       name=name or identity.replace("-", " ").title())

    async def connect(self, identity: str, role: str, name: str | None = None,
                      token: str | None = None) -> socketio.AsyncClient:
        """Connect (not join); ``token`` from :meth:`token` saves a request when time counts."""
        if token is None:
            token = await self.token(identity, role, name)
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(self.server.url, auth={"token": token}, transports=["websocket"],
                             wait_timeout=10)
        self.clients[identity] = client
        return client

    async def join(self, identity: str, role: str, name: str | None = None,
                   token: str | None = None) -> dict[str, Any]:
        client = await self.connect(identity, role, name, token)
        ack: dict[str, Any] = await client.call("join", {}, timeout=10)
        assert "error" not in ack, ack
        return ack

    async def call(self, identity: str, event: str, data: Any = None) -> Any:
        return await self.clients[identity].call(event, {} if data is None else data, timeout=10)

    async def leave(self, identity: str) -> None:
        client = self.clients.pop(identity, None)
        if client is not None:
            await client.disconnect()
