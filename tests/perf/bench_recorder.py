"""Recorder benchmark: what recording costs beyond forwarding (run on demand).

    .venv/bin/python tests/perf/bench_recorder.py [--lives 4] [--seconds 20] [--cpu 0]
        [--codec vp8|h264] [--hls]

Each live is the fan-out benchmark's pre-encoded clip (VP8 1280x720 at 30 fps, about 190
packets/s, + Opus 20 ms), packetized as RFC 7741 and RFC 7587 and paced in real time into the
node's own recording pipeline (``signalling.recordings.LiveRecording``: ``RecordedTrack``
depacketizing and timing on the event loop, the bounded queue, the writer thread muxing
4 s WebM segments to a temporary data directory). No SFU runs: what is measured is the
recording alone, which is what recording adds to a node that forwards the same lives. The
process is pinned to one CPU (``--cpu``); its CPU time (all threads) over the window, less
that of the same paced loop feeding observers that do nothing, gives the share of a core.
Finalisation (one remux per replay, once, when the live ends) is timed apart.

``--codec h264`` sends the same picture as H.264 (libx264, Constrained Baseline, packetized
as RFC 6184 single NAL units and FU-A), recorded as MP4 (CMAF) segments; ``--hls`` also
serves each live as live HLS, as the node does for H.264 lives (a second tap with its own
depacketizer feeding ``recorder.hls.LiveHlsWriter``): what the pair costs.

Prints one JSON line: lives, packets/s, the share of a core, per-packet cost, frames written
and dropped, and the finalisation time per replay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import av
from bench_fanout import FPS, VP8_PACKET_PAYLOAD, encode_clip

from recorder.hls import LiveHlsWriter
from recorder.storage import LocalStorage
from recorder.track import RecordedTrack
from signalling.program_tap import ProgramTap
from signalling.recordings import LiveRecording, RecordingMeta

VP8_START = 0x10  # RFC 7741 §4.2: S=1, PID=0 (first packet of a frame)
AUDIO_TICK_S = 0.020
NTP_EPOCH_OFFSET = 2208988800  # RFC 5905: 1900 -> 1970


def ntp_now() -> int:
    now = time.time() + NTP_EPOCH_OFFSET
    return (int(now) << 32) | int((now % 1) * (1 << 32))


H264_PAYLOAD = 1200
FU_A = 28  # RFC 6184 §5.8


def h264_clip(clip: Any) -> list[list[bytes]]:
    """The clip's picture as H.264 access units, each as its RTP payloads (RFC 6184)."""
    decoder = av.CodecContext.create("libvpx", "r")
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 1280, 720, "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.framerate = Fraction(FPS)
    encoder.gop_size = 2 * FPS
    encoder.bit_rate = 1_550_000
    encoder.options = {"profile": "baseline", "preset": "ultrafast", "tune": "zerolatency"}
    units: list[bytes] = []
    for index, data in enumerate(clip.video):
        for picture in decoder.decode(av.Packet(data)):
            picture.pts = index
            units += [bytes(p) for p in encoder.encode(picture)]
    units += [bytes(p) for p in encoder.encode(None)]
    out = []
    for unit in units:
        payloads: list[bytes] = []
        for nal in (n for n in re.split(b"\x00\x00\x00\x01|\x00\x00\x01", unit) if n):
            if len(nal) <= H264_PAYLOAD:
                payloads.append(nal)
                continue
            indicator, kind = (nal[0] & 0xE0) | FU_A, nal[0] & 0x1F
            body = nal[1:]
            chunks = [body[i:i + H264_PAYLOAD] for i in range(0, len(body), H264_PAYLOAD)]
            for i, chunk in enumerate(chunks):
                header = kind | (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0)
                payloads.append(bytes([indicator, header]) + chunk)
        out.append(payloads)
    return out


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Nothing:
    """An observer that does nothing: the pacing loop's own cost, to subtract."""

    def on_packet(self, sequence_number: int, timestamp: int, marker: bool, payload: bytes,
                  keyframe: bool, now_ms: int) -> None:
        return None

    def on_sender_report(self, ntp: int, rtp_ts: int, now_ms: int) -> None:
        return None


class Both:
    """One track's packets to several observers (a recording's tap and a live HLS tap)."""

    def __init__(self, *observers: Any) -> None:
        self.observers = observers

    def on_packet(self, *args: Any) -> None:
        for observer in self.observers:
            observer.on_packet(*args)

    def on_sender_report(self, *args: Any) -> None:
        for observer in self.observers:
            observer.on_sender_report(*args)


async def run(lives: int, seconds: float, clip: Any, h264: list[list[bytes]] | None, *,
              record: bool, hls: bool) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="fairwire-bench-recorder-"))
    storage = LocalStorage(root)
    recordings: list[LiveRecording] = []
    streams: list[ProgramTap] = []
    tracks: list[tuple[Any, Any]] = []
    codec = "H264" if h264 is not None else "VP8"
    for n in range(lives):
        if not record:
            tracks.append((Nothing(), Nothing()))
            continue
        meta = RecordingMeta(f"bench-{n}.live", f"bench-{n}", "Bench", "", None, time.time())
        recording = LiveRecording(storage, meta)
        taps = [recording.tap]
        recordings.append(recording)
        if hls:
            tap = ProgramTap(f"hls {n}", LiveHlsWriter(root / f"hls-{n}"), keyframe_every_ms=2000)
            streams.append(tap)
            taps.append(tap)
        video = Both(*(RecordedTrack(codec, t.timeline, t._sink, f"pub-{n}") for t in taps))
        audio = Both(*(RecordedTrack("opus", t.timeline, t._sink, f"pub-{n}") for t in taps))
        tracks.append((video, audio))
    seq = [[n * 1000, n * 1000 + 500] for n in range(lives)]
    ts = [[n * 90_000, n * 48_000] for n in range(lives)]
    packets = 0
    start_wall, start_cpu = time.monotonic(), cpu_seconds()
    next_video = next_audio = next_report = start_wall
    frame_index = audio_index = 0
    while time.monotonic() - start_wall < seconds:
        now = time.monotonic()
        now_ms = int(now * 1000)
        if now >= next_video:
            if h264 is not None:
                payloads = h264[frame_index % len(h264)]
            else:
                frame = clip.video[frame_index % len(clip.video)]
                payloads = [bytes([VP8_START if i == 0 else 0]) + frame[i:i + VP8_PACKET_PAYLOAD]
                            for i in range(0, len(frame), VP8_PACKET_PAYLOAD)]
            for n, (video, _) in enumerate(tracks):
                for i, payload in enumerate(payloads):
                    video.on_packet(seq[n][0] & 0xFFFF, ts[n][0] & 0xFFFFFFFF,
                                    i == len(payloads) - 1, payload, False, now_ms)
                    seq[n][0] += 1
                    packets += 1
                ts[n][0] += 90_000 // FPS
            frame_index += 1
            next_video += 1 / FPS
        if now >= next_audio:
            payload = clip.audio[audio_index % len(clip.audio)]
            for n, (_, audio) in enumerate(tracks):
                audio.on_packet(seq[n][1] & 0xFFFF, ts[n][1] & 0xFFFFFFFF, True, payload,
                                True, now_ms)
                seq[n][1] += 1
                ts[n][1] += 960
                packets += 1
            audio_index += 1
            next_audio += AUDIO_TICK_S
        if now >= next_report:  # sender reports once a second, as browsers send them
            for n, (video, audio) in enumerate(tracks):
                video.on_sender_report(ntp_now(), ts[n][0] & 0xFFFFFFFF, now_ms)
                audio.on_sender_report(ntp_now(), ts[n][1] & 0xFFFFFFFF, now_ms)
            next_report += 1.0
        await asyncio.sleep(max(0.0, min(next_video, next_audio) - time.monotonic()))
    wall, cpu = time.monotonic() - start_wall, cpu_seconds() - start_cpu
    written = sum(r.segments.stats.frames_written for r in recordings)
    dropped = sum(r.tap.dropped for r in recordings)
    finalise_started = time.monotonic()
    replays = [await r.stop(time.time()) for r in recordings]
    finalise_s = (time.monotonic() - finalise_started) / lives
    hls_segments = 0
    for tap in streams:
        await tap.stop()
        hls_segments += tap.writer.stats.segments  # type: ignore[attr-defined]
    durations = [round(r.duration_s, 2) for r in replays if r is not None]
    shutil.rmtree(root, ignore_errors=True)
    return {"seconds": wall, "cpu": cpu, "packets": packets, "written": written,
            "dropped": dropped, "finalise_s": finalise_s, "durations": durations,
            "hls_segments": hls_segments}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lives", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--cpu", type=int, default=0, help="the CPU to pin this process to")
    parser.add_argument("--codec", choices=("vp8", "h264"), default="vp8")
    parser.add_argument("--hls", action="store_true", help="also serve live HLS (H.264)")
    args = parser.parse_args()
    if args.hls and args.codec != "h264":
        parser.error("live HLS is for H.264 lives: add --codec h264")
    os.sched_setaffinity(0, {args.cpu})
    clip = encode_clip()
    h264 = h264_clip(clip) if args.codec == "h264" else None
    pacing = asyncio.run(run(args.lives, args.seconds, clip, h264, record=False, hls=False))
    recorded = asyncio.run(run(args.lives, args.seconds, clip, h264, record=True,
                               hls=args.hls))
    share = 100 * (recorded["cpu"] / recorded["seconds"] - pacing["cpu"] / pacing["seconds"])
    packets_per_s = recorded["packets"] / recorded["seconds"]
    print(json.dumps({
        "bench": "recorder", "codec": args.codec, "hls": args.hls, "lives": args.lives,
        "seconds": round(recorded["seconds"], 1),
        "packets_per_s": round(packets_per_s),
        "core_pct": round(share, 2), "core_pct_per_live": round(share / args.lives, 2),
        "us_per_packet": round(share / 100 / packets_per_s * 1e6, 2),
        "pacing_core_pct": round(100 * pacing["cpu"] / pacing["seconds"], 2),
        "frames_written": recorded["written"], "frames_dropped": recorded["dropped"],
        "finalise_s_per_replay": round(recorded["finalise_s"], 3),
        "replay_durations_s": recorded["durations"],
        "hls_segments": recorded["hls_segments"],
    }), flush=True)


if __name__ == "__main__":
    main()
