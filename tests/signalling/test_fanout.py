"""Room broadcasts on python-socketio / python-engineio: the names they rely on, and delivery."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import engineio
import engineio.packet
import socketio
import socketio.packet
from aiohttp import web
from aiohttp.test_utils import TestServer

from signalling import fanout

ServerFactory = Callable[..., Awaitable[TestServer]]


def test_the_names_broadcast_uses_exist() -> None:
    assert hasattr(socketio.packet, "Packet") and hasattr(socketio.packet, "EVENT")
    assert hasattr(engineio.packet, "Packet") and hasattr(engineio.packet, "MESSAGE")
    assert hasattr(engineio.AsyncServer, "send_packet")
    assert hasattr(socketio.AsyncServer(async_mode="aiohttp").manager, "get_participants")


async def test_broadcast_reaches_the_room_only_and_yields_between_slices(
    aiohttp_server: ServerFactory, monkeypatch: Any
) -> None:
    monkeypatch.setattr(fanout, "SENDS_PER_TURN", 2)
    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)

    async def on_connect(sid: str, environ: Any, auth: Any = None) -> None:
        if auth and auth.get("room"):
            await sio.enter_room(sid, auth["room"])

    sio.on("connect", on_connect)
    server = await aiohttp_server(app)
    received: dict[str, list[Any]] = {}
    clients = []
    for name, room in (("a", "hall"), ("b", "hall"), ("c", "hall"), ("d", "elsewhere")):
        client = socketio.AsyncClient(reconnection=False)
        received[name] = []
        client.on("news", lambda data, name=name: received[name].append(data))
        await client.connect(str(server.make_url("/")), auth={"room": room},
                             transports=["websocket"])
        clients.append(client)
    try:
        sent = await fanout.broadcast(sio, "hall", "news", {"n": 1, "text": "雨"})
        assert sent == 3
        async with asyncio.timeout(5):
            while not all(received[name] for name in "abc"):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert received == {"a": [{"n": 1, "text": "雨"}], "b": [{"n": 1, "text": "雨"}],
                            "c": [{"n": 1, "text": "雨"}], "d": []}
    finally:
        for client in clients:
            await client.disconnect()
