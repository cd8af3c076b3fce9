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

Connections are made the same way for both: every publisher (at most CONNECT_CONCURRENCY at
a time), then, once the publishers' connections are up, every subscriber.

It prints one JSON line for the clip, then per M one line per server and a line of
fairwire/janus ratios. A server's line: ``meetings``, ``participants``, ``incoming_pps`` (what
the publishers sent; ``publishers_on_pace_pct`` compares it with the clip's rate: below 100,
the load could not keep up or publishers' connections went down), ``forwarded_pps`` (Fairwire:
what its subscriber connections sent; Janus: what the subscribers received, Janus's own
counters needing the admin API), ``cpu_us_per_packet`` (the server process's utime + stime over
the window, all threads, divided by the forwarded packets), ``sfu_cpu_pct`` (the same CPU time
per second: near 100 the server is saturated), ``loss_pct_mean``/``_max`` (per subscriber: the
packets its three publishers sent in the window against those it counted), ``worst_stall_ms``
(Fairwire's event loop: the lateness of a 20 ms ticker, as a node's own loop monitor; none
for Janus), ``sfu_rss_mb``,
``ingress_loss_pct`` (Fairwire: what its publications received against what was sent), the
load's own CPU use, UDP receive-buffer drops on the machine and every CPU's business (above the
two processes: someone else's work). A server that cannot keep up loses connections (ICE
consent expires when its answers to the checks come too late): ``connected_publishers`` says
how many were up once all had published, before the window and after it,
``connected_subscribers`` before and after the window, ``failures`` counts publish and
subscribe requests that failed, ``renegotiations`` (Fairwire) the offers its subscribers asked
for because a publisher went away.

The load side uses aiortc and ``sfu`` internals (a load generator may). Subscribers count RTP
datagrams by payload type and SSRC as they come off the socket, before SRTP unprotect and
without decoding (``bench_fanout.Receiver``). Publishers are negotiated by aiortc as usual
(its tracks never yield), but their packets are built from the clip packetized once (aiortc's
VP8 packetizer), with ``sfu.rtp``'s header template (the mid and abs-send-time extensions
aiortc's sender writes), and protected and sent by ``sfu``'s ``SrtpSink``, from one pacing
task for every publisher; sender reports carry their counts. Through aiortc's own sender the
load cost about three times as much and filled its core from about 7 meetings on.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import av
import uvloop
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.codecs.vpx import Vp8Encoder
from bench_fanout import (
    AUDIO_FRAME,
    AUDIO_RATE,
    CLIP_SECONDS,
    CONNECT_CONCURRENCY,
    FPS,
    WARMUP_TIMEOUT,
    Clip,
    Control,
    JanusClient,
    JanusServer,
    Publishing,
    Receiver,
    SfuProcess,
    close_all,
    compare,
    emit,
    encode_clip,
    ensure_janus,
    measure,
    print_floor,
    serve_child,
    warm_up,
)
from benchutil import gather_bounded

from sfu import _aiortc_compat as compat
from sfu.forwarding import MID_EXTENSION_URI
from sfu.rtp import RTP_HEADER_SIZE, RtpHeaderTemplate, one_byte_extensions
from sfu.sessions import Publication, Sfu, Subscriber, ntp_now

PARTICIPANTS = 4
WIDTH, HEIGHT = 640, 360
VIDEO_BITRATE = 600_000
FIRST_ROOM = 1000  # Janus room ids are numbers: the meetings are FIRST_ROOM, FIRST_ROOM + 1, ...
RUN_TIMEOUT = 900.0
VIDEO_CLOCK = 90_000
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


class MeetingBackend:
    """Fairwire's SFU with the room page's requests: publish, then a server-offered
    subscriber connection per participant (``subscribe``, ``subscribe-answer``)."""

    def __init__(self) -> None:
        self.sfu = Sfu(events=self)
        self.subscribers: dict[tuple[str, str], Subscriber] = {}
        self.renegotiations = 0
        self.received_by_unpublished = 0  # so that "ingress" never goes down

    async def track_published(self, publication: Publication) -> None:
        return None

    async def track_unpublished(self, publication: Publication) -> None:
        self.received_by_unpublished += publication.stream.received

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
                "ingress": stats["packets_received"] + self.received_by_unpublished,
                "send_failures": stats["send_failures"],
                "renegotiations": self.renegotiations}

    async def close(self) -> None:
        await self.sfu.close()


@dataclass(frozen=True)
class ClipPackets:
    """The clip as RTP payloads, packetized once: per video frame its VP8 payloads (aiortc's
    packetizer, payload descriptor included), per 20 ms one Opus packet."""

    video: list[list[bytes]]
    audio: list[list[bytes]]

    @property
    def pps(self) -> float:
        """Packets a second of one publisher."""
        return sum(len(f) for f in [*self.video, *self.audio]) / CLIP_SECONDS

    @classmethod
    def of(cls, clip: Clip) -> ClipPackets:
        vp8 = Vp8Encoder()
        video = []
        for i, frame in enumerate(clip.video):
            packet = av.Packet(frame)
            packet.pts, packet.time_base = i, fractions.Fraction(1, FPS)
            video.append(vp8.pack(packet)[0])
        return cls(video, [[frame] for frame in clip.audio])


@dataclass(slots=True, eq=False)
class _Outgoing:
    """One of a publisher's tracks on the wire."""

    frames: list[list[bytes]]
    first: int  # the clip's frame this track starts with
    ticks: int  # RTP clock ticks per frame
    sender: RTCRtpSender
    template: RtpHeaderTemplate
    sink: compat.SrtpSink
    abs_send_time_at: int  # offset of the abs-send-time value in every packet (0: none)
    sequence_number: int = field(default_factory=lambda: random.getrandbits(16))
    timestamp_base: int = field(default_factory=lambda: random.getrandbits(32))
    timestamp: int = 0
    packets: int = 0
    octets: int = 0


class Publisher(Publishing):
    """A participant's sending connection: negotiated by aiortc (one Opus and one VP8 track,
    its own SSRCs), its packets sent by :func:`pace`, not by aiortc's sender (see above)."""

    def __init__(self, name: str, packets: ClipPackets, offset: float) -> None:
        super().__init__(name)
        self.packets = packets
        self.offset = offset
        self.senders = [self.pc.addTrack(compat.IdleTrack(kind, f"{name}/{kind}"))
                        for kind in ("audio", "video")]
        self.tracks: dict[str, _Outgoing] | None = None

    def _ready(self) -> dict[str, _Outgoing] | None:
        """The outgoing tracks once the connection can carry them."""
        tracks = {}
        for transceiver in self.pc.getTransceivers():
            negotiated = compat.negotiated_stream(transceiver)
            sink = compat.SrtpSink(transceiver.sender.transport)
            if negotiated is None or negotiated.mid is None or not sink.ready:
                return None
            # What aiortc's sender writes: the mid, and abs-send-time where negotiated (video).
            ids = negotiated.extension_ids
            mid = negotiated.mid.encode()
            extensions = [(ids[MID_EXTENSION_URI], mid)]
            if ABS_SEND_TIME_URI in ids:
                extensions.append((ids[ABS_SEND_TIME_URI], bytes(3)))
            audio = transceiver.kind == "audio"
            frames = self.packets.audio if audio else self.packets.video
            tracks[transceiver.kind] = _Outgoing(
                frames=frames,
                first=round(self.offset * (AUDIO_RATE / AUDIO_FRAME if audio else FPS)),
                ticks=AUDIO_FRAME if audio else VIDEO_CLOCK // FPS,
                sender=transceiver.sender,
                template=RtpHeaderTemplate(negotiated.payload_type, negotiated.ssrc,
                                           one_byte_extensions(extensions)),
                sink=sink,
                # fixed header, extension header, mid's element, abs-send-time's id byte
                abs_send_time_at=(RTP_HEADER_SIZE + 4 + 1 + len(mid) + 1
                                  if len(extensions) > 1 else 0),
            )
        return tracks

    def send(self, kind: str, tick: int, abs_send_time: bytes) -> None:
        """The frame of clock tick ``tick``."""
        if self.pc.connectionState != "connected":
            return  # not yet, or gone (its sockets closed)
        tracks = self.tracks
        if tracks is None:
            tracks = self.tracks = self._ready()
            if tracks is None:
                return
        track = tracks[kind]
        payloads = track.frames[(track.first + tick) % len(track.frames)]
        timestamp = track.timestamp = track.timestamp_base + tick * track.ticks
        last = len(payloads) - 1
        at = track.abs_send_time_at
        for i, payload in enumerate(payloads):
            packet = track.template.build(i == last, track.sequence_number, timestamp, payload)
            if at:
                packet[at:at + 3] = abs_send_time
            track.sequence_number += 1
            if track.sink.send(packet):
                track.packets += 1
                track.octets += len(payload)

    def report(self) -> None:
        """Counters for aiortc's own sender reports (its RTCP loop sends them)."""
        ntp = ntp_now()
        for track in (self.tracks or {}).values():
            compat.set_sender_report(track.sender, ntp, track.timestamp & 0xFFFFFFFF,
                                     track.packets, track.octets)

    @property
    def sent(self) -> int:
        return sum(t.packets for t in (self.tracks or {}).values())

    @property
    def octets(self) -> int:
        return sum(t.octets for t in (self.tracks or {}).values())


async def pace(publishers: list[Publisher]) -> None:
    """Every publisher's next Opus packet each 20 ms and next video frame each 1/30 s, from
    one task (a task and a timer per track cost the load more than the packets). Behind time,
    it catches up, yielding to the event loop between ticks."""
    start = time.monotonic()
    audio = video = 0
    next_report = start + 1.0
    while True:
        due_audio = start + audio * AUDIO_FRAME / AUDIO_RATE
        due_video = start + video / FPS
        now = time.monotonic()
        await asyncio.sleep(max(0.0, min(due_audio, due_video) - now))
        # RFC 5450 abs-send-time: 6.18 fixed-point seconds, 24 bits (NTP time >> 14).
        abs_send_time = ((ntp_now() >> 14) & 0xFFFFFF).to_bytes(3, "big")
        if due_audio <= due_video:
            for publisher in publishers:
                publisher.send("audio", audio, abs_send_time)
            audio += 1
        else:
            for publisher in publishers:
                publisher.send("video", video, abs_send_time)
            video += 1
        if now >= next_report:
            next_report += 1.0
            for publisher in publishers:
                publisher.report()


async def settle(pcs: list[RTCPeerConnection]) -> None:
    """Until every connection is up, or none is still connecting (at most WARMUP_TIMEOUT)."""
    deadline = time.monotonic() + WARMUP_TIMEOUT
    while time.monotonic() < deadline and any(
            pc.connectionState in ("new", "connecting") for pc in pcs):
        await asyncio.sleep(0.05)


def up(pcs: list[RTCPeerConnection]) -> int:
    return sum(1 for pc in pcs if pc.connectionState == "connected")


async def run_meetings(
    label: str, server: Control | JanusClient, packets: ClipPackets, meetings: int,
    seconds: float,
) -> dict[str, Any]:
    """Publish every participant, then subscribe each to the other three; measure.

    A server that cannot keep up loses connections (ICE consent expires): what failed or went
    down is counted and the window measured all the same."""
    janus = server if isinstance(server, JanusClient) else None
    rng = random.Random(meetings)  # the same clip offsets for both servers
    people = [(FIRST_ROOM + m, f"p{p}") for m in range(meetings) for p in range(PARTICIPANTS)]
    senders = {f"{room}/{who}": Publisher(f"{room}/{who}", packets,
                                          rng.uniform(0, CLIP_SECONDS))
               for room, who in people}
    receivers = {
        (room, who): Receiver(f"{room}/{who}", sources=tuple(
            f"{room}/{other}" for other_room, other in people
            if other_room == room and other != who))
        for room, who in people
    }
    publishers = [s.pc for s in senders.values()]
    subscribers = [r.pc for r in receivers.values()]
    feeds: dict[str, int] = {}
    failures: Counter[str] = Counter()

    async def publish(room: int, who: str) -> None:
        name = f"{room}/{who}"
        try:
            reply = await senders[name].connect(server, room=room, identity=who)
        except Exception as exc:
            failures[f"publish: {exc}"[:120]] += 1
            return
        if janus is not None:
            feeds[name] = int(reply["feed"])

    async def subscribe(room: int, who: str) -> None:
        receiver = receivers[room, who]
        try:
            if janus is not None:
                await receiver.connect_janus(janus, room, [feeds[s] for s in receiver.sources])
                return
            assert isinstance(server, Control)
            offer = await server.call("subscribe", room=room, identity=who)
            answer = await receiver.answer(offer["sdp"])
            await server.call("subscribe-answer", room=room, identity=who, sdp=answer)
        except Exception as exc:
            failures[f"subscribe: {exc!r}"[:120]] += 1

    started = time.monotonic()
    pacer = asyncio.ensure_future(pace(list(senders.values())))
    try:
        if janus is not None:
            janus.receivers = list(receivers.values())
            for m in range(meetings):
                await janus.create_room(FIRST_ROOM + m, PARTICIPANTS)
        await gather_bounded((publish(*p) for p in people), CONNECT_CONCURRENCY)
        # Janus offers a feed to subscribers once its publisher's connection is up.
        await settle(publishers)
        published = up(publishers)
        await gather_bounded((subscribe(*p) for p in people), CONNECT_CONCURRENCY)
        connect_s = time.monotonic() - started
        with_video = await warm_up(list(receivers.values()))
        if pacer.done():
            pacer.result()  # raises what stopped it
        if janus is not None:
            janus.hangups.clear()
        before = up(publishers), up(subscribers)
        result = await measure(label, server, list(senders.values()),
                               list(receivers.values()), seconds)
        # Before the connections close (and the rooms change):
        result["connected_publishers"] = [published, *before[:1], up(publishers)]
        result["connected_subscribers"] = [*before[1:], up(subscribers)]
        if janus is None:
            counters = await server.call("stats")
            result["send_failures"] = counters["send_failures"]
            result["renegotiations"] = counters["renegotiations"]
        else:
            result["forwarded_counted_at"] = "subscriber sockets"
            if janus.hangups:  # during the window: peer connections that failed
                result["hangups"] = janus.hangups[:5]
    finally:
        pacer.cancel()
        await close_all([*publishers, *subscribers])
    nominal = len(people) * packets.pps
    line: dict[str, Any] = {
        "sfu": label, "meetings": meetings, "participants": len(people),
        "incoming_pps": result["publisher_pps"],
        "publishers_on_pace_pct": round(100 * result.pop("publisher_pps") / nominal, 1),
        "incoming_payload_mbps": result.pop("publisher_payload_mbps"),
        **result,
        "receiving_all_video": with_video,
        "connect_s": round(connect_s, 1),
    }
    if failures:
        line["failures"] = dict(failures.most_common(5))
    return line


async def fairwire(packets: ClipPackets, meetings: int, seconds: float, cpu: int
                   ) -> dict[str, Any]:
    async with SfuProcess("meetings", cpu, script=__file__) as control:
        return await run_meetings("fairwire", control, packets, meetings, seconds)


async def janus(packets: ClipPackets, meetings: int, seconds: float, cpu: int,
                event_loops: int | None) -> dict[str, Any]:
    async with JanusServer(cpu, event_loops) as client:
        line = await run_meetings("janus", client, packets, meetings, seconds)
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
    packets = ClipPackets.of(clip)
    os.sched_setaffinity(0, {cpus[1]})
    event_loops = args.janus_event_loops or None
    for i, meetings in enumerate(int(m) for m in args.meetings.split(",")):
        runs = ["fairwire", "janus"] if args.janus else ["fairwire"]
        results: dict[str, dict[str, Any]] = {}
        for name in runs if i % 2 == 0 else runs[::-1]:
            if name == "fairwire":
                results[name] = await fairwire(packets, meetings, args.seconds, cpus[0])
            else:
                results[name] = await janus(packets, meetings, args.seconds, cpus[0],
                                            event_loops)
            emit(results[name])
        if args.janus:
            compare({meetings: results["fairwire"]}, {meetings: results["janus"]})
        if args.floor:
            print_floor({meetings: {**results["fairwire"], "fanout": PARTICIPANTS - 1}},
                        cpus[0], args.seconds, label="meetings")
    emit({"total_s": round(time.monotonic() - started, 1)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--meetings", default="5,10,20", help="numbers of meetings")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window per M")
    parser.add_argument("--no-janus", dest="janus", action="store_false",
                        help="Fairwire only (by default Janus 1.1.2's VideoRoom too, apt-get "
                             "installs the janus package if missing)")
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the floor (bench_floor.py) at a fan-out of 3 per M")
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
