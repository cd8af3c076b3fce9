"""Livestream audience benchmark: N viewers join one room on one node (run on demand; issue #7).

    .venv/bin/python tests/perf/bench_audience.py [--sizes 500,1000,2000] [--rate 100]
        [--events 10] [--server-repo DIR] [--compress]

For each N a fresh node (``python -m signalling.cli serve`` from ``--server-repo``, default this
checkout; in-memory state, no Redis) runs as a subprocess pinned to the first CPU. This process
is the load, pinned to the second CPU, on uvloop. It creates one live livestream room and a
visitor token per viewer (``POST /api/rooms``, ``POST /api/tokens``), then:

1. Joins: N viewers connect at ``--rate`` per second (viewer i starts at start + i/rate, at most
   ``IN_FLIGHT`` between connecting and the join acknowledgement; a later start is reported as
   ``join_rate``). Each viewer is a raw engine.io v4 / socket.io v5 client on aiohttp's
   websocket client (python-socketio clients cost too much to run 2000 on one core): open
   packet, ``40{"token": ...}``, ``420["join",{}]``, wait for ``430[...]``; it answers
   engine.io pings. A viewer that fails or times out is counted, not fatal. The phase ends when
   every join has settled and the viewers then receive nothing for ``DRAIN_QUIET`` seconds (at
   most ``DRAIN_MAX``: ``drained`` says whether it got there).
2. Events: a host (role host, a listed participant) joins and leaves the room alternately, one
   action a second, ``--events`` actions; each tells everyone in the room. The next action
   waits for the previous one's acknowledgement.

One JSON line describes the set-up, then one line per N:

- ``node_cpu_us_per_join``: the node's utime + stime (``/proc/<pid>/stat``, all threads, 10 ms
  ticks) over the join phase, less what it spends without viewers (``node_cpu_pct_baseline``,
  measured for ``BASELINE_SECONDS`` before the joins: answering the health probe below, mostly)
  for as long as the phase lasts, divided by the successful joins. ``node_cpu_pct_joins`` and
  ``_events``: the node's CPU time per wall-clock second of each phase, probe included.
- ``bytes_to_others_per_join``: the text payload bytes (not websocket framing) of every frame
  all viewers received during the join phase, except each viewer's own handshake (open packet,
  CONNECT reply), its own acknowledgements and engine.io pings, divided by the successful
  joins. Counted generically, whatever the event names, so the same bench measures the old
  server (``participants`` list and ``participant-joined`` broadcasts) and the new one
  (``room-event``, ``audience``); this includes a joiner's copy of a broadcast about its own
  join. ``own_bytes_per_join``: the excluded handshake and acknowledgement bytes.
- ``event_p50_ms``/``event_p99_ms``/``event_max_ms``: from just before the host's join/leave
  is sent to the moment each viewer's reader gets the first frame it causes (the first frame
  naming the host's identity and ``participant-joined`` resp. ``participant-left``; frames of
  one connection arrive in order), on this process's monotonic clock, over every viewer and
  event; ``missed``: viewer-events not delivered by the end of the phase.
  ``event_bytes_per_viewer``: what a viewer received per host action.
- ``node_rss_mb``: VmRSS of the node after the join phase.
- ``node_loop_stall_ms``: the node's worst event-loop lag per phase, as the node measures it
  itself (``fairwire_event_loop_worst_lag_seconds`` in ``/metrics``: a 20 ms timer's lateness);
  null for a checkout without that metric.
- ``healthz_p50_ms``, ``healthz_worst_ms``: response times of ``GET /healthz`` sent every
  ``PROBE_PERIOD`` (one at a time, one kept-alive connection) during both phases;
  ``stall_bound_ms`` = worst - p50 is an outside upper bound of the node's stall (it also holds
  this process's own delays in reading the answer: with 2,000 viewers to read, those dominate).
- ``load_cpu_pct``: this process's CPU use per phase; near 100 means the load, not the node,
  set the pace, and latencies include the load's own queueing.
- counts: ``joined``, ``failed`` (with ``failures`` by reason), ``dropped`` (joined, then
  disconnected before the end), ``events_sent``.

Everything is on 127.0.0.1 and bounded in time: each N at most N/rate + events + ``RUN_MARGIN``
seconds (``timed_out`` then; what was measured so far is printed), then the viewers are closed
and the node gets SIGTERM, SIGKILL after ``STOP_TIMEOUT`` (``node_stop``).

By default the viewers do not offer permessage-deflate, so neither side spends CPU on
compression; browsers do offer it and aiohttp accepts it, and then the node deflates every
frame for every recipient: ``--compress`` measures that (the byte counts stay payload bytes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from benchutil import gather_bounded

ROOT = Path(__file__).resolve().parents[2]

ROOM_ID = "bench-live"
HOST_IDENTITY = "bench-host"
VIEWER_IDENTITY = "viewer-{:05d}"
JOINED_WORD = "participant-joined"  # old: the event's name; new: room-event's type
LEFT_WORD = "participant-left"
TOKEN_CONCURRENCY = 32
IN_FLIGHT = 200  # viewers between connecting and their join acknowledgement
JOIN_TIMEOUT = 15.0  # one viewer, connect to join acknowledgement
JOIN_GRACE = 20.0  # the join phase ends at most this long after the last scheduled start
DRAIN_QUIET = 1.5  # no frame for this long: the joins' broadcasts are delivered
DRAIN_MAX = 10.0
HOST_TIMEOUT = 10.0  # the host's connect, and each of its acknowledgements
EVENT_PERIOD = 1.0
EVENT_GRACE = 10.0  # after the last scheduled action: deliveries still counted
PROBE_PERIOD = 0.02
PROBE_TIMEOUT = 10.0
BASELINE_SECONDS = 3.0  # the node with only the probe, before the joins
RUN_MARGIN = 75.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
CLOSE_TIMEOUT = 10.0
WS_CLOSE_TIMEOUT = 1.0
MB = 1024 * 1024

JOINS, EVENTS, AFTER = 0, 1, 2  # phases, for the byte counts (AFTER: not reported)


def emit(line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least q of all values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(len(sorted_values) * q))
    return sorted_values[rank - 1]


def _pct(cpu: float, wall: float) -> float | None:
    return round(100 * cpu / wall, 1) if wall > 0 else None


async def _sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


# -- the node -----------------------------------------------------------------------------------


class Node:
    """``fairwire serve`` from ``repo`` as a subprocess on one CPU, read through /proc."""

    def __init__(self, repo: Path, cpu: int, workdir: Path) -> None:
        self.repo = repo
        self.cpu = cpu
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = secrets.token_urlsafe(24)
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = workdir / "server.log"
        self._clock_tick = os.sysconf("SC_CLK_TCK")

    def env(self) -> dict[str, str]:
        # Nothing of ours leaks in (a FAIRWIRE_REDIS_URL would leave in-memory state).
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRWIRE_")}
        env.update({
            "FAIRWIRE_HOST": "127.0.0.1",
            "FAIRWIRE_PORT": str(self.port),
            "FAIRWIRE_API_KEY": self.api_key,
            "FAIRWIRE_JWT_SECRET": secrets.token_urlsafe(32),
            "FAIRWIRE_DATA_DIR": str(self.workdir / "data"),
            "FAIRWIRE_RATE_LIMIT_PER_MINUTE": "1000000",  # the token requests, all from here
            "PYTHONPATH": str(self.repo),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    async def start(self, session: aiohttp.ClientSession) -> None:
        # taskset sets the affinity before exec (threads inherit it); setpriv: the node gets
        # SIGKILL should this process die without stopping it. The pid stays the node's.
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                "setpriv", "--pdeathsig", "KILL", "taskset", "-c", str(self.cpu),
                sys.executable, "-m", "signalling.cli", "serve",
                cwd=self.repo, env=self.env(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(self.url + "/healthz",
                                       timeout=aiohttp.ClientTimeout(total=1)) as response:
                    if response.status == 200:
                        break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"node not healthy after {START_TIMEOUT} s:\n{self.log_tail()}")
        cmdline = self.cmdline()
        if b"signalling.cli" not in cmdline:  # what /proc tells about must be the node itself
            raise RuntimeError(f"pid {self.pid} is {cmdline!r}, not the node")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def cmdline(self) -> bytes:
        return Path(f"/proc/{self.pid}/cmdline").read_bytes()

    def cpu_seconds(self) -> float:
        # Fields 14 and 15 (utime, stime), counted after the parenthesised command name.
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._clock_tick

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self) -> str:
        proc = self.proc
        if proc is None:
            return "not started"
        if proc.returncode is not None:
            return f"exited {proc.returncode}"
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            return "sigterm"
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return "sigkill"


class Api:
    """The node's REST API with the operator's key."""

    def __init__(self, session: aiohttp.ClientSession, node: Node) -> None:
        self.session = session
        self.node = node

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.node.api_key}"}
        async with self.session.post(self.node.url + path, json=body, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=30)) as response:
            data: dict[str, Any] = await response.json()
            if response.status >= 300:
                raise RuntimeError(f"POST {path} -> {response.status}: {data}")
            return data

    async def token(self, identity: str, role: str) -> str:
        data = await self.post("/api/tokens",
                               {"room": ROOM_ID, "identity": identity, "role": role})
        token: str = data["token"]
        return token


# -- raw socket.io clients -------------------------------------------------------------------


@dataclass
class Tally:
    """What a group of clients received, all together (the viewers share one)."""

    phase: int = JOINS
    other_bytes: list[int] = field(default_factory=lambda: [0, 0, 0])
    other_frames: list[int] = field(default_factory=lambda: [0, 0, 0])
    own_bytes: int = 0
    last_frame: float = 0.0
    events: list[tuple[str, float]] = field(default_factory=list)  # (word, sent at)
    latencies: list[float] = field(default_factory=list)


class Refused(Exception):
    """The node refused the connection or answered an event with an error."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Client:
    """An engine.io v4 / socket.io v5 client over one websocket, default namespace only.

    Frames: ``0`` open (then this client sends CONNECT with the token), ``40`` CONNECT accepted,
    ``44`` refused, ``43<id>[...]`` acknowledgement, ``2`` ping (answered ``3``), ``41``/``1``
    disconnect/close; anything else (``42[...]`` events) counts as room traffic.
    """

    def __init__(self, token: str, tally: Tally) -> None:
        self.token = token
        self.tally = tally
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A refusal nobody waits for any more (a viewer given up on) is no error to log.
        self.connected.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.acks: dict[int, asyncio.Future[None]] = {}
        self.next_ack = 0
        self.expected = 0  # index into tally.events of the next host action to see
        self.closed = False

    async def connect(self, session: aiohttp.ClientSession, url: str, compress: bool) -> None:
        """Open the websocket and complete the socket.io CONNECT (raises on failure)."""
        self.ws = await session.ws_connect(
            url, compress=15 if compress else 0, max_msg_size=0, autoclose=True,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=WS_CLOSE_TIMEOUT),
        )
        self.task = asyncio.ensure_future(self._read())
        await asyncio.wait({self.connected, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not self.connected.done():
            raise ConnectionError("closed before CONNECT")
        self.connected.result()

    async def call(self, event: str, data: Any) -> None:
        """Send ``event`` with an acknowledgement id; wait for the acknowledgement."""
        assert self.ws is not None
        ack_id = self.next_ack
        self.next_ack += 1
        future = self.acks[ack_id] = asyncio.get_running_loop().create_future()
        await self.ws.send_str(f"42{ack_id}" + json.dumps([event, data], separators=(",", ":")))
        await future

    def _fail(self, exc: BaseException) -> None:
        if not self.connected.done():
            self.connected.set_exception(exc)
        for future in self.acks.values():
            if not future.done():
                future.set_exception(exc)
        self.acks.clear()

    def _acknowledged(self, data: str) -> None:
        start = data.find("[")
        future = self.acks.pop(int(data[2:start]), None)
        if future is None or future.done():
            return
        if data.startswith('[{"error"', start):
            error = json.loads(data[start:])[0]["error"]
            future.set_exception(Refused(str(error.get("code"))))
        else:
            future.set_result(None)  # the body (a whole list, with the old server) is not needed

    async def _read(self) -> None:
        ws = self.ws
        assert ws is not None
        tally = self.tally
        monotonic = time.monotonic
        text = aiohttp.WSMsgType.TEXT
        reason: BaseException = ConnectionError("websocket closed")
        try:
            while True:
                msg = await ws.receive()
                if msg.type is not text:
                    if msg.type is aiohttp.WSMsgType.BINARY:
                        tally.other_bytes[tally.phase] += len(msg.data)
                        tally.other_frames[tally.phase] += 1
                        continue
                    break  # CLOSE, CLOSING, CLOSED, ERROR
                data: str = msg.data
                if not data:
                    continue
                if data == "2":
                    await ws.send_str("3")
                    continue
                size = len(data) if data.isascii() else len(data.encode())
                head = data[:2]
                if head == "42":
                    now = monotonic()
                    phase = tally.phase
                    tally.other_bytes[phase] += size
                    tally.other_frames[phase] += 1
                    tally.last_frame = now
                    events = tally.events
                    if self.expected < len(events) and HOST_IDENTITY in data:
                        word, sent = events[self.expected]
                        if word in data:
                            tally.latencies.append(now - sent)
                            self.expected += 1
                elif head == "43":
                    tally.own_bytes += size
                    self._acknowledged(data)
                elif head == "40":
                    tally.own_bytes += size
                    if not self.connected.done():
                        self.connected.set_result(None)
                elif data[0] == "0":
                    tally.own_bytes += size
                    await ws.send_str("40" + json.dumps({"token": self.token}))
                elif head == "44":
                    tally.own_bytes += size
                    body = json.loads(data[2:]) if len(data) > 2 else {}
                    code = (body.get("data") or {}).get("code") or body.get("message")
                    reason = Refused(str(code))
                    break
                elif head == "41" or data[0] == "1":
                    reason = ConnectionError("disconnected by the node")
                    break
                else:
                    tally.other_bytes[tally.phase] += size
                    tally.other_frames[tally.phase] += 1
                    tally.last_frame = monotonic()
        except Exception as exc:  # a send to a socket the node has closed, mostly
            reason = ConnectionError(f"{type(exc).__name__}: {exc}")
        finally:
            self.closed = True
            self._fail(reason)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()


# -- the phases ---------------------------------------------------------------------------------


class Probe:
    """``GET /healthz`` every ``PROBE_PERIOD``, one at a time: response times while running."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url + "/healthz"
        self.samples: list[float] = []
        self.failed = 0
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
        next_at = time.monotonic()
        while True:
            started = time.monotonic()
            try:
                async with self.session.get(self.url, timeout=timeout) as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            self.samples.append(time.monotonic() - started)
            self.failed += not ok
            next_at = max(next_at + PROBE_PERIOD, time.monotonic())
            await _sleep_until(next_at)

    async def stop(self) -> dict[str, Any]:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        samples = sorted(self.samples)
        p50 = _percentile(samples, 0.5)
        worst = samples[-1] if samples else None
        return {
            "healthz_p50_ms": _ms(p50),
            "healthz_worst_ms": _ms(worst),
            "stall_bound_ms": _ms(worst - p50) if worst is not None and p50 is not None else None,
            "healthz_requests": len(samples),
            "healthz_failed": self.failed,
        }


@dataclass
class Run:
    """One N: the node, its clients and what was measured so far."""

    n: int
    args: argparse.Namespace
    node: Node
    session: aiohttp.ClientSession
    result: dict[str, Any]
    tally: Tally = field(default_factory=Tally)
    viewers: list[Client] = field(default_factory=list)
    host: Client | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.node.port}/socket.io/?EIO=4&transport=websocket"


async def get_tokens(api: Api, n: int) -> tuple[list[str], str]:
    tokens: list[str] = [""] * n

    async def one(i: int) -> None:
        tokens[i] = await api.token(VIEWER_IDENTITY.format(i), "visitor")

    await gather_bounded((one(i) for i in range(n)), TOKEN_CONCURRENCY)
    return tokens, await api.token(HOST_IDENTITY, "host")


async def join_phase(run: Run, tokens: list[str], baseline: float) -> None:
    n, rate, node, result, tally = run.n, run.args.rate, run.node, run.result, run.tally
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    failures: Counter[str] = Counter()
    join_times: list[float] = []
    starts: list[float] = []
    joined: list[Client] = []
    start = time.monotonic() + 0.1
    deadline = start + n / rate + JOIN_GRACE

    async def join(i: int) -> None:
        await _sleep_until(start + i / rate)
        async with in_flight:
            began = time.monotonic()
            if began >= deadline:
                failures["not started"] += 1
                return
            starts.append(began)
            client = Client(tokens[i], tally)
            run.viewers.append(client)
            try:
                async with asyncio.timeout(min(JOIN_TIMEOUT, deadline - began)):
                    await client.connect(run.session, run.ws_url, run.args.compress)
                    await client.call("join", {})
            except TimeoutError:
                failures["timeout"] += 1
            except Refused as exc:
                failures[f"refused: {exc.code}"] += 1
            except Exception as exc:  # aiohttp.ClientError, OSError (ConnectionError), ...
                failures[f"{type(exc).__name__}: {exc}"[:80]] += 1
            else:
                join_times.append(time.monotonic() - began)
                joined.append(client)
                return
            await client.close()  # a failed viewer takes no further part

    cpu0, load0 = node.cpu_seconds(), _own_cpu()
    t0 = time.monotonic()
    await asyncio.gather(*(join(i) for i in range(n)))
    settled = time.monotonic()
    # The joins' broadcasts may still be on their way: wait until the viewers hear nothing.
    drain_until = settled + DRAIN_MAX
    while (time.monotonic() < drain_until
           and time.monotonic() - tally.last_frame < DRAIN_QUIET):
        await asyncio.sleep(0.05)
    t1 = time.monotonic()
    drained = t1 - tally.last_frame >= DRAIN_QUIET
    tally.phase = AFTER  # until the host's first action: late join traffic, not counted
    cpu1, load1 = node.cpu_seconds(), _own_cpu()
    rss = node.rss_bytes()

    count = len(joined)
    join_times.sort()
    spread = max(starts) - min(starts) if len(starts) > 1 else 0.0
    result.update({
        "joined": count,
        "failed": n - count,
        "failures": dict(failures),
        "join_rate": round((len(starts) - 1) / spread, 1) if spread else None,
        "join_phase_s": round(t1 - t0, 2),
        "drained": drained,
        "join_ms_p50": _ms(_percentile(join_times, 0.5)),
        "join_ms_p99": _ms(_percentile(join_times, 0.99)),
        "node_cpu_us_per_join": (round((cpu1 - cpu0 - baseline * (t1 - t0)) / count * 1e6)
                                 if count else None),
        "node_cpu_pct_joins": _pct(cpu1 - cpu0, t1 - t0),
        "bytes_to_others_per_join": round(tally.other_bytes[JOINS] / count) if count else None,
        "frames_to_others_per_join": (round(tally.other_frames[JOINS] / count, 1)
                                      if count else None),
        "own_bytes_per_join": round(tally.own_bytes / count) if count else None,
        "node_rss_mb": round(rss / MB, 1),
        "load_cpu_pct": {"joins": _pct(load1 - load0, t1 - t0)},
    })
    run.viewers = joined


async def event_phase(run: Run, host_token: str) -> None:
    node, result, tally, events = run.node, run.result, run.tally, run.args.events
    host = run.host = Client(host_token, Tally())
    async with asyncio.timeout(HOST_TIMEOUT):
        await host.connect(run.session, run.ws_url, run.args.compress)
    viewers = run.viewers
    cpu0, load0 = node.cpu_seconds(), _own_cpu()
    t0 = time.monotonic()
    tally.phase = EVENTS
    deadline = t0 + events * EVENT_PERIOD + EVENT_GRACE
    sent = 0
    late = 0
    host_error = None
    for k in range(events):
        at = t0 + k * EVENT_PERIOD
        if time.monotonic() > at + 0.05:
            late += 1  # the previous acknowledgement came after this action's time
        await _sleep_until(at)
        action, word = ("join", JOINED_WORD) if k % 2 == 0 else ("leave", LEFT_WORD)
        tally.events.append((word, time.monotonic()))
        sent += 1
        try:
            async with asyncio.timeout(min(HOST_TIMEOUT, max(0.0, deadline - time.monotonic()))):
                await host.call(action, {})
        except (TimeoutError, Refused, ConnectionError, aiohttp.ClientError) as exc:
            host_error = f"{action} #{k}: {type(exc).__name__} {exc}"
            break
    while (time.monotonic() < deadline
           and any(v.expected < sent and not v.closed for v in viewers)):
        await asyncio.sleep(0.05)
    t1 = time.monotonic()
    cpu1, load1 = node.cpu_seconds(), _own_cpu()
    tally.phase = AFTER

    latencies = sorted(tally.latencies)
    count = len(viewers)
    result.update({
        "events_sent": sent,
        "events_late": late,
        "deliveries": len(latencies),
        "missed": count * sent - len(latencies),
        "event_p50_ms": _ms(_percentile(latencies, 0.5)),
        "event_p99_ms": _ms(_percentile(latencies, 0.99)),
        "event_max_ms": _ms(latencies[-1] if latencies else None),
        "event_bytes_per_viewer": (round(tally.other_bytes[EVENTS] / sent / count)
                                   if sent and count else None),
        "node_cpu_pct_events": _pct(cpu1 - cpu0, t1 - t0),
        "dropped": sum(v.closed for v in viewers),
    })
    result["load_cpu_pct"]["events"] = _pct(load1 - load0, t1 - t0)
    if host_error:
        result["host_error"] = host_error


async def node_worst_lag_ms(session: aiohttp.ClientSession, url: str) -> float | None:
    """The node's own worst event-loop lag since the previous scrape (``/metrics``), in ms;
    None for a node without that metric (an older checkout)."""
    async with session.get(url + "/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("fairwire_event_loop_worst_lag_seconds "):
            return round(float(line.split()[1]) * 1000, 1)
    return None


async def measure(run: Run) -> None:
    node = run.node
    await node.start(run.session)
    api = Api(run.session, node)
    await api.post("/api/rooms", {"id": ROOM_ID, "name": "Audience bench", "kind": "livestream",
                                  "category": "Bench", "status": "live"})
    tokens, host_token = await get_tokens(api, run.n)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as probe_session:
        probe = Probe(probe_session, node.url)
        try:
            cpu0, t0 = node.cpu_seconds(), time.monotonic()
            await asyncio.sleep(BASELINE_SECONDS)
            baseline = (node.cpu_seconds() - cpu0) / (time.monotonic() - t0)
            run.result["node_cpu_pct_baseline"] = round(100 * baseline, 1)
            probe.samples.clear()  # the figures are those of the joins and events
            probe.failed = 0
            await node_worst_lag_ms(run.session, node.url)  # starts the node's count over
            await join_phase(run, tokens, baseline)
            joins_lag = await node_worst_lag_ms(run.session, node.url)
            await event_phase(run, host_token)
            run.result["node_loop_stall_ms"] = {
                "joins": joins_lag, "events": await node_worst_lag_ms(run.session, node.url)}
        finally:
            run.result.update(await probe.stop())


async def close_clients(clients: list[Client]) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.close() for c in clients)), CLOSE_TIMEOUT)


async def run_size(n: int, args: argparse.Namespace, cpu: int) -> dict[str, Any]:
    result: dict[str, Any] = {"viewers": n}
    started = time.monotonic()
    bound = n / args.rate + args.events * EVENT_PERIOD + RUN_MARGIN
    with tempfile.TemporaryDirectory(prefix="fairwire-audience-") as workdir:
        node = Node(args.server_repo, cpu, Path(workdir))
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            run = Run(n, args, node, session, result)
            try:
                await asyncio.wait_for(measure(run), bound)
            except TimeoutError:
                result["timed_out"] = True
            except Exception as exc:  # reported, and the next N still runs
                result["error"] = f"{type(exc).__name__}: {exc}"[:500]
            finally:
                if node.proc is not None and not node.alive:
                    result["node_died"] = node.proc.returncode
                    print(f"node log (tail):\n{node.log_tail()}", file=sys.stderr)
                await close_clients([*run.viewers, *([run.host] if run.host else [])])
                result["node_stop"] = await node.stop()
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def _git(repo: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def describe(args: argparse.Namespace, cpus: list[int], nofile: int) -> dict[str, Any]:
    repo = args.server_repo
    code = subprocess.run(
        [sys.executable, "-c", "import signalling; print(signalling.__file__)"],
        cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True,
        timeout=30, check=False,
    ).stdout.strip()
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {
        "bench": "audience",
        "server_repo": str(repo),
        "server_commit": _git(repo, "rev-parse", "--short", "HEAD"),
        "server_tree": None if status is None else ("modified" if status else "clean"),
        "server_code": code,
        "python": platform.python_version(),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "node_cpu": cpus[0],
        "load_cpu": cpus[1],
        "rate": args.rate,
        "events": args.events,
        "event_period_s": EVENT_PERIOD,
        "in_flight": IN_FLIGHT,
        "join_timeout_s": JOIN_TIMEOUT,
        "compress": args.compress,
        "nofile": nofile,
        "state": "in memory",
    }


async def bench(args: argparse.Namespace) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("needs two CPUs: one for the node, one for the load")
    # 2000+ sockets on each side: the node inherits the raised limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sizes = [int(s) for s in args.sizes.split(",")]
    emit(describe(args, cpus, hard))
    os.sched_setaffinity(0, {cpus[1]})
    for n in sizes:
        emit(await run_size(n, args, cpus[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="500,1000,2000", help="viewer counts, one node each")
    parser.add_argument("--rate", type=float, default=100.0, help="joins per second")
    parser.add_argument("--events", type=int, default=10,
                        help="host join/leave actions, one a second")
    parser.add_argument("--server-repo", type=Path, default=ROOT,
                        help="checkout whose server runs (its cwd and PYTHONPATH)")
    parser.add_argument("--compress", action="store_true",
                        help="viewers offer permessage-deflate, as browsers do")
    args = parser.parse_args()
    args.server_repo = args.server_repo.resolve()
    uvloop.run(bench(args))


if __name__ == "__main__":
    main()
