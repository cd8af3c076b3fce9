"""One socket.io event to every client of a room on this node, built once, sent in slices.

python-socketio's ``emit`` to a room makes an asyncio task per recipient and lets them all run
in one turn of the event loop: for a livestream of thousands that is hundreds of milliseconds
in which nothing else (a join, a health check, RTCP) is served. Here the packet is encoded
once, handed to each recipient's engine.io socket in order (a queue put, no task), and the
loop gets a turn every :data:`SENDS_PER_TURN` recipients. Only this node's clients are sent to:
every node delivers the room's log itself.

It uses python-socketio's packet classes, its manager's ``get_participants`` and
python-engineio's ``send_packet``: the names ``tests/signalling/test_fanout.py`` checks.
"""

from __future__ import annotations

import asyncio
from typing import Any

import engineio.packet
import socketio
import socketio.packet

SENDS_PER_TURN = 100
NAMESPACE = "/"


async def broadcast(sio: socketio.AsyncServer, room: str, event: str, data: Any) -> int:
    """Send ``event`` with ``data`` to this node's clients in ``room``; returns how many."""
    encoded = socketio.packet.Packet(
        socketio.packet.EVENT, namespace=NAMESPACE, data=[event, data]).encode()
    frame = engineio.packet.Packet(engineio.packet.MESSAGE, encoded)
    send = sio.eio.send_packet
    # A copy: a client joining or leaving during a turn does not disturb the iteration.
    recipients = [eio_sid for _, eio_sid in sio.manager.get_participants(NAMESPACE, room)]
    for index, eio_sid in enumerate(recipients, start=1):
        await send(eio_sid, frame)
        if index % SENDS_PER_TURN == 0:
            await asyncio.sleep(0)
    return len(recipients)
