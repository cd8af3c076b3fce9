from sfu.sender_report import SenderReportTranslator
from sfu.sequencer import StreamRewriter

NTP_SECOND = 1 << 32


def test_none_until_report_and_first_packet() -> None:
    sr = SenderReportTranslator(90_000)
    r = StreamRewriter(90_000, 0, 1_000)
    assert not sr.has_report
    assert sr.translate(r, 0) is None
    sr.on_publisher_report(5 * NTP_SECOND, 50_000, 0)
    assert sr.has_report
    assert sr.translate(r, 0) is None  # the rewriter has no offset yet
    r.rewrite(1, 50_000, 0)
    assert sr.translate(r, 0) == (5 * NTP_SECOND, 1_000)


def test_report_uses_subscriber_offset_and_keeps_ntp() -> None:
    sr = SenderReportTranslator(90_000)
    a = StreamRewriter(90_000, 0, 1_000_000)
    b = StreamRewriter(90_000, 0, 7)
    a.rewrite(1, 200_000, 0)
    b.rewrite(1, 200_000, 0)
    ntp = (3_900_000_000 << 32) | (NTP_SECOND // 2)
    sr.on_publisher_report(ntp, 290_000, 10)
    assert sr.translate(a, 10) == (ntp, 1_090_000)
    assert sr.translate(b, 10) == (ntp, 90_007)


def test_report_extrapolated_to_send_time() -> None:
    sr = SenderReportTranslator(48_000)
    r = StreamRewriter(48_000, 0, 0)
    r.rewrite(1, 0, 0)
    sr.on_publisher_report(10 * NTP_SECOND, 96_000, 1_000)
    # Sent 250 ms after the publisher's SR arrived: both halves advance by 250 ms.
    assert sr.translate(r, 1_250) == (10 * NTP_SECOND + NTP_SECOND // 4, 96_000 + 12_000)


def test_lip_sync_survives_forwarding_and_source_offsets() -> None:
    # Audio and video of one publisher describe the same instant with different RTP clocks.
    # After forwarding with arbitrary per-subscriber offsets, mapping each stream's RTP time
    # through its own SR must still give the same wallclock for the same media instant.
    audio_sr, video_sr = SenderReportTranslator(48_000), SenderReportTranslator(90_000)
    audio, video = StreamRewriter(48_000, 11, 123_456), StreamRewriter(90_000, 22, 4_000_000_000)
    audio.rewrite(1, 48_000 * 7, 0)
    video.rewrite(1, 90_000 * 3, 0)
    ntp = 1_000 * NTP_SECOND
    audio_sr.on_publisher_report(ntp, 48_000 * 8, 100)  # media time 1 s after first audio pkt
    video_sr.on_publisher_report(ntp, 90_000 * 4, 120)  # same instant, arrived later
    a = audio_sr.translate(audio, 500)
    v = video_sr.translate(video, 500)
    assert a is not None and v is not None
    # The first forwarded packets (out ts 123_456 and 4_000_000_000) were both 1 s of media
    # before the SR instant; their wallclock times derived from each SR must agree.
    a_ntp, a_ts = a
    v_ntp, v_ts = v
    a_wall = a_ntp - (((a_ts - 123_456) % (1 << 32)) * NTP_SECOND) // 48_000
    v_wall = v_ntp - (((v_ts - 4_000_000_000) % (1 << 32)) * NTP_SECOND) // 90_000
    assert abs(a_wall - v_wall) < NTP_SECOND // 1000  # within a millisecond
    assert a_wall == ntp - NTP_SECOND


def test_timestamp_wraps_in_translation() -> None:
    sr = SenderReportTranslator(90_000)
    r = StreamRewriter(90_000, 0, (1 << 32) - 100)
    r.rewrite(1, 0, 0)
    sr.on_publisher_report(NTP_SECOND, 1_000, 0)
    assert sr.translate(r, 0) == (NTP_SECOND, 900)
