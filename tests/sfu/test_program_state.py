"""The program without a network: what goes on air (ProgramState), and how a slot's outgoing
stream moves between sources with one continuous numbering (ProgramSlot), time passed in."""

from __future__ import annotations

import pytest
from aiortc.rtp import RtpPacket
from test_forwarding import VP8_DELTA, VP8_KEY, VP8_MIDDLE, Wire, video_downtrack

from sfu.codecs import CodecFormat, H264Profile
from sfu.forwarding import DownTrack, SourceStream
from sfu.program import KEEP, ProgramError, ProgramSlot, ProgramState, ProgramTrack, same_format

VP8 = CodecFormat("video/VP8")
H264_CB = CodecFormat("video/H264", H264Profile.CONSTRAINED_BASELINE, 1)
H264_HIGH = CodecFormat("video/H264", H264Profile.HIGH, 1)
OPUS = CodecFormat("audio/opus")
FREE = {"video": False, "audio": False}
LOCKED = {"video": True, "audio": True}


def track(track_id: str, kind: str = "video", source: str = "camera",
          codec: CodecFormat = VP8) -> ProgramTrack:
    return ProgramTrack(track_id, kind, source, codec if kind == "video" else OPUS)


# -- what is on air ---------------------------------------------------------------------------


def test_the_first_sources_go_on_air_by_themselves_and_later_ones_wait() -> None:
    state = ProgramState()
    assert state.ids() == {"video": None, "audio": None}
    assert state.published(track("cam"), locked=FREE)
    assert state.published(track("mic", "audio", "microphone"), locked=FREE)
    assert not state.published(track("enc"), locked=FREE)
    assert not state.published(track("enc-audio", "audio", "encoder"), locked=FREE)
    assert state.ids() == {"video": "cam", "audio": "mic"}
    assert state.format("video") == VP8


def test_a_video_switch_keeps_the_presenters_microphone_on_air() -> None:
    state = ProgramState()
    for published in (track("cam"), track("mic", "audio", "microphone"), track("enc"),
                      track("enc-audio", "audio", "encoder")):
        state.published(published, locked=FREE)
    assert state.choose(video="enc", locked=LOCKED)
    assert state.ids() == {"video": "enc", "audio": "mic"}
    assert not state.choose(video="enc", locked=LOCKED)  # already on air: no change
    assert state.choose(video="cam", audio="enc-audio", locked=LOCKED)
    assert state.ids() == {"video": "cam", "audio": "enc-audio"}
    assert state.choose(audio=None, locked=LOCKED)  # no audio on air
    assert state.ids() == {"video": "cam", "audio": None}


def test_a_microphone_takes_over_audio_that_went_on_air_by_itself_not_a_chosen_one() -> None:
    state = ProgramState()
    state.published(track("enc"), locked=FREE)  # the line's encoder came first
    state.published(track("enc-audio", "audio", "encoder"), locked=FREE)
    assert state.published(track("mic", "audio", "microphone"), locked=FREE)
    assert state.ids() == {"video": "enc", "audio": "mic"}
    assert not state.published(track("mic-2", "audio", "microphone"), locked=FREE)
    state.choose(audio="enc-audio", locked=LOCKED)
    assert not state.published(track("mic-3", "audio", "microphone"), locked=FREE)
    assert state.ids()["audio"] == "enc-audio"


def test_an_unpublished_source_leaves_silence_until_a_choice_or_a_new_source() -> None:
    state = ProgramState()
    state.published(track("cam"), locked=FREE)
    state.published(track("enc"), locked=FREE)
    assert not state.unpublished("enc")  # was not on air
    assert state.unpublished("cam")
    assert state.ids()["video"] is None
    assert not state.unpublished("cam")
    assert state.format("video") == VP8  # the viewers' codec stays
    assert state.published(track("cam-again"), locked=LOCKED)  # the owner's camera is back
    assert state.ids()["video"] == "cam-again"


def test_a_source_in_another_codec_is_refused_while_viewers_negotiated_the_program() -> None:
    state = ProgramState()
    state.published(track("cam", codec=H264_CB), locked=FREE)
    state.published(track("mic", "audio", "microphone"), locked=FREE)
    state.published(track("vp8"), locked=LOCKED)
    state.published(track("high", codec=H264_HIGH), locked=LOCKED)
    state.published(track("baseline-encoder", codec=H264_CB), locked=LOCKED)
    for other in ("vp8", "high"):
        with pytest.raises(ProgramError) as refused:
            state.choose(video=other, audio=None, locked=LOCKED)
        assert refused.value.code == "codec_mismatch"
        assert "constrained-baseline" in refused.value.message
        assert state.ids() == {"video": "cam", "audio": "mic"}  # all or nothing
    assert state.choose(video="baseline-encoder", locked=LOCKED)
    # Without viewers, the program's codec follows what goes on air.
    assert state.choose(video="vp8", locked=FREE)
    assert state.format("video") == VP8


def test_a_new_source_in_another_codec_does_not_fill_a_negotiated_silent_program() -> None:
    state = ProgramState()
    state.published(track("cam"), locked=FREE)
    state.unpublished("cam")
    assert not state.published(track("h264", codec=H264_CB), locked=LOCKED)
    assert state.ids()["video"] is None
    assert state.published(track("h264-2", codec=H264_CB), locked=FREE)  # nobody watches


def test_unknown_tracks_and_tracks_of_the_other_kind_are_refused() -> None:
    state = ProgramState()
    state.published(track("cam"), locked=FREE)
    state.published(track("mic", "audio", "microphone"), locked=FREE)
    with pytest.raises(ProgramError) as unknown:
        state.choose(video="nope", locked=FREE)
    assert unknown.value.code == "track_not_found"
    with pytest.raises(ProgramError) as wrong:
        state.choose(video="mic", locked=FREE)
    assert wrong.value.code == "invalid_field"
    assert not state.choose(video=KEEP, audio=KEEP, locked=FREE)


def test_formats_compare_codec_profile_and_packetization_mode() -> None:
    assert same_format(CodecFormat("video/vp8"), VP8)
    assert not same_format(VP8, H264_CB)
    assert not same_format(H264_CB, H264_HIGH)
    assert not same_format(H264_CB, CodecFormat("video/H264",
                                                H264Profile.CONSTRAINED_BASELINE, 0))


# -- how a slot forwards ------------------------------------------------------------------------


class Source:
    """A publication as a slot sees it: a source stream and a keyframe request counter."""

    def __init__(self) -> None:
        self.stream = SourceStream(kind="video", mime_type="video/VP8", clock_rate=90000)
        self.keyframe_requests = 0

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1


def program_viewer(wire: Wire, slot: ProgramSlot, **options: object) -> DownTrack:
    return video_downtrack(wire, ssrc=slot.outbound_ssrc, **options)


def sent(wire: Wire) -> list[tuple[int, int, int, bytes]]:
    return [(p.ssrc, p.sequence_number, p.timestamp, p.payload) for p in wire.packets]


def frame(stream: SourceStream, ssrc: int, seq: int, ts: int, payload: bytes,
          now_ms: int) -> None:
    stream.on_packet(ssrc, seq, ts, True, payload, now_ms)


def test_a_switch_continues_the_numbering_and_waits_for_the_new_sources_keyframe() -> None:
    camera, encoder = Source(), Source()
    slot = ProgramSlot("video", 0x1234, 0x5678)
    wire = Wire()
    slot.add_downtrack(program_viewer(wire, slot, initial_sequence_number=100,
                                      initial_timestamp=1000))
    assert slot.switch(camera)
    assert camera.keyframe_requests == 1  # asked for at once
    frame(camera.stream, 0xCA, 5000, 90_000, VP8_KEY, now_ms=0)
    frame(camera.stream, 0xCA, 5001, 93_000, VP8_DELTA, now_ms=33)
    frame(encoder.stream, 0xE0, 70, 7_000_000, VP8_KEY, now_ms=40)  # not on air yet
    assert slot.switch(encoder)
    assert encoder.keyframe_requests == 1
    frame(camera.stream, 0xCA, 5002, 96_000, VP8_DELTA, now_ms=66)  # off air now
    frame(encoder.stream, 0xE0, 71, 7_003_000, VP8_DELTA, now_ms=73)  # no delta first
    frame(encoder.stream, 0xE0, 72, 7_006_000, VP8_KEY, now_ms=533)
    frame(encoder.stream, 0xE0, 73, 7_009_000, VP8_DELTA, now_ms=566)
    packets = sent(wire)
    assert [p[0] for p in packets] == [0x1234] * 4  # one SSRC throughout
    assert [p[1] for p in packets] == [100, 101, 102, 103]  # no gap, no reuse
    assert [p[3] for p in packets] == [VP8_KEY, VP8_DELTA, VP8_KEY, VP8_DELTA]
    assert packets[1][2] == 1000 + 3000
    # The new source starts 500 ms of wall time after the last packet sent: 45000 ticks.
    assert packets[2][2] == 4000 + 45_000
    assert packets[3][2] == packets[2][2] + 3000
    assert camera.stream.outbound_streams == []  # the camera feeds nobody now


def test_switching_back_and_forth_keeps_one_stream_and_nacks_use_the_on_air_history() -> None:
    camera, encoder = Source(), Source()
    slot = ProgramSlot("video", 0x1234, 0x5678)
    wire = Wire()
    downtrack = program_viewer(wire, slot, initial_sequence_number=0)
    slot.add_downtrack(downtrack)
    slot.switch(camera)
    seq = {"camera": 10, "encoder": 900}
    now = 0
    for round_ in range(3):
        source, name, ssrc = ((camera, "camera", 1) if round_ % 2 == 0
                              else (encoder, "encoder", 2))
        slot.switch(source)
        for index in range(3):
            frame(source.stream, ssrc, seq[name], seq[name] * 3000,
                  VP8_KEY if index == 0 else VP8_DELTA, now)
            seq[name] += 1
            now += 33
    assert [p.sequence_number for p in wire.packets] == list(range(9))
    history = slot.packet_history()
    assert history is camera.stream.history
    wire.packets.clear()
    assert downtrack.resend([7, 2], history, now_ms=now) == 1  # 2 was the camera's first run
    assert wire.packets[0].sequence_number == 7
    assert wire.packets[0].payload == VP8_DELTA


def test_silence_keeps_the_stream_and_a_later_source_continues_it() -> None:
    camera, encoder = Source(), Source()
    slot = ProgramSlot("video", 0x1234, 0x5678)
    wire = Wire()
    slot.add_downtrack(program_viewer(wire, slot, initial_sequence_number=40))
    slot.switch(camera)
    frame(camera.stream, 1, 1, 0, VP8_KEY, now_ms=0)
    assert slot.switch(None)
    assert not slot.switch(None)
    frame(camera.stream, 1, 2, 3000, VP8_DELTA, now_ms=33)
    assert slot.packet_history() is None and slot.sender_report_timing() is None
    slot.request_keyframe()  # nobody on air: nothing to ask
    slot.switch(encoder)
    frame(encoder.stream, 9, 500, 0, VP8_MIDDLE, now_ms=1000)
    frame(encoder.stream, 9, 501, 3000, VP8_KEY, now_ms=1033)
    assert [p.sequence_number for p in wire.packets] == [40, 41]
    assert {p.ssrc for p in wire.packets} == {0x1234}


def test_a_viewer_joining_mid_program_starts_on_a_keyframe_of_the_on_air_source() -> None:
    camera = Source()
    slot = ProgramSlot("video", 0x1234, 0x5678)
    slot.switch(camera)
    assert camera.keyframe_requests == 0  # nobody watches: no PLI
    early, late = Wire(), Wire()
    slot.add_downtrack(program_viewer(early, slot))
    frame(camera.stream, 1, 1, 0, VP8_KEY, now_ms=0)
    slot.add_downtrack(program_viewer(late, slot))  # shares the outgoing stream
    assert len(slot.outbound_streams) == 1 and len(slot.downtracks) == 2
    frame(camera.stream, 1, 2, 3000, VP8_DELTA, now_ms=33)
    frame(camera.stream, 1, 3, 6000, VP8_KEY, now_ms=66)
    assert len(early.packets) == 3 and len(late.packets) == 1
    assert late.packets[0].sequence_number == early.packets[2].sequence_number


def test_the_on_air_publishers_restart_is_followed_and_the_last_viewer_detaches() -> None:
    camera = Source()
    slot = ProgramSlot("video", 0x1234, 0x5678)
    wire = Wire()
    downtrack = program_viewer(wire, slot, initial_sequence_number=7)
    slot.add_downtrack(downtrack)
    slot.switch(camera)
    frame(camera.stream, 1, 1, 0, VP8_KEY, now_ms=0)
    # An ICE restart: the same publication, a new SSRC and numbering; the slot's viewers
    # wait for its keyframe like the publication's own viewers do.
    frame(camera.stream, 2, 3000, 50, VP8_DELTA, now_ms=200)
    assert camera.stream.needs_keyframe()
    frame(camera.stream, 2, 3001, 3050, VP8_KEY, now_ms=233)
    assert [p.sequence_number for p in wire.packets] == [7, 8]
    slot.remove_downtrack(downtrack)
    assert slot.outbound_streams == [] and camera.stream.outbound_streams == []
    frame(camera.stream, 2, 3002, 6050, VP8_DELTA, now_ms=266)
    assert len(wire.packets) == 2


def test_a_slot_does_not_disturb_the_sources_own_subscribers() -> None:
    camera = Source()
    own, program = Wire(), Wire()
    camera.stream.add(video_downtrack(own, ssrc=0xAAAA, initial_sequence_number=0))
    slot = ProgramSlot("video", 0x1234, 0x5678)
    slot.add_downtrack(program_viewer(program, slot, initial_sequence_number=500))
    frame(camera.stream, 1, 1, 0, VP8_KEY, now_ms=0)
    slot.switch(camera)
    frame(camera.stream, 1, 2, 3000, VP8_DELTA, now_ms=33)  # program waits: a delta
    frame(camera.stream, 1, 3, 6000, VP8_KEY, now_ms=66)
    slot.switch(None)
    frame(camera.stream, 1, 4, 9000, VP8_DELTA, now_ms=99)
    assert [p.sequence_number for p in own.packets] == [0, 1, 2, 3]
    assert [p.sequence_number for p in program.packets] == [500]
    assert isinstance(program.packets[0], RtpPacket)
    assert len(camera.stream.outbound_streams) == 1
