"""End-to-end fan-out benchmark: 1 publisher → N subscribers through the SFU (run on demand).

    .venv/bin/python tests/perf/bench_fanout.py [--sizes 10,40,160] [--seconds 12]

The SFU runs in its own process pinned to the first CPU, on uvloop like ``fairwire serve``, with
the production code path unchanged (``Sfu``, ``Publisher.answer``, WHEP-style
``Subscriber.answer``) and a line-delimited JSON control channel on loopback TCP for SDP,
statistics and pings. This process is the load generator, pinned to the second CPU: one
publisher sending a pre-encoded VP8 1280x720 + Opus clip (about 220 packets/s, 1.7 Mbit/s), and
N subscriber peer connections that count packets without decoding.

It prints one JSON line for the clip, one per N with CPU µs per forwarded packet, packets/s,
loss, worst event-loop stall and RSS, one for a keyframe burst at the largest N, and one for
aiortc's ``MediaRelay`` (decode once, encode per subscriber: the stock sender path) at N = 10.

With ``--janus`` the same publisher and subscribers then run against Janus 1.1.2's VideoRoom
(Debian package ``janus``, installed if missing) in the same run, pinned to the same CPU, its
CPU time read from /proc: one line per N, largest N first (next to Fairwire's), then a line of
fairwire/janus ratios. Then (unless ``--no-floor``) one line per N with the floor beside
Fairwire's figure: the native SRTP protect + ``sendmmsg`` loop alone at the same fan-out and
packet rate (``bench_floor.py``), what no forwarder on this machine can go below.
Janus runs from a temporary configuration folder (VideoRoom and HTTP
transport only, on 127.0.0.1 and a free port) and is killed at the end.

The load side uses aiortc internals (a load generator may): each subscriber receiver's
``_handle_rtp_packet`` is replaced per instance by a counter, the publisher's sent-packet
counters are read from its senders' private fields, and its audio sender's
``_next_encoded_frame`` is wrapped so that each packet carries an audio level (RFC 6464) as a
browser's does (aiortc measures only frames it encodes itself).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import gc
import itertools
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import av
import uvloop
from aioice.ice import get_host_addresses
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.sdp import SessionDescription
from benchutil import gather_bounded

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from signalling.loop_monitor import PROBE_INTERVAL_SECONDS  # noqa: E402

WIDTH, HEIGHT, FPS = 1280, 720, 30
CLIP_SECONDS = 10
VIDEO_BITRATE = 1_550_000
KEYFRAME_INTERVAL = 75  # frames: 2.5 s, like a browser's periodic keyframes
AUDIO_BITRATE = 48_000
AUDIO_RATE = 48_000
AUDIO_FRAME = 960  # 20 ms
VP8_PACKET_PAYLOAD = 1296  # aiortc PACKET_MAX (1300) minus a 4-byte VP8 payload descriptor
BURST_PACKETS = 100  # the injected keyframe: about this many RTP packets
BURSTS = 5
RELAY_SUBSCRIBERS = 10
# The SFU's ticker: lateness of these wake-ups is the loop stall. A production node ticks as
# often (signalling.loop_monitor); a faster ticker would cost CPU that only the bench pays.
STALL_PERIOD = PROBE_INTERVAL_SECONDS
CONNECT_CONCURRENCY = 10
WARMUP_TIMEOUT = 30.0
SETTLE_SECONDS = 2.0
RTP_FIRST_BYTE = range(128, 192)  # RFC 7983 §7: RTP/RTCP among STUN, DTLS and the rest
RTCP_SECOND_BYTE = range(192, 224)  # RFC 5761 §4: RTCP packet types 192-223
RUN_TIMEOUT = 345.0  # the whole run (the brief: under 6 minutes)
CHILD_LIFETIME = 420.0  # an SFU process outliving this exits on its own
MB = 1024 * 1024


def rtc_configuration() -> RTCConfiguration:
    # No STUN (aiortc's default is Google's server): everything stays on this machine.
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


# -- the pre-encoded clip ----------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    video: list[bytes]  # one encoded VP8 frame per 1/30 s
    audio: list[bytes]  # one Opus packet per 20 ms
    big_keyframe: bytes  # a keyframe of about BURST_PACKETS packets (empty: none made)
    width: int = WIDTH
    height: int = HEIGHT

    def describe(self) -> dict[str, Any]:
        video_packets = sum(-(-len(f) // VP8_PACKET_PAYLOAD) for f in self.video) / CLIP_SECONDS
        audio_packets = len(self.audio) / CLIP_SECONDS
        payload = (sum(map(len, self.video)) + sum(map(len, self.audio))) / CLIP_SECONDS
        keyframes = [len(f) for f in self.video if not f[0] & 1]  # RFC 6386 §9.1: P bit
        return {
            "clip": f"VP8 {self.width}x{self.height}@{FPS} + Opus 20 ms, {CLIP_SECONDS} s looped",
            "video_pps": round(video_packets, 1),
            "audio_pps": round(audio_packets, 1),
            "total_pps": round(video_packets + audio_packets, 1),
            "payload_mbps": round(payload * 8 / 1e6, 3),
            "keyframe_bytes": keyframes,
            "burst_keyframe_packets": -(-len(self.big_keyframe) // VP8_PACKET_PAYLOAD),
        }


def _vp8_encoder(bitrate: int, qmin: int, qmax: int, width: int, height: int) -> Any:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = fractions.Fraction(1, FPS)
    codec.framerate = fractions.Fraction(FPS)
    codec.bit_rate = bitrate
    codec.gop_size = KEYFRAME_INTERVAL
    codec.qmin, codec.qmax = qmin, qmax
    # aiortc's own realtime CBR settings (aiortc.codecs.vpx.Vp8Encoder), faster cpu-used.
    codec.options = {
        "bufsize": str(bitrate), "cpu-used": "5", "deadline": "good", "lag-in-frames": "0",
        "minrate": str(bitrate), "maxrate": str(bitrate), "overshoot-pct": "15",
        "undershoot-pct": "100", "static-thresh": "1", "partitions": "0",
        "noise-sensitivity": "4",
    }
    codec.thread_count = 2
    return codec


def _gray_texture(rng: random.Random, width: int, height: int, scale: int) -> av.VideoFrame:
    small = av.VideoFrame(width // scale, height // scale, "gray")
    small.planes[0].update(rng.randbytes(small.planes[0].buffer_size))
    return small.reformat(width=width, height=height, format="gray", interpolation="BICUBIC")


def encode_clip(width: int = WIDTH, height: int = HEIGHT, bitrate: int = VIDEO_BITRATE,
                burst: bool = True) -> Clip:
    """A moving test pattern: a smooth texture panning diagonally plus a drifting patch of
    fresh noise (an object, camera grain), so the encoder's frame sizes look like a camera's.
    ``burst``: also make the large keyframe of the burst test."""
    rng = random.Random(1)
    texture = _gray_texture(rng, width * 2, height * 2, 16)
    pixels, stride = bytes(texture.planes[0]), texture.planes[0].line_size
    noise = rng.randbytes(width * height)
    grain = 15_000 * width * height // (1280 * 720)  # the same share of the picture
    chroma = bytes([128]) * (width * height // 4)
    encoder = _vp8_encoder(bitrate, 2, 56, width, height)
    video: list[bytes] = []
    for i in range(CLIP_SECONDS * FPS + 1):
        frame = av.VideoFrame(width, height, "yuv420p")
        x, y = (i * 7) % width, (i * 3) % height
        luma = bytearray(b"".join(
            pixels[(y + r) * stride + x:(y + r) * stride + x + width] for r in range(height)
        ))
        at, src = (i * 37) % (width * height - grain), (i * 911) % (width * height - grain)
        luma[at:at + grain] = noise[src:src + grain]
        for plane, data in zip(frame.planes, (bytes(luma), chroma, chroma), strict=True):
            plane.update(data)
        frame.pts = i
        if i == CLIP_SECONDS * FPS:
            break
        video.extend(bytes(p) for p in encoder.encode(frame))
    video.extend(bytes(p) for p in encoder.encode(None))
    video = video[: CLIP_SECONDS * FPS]

    # A large keyframe for the burst test: pick the quantizer whose size is nearest the target.
    target = BURST_PACKETS * VP8_PACKET_PAYLOAD - VP8_PACKET_PAYLOAD // 2
    still = _gray_texture(rng, width, height, 4).reformat(format="yuv420p")
    best = b""
    for q in range(20, 57, 4) if burst else ():
        codec = _vp8_encoder(20_000_000, q, q, width, height)
        still.pts = 0
        data = b"".join(bytes(p) for p in [*codec.encode(still), *codec.encode(None)])
        if not best or abs(len(data) - target) < abs(len(best) - target):
            best = data

    audio_codec = av.CodecContext.create("libopus", "w")
    audio_codec.sample_rate = AUDIO_RATE
    audio_codec.layout = "stereo"
    audio_codec.format = "s16"
    audio_codec.bit_rate = AUDIO_BITRATE
    audio: list[bytes] = []
    tone = bytes(rng.randrange(256) for _ in range(AUDIO_FRAME * 4))
    for i in range(CLIP_SECONDS * AUDIO_RATE // AUDIO_FRAME):
        samples = av.AudioFrame(format="s16", layout="stereo", samples=AUDIO_FRAME)
        samples.planes[0].update(tone)
        samples.sample_rate = AUDIO_RATE
        samples.pts = i * AUDIO_FRAME
        audio.extend(bytes(p) for p in audio_codec.encode(samples))
    return Clip(video, audio[: CLIP_SECONDS * AUDIO_RATE // AUDIO_FRAME], best, width, height)


class PacedTrack(MediaStreamTrack):
    """Returns pre-encoded frames as ``av.Packet``s in real time, looping the clip.

    aiortc's sender only packetizes an ``av.Packet`` (``encoder.pack``): no encoding here.
    ``start``: the clip's frame to begin with (publishers sharing a clip, out of step).
    """

    def __init__(self, kind: str, frames: list[bytes], interval: float, clock_rate: int,
                 start: int = 0) -> None:
        super().__init__()
        self.kind = kind
        self._frames = frames
        self._interval = interval
        self._ticks = round(interval * clock_rate)
        self._time_base = fractions.Fraction(1, clock_rate)
        self._first = self._index = start
        self._start: float | None = None
        self._injected: bytes | None = None
        self.injected = asyncio.Event()

    def inject(self, frame: bytes) -> None:
        """Send ``frame`` in place of the next one (the keyframe burst)."""
        self._injected = frame

    async def recv(self) -> av.Packet[Any]:
        if self._start is None:
            self._start = time.monotonic()
        i = self._index
        self._index += 1
        delay = self._start + (i - self._first) * self._interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        data = self._frames[i % len(self._frames)]
        if self._injected is not None:
            data, self._injected = self._injected, None
            self.injected.set()
        packet = av.Packet(data)
        packet.pts = i * self._ticks
        packet.time_base = self._time_base
        return packet


# -- the SFU process ---------------------------------------------------------------------------


class StallProbe:
    """Worst lateness of a short periodic sleep: how long the event loop was busy elsewhere."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        clock = time.perf_counter
        while True:
            start = clock()
            await asyncio.sleep(STALL_PERIOD)
            late = clock() - start - STALL_PERIOD
            if late > self.worst:
                self.worst = late

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst


class GcProbe:
    """Longest garbage-collector pause (a stall the ticker cannot tell from others)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.worst = max(self.worst, time.perf_counter() - self._start)

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _sender_packets(sender: RTCRtpSender) -> int:
    # aiortc's private sent-packet counter (feeds its sender reports).
    return int(sender._RTCRtpSender__packet_count)  # type: ignore[attr-defined]


def _sender_octets(sender: RTCRtpSender) -> int:
    return int(sender._RTCRtpSender__octet_count)  # type: ignore[attr-defined]


class Backend(Protocol):
    """What the SFU process serves: requests besides ping/stats/quit, and its counters."""

    async def handle(self, op: str, args: dict[str, Any]) -> dict[str, Any]: ...

    def counters(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class FanoutBackend:
    """One publisher and subscribers that send the offer (WHEP-style)."""

    async def publish(self, sdp: str) -> str:
        raise NotImplementedError

    async def subscribe(self, name: str, sdp: str) -> str:
        raise NotImplementedError

    def counters(self) -> dict[str, Any]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def handle(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        if op == "publish":
            return {"sdp": await self.publish(args["sdp"])}
        if op == "subscribe":
            return {"sdp": await self.subscribe(args["name"], args["sdp"])}
        raise ValueError(f"unknown op {op}")


class ForwardingBackend(FanoutBackend):
    """Fairwire's SFU, production path."""

    def __init__(self) -> None:
        from sfu.sessions import Sfu

        self.sfu = Sfu()
        self.room = self.sfu.room("bench")

    async def publish(self, sdp: str) -> str:
        return await self.room.publisher("publisher").answer(sdp)

    async def subscribe(self, name: str, sdp: str) -> str:
        return await self.room.subscriber(name).answer(sdp)

    def counters(self) -> dict[str, Any]:
        per_sub = {
            s.identity: s.sent_packets for s in self.room.subscribers
        }
        received = sum(p.stream.received for p in self.room.publications)
        return {"forwarded": sum(per_sub.values()), "per_sub": per_sub, "ingress": received}

    async def close(self) -> None:
        await self.sfu.close()


class RelayBackend(FanoutBackend):
    """aiortc's MediaRelay: the publisher's tracks decoded once, encoded per subscriber."""

    def __init__(self) -> None:
        from aiortc.contrib.media import MediaRelay

        self.relay = MediaRelay()
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.publisher: RTCPeerConnection | None = None
        self.subscribers: dict[str, RTCPeerConnection] = {}

    async def publish(self, sdp: str) -> str:
        pc = self.publisher = RTCPeerConnection(rtc_configuration())
        pc.on("track", lambda track: self.tracks.__setitem__(track.kind, track))
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def subscribe(self, name: str, sdp: str) -> str:
        pc = self.subscribers[name] = RTCPeerConnection(rtc_configuration())
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        for track in self.tracks.values():
            # Unbuffered: a live relay drops frames it cannot encode in time (buffered, the
            # queues of an overloaded relay grow without bound).
            pc.addTrack(self.relay.subscribe(track, buffered=False))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    def counters(self) -> dict[str, Any]:
        per_sub = {
            name: sum(_sender_packets(s) for s in pc.getSenders())
            for name, pc in self.subscribers.items()
        }
        return {"forwarded": sum(per_sub.values()), "per_sub": per_sub, "ingress": None}

    async def close(self) -> None:
        for pc in [*self.subscribers.values(), self.publisher]:
            if pc is not None:
                await pc.close()


def fanout_backend(mode: str, sends_per_turn: int | None) -> FanoutBackend:
    if sends_per_turn is not None:  # A/B of the fan-out yield interval, sfu/ left unchanged
        import sfu.forwarding

        sfu.forwarding.FANOUT_SENDS_PER_TURN = sends_per_turn
    return ForwardingBackend() if mode == "forward" else RelayBackend()


def serve_child(cpu: int, make_backend: Callable[[], Backend]) -> None:
    """The SFU process's main: pinned to ``cpu``, on uvloop, exits when its parent is gone."""
    os.sched_setaffinity(0, {cpu})
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    uvloop.run(serve(make_backend))


async def serve(make_backend: Callable[[], Backend]) -> None:
    """The control channel: the backend's requests, statistics, pings."""
    backend = make_backend()
    probe = StallProbe()
    gc_probe = GcProbe()
    done = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()
    clients: set[asyncio.Task[Any]] = set()

    async def dispatch(msg: dict[str, Any]) -> dict[str, Any]:
        op = msg["op"]
        if op == "ping":
            return {}
        if op == "stats":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return {
                "cpu": usage.ru_utime + usage.ru_stime,
                "rss": _rss_bytes(),
                "stall": probe.take(),
                "gc": gc_probe.take(),
                "time": time.monotonic(),
                **backend.counters(),
            }
        if op == "quit":
            done.set()
            return {}
        return await backend.handle(op, msg)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        this = asyncio.current_task()
        if this is not None:
            clients.add(this)
        async def handle(msg: dict[str, Any]) -> None:
            try:
                reply = {"id": msg["id"], **(await dispatch(msg))}
            except Exception as exc:
                reply = {"id": msg["id"], "error": repr(exc)}
            writer.write(json.dumps(reply).encode() + b"\n")

        while line := await reader.readline():
            task = asyncio.ensure_future(handle(json.loads(line)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(client, "127.0.0.1", 0, limit=1 << 22)
    print(server.sockets[0].getsockname()[1], flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), CHILD_LIFETIME)
    if clients:
        await asyncio.wait(clients, timeout=3)  # the parent closes its end after "quit"
    server.close()
    probe.task.cancel()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(backend.close(), 10)


def _exit_with_parent() -> None:
    # Raw reads (no buffered-reader lock held at interpreter shutdown) until EOF: parent gone.
    while os.read(0, 4096):
        pass
    os._exit(0)


# -- the load side -----------------------------------------------------------------------------


class Control:
    """Requests to the SFU process over its line-delimited JSON channel (replies by id)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader_task = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            msg = json.loads(line)
            future = self._pending.pop(msg["id"], None)
            if future is not None and not future.done():
                future.set_result(msg)
        for future in self._pending.values():
            future.set_exception(ConnectionError("the SFU process closed its channel"))

    async def call(self, op: str, wait: float = 30.0, **args: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        future = self._pending[request_id] = asyncio.get_running_loop().create_future()
        self._writer.write(json.dumps({"id": request_id, "op": op, **args}).encode() + b"\n")
        reply: dict[str, Any] = await asyncio.wait_for(future, wait)
        if "error" in reply:
            raise RuntimeError(f"SFU {op}: {reply['error']}")
        return reply

    def close(self) -> None:
        self._reader_task.cancel()
        self._writer.close()


class SfuProcess:
    """``script --serve mode --cpu cpu`` as a child (its main calls :func:`serve_child`)."""

    def __init__(self, mode: str, cpu: int, extra: tuple[str, ...] = (),
                 script: str = __file__) -> None:
        self.mode = mode
        self.cpu = cpu
        self.extra = extra
        self.script = script
        self.proc: asyncio.subprocess.Process | None = None
        self.control: Control | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def __aenter__(self) -> Control:
        # stdin stays open for the child's lifetime: it exits when it reads EOF (we are gone).
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, self.script, "--serve", self.mode, "--cpu", str(self.cpu), *self.extra,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        reader, writer = await asyncio.open_connection("127.0.0.1", int(line), limit=1 << 22)
        self.control = Control(reader, writer)
        return self.control

    async def __aexit__(self, *exc: object) -> None:
        proc = self.proc
        if self.control is not None:
            with contextlib.suppress(Exception):
                await self.control.call("quit", wait=5)
            self.control.close()
        if proc is not None:
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
            if proc.stdin is not None:
                proc.stdin.close()


@dataclass
class Receiver:
    """A subscriber peer connection that counts what it receives and decodes nothing.

    With ``at_socket`` (the default) RTP datagrams are counted by payload type as they come
    off the socket, before SRTP unprotect: aiortc's receive path costs the load process
    ~25 µs a packet, which at 160 subscribers saturates its core and would make the load,
    not the SFU, the bottleneck. Otherwise each receiver's ``_handle_rtp_packet`` is
    replaced by a counter (after SRTP unprotect and parsing, still no decoding). Either way
    the SSRCs that video arrives on are noted (a connection may carry several publishers).
    """

    name: str
    at_socket: bool = True
    # The publishers (Sender names) whose packets this subscriber should get; empty: all.
    sources: tuple[str, ...] = ()
    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(rtc_configuration()))
    counts: dict[str, int] = field(default_factory=lambda: {"audio": 0, "video": 0})
    video_ssrcs: set[bytes] = field(default_factory=set)
    janus_handle: int | None = None  # with --janus: this subscriber's VideoRoom handle

    def _count(self, receiver: RTCRtpReceiver, kind: str) -> None:
        counts, video_ssrcs = self.counts, self.video_ssrcs
        # aiortc internal: stop the (idle) decoder thread once packets flow, then only count.
        stop: Callable[[], None] = receiver._RTCRtpReceiver__stop_decoder  # type: ignore[attr-defined]

        async def count_first(packet: Any, arrival_time_ms: int) -> None:
            stop()
            receiver._handle_rtp_packet = count  # type: ignore[method-assign]
            await count(packet, arrival_time_ms)

        async def count(packet: Any, arrival_time_ms: int) -> None:
            counts[kind] += 1
            if kind == "video":
                video_ssrcs.add(packet.ssrc.to_bytes(4, "big"))

        receiver._handle_rtp_packet = count_first  # type: ignore[method-assign]

    async def connect(self, control: Control) -> None:
        for kind in ("audio", "video"):
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            self._count(transceiver.receiver, kind)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        reply = await control.call("subscribe", name=self.name, sdp=self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        if self.at_socket:
            self._count_at_socket(reply["sdp"])

    async def answer(self, offer: str) -> str:
        """The same peer connection and counting when the server offers: our answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        for transceiver in self.pc.getTransceivers():
            self._count(transceiver.receiver, transceiver.kind)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        if self.at_socket:
            self._count_at_socket(offer)  # the answer reuses the offer's payload types
        return str(self.pc.localDescription.sdp)

    async def connect_janus(self, janus: JanusClient, room: int | None = None,
                            feeds: list[int] | None = None) -> None:
        """Janus offers (one multistream subscription to ``feeds``) and this side answers."""
        self.janus_handle, offer = await janus.subscribe(room, feeds)
        await janus.start(self.janus_handle, await self.answer(offer))

    def _count_at_socket(self, answer: str) -> None:
        kinds = {m.rtp.codecs[0].payloadType: m.kind
                 for m in SessionDescription.parse(answer).media if m.rtp.codecs}
        counts, video_ssrcs = self.counts, self.video_ssrcs
        transceivers = self.pc.getTransceivers()
        for transceiver in transceivers:
            # aiortc internal: its decoder thread will get nothing; end it now.
            transceiver.receiver._RTCRtpReceiver__stop_decoder()  # type: ignore[attr-defined]
        # aioice internals: every local socket's protocol of the (bundled) ICE connection.
        connection = transceivers[0].receiver.transport.transport._connection
        for protocol in connection._protocols:
            original = protocol.datagram_received

            def datagram_received(
                data: bytes, addr: Any, original: Callable[[bytes, Any], None] = original
            ) -> None:
                if len(data) > 12 and data[0] in RTP_FIRST_BYTE and (
                    data[1] not in RTCP_SECOND_BYTE
                ):
                    kind = kinds.get(data[1] & 0x7F)
                    if kind is not None:
                        counts[kind] += 1
                        if kind == "video":
                            video_ssrcs.add(data[8:12])
                        return
                original(data, addr)  # STUN (consent), DTLS, RTCP, RTX: aiortc as usual

            protocol.datagram_received = datagram_received  # type: ignore[method-assign,assignment]

    @property
    def total(self) -> int:
        return self.counts["audio"] + self.counts["video"]

    @property
    def receiving_video(self) -> bool:
        """Video arrives from each of its publishers (from one, when they are not named)."""
        return len(self.video_ssrcs) >= max(1, len(self.sources))

# Levels (dBov) the publisher's audio cycles through, 20 ms each: speech with pauses.
SPOKEN_LEVELS = (-18, -22, -30, -25, -40, -127, -127, -35, -20, -24)


def _speak_in_levels(sender: RTCRtpSender) -> None:
    """Give each audio frame a level, as a browser's microphone would have one."""
    next_frame = sender._next_encoded_frame
    levels = itertools.cycle(SPOKEN_LEVELS)

    async def with_level(codec: Any) -> Any:
        frame = await next_frame(codec)
        if frame is not None:
            frame.audio_level = next(levels)
        return frame

    sender._next_encoded_frame = with_level  # type: ignore[method-assign]



class Publishing:
    """A publisher's peer connection: it publishes and counts the RTP packets it has sent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pc = RTCPeerConnection(rtc_configuration())

    async def connect(self, control: Control | JanusClient, **args: Any) -> dict[str, Any]:
        """Publish (``args``: more for the publish request); the server's reply."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        reply = await control.call("publish", sdp=self.pc.localDescription.sdp, **args)
        await self.pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        return reply

    @property
    def sent(self) -> int:
        raise NotImplementedError

    @property
    def octets(self) -> int:
        """Payload bytes sent."""
        raise NotImplementedError


class Sender(Publishing):
    """A publisher through aiortc's own sender: pre-encoded VP8 + Opus, paced in real time,
    from ``offset`` seconds into the clip."""

    def __init__(self, clip: Clip, name: str = "publisher", offset: float = 0.0) -> None:
        super().__init__(name)
        self.video = PacedTrack("video", clip.video, 1 / FPS, 90_000, round(offset * FPS))
        self.audio = PacedTrack("audio", clip.audio, AUDIO_FRAME / AUDIO_RATE, AUDIO_RATE,
                                round(offset * AUDIO_RATE / AUDIO_FRAME))
        self.senders = [self.pc.addTrack(self.audio), self.pc.addTrack(self.video)]
        _speak_in_levels(self.senders[0])

    @property
    def sent(self) -> int:
        return sum(_sender_packets(s) for s in self.senders)

    @property
    def octets(self) -> int:
        return sum(_sender_octets(s) for s in self.senders)


def _udp_rcvbuf_errors() -> int:
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()
             if ln.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def _cpu_busy() -> list[tuple[int, int]]:
    """(busy, total) jiffies per CPU, everything on the machine (other users of it included)."""
    result = []
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + values[4]
            result.append((sum(values) - idle, sum(values)))
    return result


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


async def add_receivers(
    control: Control | JanusClient, receivers: list[Receiver], total: int, at_socket: bool
) -> None:
    new = [Receiver(f"sub{i}", at_socket) for i in range(len(receivers), total)]
    receivers.extend(new)
    if isinstance(control, JanusClient):
        await gather_bounded((r.connect_janus(control) for r in new), CONNECT_CONCURRENCY)
    else:
        await gather_bounded((r.connect(control) for r in new), CONNECT_CONCURRENCY)


async def warm_up(receivers: list[Receiver]) -> int:
    """Wait until every subscriber receives video; the number that does."""
    deadline = time.monotonic() + WARMUP_TIMEOUT
    while time.monotonic() < deadline:
        if all(r.receiving_video for r in receivers):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(SETTLE_SECONDS)
    return sum(1 for r in receivers if r.receiving_video)


@dataclass
class Snapshot:
    sfu: dict[str, Any]
    received: dict[str, int]
    expected: dict[str, int]  # per subscriber: what its publishers have sent
    published: int  # all publishers
    octets: int
    load_cpu: float
    udp_errors: int
    cpus: list[tuple[int, int]]
    time: float


async def snapshot(
    control: Control | JanusClient, senders: Sequence[Publishing], receivers: list[Receiver]
) -> Snapshot:
    sfu = await control.call("stats")
    sent = {s.name: s.sent for s in senders}
    published = sum(sent.values())
    return Snapshot(
        sfu, {r.name: r.total for r in receivers},
        {r.name: sum(sent[s] for s in r.sources) if r.sources else published
         for r in receivers},
        published, sum(s.octets for s in senders), _own_cpu(), _udp_rcvbuf_errors(),
        _cpu_busy(), time.monotonic(),
    )


def _percent(x: float) -> float:
    return round(100 * x, 2)


def report(label: str, a: Snapshot, b: Snapshot, relay: bool) -> dict[str, Any]:
    wall = b.time - a.time
    cpu = b.sfu["cpu"] - a.sfu["cpu"]
    forwarded = b.sfu["forwarded"] - a.sfu["forwarded"]
    published = b.published - a.published
    losses = []
    for name, received in b.received.items():
        got = received - a.received.get(name, 0)
        if relay:  # the relay re-encodes: what it sent this subscriber is what should arrive
            expected = b.sfu["per_sub"].get(name, 0) - a.sfu["per_sub"].get(name, 0)
        else:
            expected = b.expected[name] - a.expected.get(name, 0)
        losses.append(1 - got / expected if expected else 1.0)
    result: dict[str, Any] = {
        "sfu": label,
        "subscribers": len(b.received),
        "window_s": round(wall, 1),
        "cpu_us_per_packet": round(cpu / forwarded * 1e6, 2) if forwarded else None,
        "forwarded_pps": round(forwarded / wall),
        "sfu_cpu_pct": _percent(cpu / wall),
        "publisher_pps": round(published / wall, 1),
        "publisher_payload_mbps": round((b.octets - a.octets) * 8 / wall / 1e6, 3),
        "loss_pct_mean": _percent(sum(losses) / len(losses)) if losses else None,
        "loss_pct_max": _percent(max(losses)) if losses else None,
        # None for Janus: no probe inside a C process.
        "worst_stall_ms": None if b.sfu["stall"] is None else round(b.sfu["stall"] * 1000, 2),
        "worst_gc_ms": None if b.sfu["gc"] is None else round(b.sfu["gc"] * 1000, 2),
        "sfu_rss_mb": round(b.sfu["rss"] / MB, 1),
        "load_cpu_pct": _percent((b.load_cpu - a.load_cpu) / wall),
        "udp_rcvbuf_errors": b.udp_errors - a.udp_errors,
        # All processes on each CPU: above sfu_cpu_pct / load_cpu_pct = someone else's work.
        "cpu_busy_pct": [
            _percent((b1 - a1) / (t1 - t0)) if t1 > t0 else None
            for (a1, t0), (b1, t1) in zip(a.cpus, b.cpus, strict=True)
        ],
    }
    if not relay and b.sfu["ingress"] is not None:
        ingress = b.sfu["ingress"] - a.sfu["ingress"]
        result["ingress_loss_pct"] = _percent(1 - ingress / published) if published else None
    return result


async def measure(
    label: str, control: Control | JanusClient, senders: Sequence[Publishing],
    receivers: list[Receiver], seconds: float, relay: bool = False,
) -> dict[str, Any]:
    a = await snapshot(control, senders, receivers)
    await asyncio.sleep(seconds)
    b = await snapshot(control, senders, receivers)
    return report(label, a, b, relay)


async def ping_rtts(control: Control, count: int, interval: float) -> list[float]:
    async def one() -> float:
        start = time.perf_counter()
        await control.call("ping", wait=10)
        return time.perf_counter() - start

    tasks = []
    for _ in range(count):
        tasks.append(asyncio.ensure_future(one()))
        await asyncio.sleep(interval)
    return list(await asyncio.gather(*tasks))


async def keyframe_bursts(
    control: Control, sender: Sender, receivers: list[Receiver], clip: Clip
) -> dict[str, Any]:
    """Inject a ~100-packet keyframe BURSTS times; the SFU's worst stall and ping times."""
    await control.call("stats")  # reset the stall probe
    quiet_pings = await ping_rtts(control, 40, 0.025)
    quiet_stall = (await control.call("stats"))["stall"]
    stalls, burst_pings = [], []
    a = await snapshot(control, [sender], receivers)
    for _ in range(BURSTS):
        await control.call("stats")
        sender.video.injected.clear()
        sender.video.inject(clip.big_keyframe)
        await sender.video.injected.wait()
        burst_pings.extend(await ping_rtts(control, 60, 0.005))  # 300 ms of pings
        await asyncio.sleep(0.7)
        stalls.append((await control.call("stats"))["stall"])
    b = await snapshot(control, [sender], receivers)
    window = report("fairwire", a, b, relay=False)
    return {
        "keyframe_burst": f"{BURSTS} x {clip.describe()['burst_keyframe_packets']} packets",
        "subscribers": len(receivers),
        "worst_stall_ms": round(max(stalls) * 1000, 2),
        "stall_ms_per_burst": [round(s * 1000, 1) for s in stalls],
        "quiet_worst_stall_ms": round(quiet_stall * 1000, 2),
        "ping_ms_max_during_bursts": round(max(burst_pings) * 1000, 2),
        "ping_ms_median_during_bursts": round(sorted(burst_pings)[len(burst_pings) // 2] * 1000,
                                              2),
        "ping_ms_max_quiet": round(max(quiet_pings) * 1000, 2),
        "loss_pct_mean": window["loss_pct_mean"],
        "loss_pct_max": window["loss_pct_max"],
        "udp_rcvbuf_errors": window["udp_rcvbuf_errors"],
    }


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)


async def close_all(pcs: Iterable[RTCPeerConnection]) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(pc.close() for pc in pcs)), 20)


async def start_profiler(pid: int, seconds: float, output: str) -> asyncio.subprocess.Process:
    """py-spy (not a project dependency: install it into the venv to use --profile)."""
    py_spy = Path(sys.executable).with_name("py-spy")
    return await asyncio.create_subprocess_exec(
        str(py_spy), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate",
        "250", "--nonblocking", "--format", "raw", "--output", output,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def run_fairwire(
    clip: Clip, sizes: list[int], seconds: float, sfu_cpu: int, at_socket: bool,
    profile: int | None = None, profile_out: str = "", sends_per_turn: int | None = None,
    results: dict[int, dict[str, Any]] | None = None,
) -> dict[str, float]:
    rss: dict[str, float] = {}
    extra = () if sends_per_turn is None else ("--sends-per-turn", str(sends_per_turn))
    sfu_process = SfuProcess("forward", sfu_cpu, extra)
    async with sfu_process as control:
        idle = await control.call("stats")
        await asyncio.sleep(2)
        idle2 = await control.call("stats")
        sender = Sender(clip)
        receivers: list[Receiver] = []
        try:
            await sender.connect(control)
            await asyncio.sleep(3)
            base = await snapshot(control, [sender], receivers)
            emit({
                "sfu": "fairwire", "subscribers": 0,
                "idle_cpu_pct": _percent((idle2["cpu"] - idle["cpu"]) / (idle2["time"] -
                                                                         idle["time"])),
                "publisher_only_rss_mb": round(base.sfu["rss"] / MB, 1),
            })
            previous = (0, base.sfu["rss"])
            for n in sizes:
                await add_receivers(control, receivers, n, at_socket)
                with_video = await warm_up(receivers)
                profiler = (await start_profiler(sfu_process.pid, seconds, profile_out)
                            if n == profile else None)
                result = await measure("fairwire", control, [sender], receivers, seconds)
                if profiler is not None:
                    await profiler.wait()
                    result["profiled_to"] = profile_out
                rss_now = (await control.call("stats"))["rss"]
                result["receiving_video"] = with_video
                result["rss_growth_per_sub_mb"] = round(
                    (rss_now - previous[1]) / (n - previous[0]) / MB, 3)
                previous = (n, rss_now)
                rss[str(n)] = rss_now
                if results is not None:
                    results[n] = result
                emit(result)
            emit(await keyframe_bursts(control, sender, receivers, clip))
        finally:
            await close_all([sender.pc, *(r.pc for r in receivers)])
    return rss


async def run_relay(clip: Clip, n: int, seconds: float, sfu_cpu: int, at_socket: bool) -> None:
    async with SfuProcess("relay", sfu_cpu) as control:
        sender = Sender(clip)
        receivers: list[Receiver] = []
        try:
            await sender.connect(control)
            await asyncio.sleep(3)
            base = (await control.call("stats"))["rss"]
            await add_receivers(control, receivers, n, at_socket)
            with_video = await warm_up(receivers)
            result = await measure("aiortc MediaRelay", control, [sender], receivers, seconds,
                                   relay=True)
            result["receiving_video"] = with_video
            result["rss_growth_per_sub_mb"] = round((result["sfu_rss_mb"] * MB - base) / n / MB,
                                                    2)
            emit(result)
        finally:
            await close_all([sender.pc, *(r.pc for r in receivers)])


# -- Janus side by side (--janus) --------------------------------------------------------------

JANUS_ROOM = 1234
JANUS_BITRATE = 10_000_000  # the room's cap (REMB to the publisher): far above the clip's rate
JANUS_ROOM_SETTINGS = {  # the configured room's, and those of rooms created at run time
    "description": "fairwire bench", "bitrate": JANUS_BITRATE, "fir_freq": 0,
    "audiocodec": "opus", "videocodec": "vp8", "record": False, "notify_joining": False,
}
JANUS_START_TIMEOUT = 20.0
JANUS_KEEPALIVE = 20.0  # Janus drops a session after 60 s without a request
JANUS_RUN_TIMEOUT = 290.0  # the whole run with --janus (the brief: under 5 minutes)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def ensure_janus() -> None:
    """Debian's ``janus`` package (1.1.2 on bookworm), installed only for --janus."""
    if shutil.which("janus"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "janus"]
    quiet: dict[str, Any] = {"env": env, "stdout": sys.stderr, "stderr": sys.stderr,
                             "timeout": 300}
    if subprocess.run(install, **quiet).returncode:
        subprocess.run(["apt-get", "update"], check=True, **quiet)
        subprocess.run(install, check=True, **quiet)
    if not shutil.which("janus"):
        raise SystemExit("janus: still not installed")


def _janus_module(kind: str, name: str) -> Path:
    for base in (Path("/usr/lib"), Path("/usr/local/lib"), Path("/opt/janus/lib")):
        for pattern in (f"janus/{kind}/{name}.so*", f"*/janus/{kind}/{name}.so*"):
            found = sorted(base.glob(pattern))
            if found:
                return found[0]
    raise FileNotFoundError(f"Janus {kind} module {name}")


def _jcfg(sections: dict[str, dict[str, Any]]) -> str:
    """libconfig text, the format of Janus's .jcfg files."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return json.dumps(v)

    return "".join(
        f"{name}: {{\n" + "".join(f"\t{k} = {value(v)}\n" for k, v in items.items()) + "}\n"
        for name, items in sections.items()
    )


def write_janus_config(root: Path, port: int, addresses: list[str],
                       event_loops: int | None) -> Path:
    """A configuration folder under ``root``: the VideoRoom plugin and the HTTP transport only
    (each module folder holds just that module), no admin API, no STUN/TURN, host candidates on
    ``addresses`` only, warnings and errors only in the log, one VP8/Opus room."""
    folders = {name: root / name for name in ("conf", "plugins", "transports", "events",
                                              "loggers")}
    for folder in folders.values():
        folder.mkdir()
    (folders["plugins"] / "libjanus_videoroom.so").symlink_to(
        _janus_module("plugins", "libjanus_videoroom"))
    (folders["transports"] / "libjanus_http.so").symlink_to(
        _janus_module("transports", "libjanus_http"))
    general: dict[str, Any] = {
        "configs_folder": str(folders["conf"]),
        "plugins_folder": str(folders["plugins"]),
        "transports_folder": str(folders["transports"]),
        "events_folder": str(folders["events"]),
        "loggers_folder": str(folders["loggers"]),
        "debug_level": 3,  # errors and warnings: nothing per packet
        "session_timeout": 60,
        "server_name": "fairwire-bench",
    }
    if event_loops:  # default: one thread (event loop) per handle
        general["event_loops"] = event_loops
    conf = folders["conf"]
    (conf / "janus.jcfg").write_text(_jcfg({
        "general": general,
        "certificates": {},  # a self-signed DTLS certificate generated at start
        "media": {"ipv6": False},
        "nat": {
            "nice_debug": False,
            # aioice offers no 127.0.0.1 candidate: both sides use the interface addresses.
            "ice_enforce_list": ",".join(addresses),
            "ignore_mdns": True,
            "full_trickle": False,  # candidates in the SDP (half-trickle, Janus's default)
        },
        "plugins": {}, "transports": {}, "loggers": {},
        "events": {"broadcast": False},
    }))
    (conf / "janus.transport.http.jcfg").write_text(_jcfg({
        "general": {"json": "compact", "base_path": "/janus", "http": True, "port": port,
                    "ip": "127.0.0.1", "https": False},
        "admin": {"admin_http": False, "admin_https": False},
        "cors": {},
    }))
    (conf / "janus.plugin.videoroom.jcfg").write_text(_jcfg({
        "general": {},
        f"room-{JANUS_ROOM}": {**JANUS_ROOM_SETTINGS, "publishers": 1},
    }))
    return conf


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _proc_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class JanusClient:
    """Janus's HTTP API with long-poll: one session, one VideoRoom handle per peer connection.

    Also stands in for ``Control`` (``call("publish")``, ``call("stats")``): CPU time and RSS
    of the Janus process from /proc, and "forwarded" counted where the packets arrive, at the
    subscribers' sockets (Janus's own counters need the admin API, which is off).
    """

    def __init__(self, url: str, pid: int) -> None:
        self.url = url
        self.pid = pid
        self.http: aiohttp.ClientSession | None = None
        self.session = 0
        self.feed: int | None = None
        self.version = ""
        self.receivers: list[Receiver] = []
        self.hangups: list[str] = []
        self._transactions = itertools.count()
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self, alive: Callable[[], bool]) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        deadline = time.monotonic() + JANUS_START_TIMEOUT
        while True:
            if not alive():
                raise RuntimeError("janus exited at start")
            with contextlib.suppress(aiohttp.ClientError):
                async with self.http.get(f"{self.url}/info") as response:
                    if response.status == 200:
                        info = await response.json(content_type=None)
                        self.version = str(info.get("version_string"))
                        break
            if time.monotonic() > deadline:
                raise TimeoutError("janus did not answer on its HTTP port")
            await asyncio.sleep(0.1)
        self.session = (await self._post(self.url, {"janus": "create"}))["data"]["id"]
        self._tasks = [asyncio.ensure_future(self._poll()),
                       asyncio.ensure_future(self._keepalive())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.http is not None:
            if self.session:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._post(f"{self.url}/{self.session}", {"janus": "destroy"}), 3)
            await self.http.close()

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.http is not None
        body.setdefault("transaction", f"t{next(self._transactions)}")
        async with self.http.post(url, json=body) as response:
            reply: dict[str, Any] = await response.json(content_type=None)
        if reply.get("janus") == "error":
            raise RuntimeError(f"Janus {body['janus']}: {reply.get('error')}")
        return reply

    async def _poll(self) -> None:
        assert self.http is not None
        url = f"{self.url}/{self.session}"
        while True:
            try:
                async with self.http.get(url, params={"maxev": "50"}) as response:
                    events = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.2)
                continue
            for event in events if isinstance(events, list) else [events]:
                kind = event.get("janus")
                future = self._pending.get(event.get("transaction") or "")
                if future is not None and not future.done() and kind != "ack":
                    future.set_result(event)
                elif kind == "hangup":
                    self.hangups.append(str(event.get("reason")))

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(JANUS_KEEPALIVE)
            with contextlib.suppress(Exception):
                await self._post(f"{self.url}/{self.session}", {"janus": "keepalive"})

    async def attach(self) -> int:
        reply = await self._post(f"{self.url}/{self.session}",
                                 {"janus": "attach", "plugin": "janus.plugin.videoroom"})
        return int(reply["data"]["id"])

    async def detach(self, handle: int) -> None:
        await self._post(f"{self.url}/{self.session}/{handle}", {"janus": "detach"})

    async def _message(self, handle: int, body: dict[str, Any],
                       jsep: dict[str, str] | None = None) -> dict[str, Any]:
        """A VideoRoom request; its event (asynchronous requests answer "ack", then an event
        with the same transaction arrives on the long poll)."""
        transaction = f"t{next(self._transactions)}"
        future = self._pending[transaction] = asyncio.get_running_loop().create_future()
        message: dict[str, Any] = {"janus": "message", "transaction": transaction, "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        try:
            reply = await self._post(f"{self.url}/{self.session}/{handle}", message)
            event = reply if reply["janus"] == "success" else await asyncio.wait_for(future, 30)
        finally:
            self._pending.pop(transaction, None)
        data = event.get("plugindata", {}).get("data", {})
        if event.get("janus") == "error" or "error" in data:
            raise RuntimeError(f"VideoRoom {body['request']}: {event.get('error') or data}")
        return event

    async def _candidates_done(self, handle: int) -> None:
        # aiortc puts all its candidates in the SDP: tell Janus there are no more.
        await self._post(f"{self.url}/{self.session}/{handle}",
                         {"janus": "trickle", "candidate": {"completed": True}})

    async def create_room(self, room: int, publishers: int) -> None:
        """A room set up like the configured one, for ``publishers`` publishers."""
        handle = await self.attach()
        await self._message(handle, {"request": "create", "room": room, **JANUS_ROOM_SETTINGS,
                                     "publishers": publishers})
        await self.detach(handle)

    async def publish(self, offer: str, room: int = JANUS_ROOM, display: str = "publisher"
                      ) -> tuple[int, str]:
        """Join ``room`` as a publisher and publish: the feed id and Janus's answer."""
        handle = await self.attach()
        joined = await self._message(handle, {"request": "join", "room": room,
                                              "ptype": "publisher", "display": display})
        feed = self.feed = int(joined["plugindata"]["data"]["id"])
        event = await self._message(
            handle, {"request": "publish", "audiocodec": "opus", "videocodec": "vp8"},
            {"type": "offer", "sdp": offer})
        await self._candidates_done(handle)
        return feed, str(event["jsep"]["sdp"])

    async def subscribe(self, room: int | None = None, feeds: list[int] | None = None
                        ) -> tuple[int, str]:
        """A subscriber handle for ``feeds`` (default: the last feed published), all in one
        peer connection (VideoRoom's multistream subscription); its handle and Janus's offer."""
        if not feeds:
            assert self.feed is not None, "publish first"
            feeds = [self.feed]
        handle = await self.attach()
        event = await self._message(handle, {
            "request": "join", "room": JANUS_ROOM if room is None else room,
            "ptype": "subscriber", "streams": [{"feed": f} for f in feeds]})
        return handle, str(event["jsep"]["sdp"])

    async def start(self, handle: int, answer: str) -> None:
        await self._message(handle, {"request": "start"}, {"type": "answer", "sdp": answer})
        await self._candidates_done(handle)

    def threads(self) -> tuple[int, list[str]]:
        """Janus's thread count and the CPU lists its threads may run on."""
        count, allowed = 0, set()
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                for line in (task / "status").read_text().splitlines():
                    if line.startswith("Cpus_allowed_list:"):
                        allowed.add(line.split()[1])
                        count += 1
        return count, sorted(allowed)

    def stats(self) -> dict[str, Any]:
        # /proc/<pid>/stat: utime and stime (fields 14, 15) of the whole thread group.
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        per_sub = {r.name: r.total for r in self.receivers}
        return {
            "cpu": (int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
            "rss": _proc_rss(self.pid),
            "stall": None,
            "gc": None,
            "time": time.monotonic(),
            "forwarded": sum(per_sub.values()),
            "per_sub": per_sub,
            "ingress": None,
        }

    async def call(self, op: str, wait: float = 30.0, **args: Any) -> dict[str, Any]:
        if op == "publish":
            feed, sdp = await asyncio.wait_for(self.publish(
                args["sdp"], args.get("room", JANUS_ROOM), args.get("identity", "publisher")),
                wait)
            return {"sdp": sdp, "feed": feed}
        if op == "stats":
            return self.stats()
        raise ValueError(f"unknown op {op}")


class JanusServer:
    """Janus in a temporary folder, every thread pinned to ``cpu``, killed on the way out."""

    def __init__(self, cpu: int, event_loops: int | None) -> None:
        self.cpu = cpu
        self.event_loops = event_loops
        self.proc: asyncio.subprocess.Process | None = None
        self.client: JanusClient | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: Any = None

    async def __aenter__(self) -> JanusClient:
        try:
            return await self._start()
        except BaseException:
            await self.__aexit__()
            raise

    async def _start(self) -> JanusClient:
        self._tmp = tempfile.TemporaryDirectory(prefix="fairwire-janus-")
        root = Path(self._tmp.name)
        addresses = get_host_addresses(use_ipv4=True, use_ipv6=False)
        if not addresses:
            raise RuntimeError("no interface address besides loopback for ICE")
        port = _free_port()
        conf = write_janus_config(root, port, addresses, self.event_loops)
        self._log = (root / "janus.log").open("wb")
        # taskset sets the affinity before exec, so every thread Janus starts inherits it;
        # setpriv: Janus gets SIGKILL should this process die without cleaning up.
        self.proc = await asyncio.create_subprocess_exec(
            "setpriv", "--pdeathsig", "KILL", "taskset", "-c", str(self.cpu),
            "janus", "-F", str(conf), "-o",
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        proc = self.proc
        self.client = JanusClient(f"http://127.0.0.1:{port}/janus", proc.pid)
        await self.client.open(lambda: proc.returncode is None)
        comm = _proc_comm(proc.pid)
        if comm != "janus":  # the exec chain keeps the pid: what we measure is Janus itself
            raise RuntimeError(f"pid {proc.pid} is {comm!r}, not janus")
        return self.client

    def log_tail(self, lines: int = 15) -> str:
        if self._tmp is None:
            return ""
        path = Path(self._tmp.name) / "janus.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    async def __aexit__(self, *exc: object) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if exc and exc[0] is not None:
            print(f"janus log (tail):\n{self.log_tail()}", file=sys.stderr)
        if self._log is not None:
            self._log.close()
        if self._tmp is not None:
            self._tmp.cleanup()


async def run_janus(
    clip: Clip, sizes: list[int], seconds: float, cpu: int, at_socket: bool,
    event_loops: int | None,
) -> dict[int, dict[str, Any]]:
    """The same publisher, subscribers and windows against Janus's VideoRoom; largest N first
    (next to Fairwire's largest N), then fewer subscribers by closing some."""
    results: dict[int, dict[str, Any]] = {}
    server = JanusServer(cpu, event_loops)
    async with server as janus:
        idle = janus.stats()
        await asyncio.sleep(2)
        idle2 = janus.stats()
        sender = Sender(clip)
        receivers: list[Receiver] = []
        janus.receivers = receivers
        try:
            await sender.connect(janus)
            await asyncio.sleep(3)
            base = janus.stats()
            threads, allowed = janus.threads()
            emit({
                "sfu": "janus", "subscribers": 0, "version": janus.version,
                "idle_cpu_pct": _percent((idle2["cpu"] - idle["cpu"]) / (idle2["time"] -
                                                                         idle["time"])),
                "publisher_only_rss_mb": round(base["rss"] / MB, 1),
                "threads": threads, "threads_cpus_allowed": allowed,
            })
            for i, n in enumerate(sorted(set(sizes), reverse=True)):
                removed = receivers[n:]
                if removed:
                    del receivers[n:]
                    await close_all(r.pc for r in removed)
                    with contextlib.suppress(Exception):
                        await asyncio.gather(*(janus.detach(r.janus_handle) for r in removed
                                               if r.janus_handle is not None))
                await add_receivers(janus, receivers, n, at_socket)
                with_video = await warm_up(receivers)
                janus.hangups.clear()  # those of the subscribers just closed
                result = await measure("janus", janus, [sender], receivers, seconds)
                threads, allowed = janus.threads()
                result["receiving_video"] = with_video
                # From the publisher alone to the largest N (later, smaller N: not measured).
                result["rss_growth_per_sub_mb"] = (
                    round((janus.stats()["rss"] - base["rss"]) / n / MB, 3) if i == 0 else None)
                result["forwarded_counted_at"] = "subscriber sockets"
                result["threads"] = threads
                result["threads_cpus_allowed"] = allowed
                if janus.hangups:  # during the window: peer connections that failed
                    result["hangups"] = janus.hangups[:5]
                results[n] = result
                emit(result)
        finally:
            await close_all([sender.pc, *(r.pc for r in receivers)])
    return results


def compare(fairwire: dict[int, dict[str, Any]], janus: dict[int, dict[str, Any]]) -> None:
    def ratio(key: str) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for n in sorted(set(fairwire) & set(janus), reverse=True):
            a, b = fairwire[n].get(key), janus[n].get(key)
            out[str(n)] = round(a / b, 3) if a is not None and b else None
        return out

    emit({"ratio": "fairwire/janus, same run", "cpu_us_per_packet": ratio("cpu_us_per_packet"),
          "sfu_cpu_pct": ratio("sfu_cpu_pct"), "sfu_rss_mb": ratio("sfu_rss_mb")})


def print_floor(results: dict[int, dict[str, Any]], cpu: int, seconds: float,
                rate: float | None = None, label: str = "subscribers") -> None:
    """Beside each figure, the floor: what the native protect + sendmmsg loop alone costs per
    forwarded packet at the same fan-out (tests/perf/bench_floor.py), on the SFU's CPU."""
    from bench_floor import CLIP_RATE, floor_us_per_packet

    here = os.sched_getaffinity(0)
    # bench_floor pins its sender to the first CPU it may use (the SFU's) and its drain to the
    # second (the load's).
    os.sched_setaffinity(0, {cpu, *(c for c in range(os.cpu_count() or 1) if c != cpu)})
    try:
        for key, result in sorted(results.items()):
            fanout = int(result.get("fanout", key))
            floor = floor_us_per_packet(
                fanout, min(seconds, 5.0),
                rate or result.get("incoming_pps") or result.get("publisher_pps") or CLIP_RATE)
            figure = result.get("cpu_us_per_packet")
            emit({"floor": "native protect + sendmmsg alone", label: key, "fanout": fanout,
                  "floor_us_per_packet": round(floor, 2), "fairwire_us_per_packet": figure,
                  "fairwire_over_floor": round(figure / floor, 2) if figure else None})
    finally:
        os.sched_setaffinity(0, here)


async def bench(args: argparse.Namespace) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("needs two CPUs: one for the SFU, one for the load")
    started = time.monotonic()
    clip = await asyncio.to_thread(encode_clip)
    emit({**clip.describe(), "encode_s": round(time.monotonic() - started, 1)})
    os.sched_setaffinity(0, {cpus[1]})
    sizes = [int(s) for s in args.sizes.split(",")]
    at_socket = args.count_at == "socket"
    fairwire: dict[int, dict[str, Any]] = {}
    await run_fairwire(clip, sizes, args.seconds, cpus[0], at_socket, args.profile,
                       args.profile_out, args.sends_per_turn, fairwire)
    if args.janus:
        janus = await run_janus(clip, sizes, args.seconds, cpus[0], at_socket,
                                args.janus_event_loops)
        compare(fairwire, janus)
    if args.floor:
        print_floor(fairwire, cpus[0], args.seconds)
    if args.relay:
        await run_relay(clip, RELAY_SUBSCRIBERS, args.seconds, cpus[0], at_socket)
    emit({"total_s": round(time.monotonic() - started, 1)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="10,40,160", help="subscriber counts, increasing")
    parser.add_argument("--seconds", type=float, default=12.0, help="measurement window per N")
    parser.add_argument("--no-relay", dest="relay", action="store_false",
                        help="skip the MediaRelay comparison")
    parser.add_argument("--count-at", choices=("socket", "receiver"), default="socket",
                        help="where subscribers count packets (see Receiver)")
    parser.add_argument("--profile", type=int, metavar="N",
                        help="record the SFU with py-spy (raw stacks) during the window at N")
    parser.add_argument("--profile-out", default="/tmp/fairwire-sfu.stacks")
    parser.add_argument("--janus", action="store_true",
                        help="also measure Janus 1.1.2's VideoRoom in the same run (apt-get "
                             "installs the janus package if missing)")
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the floor (bench_floor.py) beside each figure")
    parser.add_argument("--janus-event-loops", type=int, metavar="N",
                        help="Janus event_loops (default: Janus's own, a thread per handle)")
    parser.add_argument("--serve", choices=("forward", "relay"), help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--sends-per-turn", type=int,
                        help="override sfu.forwarding.FANOUT_SENDS_PER_TURN in the SFU process")
    args = parser.parse_args()
    if args.serve:
        serve_child(args.cpu, lambda: fanout_backend(args.serve, args.sends_per_turn))
        return

    if args.janus:
        ensure_janus()  # before the clock starts: a one-off install

    async def bounded() -> None:
        await asyncio.wait_for(bench(args), JANUS_RUN_TIMEOUT if args.janus else RUN_TIMEOUT)

    uvloop.run(bounded())


if __name__ == "__main__":
    main()
