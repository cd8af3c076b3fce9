"""Field encoders reach browser viewers: what an exhibitor's encoder sends, Chromium plays."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import av
import pytest
from browser import NewPage
from ffmpeg_whip import HEIGHT, WIDTH, X264_HIGH, FfmpegEncoder
from room_page import inbound, open_room
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_chromium_plays_h264_high_from_ffmpeg(
    fairwire_server: FairwireServer, new_page: NewPage, tmp_path: Path
) -> None:
    av.logging.set_level(av.logging.ERROR)
    server = fairwire_server
    await server.create_room(id="foundry", name="Foundry line", kind="livestream",
                             status="live")
    token = await server.token("foundry", "foundry-encoder", "exhibitor", name="Foundry")
    encoder = FfmpegEncoder(f"{server.url}/whip/foundry", token, tmp_path, X264_HIGH,
                            seconds=10)
    encoder.start()
    try:
        viewer = await open_room(new_page, server, "foundry", "buyer-7", "visitor")
        await viewer.wait_for_function(
            "() => { const v = document.querySelector(\"[data-identity='foundry-encoder'] video\");"
            " return v && v.videoWidth > 0 && v.currentTime > 0; }", timeout=15_000)
        before = await inbound(viewer)
        await asyncio.sleep(1.5)
        after = await inbound(viewer)
        assert after["frames"] > before["frames"] + 20, (before, after)
        assert after["width"] == WIDTH
        codec = await viewer.evaluate("""async () => {
            const stats = await window.fairwire.subscriberPc.getStats();
            let codecId = null;
            stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video")
                                       codecId = s.codecId; });
            return stats.get(codecId).sdpFmtpLine;
        }""")
        # The High stream, forwarded untouched: this Chromium lists High 4:4:4 (whose
        # decoders decode High) but not High itself, and the node offered both.
        assert re.search(r"profile-level-id=(64|f4)", codec), codec
        assert (await viewer.evaluate(
            "() => document.querySelector(\"[data-identity='foundry-encoder'] video\")"
            ".videoHeight")) == HEIGHT
    finally:
        await asyncio.to_thread(encoder.join)
