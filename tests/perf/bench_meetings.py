"""Meetings benchmark: M meetings of 4 participants through the SFU (run on demand; issue #10).

    .venv/bin/python tests/perf/bench_meetings.py [--meetings 5,10,20] [--seconds 10]
        [--no-janus] [--janus-event-loops N]

Each participant publishes one VP8 640x360@30 (~600 kbit/s, a keyframe every 2.5 s) and one
Opus track and receives the other three participants' audio and video. The clip is encoded
once and shared by every publisher, each starting at its own random point of it (so keyframes
do not line up) with its own SSRCs.

For each M, Fairwire and then Janus (the other way round for every other M, so that drift on
this shared machine touches both alike) each get a fresh server process on the first CPU, the
same publishers and subscribers from this process on the second CPU (both as in
``bench_fanout.py``, whose pieces this reuses), a warm-up until every subscriber receives all
three videos, and a measuring window of ``--seconds``:

- Fairwire: its own process on uvloop with the production code path, shaped as the room page
  uses it (``signalling/media.py``): per participant one publisher connection
  (``Publisher.answer``) and one subscriber connection that the server offers and that carries
  every other participant's tracks (``Subscriber.create_offer`` / ``apply_answer``, no
  ``Selection``: everything in the room but the participant's own).
- Janus 1.1.2 VideoRoom (Debian ``janus``; HTTP transport, temporary configuration, every
  thread pinned to the same CPU, ``event_loops`` 1 by default): a room per meeting created at
  run time, each participant a publisher in it and one subscriber handle with a multistream
  subscription to the other three feeds (one peer connection with six m-lines: Janus 1.x's
  native way, and the same shape as Fairwire's).

It prints one JSON line for the clip, then per M one line per server and a line of
fairwire/janus ratios. A server's line: ``meetings``, ``participants``, ``incoming_pps`` (what
the publishers sent; ``publishers_on_pace_pct`` compares it with the clip's rate),
``forwarded_pps`` (Fairwire: what its subscriber connections sent; Janus: what the subscribers
received, Janus's own counters needing the admin API), ``cpu_us_per_packet`` (the server
process's utime + stime over the window, all threads, divided by the forwarded packets),
``loss_pct_mean``/``_max`` (per subscriber: the packets its three publishers sent in the window
against those it counted), ``worst_stall_ms`` (Fairwire's event loop: the lateness of a 5 ms
ticker; none for Janus), ``sfu_rss_mb``, and the load's own CPU use, UDP receive-buffer drops
and every CPU's business (above the two processes: someone else on the machine).

The load side uses aiortc internals (a load generator may): subscribers count RTP datagrams by
payload type and SSRC as they come off the socket, before SRTP unprotect and without decoding,
and the publishers' sent-packet counters are read from their senders' private fields.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from typing import TYPE_CHECKING, Any

import uvloop
from aiortc import RTCPeerConnection
from bench_fanout import (
    CLIP_SECONDS,
    CONNECT_CONCURRENCY,
    WARMUP_TIMEOUT,
    Clip,
    Control,
    JanusClient,
    JanusServer,
    Receiver,
    Sender,
    SfuProcess,
    close_all,
    compare,
    emit,
    encode_clip,
    ensure_janus,
    measure,
    serve_child,
    warm_up,
)
from benchutil import gather_bounded

if TYPE_CHECKING:
    from sfu.sessions import Sfu, Subscriber

PARTICIPANTS = 4
WIDTH, HEIGHT = 640, 360
VIDEO_BITRATE = 600_000
FIRST_ROOM = 1000  # Janus room ids are numbers: the meetings are FIRST_ROOM, FIRST_ROOM + 1, ...
RUN_TIMEOUT = 900.0


class MeetingBackend:
    """Fairwire's SFU with the room page's requests: publish, then a server-offered
    subscriber connection per participant (``subscribe``, ``subscribe-answer``)."""

    def __init__(self) -> None:
        from sfu.sessions import Sfu

        self.sfu: Sfu = Sfu()
        self.subscribers: dict[tuple[str, str], Subscriber] = {}
        self.renegotiations = 0

    async def _renegotiate(self, subscriber: Subscriber) -> None:
        # Everyone publishes before anyone subscribes: the first offer has every track.
        self.renegotiations += 1

    async def handle(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        room, identity = str(args["room"]), str(args["identity"])
        if op == "publish":
            publisher = self.sfu.room(room).publisher(identity)
            return {"sdp": await publisher.answer(args["sdp"])}
        if op == "subscribe":
            subscriber = self.subscribers[room, identity] = self.sfu.room(room).subscriber(
                identity, on_negotiation_needed=self._renegotiate)
            return {"sdp": await subscriber.create_offer()}
        if op == "subscribe-answer":
            await self.subscribers[room, identity].apply_answer(args["sdp"])
            return {}
        raise ValueError(f"unknown op {op}")

    def counters(self) -> dict[str, Any]:
        per_sub = {f"{room}/{identity}": s.sent_packets
                   for (room, identity), s in self.subscribers.items()}
        stats = self.sfu.stats()
        return {"forwarded": sum(per_sub.values()), "per_sub": per_sub,
                "ingress": stats["packets_received"], "send_failures": stats["send_failures"],
                "renegotiations": self.renegotiations}

    async def close(self) -> None:
        await self.sfu.close()


async def connected(pcs: list[RTCPeerConnection]) -> None:
    deadline = time.monotonic() + WARMUP_TIMEOUT
    while any(pc.connectionState != "connected" for pc in pcs):
        if time.monotonic() > deadline:
            raise TimeoutError("publishers did not connect")
        await asyncio.sleep(0.05)


async def run_meetings(
    label: str, server: Control | JanusClient, clip: Clip, meetings: int, seconds: float,
) -> dict[str, Any]:
    """Publish every participant, then subscribe each to the other three; measure."""
    janus = server if isinstance(server, JanusClient) else None
    rng = random.Random(meetings)  # the same clip offsets for both servers
    people = [(FIRST_ROOM + m, f"p{p}") for m in range(meetings) for p in range(PARTICIPANTS)]
    senders = {f"{room}/{who}": Sender(clip, f"{room}/{who}", rng.uniform(0, CLIP_SECONDS))
               for room, who in people}
    receivers = {
        (room, who): Receiver(f"{room}/{who}", sources=tuple(
            f"{room}/{other}" for other_room, other in people
            if other_room == room and other != who))
        for room, who in people
    }
    feeds: dict[str, int] = {}
    started = time.monotonic()

    async def publish(room: int, who: str) -> None:
        name = f"{room}/{who}"
        reply = await senders[name].connect(server, room=room, identity=who)
        if janus is not None:
            feeds[name] = int(reply["feed"])

    async def subscribe(room: int, who: str) -> None:
        receiver = receivers[room, who]
        if janus is not None:
            await receiver.connect_janus(janus, room, [feeds[s] for s in receiver.sources])
            return
        assert isinstance(server, Control)
        offer = await server.call("subscribe", room=room, identity=who)
        answer = await receiver.answer(offer["sdp"])
        await server.call("subscribe-answer", room=room, identity=who, sdp=answer)

    try:
        if janus is not None:
            janus.receivers = list(receivers.values())
            for m in range(meetings):
                await janus.create_room(FIRST_ROOM + m, PARTICIPANTS)
        await gather_bounded((publish(*p) for p in people), CONNECT_CONCURRENCY)
        # Janus offers a feed to subscribers once its publisher's connection is up.
        await connected([s.pc for s in senders.values()])
        await gather_bounded((subscribe(*p) for p in people), CONNECT_CONCURRENCY)
        connect_s = time.monotonic() - started
        with_video = await warm_up(list(receivers.values()))
        if janus is not None:
            janus.hangups.clear()
        result = await measure(label, server, list(senders.values()),
                               list(receivers.values()), seconds)
        # Before the connections close (and the rooms change):
        if janus is None:
            counters = await server.call("stats")
            result["send_failures"] = counters["send_failures"]
            result["renegotiations"] = counters["renegotiations"]
        else:
            result["forwarded_counted_at"] = "subscriber sockets"
            if janus.hangups:  # during the window: peer connections that failed
                result["hangups"] = janus.hangups[:5]
    finally:
        await close_all([*(s.pc for s in senders.values()),
                         *(r.pc for r in receivers.values())])
    nominal = len(people) * clip.describe()["total_pps"]
    line: dict[str, Any] = {
        "sfu": label, "meetings": meetings, "participants": len(people),
        "incoming_pps": result["publisher_pps"],
        "publishers_on_pace_pct": round(100 * result.pop("publisher_pps") / nominal, 1),
        "incoming_payload_mbps": result.pop("publisher_payload_mbps"),
        **result,
        "receiving_all_video": with_video,
        "connect_s": round(connect_s, 1),
    }
    return line


async def fairwire(clip: Clip, meetings: int, seconds: float, cpu: int) -> dict[str, Any]:
    async with SfuProcess("meetings", cpu, script=__file__) as control:
        return await run_meetings("fairwire", control, clip, meetings, seconds)


async def janus(clip: Clip, meetings: int, seconds: float, cpu: int, event_loops: int | None
                ) -> dict[str, Any]:
    async with JanusServer(cpu, event_loops) as client:
        line = await run_meetings("janus", client, clip, meetings, seconds)
        line["event_loops"] = event_loops or "a thread per handle"
        return line


async def bench(args: argparse.Namespace) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("needs two CPUs: one for the server, one for the load")
    started = time.monotonic()
    clip = await asyncio.to_thread(encode_clip, WIDTH, HEIGHT, VIDEO_BITRATE, False)
    description = clip.describe()
    del description["burst_keyframe_packets"]
    emit({**description, "encode_s": round(time.monotonic() - started, 1)})
    os.sched_setaffinity(0, {cpus[1]})
    event_loops = args.janus_event_loops or None
    for i, meetings in enumerate(int(m) for m in args.meetings.split(",")):
        runs = ["fairwire", "janus"] if args.janus else ["fairwire"]
        results: dict[str, dict[str, Any]] = {}
        for name in runs if i % 2 == 0 else runs[::-1]:
            if name == "fairwire":
                results[name] = await fairwire(clip, meetings, args.seconds, cpus[0])
            else:
                results[name] = await janus(clip, meetings, args.seconds, cpus[0], event_loops)
            emit(results[name])
        if args.janus:
            compare({meetings: results["fairwire"]}, {meetings: results["janus"]})
    emit({"total_s": round(time.monotonic() - started, 1)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--meetings", default="5,10,20", help="numbers of meetings")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window per M")
    parser.add_argument("--no-janus", dest="janus", action="store_false",
                        help="Fairwire only (by default Janus 1.1.2's VideoRoom too, apt-get "
                             "installs the janus package if missing)")
    parser.add_argument("--janus-event-loops", type=int, default=1, metavar="N",
                        help="Janus event_loops (0: Janus's own default, a thread per handle)")
    parser.add_argument("--serve", choices=("meetings",), help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(args.cpu, MeetingBackend)
        return
    if args.janus:
        ensure_janus()  # before the clock starts: a one-off install

    async def bounded() -> None:
        await asyncio.wait_for(bench(args), RUN_TIMEOUT)

    uvloop.run(bounded())


if __name__ == "__main__":
    main()
