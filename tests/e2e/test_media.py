"""Media end to end in real Chromium: one page goes live, others watch through the SFU."""

from __future__ import annotations

import asyncio

import pytest
from browser import NewPage
from room_page import first_media_ms, inbound, open_room
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

async def test_live_booth_reaches_every_viewer_including_late_ones(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id="booth-live", name="Booth", kind="livestream", status="live")

    exhibitor = await open_room(new_page, server, "booth-live", "exhibitor-1", "exhibitor")
    await exhibitor.click("#go-live")
    await exhibitor.wait_for_function("() => window.fairwire.publishing === true")
    await exhibitor.wait_for_function(
        "() => window.fairwire.publisherPc.connectionState === 'connected'")

    viewers = []
    for i in (1, 2):
        # Measured as each page opens: the page notices its frames only while it is asked.
        viewer = await open_room(new_page, server, "booth-live", f"viewer-{i}", "visitor")
        elapsed = await first_media_ms(viewer)
        assert elapsed < 2000, f"first frame after {elapsed:.0f} ms"
        viewers.append(viewer)
    before = [await inbound(viewer) for viewer in viewers]
    await asyncio.sleep(1.5)
    after = [await inbound(viewer) for viewer in viewers]
    for old, new in zip(before, after, strict=True):
        assert new["frames"] > old["frames"] + 5, (old, new)
        assert new["audio"] > old["audio"] + 20, (old, new)
        assert new["width"] > 0
    # The exhibitor's tile appears on the viewers' pages with a playing video.
    await viewers[0].wait_for_function(
        "() => { const v = document.querySelector(\"[data-identity='exhibitor-1'] video\");"
        " return v && v.videoWidth > 0 && v.currentTime > 0; }")

    # Someone arriving ten seconds into the stream gets a keyframe at once, not at the next
    # periodic one: their video starts within two seconds too.
    await asyncio.sleep(10)
    late = await open_room(new_page, server, "booth-live", "viewer-late", "visitor")
    elapsed = await first_media_ms(late)
    assert elapsed < 2000, f"late viewer: first frame after {elapsed:.0f} ms"

    # Going off air removes the tile from every viewer.
    await exhibitor.click("#stop")
    for page in (*viewers, late):
        await page.wait_for_function(
            "() => !document.querySelector(\"#tiles [data-identity='exhibitor-1']\")",
            timeout=10_000)


async def test_meeting_participants_see_each_other(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id="deal-room", name="Negotiation", kind="meeting", status="live")
    buyer = await open_room(new_page, server, "deal-room", "buyer-1", "buyer")
    seller = await open_room(new_page, server, "deal-room", "seller-1", "exhibitor")
    for page in (buyer, seller):
        await page.click("#go-live")
        await page.wait_for_function("() => window.fairwire.publishing === true")
    for page, other in ((buyer, "seller-1"), (seller, "buyer-1")):
        await page.wait_for_function(
            "(other) => { const v = document.querySelector(`[data-identity='${other}'] video`);"
            " return v && v.videoWidth > 0 && v.currentTime > 0; }", arg=other, timeout=15_000)
    # Nobody receives their own media back.
    for page, own in ((buyer, "buyer-1"), (seller, "seller-1")):
        assert await page.locator(f"#tiles [data-identity='{own}']").count() == 0
