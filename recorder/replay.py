"""Finalisation: a recording's segments become one seekable replay file (plus HLS VOD for MP4).

``finalise`` remuxes (no decode, no encode) every committed segment into ``replay.webm`` (with
cues and a duration) or ``replay.mp4`` (``+faststart``: the index first, so players seek without
fetching the end), writes HLS VOD beside an MP4 replay, a thumbnail, and last ``final.json``.
``recover`` is what a node runs at start: every recording without ``final.json`` was cut by a
crash; its temporaries (the segment in progress) are dropped and the finished part finalised.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.error
from av.container import InputContainer, OutputContainer
from av.stream import Stream

from recorder.segments import MANIFEST, SegmentRecord, read_manifest
from recorder.storage import Storage, StorageError, copy_into
from recorder.thumbnail import write_thumbnail

log = logging.getLogger(__name__)

FINAL = "final.json"
HLS_DIR = "hls"
HLS_PLAYLIST = f"{HLS_DIR}/index.m3u8"
# RFC 8216 §4.3.3.1: EXT-X-TARGETDURATION bounds every segment; cuts land on keyframes, so
# with the recorder's 2–6 s keyframe cadence a 4 s target keeps segments near it.
HLS_TIME_S = 4
_SEGMENT_FILE = re.compile(r"seg-(\d{6})\.(webm|mp4)")


class FinaliseError(Exception):
    """The replay could not be assembled (no readable segment, storage failure)."""


@dataclass(frozen=True, slots=True)
class TrackInfo:
    kind: str  # "video" | "audio"
    codec: str  # FFmpeg's name: "vp8", "h264", "opus"
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0


@dataclass(frozen=True, slots=True)
class ReplayInfo:
    """What ``final.json`` holds: the replay API's facts about one finished recording."""

    id: str
    duration_s: float
    tracks: tuple[TrackInfo, ...]
    size: int  # bytes of the playback file
    files: tuple[str, ...]  # everything finalisation wrote
    playback: str | None  # "replay.webm" | "replay.mp4"; None for an empty recording
    hls: str | None = None
    thumbnail: str | None = None
    segments: int = 0
    segments_skipped: int = 0  # unreadable, or in another container after a codec switch

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "duration_s": self.duration_s,
                "tracks": [
                    {
                        "kind": t.kind,
                        "codec": t.codec,
                        "width": t.width,
                        "height": t.height,
                        "sample_rate": t.sample_rate,
                        "channels": t.channels,
                    }
                    for t in self.tracks
                ],
                "size": self.size,
                "files": list(self.files),
                "playback": self.playback,
                "hls": self.hls,
                "thumbnail": self.thumbnail,
                "segments": self.segments,
                "segments_skipped": self.segments_skipped,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> ReplayInfo:
        raw = json.loads(text)
        return cls(
            id=str(raw["id"]),
            duration_s=float(raw["duration_s"]),
            tracks=tuple(
                TrackInfo(
                    kind=str(t["kind"]),
                    codec=str(t["codec"]),
                    width=int(t["width"]),
                    height=int(t["height"]),
                    sample_rate=int(t["sample_rate"]),
                    channels=int(t["channels"]),
                )
                for t in raw["tracks"]
            ),
            size=int(raw["size"]),
            files=tuple(str(f) for f in raw["files"]),
            playback=raw["playback"],
            hls=raw["hls"],
            thumbnail=raw["thumbnail"],
            segments=int(raw["segments"]),
            segments_skipped=int(raw["segments_skipped"]),
        )


def load_replay(storage: Storage, recording_id: str) -> ReplayInfo | None:
    """The finished replay's facts, or None while it is not finalised."""
    if not storage.exists(recording_id, FINAL):
        return None
    return ReplayInfo.from_json(storage.read(recording_id, FINAL).decode())


def _avcc_parameter_sets(avcc: bytes) -> list[bytes] | None:
    """SPS and PPS NAL units of an avcC record (ISO 14496-15 §5.3.3.1), None if malformed."""
    if len(avcc) < 7 or avcc[0] != 1 or avcc[4] & 3 != 3:
        return None  # only 4-byte NAL lengths, which is what the recorder writes
    out: list[bytes] = []
    pos = 5
    for count_mask in (0x1F, 0xFF):
        if pos >= len(avcc):
            return None
        count = avcc[pos] & count_mask
        pos += 1
        for _ in range(count):
            if pos + 2 > len(avcc):
                return None
            size = int.from_bytes(avcc[pos : pos + 2], "big")
            nal = avcc[pos + 2 : pos + 2 + size]
            if len(nal) != size:
                return None
            out.append(nal)
            pos += 2 + size
    return out


def _in_band(parameter_sets: list[bytes]) -> bytes:
    return b"".join(len(n).to_bytes(4, "big") + n for n in parameter_sets)


def _stream_kind(stream: Stream) -> str | None:
    return stream.type if stream.type in ("video", "audio") else None


class _Remuxer:
    """Appends segments' packets to one output, keeping each stream's timestamps increasing."""

    def __init__(self, output: OutputContainer) -> None:
        self.output = output
        self.streams: dict[str, Stream] = {}
        self.extradata: dict[str, bytes] = {}
        self.last_dts: dict[str, int] = {}
        self.packets = 0

    def add_streams(self, templates: dict[str, Stream]) -> None:
        for kind in ("video", "audio"):
            template = templates.get(kind)
            if template is None:
                continue
            self.streams[kind] = self.output.add_stream_from_template(template)
            self.extradata[kind] = template.codec_context.extradata or b""

    def append(self, source: InputContainer) -> None:
        mapping: dict[int, tuple[str, bytes]] = {}
        for stream in source.streams:
            kind = _stream_kind(stream)
            if kind is None or kind not in self.streams:
                continue
            mapping[stream.index] = (kind, b"")
            extradata = stream.codec_context.extradata or b""
            if kind == "video" and stream.codec_context.name == "h264":
                if extradata and extradata != self.extradata[kind]:
                    # New SPS/PPS after a publisher switch: carry them in-band on keyframes
                    # (decoders accept parameter sets inside AVCC samples).
                    sets = _avcc_parameter_sets(extradata)
                    mapping[stream.index] = (kind, _in_band(sets) if sets else b"")
        for packet in source.demux():
            entry = mapping.get(packet.stream_index)
            if entry is None or packet.dts is None or packet.pts is None:
                continue
            kind, prefix = entry
            # Compare in microseconds: exact for the muxers' ms, 90 kHz and 48 kHz clocks.
            dts_us = int(packet.dts * packet.time_base * 1_000_000)
            if dts_us <= self.last_dts.get(kind, -(1 << 62)):
                continue
            self.last_dts[kind] = dts_us
            out_stream = self.streams[kind]
            if prefix and packet.is_keyframe:
                fixed = av.Packet(prefix + bytes(packet))
                fixed.pts, fixed.dts, fixed.duration = packet.pts, packet.dts, packet.duration
                fixed.time_base = packet.time_base
                fixed.is_keyframe = True
                packet = fixed
            packet.stream = out_stream
            self.output.mux(packet)
            self.packets += 1


def _templates(source: InputContainer) -> dict[str, Stream]:
    out: dict[str, Stream] = {}
    for stream in source.streams:
        kind = _stream_kind(stream)
        if kind is not None and kind not in out:
            out[kind] = stream
    return out


def _pick_container(records: list[SegmentRecord]) -> str:
    # After a VP8 <-> H.264 switch segments alternate containers; keep the longer part.
    totals: dict[str, float] = {}
    for record in records:
        totals[record.container] = totals.get(record.container, 0.0) + record.duration_ms
    return max(totals, key=lambda c: totals[c])


def _probe(path: Any) -> tuple[float, tuple[TrackInfo, ...]]:
    with av.open(path, "r") as container:
        tracks: list[TrackInfo] = []
        for stream in container.streams:
            ctx: Any = stream.codec_context
            if stream.type == "video":
                tracks.append(TrackInfo("video", ctx.name, width=ctx.width, height=ctx.height))
            elif stream.type == "audio":
                tracks.append(
                    TrackInfo("audio", ctx.name, sample_rate=ctx.sample_rate, channels=ctx.channels)
                )
        duration = (container.duration or 0) / 1_000_000
        return duration, tuple(tracks)


def _write_hls(storage: Storage, recording_id: str, replay_name: str) -> list[str]:
    """HLS VOD (fMP4 segments, RFC 8216) from the MP4 replay; returns the stored names."""
    with tempfile.TemporaryDirectory(prefix="fairwire-hls-") as tmp:
        work = Path(tmp)
        playlist = work / "index.m3u8"
        with storage.open_read(recording_id, replay_name) as src, av.open(src, "r") as source:
            output = av.open(
                str(playlist),
                "w",
                format="hls",
                options={
                    "hls_time": str(HLS_TIME_S),
                    "hls_segment_type": "fmp4",
                    "hls_playlist_type": "vod",
                    "hls_flags": "independent_segments",
                    "hls_fmp4_init_filename": "init.mp4",
                    "hls_segment_filename": str(work / "seg-%05d.m4s"),
                },
            )
            try:
                remuxer = _Remuxer(output)
                remuxer.add_streams(_templates(source))
                remuxer.append(source)
            finally:
                output.close()
        text = playlist.read_text()
        # The muxer may name segments by the path it wrote; the playlist must be relative.
        text = text.replace(f"{work}/", "")
        names: list[str] = []
        for file in sorted(work.iterdir()):
            if file.name == playlist.name:
                continue
            copy_into(storage, recording_id, f"{HLS_DIR}/{file.name}", file)
            names.append(f"{HLS_DIR}/{file.name}")
        # The playlist last: a reader never sees it before the segments it names.
        storage.write_bytes(recording_id, HLS_PLAYLIST, text.encode())
        names.append(HLS_PLAYLIST)
        return names


def finalise(
    storage: Storage, recording_id: str, *, hls: bool = True, thumbnail: bool = True
) -> ReplayInfo:
    """Assemble the replay of a recording whose writer is closed; idempotent (rewrites it)."""
    records = read_manifest(storage, recording_id)
    if not records:
        info = ReplayInfo(recording_id, 0.0, (), 0, (), None)
        storage.write_bytes(recording_id, FINAL, info.to_json().encode())
        return info
    container = _pick_container(records)
    replay_name = f"replay.{container}"
    options = {"movflags": "+faststart"} if container == "mp4" else {}
    pending = storage.open_write(recording_id, replay_name)
    used = skipped = 0
    try:
        output = av.open(str(pending.path), "w", format=container, options=options)
        remuxer = _Remuxer(output)
        try:
            for record in records:
                if record.container != container:
                    skipped += 1
                    continue
                try:
                    with (
                        storage.open_read(recording_id, record.file) as f,
                        av.open(f, "r") as source,
                    ):
                        if not remuxer.streams:
                            remuxer.add_streams(_templates(source))
                        elif any(k not in remuxer.streams for k in _templates(source)):
                            log.info(
                                "%s: %s adds a track the replay lacks", recording_id, record.file
                            )
                        remuxer.append(source)
                        used += 1
                except (av.error.FFmpegError, StorageError, OSError) as exc:
                    log.warning("%s: segment %s unreadable: %s", recording_id, record.file, exc)
                    skipped += 1
        finally:
            output.close()
        if remuxer.packets == 0:
            raise FinaliseError(f"{recording_id}: no readable segment")
    except BaseException:
        pending.abort()
        raise
    size = pending.commit()
    with storage.open_read(recording_id, replay_name) as f:
        duration, tracks = _probe(f)
    files = [replay_name]
    hls_name: str | None = None
    if hls and container == "mp4":
        files += _write_hls(storage, recording_id, replay_name)
        hls_name = HLS_PLAYLIST
    thumb: str | None = None
    if thumbnail and any(t.kind == "video" for t in tracks):
        thumb = write_thumbnail(storage, recording_id, replay_name)
        if thumb:
            files.append(thumb)
    info = ReplayInfo(
        id=recording_id,
        duration_s=round(duration, 3),
        tracks=tracks,
        size=size,
        files=tuple(files),
        playback=replay_name,
        hls=hls_name,
        thumbnail=thumb,
        segments=used,
        segments_skipped=skipped,
    )
    storage.write_bytes(recording_id, FINAL, info.to_json().encode())
    return info


def _repair_manifest(storage: Storage, recording_id: str) -> int:
    """Add committed segments a crash left out of the manifest (killed between rename and
    append); return how many."""
    listed = {r.file for r in read_manifest(storage, recording_id)}
    added = 0
    for stored in storage.list_files(recording_id):
        match = _SEGMENT_FILE.fullmatch(stored.name)
        if match is None or stored.name in listed:
            continue
        try:
            with storage.open_read(recording_id, stored.name) as f, av.open(f, "r") as c:
                start = (c.start_time or 0) / 1000
                duration = (c.duration or 0) / 1000
                has_video = bool(c.streams.video)
                video = c.streams.video[0].codec_context.name if has_video else ""
                audio = c.streams.audio[0].codec_context.name if c.streams.audio else ""
        except (av.error.FFmpegError, OSError):
            continue
        record = SegmentRecord(
            index=int(match.group(1)),
            start_ms=start,
            duration_ms=duration,
            bytes=stored.size,
            file=stored.name,
            keyframe=True,
            container=match.group(2),
            video={"h264": "H264", "vp8": "VP8"}.get(video, video),
            audio=audio,
        )
        storage.append_line(recording_id, MANIFEST, record.to_json())
        added += 1
    return added


def recover(storage: Storage, *, active: Collection[str] = ()) -> list[ReplayInfo]:
    """Finalise every recording a crash left unfinished (run at node start, before recording).

    ``active`` names recordings being written right now, which are left alone.
    """
    out: list[ReplayInfo] = []
    for recording_id in storage.list_recordings():
        if recording_id in active or storage.exists(recording_id, FINAL):
            continue
        dropped = storage.discard_temporaries(recording_id)
        repaired = _repair_manifest(storage, recording_id)
        try:
            info = finalise(storage, recording_id)
        except (FinaliseError, StorageError, av.error.FFmpegError) as exc:
            log.warning("recovery of %s failed: %s", recording_id, exc)
            continue
        log.info(
            "recovered %s: %.1f s from %d segments (%d in progress dropped, %d re-listed)",
            recording_id,
            info.duration_s,
            info.segments,
            dropped,
            repaired,
        )
        out.append(info)
    return out
