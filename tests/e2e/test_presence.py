"""Presence on the room page from the room's event log (issue #7), in a real Chromium.

The page keeps its participant list from the join acknowledgement and ``room-event`` deltas,
catches up after a lost connection with ``join {since}`` (no reload), fills a gap with ``sync``,
and in livestreams shows the audience as a figure, listing only who is on stage; hosts and
exhibitors page through the audience in the Viewers panel. The other people in the rooms are
python-socketio clients (``RoomClients``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from browser import NewPage
from playwright.async_api import Page, expect
from room_page import RoomClients, listed, open_room, page_seq, shown
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def settled(page: Page, identities: set[str], timeout: float = 15.0) -> None:
    """Wait until the page is joined and lists exactly ``identities``."""
    await page.wait_for_function(
        "(want) => { const f = window.fairwire; if (f.state !== 'joined') return false;"
        " const have = f.participants.map((p) => p.identity).sort();"
        " return JSON.stringify(have) === JSON.stringify(want); }",
        arg=sorted(identities), timeout=timeout * 1000)


async def same_seq(first: Page, second: Page, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        a, b = await page_seq(first), await page_seq(second)
        if a == b:
            return a
        if time.monotonic() > deadline:
            raise AssertionError(f"seq {a} != {b}")
        await asyncio.sleep(0.05)


async def catch_ups(page: Page) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = await page.evaluate("window.fairwire.catchUps")
    return entries


async def test_page_catches_up_after_a_lost_connection_without_reloading(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "expo-stage"
    await server.create_room(id=room, name="Expo main stage", kind="livestream",
                             category="Machinery", status="live")
    steady = await open_room(new_page, server, room, "steady-exhibitor", "exhibitor",
                             name="Zhejiang Pumps")
    roaming = await open_room(new_page, server, room, "roaming-exhibitor", "exhibitor",
                              name="Roaming Robotics")
    both = {"steady-exhibitor", "roaming-exhibitor"}
    for page in (steady, roaming):
        await settled(page, both)
    await same_seq(steady, roaming)
    # Set once at load: a reload would lose it (and start a new navigation).
    marker = await roaming.evaluate("() => (window.__loadMarker = Math.random())")
    origin = await roaming.evaluate("() => performance.timeOrigin")
    seq_before = await page_seq(roaming)

    async with RoomClients(server, room) as clients:
        hosts = [f"host-{i:02d}" for i in range(12)]
        tokens = {identity: await clients.token(identity, "host") for identity in hosts}
        assert await roaming.evaluate("(ms) => window.fairwire._dropConnectionFor(ms)", 5000)
        dropped_at = time.monotonic()
        # The server noticed: the roaming exhibitor left the list of the page that stayed.
        await settled(steady, {"steady-exhibitor"}, timeout=5)
        # 20 room events while the page is away: 12 hosts come, 8 of them go again.
        for identity in hosts:
            await clients.join(identity, "host", token=tokens[identity])
        for identity in hosts[:8]:
            await clients.leave(identity)
        remaining = set(hosts[8:])
        await settled(steady, {"steady-exhibitor", *remaining}, timeout=5)
        assert time.monotonic() - dropped_at < 4.5, "the events took longer than the outage"
        assert await roaming.evaluate("window.fairwire.state") != "joined"
        assert await page_seq(roaming) == seq_before
        # Nothing was applied while away: the page still shows its old list.
        assert await listed(roaming) == sorted(both)

        # socket.io reconnects by itself after 5 s; the page catches up.
        everyone = {*both, *remaining}
        await settled(roaming, everyone, timeout=15)
        await settled(steady, everyone, timeout=5)
        seq = await same_seq(steady, roaming)
        assert seq >= seq_before + 20
        for page in (steady, roaming):
            assert await listed(page) == sorted(everyone)
            assert await shown(page) == sorted(everyone)

        # By deltas on the same page: no reload, and the join asked only for what it missed.
        assert await roaming.evaluate("() => window.__loadMarker") == marker
        assert await roaming.evaluate("() => performance.timeOrigin") == origin
        last = (await catch_ups(roaming))[-1]
        assert last["via"] == "join" and last["since"] == seq_before, last
        assert last["snapshot"] is False and last["events"] >= 20, last
        # The page that stayed joined once and applied every event as it came.
        assert [c["via"] for c in await catch_ups(steady)] == ["join"]
        await expect(roaming.locator("#participant-count")).to_have_text(
            f"{len(everyone)} on stage")


async def test_page_fills_a_gap_in_the_sequence_with_sync(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "gap-meeting"
    await server.create_room(id=room, name="Supplier talks", kind="meeting", status="live")
    page = await open_room(new_page, server, room, "buyer-gap", "buyer", name="Anna Schmidt")
    other = await open_room(new_page, server, room, "seller-gap", "exhibitor", name="Li Wei")
    for p in (page, other):
        await settled(p, {"buyer-gap", "seller-gap"})
    # The page loses two room events on their way (as a lossy path would).
    await page.evaluate("""() => {
        const socket = window.fairwire.socket;
        const [handler] = socket.listeners("room-event");
        socket.off("room-event", handler);
        window.__lost = [];
        socket.on("room-event", (event) => {
            if (window.__lost.length < 2) window.__lost.push(event.seq); else handler(event);
        });
    }""")
    async with RoomClients(server, room) as clients:
        for identity, name in (("agent-a", "Carlos Pérez"), ("agent-b", "Priya Nair"),
                               ("agent-c", "王芳 · Wang Fang")):
            await clients.join(identity, "buyer", name=name)
        everyone = {"buyer-gap", "seller-gap", "agent-a", "agent-b", "agent-c"}
        await settled(other, everyone, timeout=5)
        await settled(page, everyone, timeout=5)
        assert await same_seq(page, other) >= 3
        assert len(await page.evaluate("window.__lost")) == 2
        last = (await catch_ups(page))[-1]
        assert last["via"] == "sync" and last["snapshot"] is False, last
        assert last["events"] >= 2, last
        await expect(page.locator("#participant-count")).to_have_text("5 here")
        await page.screenshot(path="/tmp/meeting-list.png", full_page=True)

        await clients.leave("agent-b")
        await settled(page, everyone - {"agent-b"}, timeout=5)
        await expect(page.locator("#participants li")).to_have_count(4)
        await page.get_by_role("button", name="中文").click()
        await expect(page.locator("#participant-count")).to_have_text("4 人在线")
        await page.screenshot(path="/tmp/meeting-list-zh.png", full_page=True)


async def test_livestream_counts_its_audience_and_exhibitors_page_through_it(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "cnc-tour"
    await server.create_room(id=room, name="CNC line tour · Ningbo Precision", kind="livestream",
                             category="Machinery", status="live")
    exhibitor = await open_room(new_page, server, room, "ningbo-precision", "exhibitor",
                                name="Ningbo Precision")
    visitor = await open_room(new_page, server, room, "walk-in-visitor", "visitor",
                              name="Walk-in visitor")
    await settled(exhibitor, {"ningbo-precision"})
    await settled(visitor, {"ningbo-precision"})
    audience = exhibitor.locator("#audience")
    await expect(audience).to_have_text("1 watching · peak 1")

    async with RoomClients(server, room) as clients:
        # Visitors, and buyers who only watch: both are the audience.
        buyers = [f"buyer-{i:02d}" if i % 3 == 0 else f"visitor-{i:02d}" for i in range(30)]
        await asyncio.gather(*(clients.join(identity, identity.split("-")[0])
                               for identity in buyers))
        joined_at = time.monotonic()
        await exhibitor.wait_for_function(
            "() => window.fairwire.audience && window.fairwire.audience.current === 31",
            timeout=3_000)
        elapsed = time.monotonic() - joined_at
        assert elapsed < 2.0, f"audience figure after {elapsed:.1f} s"
        await expect(audience).to_have_text("31 watching · peak 31")
        assert await exhibitor.evaluate("window.fairwire.audience") == {"current": 31, "peak": 31}
        # The audience is counted, not listed: the list is who is on stage.
        for page in (exhibitor, visitor):
            assert await listed(page) == ["ningbo-precision"]
            assert await shown(page) == ["ningbo-precision"]
        await expect(exhibitor.locator("#participant-count")).to_have_text("1 on stage")
        await expect(visitor.locator("#audience")).to_have_text("31 watching · peak 31")
        await exhibitor.screenshot(path="/tmp/livestream-audience-en.png", full_page=True)

        # Visitors neither get the button nor the list.
        await expect(visitor.locator("#viewers-button")).to_be_hidden()
        for identity in ("buyer-00", "visitor-01"):
            refused = await clients.call(identity, "audience-list", {})
            assert refused["error"]["code"] == "forbidden", refused

        # The exhibitor pages through who is watching, 12 at a time here (50 by default).
        await exhibitor.evaluate("() => { window.fairwire.viewerPageSize = 12; }")
        await exhibitor.get_by_role("button", name="Viewers").click()
        panel = exhibitor.locator("#viewers-panel")
        await expect(panel).to_be_visible()
        items = panel.locator("#viewers-list li[data-identity]")
        summary = panel.locator("#viewers-summary")
        more = panel.get_by_role("button", name="Load more")
        await expect(more).to_be_visible()
        pages = [await items.count()]
        await expect(summary).to_have_text(f"Showing {pages[0]} of 31")
        await exhibitor.screenshot(path="/tmp/viewers-panel-en.png")
        while await more.is_visible():
            shown_before = await items.count()
            await more.click()
            await exhibitor.wait_for_function(
                "(n) => document.querySelectorAll('#viewers-list li[data-identity]').length > n"
                " && !document.querySelector('#viewers-more').disabled", arg=shown_before)
            pages.append(await items.count() - shown_before)
            assert len(pages) <= 5, pages
        # Pages of at most 12, "Load more" until the server says there is no next page.
        assert all(0 < n <= 12 for n in pages) and len(pages) >= 3, pages
        await expect(items).to_have_count(31)
        await expect(summary).to_have_text("Showing 31 of 31")
        identities = await items.evaluate_all("(els) => els.map((li) => li.dataset.identity)")
        assert sorted(identities) == sorted([*buyers, "walk-in-visitor"])
        await expect(panel.locator("li[data-identity='visitor-07'] .role-badge")).to_have_text(
            "Visitor")
        await expect(panel.locator("li[data-identity='buyer-06'] .role-badge")).to_have_text(
            "Buyer")
        await panel.get_by_role("button", name="Close").click()
        await expect(panel).to_be_hidden()

        # Ten leave: the figure drops, the peak stays.
        await asyncio.gather(*(clients.leave(identity) for identity in buyers[:10]))
        await expect(audience).to_have_text("21 watching · peak 31", timeout=3_000)

        # The same in Chinese, numbers formatted for the language.
        await exhibitor.get_by_role("button", name="中文").click()
        await expect(audience).to_have_text("21 人正在观看 · 最高 31")
        await expect(exhibitor.locator("#participant-count")).to_have_text("台上 1 人")
        await exhibitor.screenshot(path="/tmp/livestream-audience-zh.png", full_page=True)
        await exhibitor.evaluate("() => { window.fairwire.viewerPageSize = 50; }")
        await exhibitor.get_by_role("button", name="观众名单").click()
        await expect(items).to_have_count(21)
        await expect(panel.locator("#viewers-summary")).to_have_text("已显示 21 人，共 21 人")
        await expect(panel.get_by_role("button", name="加载更多")).to_be_hidden()
        await exhibitor.screenshot(path="/tmp/viewers-panel-zh.png")
        await exhibitor.keyboard.press("Escape")
        await expect(panel).to_be_hidden()
        await visitor.screenshot(path="/tmp/livestream-visitor-en.png", full_page=True)


async def test_large_audience_figure_is_formatted(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id="big-hall", name="Opening keynote", kind="livestream",
                             status="live")
    page = await open_room(new_page, server, "big-hall", "keynote-host", "host",
                           name="Mei Chen")
    # Past the server's first audience figure (at most one a second)...
    await page.wait_for_function("() => window.fairwire.audience !== null")
    await asyncio.sleep(1.5)
    # ...what it sends for a big hall, handed to the page's own handler.
    await page.evaluate("""() => {
        const socket = window.fairwire.socket;
        for (const h of socket.listeners("audience")) h({current: 1234, peak: 1500});
    }""")
    await expect(page.locator("#audience")).to_have_text("1,234 watching · peak 1,500")
    await expect(page.get_by_role("button", name="Viewers")).to_be_visible()
    await page.get_by_role("button", name="中文").click()
    await expect(page.locator("#audience")).to_have_text("1,234 人正在观看 · 最高 1,500")
    await page.screenshot(path="/tmp/livestream-audience-large-zh.png", full_page=True)


async def test_a_buyer_who_goes_live_is_listed_until_back_in_the_audience(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "qa-stream"
    await server.create_room(id=room, name="Live Q&A", kind="livestream", status="live")
    host = await open_room(new_page, server, room, "qa-host", "host", name="Suzhou Textiles")
    buyer = await open_room(new_page, server, room, "qa-buyer", "buyer", name="Anna Schmidt")
    await settled(host, {"qa-host"})
    await host.wait_for_function("() => window.fairwire.audience?.current === 1")

    # In a livestream a buyer goes live once a host invited them on stage and they accepted.
    await expect(buyer.locator("#go-live")).to_be_hidden()
    reply = await host.evaluate(
        "window.fairwire.socket.emitWithAck('stage-invite', {identity: 'qa-buyer'})")
    assert reply == {}, reply
    await buyer.locator("#stage-invitation").get_by_role("button", name="Accept").click()

    # Publishing puts the buyer on stage: listed (with LIVE), no longer in the audience.
    await buyer.click("#go-live")
    await buyer.wait_for_function("() => window.fairwire.publishing === true")
    await settled(host, {"qa-host", "qa-buyer"}, timeout=10)
    await settled(buyer, {"qa-host", "qa-buyer"}, timeout=10)
    await expect(host.locator("#participants li[data-identity='qa-buyer'] .badge-live")
                 ).to_be_visible(timeout=10_000)
    await host.wait_for_function("() => window.fairwire.audience?.current === 0",
                                 timeout=3_000)
    await host.wait_for_function(
        "() => { const v = document.querySelector(\"#tiles [data-identity='qa-buyer'] video\");"
        " return v && v.videoWidth > 0; }", timeout=15_000)
    await expect(host.locator("#participant-count")).to_have_text("2 on stage")

    # Stopping sends the buyer back to the audience: off the list, and the tile goes.
    await buyer.click("#stop")
    await settled(host, {"qa-host"}, timeout=10)
    await host.wait_for_function(
        "() => !document.querySelector(\"#tiles [data-identity='qa-buyer']\")", timeout=10_000)
    await host.wait_for_function("() => window.fairwire.audience?.current === 1",
                                 timeout=3_000)
    assert await host.evaluate("window.fairwire.seq") == await buyer.evaluate(
        "window.fairwire.seq")


async def test_the_room_ending_ends_the_page(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    await server.create_room(id="closing-talk", name="Closing talk", kind="livestream",
                             status="live")
    page = await open_room(new_page, server, "closing-talk", "closing-host", "host",
                           name="Mei Chen")
    seq = await page_seq(page)
    await server.set_status("closing-talk", "ended")
    await page.wait_for_function("() => window.fairwire.state === 'error'", timeout=5_000)
    assert (await page.evaluate("window.fairwire.error"))["code"] == "room_ended"
    assert await page.evaluate("window.fairwire.room.status") == "ended"
    assert await page_seq(page) == seq + 1  # the room-status event, applied
    await expect(page.locator("#error-message")).to_contain_text("This session has ended")
