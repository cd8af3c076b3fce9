"""A livestream's program: of the tracks published in a room, which video and which audio are
on air, and the two outgoing tracks that carry them to the program's viewers.

Nothing here does I/O. :class:`ProgramState` decides what is on air; a :class:`ProgramSlot`
is one outgoing track (same SSRC for every viewer) whose outgoing streams it moves from the
source stream of one publication to another's on a switch, so that viewers keep one
continuous RTP stream (numbering continues, video resumes on a keyframe of the new source) and
nobody renegotiates. Packets never pass through this module: an attached outgoing stream is
fed by the source's own fan-out loop (:meth:`~sfu.forwarding.SourceStream.attach`).

The rules:

- A track that appears while its kind has nothing on air goes on air by itself (the owner's
  camera and microphone as they appear, or the first encoder). Audio prefers a microphone:
  one appearing while another kind of audio is on air *by itself* (an encoder's, say) takes
  over, so by default the presenter is heard across every video switch.
- A chosen track stays on air until another is chosen or it is unpublished; then its kind is
  silent (the outgoing track stays, with its SSRC) until a choice or a new track fills it.
- Every source of a kind shares the codec its viewers negotiated (:class:`CodecFormat`:
  codec, H.264 profile and packetization mode): another is refused (``codec_mismatch``),
  never transcoded. While no viewer has negotiated a kind, its codec follows what goes on air.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from sfu.codecs import CodecFormat
from sfu.forwarding import DownTrack, OutboundStream, SourceStream
from sfu.history import PacketHistory
from sfu.sender_report import SenderReportTranslator

KINDS = ("video", "audio")
MICROPHONE = "microphone"
PROGRAM_STREAM_ID = "program"  # the MediaStream id the program's viewers see


class Keep(enum.Enum):
    """Leave this kind as it is (a ``program-set`` that names only the other)."""

    KEEP = "keep"


KEEP = Keep.KEEP
Choice = str | None | Keep  # a track id, None for nothing on air, or KEEP


class ProgramError(Exception):
    """A choice that cannot be made; ``code`` is the contract's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ProgramTrack:
    """A published track as the program sees it."""

    id: str
    kind: str  # "video" or "audio"
    source: str  # camera, microphone, screen, encoder, ...
    format: CodecFormat


def same_format(a: CodecFormat, b: CodecFormat) -> bool:
    """Whether a decoder set up for ``a`` takes a stream of ``b`` untouched, as negotiated."""
    return (a.mime_type.casefold() == b.mime_type.casefold() and a.profile == b.profile
            and a.packetization_mode == b.packetization_mode)


@dataclass(slots=True)
class _Kind:
    track: ProgramTrack | None = None
    auto: bool = False  # on air by itself, not by a choice
    format: CodecFormat | None = None  # what this kind's viewers receive (or would)


class ProgramState:
    """What is on air for each kind; ``locked`` arguments say, per kind, whether viewers have
    negotiated its current format (then a source in another format is refused)."""

    def __init__(self) -> None:
        self._tracks: dict[str, ProgramTrack] = {}
        self._kinds = {kind: _Kind() for kind in KINDS}

    def on_air(self, kind: str) -> ProgramTrack | None:
        return self._kinds[kind].track

    def format(self, kind: str) -> CodecFormat | None:
        return self._kinds[kind].format

    def ids(self) -> dict[str, str | None]:
        """``{video, audio}``: the ids of the tracks on air (None: that kind is silent)."""
        return {kind: None if state.track is None else state.track.id
                for kind, state in self._kinds.items()}

    def published(self, track: ProgramTrack, *, locked: Mapping[str, bool]) -> bool:
        """A track appeared; True when it went on air."""
        self._tracks[track.id] = track
        state = self._kinds.get(track.kind)
        if state is None:
            return False
        current = state.track
        takes_over = current is None or (
            track.kind == "audio" and state.auto and current.source != MICROPHONE
            and track.source == MICROPHONE)
        if not takes_over or not self._fits(state, track, locked[track.kind]):
            return False
        self._put(state, track, auto=True)
        return True

    def unpublished(self, track_id: str) -> bool:
        """A track is gone; True when it was on air (its kind is silent now)."""
        track = self._tracks.pop(track_id, None)
        if track is None:
            return False
        state = self._kinds.get(track.kind)
        if state is None or state.track is None or state.track.id != track_id:
            return False
        state.track, state.auto = None, False
        return True

    def choose(self, *, video: Choice = KEEP, audio: Choice = KEEP,
               locked: Mapping[str, bool]) -> bool:
        """A moderator's choice, all or nothing: True when what is on air changed.

        Raises :class:`ProgramError` (``track_not_found``, ``invalid_field`` for a track of
        the other kind, ``codec_mismatch``) and then changes nothing.
        """
        picked: dict[str, ProgramTrack | None] = {}
        for kind, choice in (("video", video), ("audio", audio)):
            if choice is KEEP:
                continue
            if choice is None:
                picked[kind] = None
                continue
            track = self._tracks.get(choice)
            if track is None:
                raise ProgramError("track_not_found",
                                   f"no track {choice!r} is published in this room")
            if track.kind != kind:
                raise ProgramError("invalid_field",
                                   f"track {choice!r} is {track.kind}: {kind} takes a {kind} "
                                   "track")
            state = self._kinds[kind]
            if not self._fits(state, track, locked[kind]):
                raise ProgramError(
                    "codec_mismatch",
                    f"track {choice!r} is {track.format}, but the program's viewers receive "
                    f"{kind} as {state.format}: a source goes on air only in the codec the "
                    f"viewers negotiated (nothing is transcoded); publish it as {state.format}")
            picked[kind] = track
        changed = False
        for kind, chosen in picked.items():
            state = self._kinds[kind]
            changed |= state.track != chosen
            if chosen is None:
                state.track, state.auto = None, False
            else:
                self._put(state, chosen, auto=False)
        return changed

    @staticmethod
    def _fits(state: _Kind, track: ProgramTrack, locked: bool) -> bool:
        return not locked or state.format is None or same_format(state.format, track.format)

    @staticmethod
    def _put(state: _Kind, track: ProgramTrack, *, auto: bool) -> None:
        state.track, state.auto, state.format = track, auto, track.format


class OnAir(Protocol):
    """What a slot needs of the publication on air."""

    @property
    def stream(self) -> SourceStream: ...

    def request_keyframe(self) -> None: ...


class ProgramSlot:
    """One outgoing track of the program, fed by whichever publication is on air.

    Its down-tracks (one per viewer) share outgoing streams as a publication's do (one packet
    per group, see :class:`~sfu.forwarding.OutboundStream`); the slot owns those streams and
    attaches them to the on-air source's stream.
    """

    stream_id = PROGRAM_STREAM_ID

    def __init__(self, kind: str, outbound_ssrc: int, outbound_rtx_ssrc: int) -> None:
        self.kind = kind
        self.id = f"program-{kind}"
        # One SSRC for every viewer (unique within each viewer's connection), for good.
        self.outbound_ssrc = outbound_ssrc
        self.outbound_rtx_ssrc = outbound_rtx_ssrc
        self.format: CodecFormat | None = None  # offered to viewers; None: nothing to offer
        self.source: OnAir | None = None
        self._outbound: dict[tuple[int, int, int | None, bytes], OutboundStream] = {}
        self._downtracks: tuple[DownTrack, ...] = ()
        self.switches = 0

    @property
    def downtracks(self) -> tuple[DownTrack, ...]:
        return self._downtracks

    @property
    def outbound_streams(self) -> list[OutboundStream]:
        return list(self._outbound.values())

    def switch(self, source: OnAir | None) -> bool:
        """Put ``source`` on air (None: silence). The viewers' streams continue their
        numbering; video waits for the new source's keyframe, asked for at once."""
        old = self.source
        if source is old:
            return False
        self.source = source
        self.switches += 1
        for outbound in self._outbound.values():
            if old is not None:
                old.stream.detach(outbound)
            outbound.switch_source()
            if source is not None:
                source.stream.attach(outbound)
        if source is not None and self._outbound:
            source.request_keyframe()
        return True

    # -- what a subscriber's binding needs (sfu.sessions.Feed) -----------------------------------

    def add_downtrack(self, downtrack: DownTrack) -> None:
        key = downtrack.key
        outbound = self._outbound.get(key)
        if outbound is None:
            outbound = self._outbound[key] = downtrack.new_outbound()
            if self.source is not None:
                self.source.stream.attach(outbound)
        outbound.add(downtrack)
        self._downtracks = (*self._downtracks, downtrack)

    def remove_downtrack(self, downtrack: DownTrack) -> None:
        outbound = downtrack.outbound
        if outbound is not None and self._outbound.get(downtrack.key) is outbound:
            outbound.remove(downtrack)
            if outbound.empty:
                del self._outbound[downtrack.key]
                if self.source is not None:
                    self.source.stream.detach(outbound)
        self._downtracks = tuple(d for d in self._downtracks if d is not downtrack)

    def packet_history(self) -> PacketHistory | None:
        """Where NACKs are answered from: the on-air source's history (its sequence numbers
        are what the outgoing streams map to now)."""
        return None if self.source is None else self.source.stream.history

    def sender_report_timing(self) -> SenderReportTranslator | None:
        return None if self.source is None else self.source.stream.sender_reports

    def request_keyframe(self) -> None:
        if self.source is not None:
            self.source.request_keyframe()
