"""The livestream pages (issue #9) in a real Chromium against the real server: the studio (the
owner exhibitor) and two viewers.

The exhibitor goes live from the studio; both viewers decode the stream. One viewer asks, the
other upvotes, the exhibitor marks the question answered and pins it over the video: every
other page shows each change within 1 s of the action's acknowledgement (measured in the
pages: the acting page notes when its ack arrived, the others when the change became visible).
The studio's figures count 2 viewers, then 1 when one leaves; chat reaches the other pages and
its moderation works; over-long questions and messages get a clear error; a viewer sees no
moderation controls. Screenshots of each state, studio and viewer, English and Chinese, go to
``$FAIRWIRE_LIVE_SCREENSHOTS`` (default ``/tmp/c9/shots``).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import av
import pytest
from browser import NewPage
from ffmpeg_whip import X264_BASELINE, X264_HIGH, FfmpegEncoder
from playwright.async_api import Page, expect
from room_page import RoomClients, first_media_ms, inbound, open_room
from server_process import FairwireServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOTS = Path(os.environ.get("FAIRWIRE_LIVE_SCREENSHOTS", "/tmp/c9/shots"))
WITHIN_MS = 1000

# Resolves with Date.now() once `selector` matches a visible element whose text contains
# `text` (any text when null).
VISIBLE_AT_JS = """async ({selector, text}) => {
  for (;;) {
    const found = [...document.querySelectorAll(selector)].some((el) =>
      el.checkVisibility() && (text === null || el.textContent.includes(text)));
    if (found) return Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}"""

# Resolves with the Date.now() at which the page got the acknowledgement of its `event`
# (the n-th one, counting from `from`).
ACK_AT_JS = """async ({event, from}) => {
  for (;;) {
    const done = window.fairwireLive.actions.slice(from).find((a) => a.event === event);
    if (done) return done;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}"""


async def shot(page: Page, name: str) -> None:
    # From the top: a page scrolled by a click would show its sticky bar mid-picture.
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def actions_so_far(page: Page) -> int:
    count: int = await page.evaluate("window.fairwireLive.actions.length")
    return count


async def reaches(actor: Page, event: str, act: Any, others: list[Page], selector: str,
                  text: str | None = None) -> list[float]:
    """Do ``act`` on ``actor``; every page of ``others`` shows ``selector`` (with ``text``):
    returns how long after ``event``'s acknowledgement, in ms, each did."""
    watchers = [asyncio.ensure_future(asyncio.wait_for(
        page.evaluate(VISIBLE_AT_JS, {"selector": selector, "text": text}), timeout=15))
        for page in others]
    start = await actions_so_far(actor)
    await act()
    ack = await asyncio.wait_for(actor.evaluate(ACK_AT_JS, {"event": event, "from": start}),
                                 timeout=15)
    assert ack["ok"], ack
    seen = await asyncio.gather(*watchers)
    delays = [at - ack["at"] for at in seen]
    print(f"{event}: shown on the other pages {delays} ms after its ack")
    assert all(d < WITHIN_MS for d in delays), (event, delays)
    return delays


async def go_live(page: Page) -> None:
    await page.get_by_role("button", name="Go live").click()
    await page.wait_for_function("() => window.fairwire.publishing === true")
    await page.wait_for_function(
        "() => window.fairwire.publisherPc.connectionState === 'connected'")


async def decodes(page: Page) -> None:
    """The page's subscriber decodes video, and keeps decoding."""
    await first_media_ms(page)
    before = (await inbound(page))["frames"]
    deadline = time.monotonic() + 10
    after = before
    while after < before + 10 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        after = (await inbound(page))["frames"]
    assert before > 0 and after >= before + 10, (before, after)


async def figure(page: Page, name: str) -> Any:
    return await page.evaluate("(name) => window.fairwireLive.stats?.[name]", name)


async def question_id(page: Page, text: str) -> str:
    handle = await page.wait_for_function(
        "(text) => window.fairwireLive.questions.find((q) => q.text === text)?.id", arg=text)
    qid: str = await handle.json_value()
    return qid


async def test_studio_and_viewers_share_questions_chat_and_figures_live(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "pump-line-live"
    await server.create_room(id=room, name="Ningbo Pumps · Assembly line", kind="livestream",
                             category="Machinery", owner="ningbo-pumps",
                             scheduled_start=time.time() + 600)
    studio = await open_room(new_page, server, room, "ningbo-pumps", "exhibitor", name="Li Wei")
    anna = await open_room(new_page, server, room, "anna-buyer", "buyer", name="Anna Schmidt")
    walk = await open_room(new_page, server, room, "walk-in", "visitor", name="Wang Fang")
    viewers = [anna, walk]

    # Before the live: viewers are told when it starts; the studio is a studio.
    for page in viewers:
        await expect(page.locator("#room-status")).to_have_text("Scheduled")
        await expect(page.locator("#stage-empty")).to_contain_text("This livestream starts")
        await expect(page.locator("#qa-panel")).to_be_visible()
        await expect(page.locator("#qa-empty")).to_have_text(
            "No questions yet. Be the first to ask.")
        await expect(page.locator("#chat-panel")).to_be_visible()
    await expect(studio.locator("#studio-chip")).to_have_text("Studio")
    await expect(studio.locator("#figures-panel")).to_be_visible()
    await expect(studio.locator("#figures [data-figure='current'] dd")).to_have_text("2")
    await shot(studio, "studio-scheduled-en")
    await shot(anna, "viewer-scheduled-en")

    # The exhibitor goes live from the studio: every page says LIVE, both viewers decode.
    await go_live(studio)
    for page in [studio, *viewers]:
        await expect(page.locator("#room-status")).to_have_text("LIVE")
    for page in viewers:
        await decodes(page)
        # Viewers watch the program: one stream that follows what is on air, shown as its
        # source's owner.
        tile = page.locator("#tiles [data-identity='ningbo-pumps']")
        await expect(tile.locator(".tile-name")).to_have_text("Li Wei")
        assert await tile.locator("video").evaluate("(v) => v.srcObject.id") == "program"
    on_air = studio.locator("#sources li.source-on-air")
    await expect(on_air.locator(".source-name")).to_have_text(["Camera", "Microphone"])
    await expect(on_air.locator(".source-badge").first).to_have_text("On air")
    await expect(studio.locator("#audience")).to_contain_text("2 watching")
    await expect(studio.locator("#figures [data-figure='unique_viewers'] dd")).to_have_text("2")

    # A viewer sees no moderation controls, no figures, no studio.
    for page in viewers:
        for hidden in ("#studio-chip", "#figures-panel", "#sources-panel", "#end-live",
                       "#go-live"):
            await expect(page.locator(hidden)).to_be_hidden()

    # Anna asks; Wang Fang and the studio see it.
    text = "What is the lead time for 500 units of the QJ-200 pump?"

    async def ask() -> None:
        await anna.get_by_role("textbox", name="Your question").fill(text)
        await anna.get_by_role("button", name="Ask", exact=True).click()

    await reaches(anna, "question-ask", ask, [studio, walk], "#questions .question-text", text)
    qid = await question_id(anna, text)
    item = f"#questions li[data-id='{qid}']"
    await expect(anna.get_by_role("textbox", name="Your question")).to_have_value("")
    await expect(anna.locator(item).locator(".question-who")).to_contain_text("Anna Schmidt (you)")
    for page in viewers:
        assert await page.locator(".question-actions button:visible").count() == 0
    await expect(studio.locator(item).get_by_role("button", name="Mark answered")).to_be_visible()

    # Wang Fang upvotes: the count reaches the others, her own vote is highlighted.
    vote = walk.locator(item).locator(".vote-button")
    await reaches(walk, "question-vote", vote.click, [studio, anna],
                  f"{item}[data-votes='1'] .vote-count", "1")
    await expect(vote).to_have_attribute("aria-pressed", "true")
    await expect(anna.locator(item).locator(".vote-button")).to_have_attribute(
        "aria-pressed", "false")
    # A second click takes the vote back; a third gives it again.
    await vote.click()
    await expect(vote).to_have_attribute("aria-pressed", "false")
    await expect(studio.locator(f"{item} .vote-count")).to_have_text("0")
    await vote.click()
    await expect(studio.locator(f"{item} .vote-count")).to_have_text("1")
    # A second, newer question without votes ranks below it.
    later = "Do you ship to Hamburg?"
    await walk.get_by_role("textbox", name="Your question").fill(later)
    await walk.get_by_role("button", name="Ask", exact=True).click()
    await expect(studio.locator("#questions .question-text")).to_have_text([text, later])
    await shot(studio, "studio-question-en")
    await shot(walk, "viewer-question-en")

    # The exhibitor marks it answered (it moves below the open one) and pins it.
    await reaches(studio, "question-answer",
                  studio.locator(item).get_by_role("button", name="Mark answered").click,
                  viewers, f"{item} .chip-answered", "Answered")
    for page in [studio, *viewers]:
        await expect(page.locator("#questions .question-text")).to_have_text([later, text])
    await reaches(studio, "question-pin",
                  studio.locator(item).get_by_role("button", name="Pin over video").click,
                  viewers, "#pinned .pinned-text", text)
    for page in viewers:
        await expect(page.locator("#pinned")).to_contain_text("Pinned question")
        await expect(page.locator("#pinned-who")).to_have_text("Anna Schmidt")
    pinned = await anna.evaluate("window.fairwireLive.pinned")
    assert pinned["id"] == qid and pinned["answered"] is True, pinned
    # One pinned at a time: pinning the other takes this one down.
    later_item = f"#questions li[data-id='{await question_id(studio, later)}']"
    await studio.locator(later_item).get_by_role("button", name="Pin over video").click()
    await expect(anna.locator("#pinned-text")).to_have_text(later)
    await expect(studio.locator(item).get_by_role("button", name="Pin over video")).to_be_visible()
    await studio.locator(item).get_by_role("button", name="Pin over video").click()
    await expect(walk.locator("#pinned-text")).to_have_text(text)
    await expect(walk.locator(".chip-pinned")).to_have_count(1)

    # Chat: a message reaches the other pages.
    hello = "Hello from Shanghai! Is the pump available in stainless steel?"

    async def say() -> None:
        await walk.get_by_role("textbox", name="Your message").fill(hello)
        await walk.get_by_role("textbox", name="Your message").press("Enter")

    await reaches(walk, "chat-send", say, [studio, anna], "#chat .chat-text", hello)
    await expect(walk.get_by_role("textbox", name="Your message")).to_have_value("")
    await expect(walk.locator("#chat .chat-mine .chat-who")).to_have_text("Wang Fang (you)")
    await studio.get_by_role("textbox", name="Your message").fill("Yes: 304 and 316L.")
    await studio.get_by_role("button", name="Send").click()
    await expect(anna.locator("#chat .chat-text")).to_have_text([hello, "Yes: 304 and 316L."])
    for page in viewers:
        assert await page.locator(".chat-actions button:visible").count() == 0

    # Too long: a clear error, nothing sent.
    await anna.get_by_role("textbox", name="Your question").fill("x" * 501)
    await expect(anna.locator("#ask-counter")).to_have_text("501 / 500")
    await anna.get_by_role("button", name="Ask", exact=True).click()
    await expect(anna.locator("#ask-error")).to_have_text(
        "Your question is 501 characters long. Please shorten it to 500 characters or fewer.")
    await anna.get_by_role("textbox", name="Your message").fill("y" * 1001)
    await anna.get_by_role("button", name="Send").click()
    await expect(anna.locator("#chat-error")).to_have_text(
        "Your message is 1,001 characters long. Please shorten it to 1,000 characters or fewer.")
    await shot(anna, "viewer-too-long-en")
    # The server refuses them too, whatever a page does.
    for event, size in (("question-ask", 501), ("chat-send", 1001)):
        refused = await anna.evaluate(
            "([event, size]) => window.fairwire.request(event, {text: 'z'.repeat(size)})"
            ".then(() => null, (err) => err.code)", [event, size])
        assert refused == "invalid_field", (event, refused)
    assert await studio.locator("#questions .question").count() == 2
    await anna.get_by_role("textbox", name="Your question").fill("")
    await anna.get_by_role("textbox", name="Your message").fill("")
    await expect(anna.locator("#ask-error")).to_be_hidden()
    await expect(anna.locator("#chat-error")).to_be_hidden()

    # Hiding: greyed for the studio, kept for its asker with a note, gone for the others.
    rude = "This is spam spam spam"
    await walk.get_by_role("textbox", name="Your question").fill(rude)
    await walk.get_by_role("button", name="Ask", exact=True).click()
    rude_item = f"#questions li[data-id='{await question_id(studio, rude)}']"
    await expect(anna.locator(rude_item)).to_be_visible()
    await studio.locator(rude_item).get_by_role("button", name="Hide").click()
    await expect(anna.locator(rude_item)).to_have_count(0)
    await expect(studio.locator(rude_item)).to_have_class("question question-hidden")
    await expect(studio.locator(rude_item).locator(".chip-hidden")).to_have_text("Hidden")
    await expect(walk.locator(rude_item).locator(".question-note")).to_have_text(
        "A moderator hid this question: only you and the moderators see it.")

    # Chat moderation: a message deleted goes from every page; a muted chatter is told.
    message = studio.locator("#chat .chat-message").filter(has_text=hello)
    await message.get_by_role("button", name="Delete").click()
    for page in viewers:
        await expect(page.locator("#chat .chat-text")).to_have_text(["Yes: 304 and 316L."])
    await walk.get_by_role("textbox", name="Your message").fill("Anyone there?")
    await walk.get_by_role("textbox", name="Your message").press("Enter")
    await studio.locator("#chat .chat-message").filter(has_text="Anyone there?").get_by_role(
        "button", name="Mute").click()
    await expect(walk.locator("#chat-error")).to_have_text(
        "A moderator has muted you in this chat. You can still read it.")
    await expect(walk.get_by_role("textbox", name="Your message")).to_be_disabled()
    await expect(studio.locator("#chat .chat-message[data-identity='walk-in'] .chip-muted")
                 .first).to_have_text("Muted")
    await expect(anna.get_by_role("textbox", name="Your message")).to_be_enabled()
    await shot(studio, "studio-moderation-en")
    await shot(walk, "viewer-muted-en")

    # The rate limit says when to try again.
    for n in range(6):
        await anna.get_by_role("textbox", name="Your message").fill(f"message {n}")
        await anna.get_by_role("textbox", name="Your message").press("Enter")
        await anna.wait_for_function(
            "(n) => window.fairwireLive.actions.filter((a) => a.event === 'chat-send').length > n",
            arg=n)
    await expect(anna.locator("#chat-error")).to_contain_text(
        "You are sending messages too quickly. You can send again in")
    await expect(anna.get_by_role("button", name="Send")).to_be_disabled()
    await shot(anna, "viewer-rate-limited-en")

    # The figures follow what happened (8 messages sent, one of them deleted since).
    await studio.wait_for_function(
        "() => { const s = window.fairwireLive.stats; return s?.questions_answered === 1"
        " && s.questions_asked === 3 && s.chat_messages >= 7; }", timeout=6000)
    await shot(studio, "studio-live-en")
    await shot(anna, "viewer-live-en")

    # In Chinese.
    for page in (studio, anna):
        await page.get_by_role("button", name="中文").click()
    await expect(studio.locator("#figures-title")).to_have_text("实时数据")
    await expect(studio.locator(item).get_by_role("button", name="重新打开")).to_be_visible()
    await expect(anna.locator("#pinned-label")).to_have_text("置顶问题")
    await expect(anna.locator(f"{item} .chip-answered")).to_have_text("已回答")
    await expect(anna.get_by_role("button", name="提问", exact=True)).to_be_visible()
    await shot(studio, "studio-live-zh")
    await shot(anna, "viewer-live-zh")
    for page in (studio, anna):
        await page.get_by_role("button", name="English").click()

    # A viewer leaves: the studio counts 1.
    await walk.close()
    await expect(studio.locator("#figures [data-figure='current'] dd")).to_have_text(
        "1", timeout=10_000)
    await expect(studio.locator("#audience")).to_contain_text("1 watching", timeout=10_000)
    assert await figure(studio, "peak") == 2
    assert await figure(studio, "unique_viewers") == 2


async def test_a_viewer_back_from_a_dropped_connection_has_what_it_missed(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "silk-live"
    await server.create_room(id=room, name="Hangzhou Silk · Weaving", kind="livestream",
                             status="live", owner="hz-silk")
    async with RoomClients(server, room) as people:
        await people.join("hz-silk", "exhibitor", name="Wang Fang")
        await people.join("carlos", "buyer", name="Carlos Pérez")
        page = await open_room(new_page, server, room, "mei-buyer", "buyer", name="Mei Lin")
        await expect(page.locator("#qa-panel")).to_be_visible()

        mine = (await people_ask(page, "Can you dye to Pantone colours?"))["question"]
        first = (await people.call("carlos", "question-ask", {"text": "Minimum order?"}))
        said = await people.call("carlos", "chat-send", {"text": "Hi all"})
        await expect(page.locator("#chat .chat-text")).to_have_text(["Hi all"])
        await expect(page.locator("#questions .question")).to_have_count(2)

        # Away for a moment: meanwhile things happen.
        assert await page.evaluate("(ms) => window.fairwire._dropConnectionFor(ms)", 2000)
        await page.wait_for_function("() => window.fairwire.state !== 'joined'")
        qid = first["question"]["id"]
        assert "error" not in await people.call("carlos", "question-ask", {"text": "Lead time?"})
        assert "error" not in await people.call("hz-silk", "question-answer",
                                                {"id": qid, "answered": True})
        assert await people.call("hz-silk", "question-pin", {"id": qid}) == {}
        assert await people.call("hz-silk", "question-hide",
                                 {"id": mine["id"], "hidden": True})
        assert await people.call("hz-silk", "chat-delete", {"id": said["message"]["id"]}) == {}
        assert "error" not in await people.call("carlos", "chat-send", {"text": "Still there?"})
        assert await people.call("hz-silk", "chat-mute",
                                 {"identity": "mei-buyer", "muted": True}) == {}

        # Back, without a reload: the join brought it all.
        await page.wait_for_function(
            "() => window.fairwire.state === 'joined' && window.fairwire.catchUps.length > 1",
            timeout=15_000)
        assert (await page.evaluate("window.fairwire.catchUps.at(-1)"))["since"] is not None
        await expect(page.locator("#pinned-text")).to_have_text("Minimum order?")
        # Open ones oldest first (no votes), the answered one below.
        await expect(page.locator("#questions .question-text")).to_have_text(
            ["Can you dye to Pantone colours?", "Lead time?", "Minimum order?"])
        await expect(page.locator(f"#questions li[data-id='{qid}'] .chip-answered")).to_be_visible()
        # Her own hidden question: still hers to see, with the note.
        await expect(page.locator(f"#questions li[data-id='{mine['id']}'] .question-note")
                     ).to_be_visible()
        await expect(page.locator("#chat .chat-text")).to_have_text(["Still there?"])
        await expect(page.locator("#chat-error")).to_have_text(
            "A moderator has muted you in this chat. You can still read it.")
        await expect(page.get_by_role("textbox", name="Your message")).to_be_disabled()
        await shot(page, "viewer-after-reconnect-en")


async def people_ask(page: Page, text: str) -> dict[str, Any]:
    """The page asks ``text`` through its own form; returns the question's ack shape."""
    await page.get_by_role("textbox", name="Your question").fill(text)
    await page.get_by_role("button", name="Ask", exact=True).click()
    handle = await page.wait_for_function(
        "(text) => window.fairwireLive.questions.find((q) => q.text === text)", arg=text)
    question: dict[str, Any] = await handle.json_value()
    return {"question": question}


async def test_meetings_have_the_chat_but_no_questions(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    server = fairwire_server
    room = "pump-deal"
    await server.create_room(id=room, name="QJ-200 order · Ningbo Pumps × Schmidt GmbH",
                             kind="meeting", status="live")
    seller = await open_room(new_page, server, room, "ningbo-pumps", "exhibitor", name="Li Wei")
    buyer = await open_room(new_page, server, room, "anna-buyer", "buyer", name="Anna Schmidt",
                            lang="zh")
    for page in (seller, buyer):
        await expect(page.locator("#chat-panel")).to_be_visible()
        await expect(page.locator("#qa-panel")).to_be_hidden()
        await expect(page.locator("#pinned")).to_be_hidden()
        await expect(page.locator("#figures-panel")).to_be_hidden()
        await expect(page.locator("#sources-panel")).to_be_hidden()
    await seller.get_by_role("textbox", name="Your message").fill("Shall we start with prices?")
    await seller.get_by_role("textbox", name="Your message").press("Enter")
    await expect(buyer.locator("#chat .chat-text")).to_have_text(["Shall we start with prices?"])
    await expect(buyer.locator("#chat-title")).to_have_text("聊天")
    await shot(seller, "meeting-chat-en")
    await shot(buyer, "meeting-chat-zh")


# Counts the subscriber offers the page gets from now on (a switch must not renegotiate).
COUNT_OFFERS_JS = """() => { window.__offers = 0;
  window.fairwire.socket.on("subscriber-offer", () => { window.__offers += 1; }); }"""


# Whether the picture in the page's tile is Chromium's fake camera (mostly green) rather than
# the encoder's grey-and-colour gradient.
GREEN_JS = """() => {
  const video = document.querySelector("#tiles .tile video");
  if (!video || !video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = 64; canvas.height = 36;
  const context = canvas.getContext("2d");
  context.drawImage(video, 0, 0, 64, 36);
  const data = context.getImageData(0, 0, 64, 36).data;
  let r = 0, g = 0, b = 0;
  for (let i = 0; i < data.length; i += 4) { r += data[i]; g += data[i + 1]; b += data[i + 2]; }
  return g > 1.6 * r && g > 1.6 * b;
}"""


async def shows_camera(page: Page, camera: bool, timeout: float = 10.0) -> None:
    """The page's video turns to the camera's picture (or away from it): a switch arrived."""
    deadline = time.monotonic() + timeout
    wanted = "camera" if camera else "encoder"
    while await page.evaluate(GREEN_JS) is not camera:
        assert time.monotonic() < deadline, f"the picture is not the {wanted}'s"
        await asyncio.sleep(0.1)


async def frames_grow(page: Page, seconds: float = 1.5) -> None:
    before = (await inbound(page))["frames"]
    await asyncio.sleep(seconds)
    after = (await inbound(page))["frames"]
    assert after > before + 10, (before, after)


async def test_the_studio_switches_the_program_between_camera_and_encoder(
    fairwire_server: FairwireServer, new_page: NewPage, tmp_path: Path
) -> None:
    av.logging.set_level(av.logging.ERROR)
    server = fairwire_server
    room = "line-program"
    await server.create_room(id=room, name="Ningbo Pumps · Two cameras", kind="livestream",
                             status="live", owner="ningbo-pumps")
    token = await server.token(room, "line-encoder", "host", name="Assembly line")
    encoder = FfmpegEncoder(f"{server.url}/whip/{room}", token, tmp_path, X264_BASELINE,
                            seconds=25)
    encoder.start()
    try:
        studio = await open_room(new_page, server, room, "ningbo-pumps", "exhibitor",
                                 name="Li Wei")
        sources = studio.locator("#sources")
        await expect(sources.locator("li[data-kind='video'] .source-name")).to_have_text(
            ["Encoder"], timeout=15_000)
        # The encoder went on air by itself; the studio's camera follows its codec.
        await expect(sources.locator("li.source-on-air[data-kind='video'] .source-who")
                     ).to_have_text("Assembly line")
        await go_live(studio)
        camera = sources.locator("li[data-kind='video']").filter(has_text="Camera")
        await expect(camera.locator(".source-codec")).to_contain_text("H.264")
        await shot(studio, "studio-sources-en")

        viewer = await open_room(new_page, server, room, "anna-buyer", "buyer",
                                 name="Anna Schmidt")
        await decodes(viewer)
        tile = viewer.locator("#tiles .tile")
        await expect(tile).to_have_count(1)
        await expect(tile.locator(".tile-name")).to_have_text("Assembly line")
        await shows_camera(viewer, False)
        await viewer.evaluate(COUNT_OFFERS_JS)

        # Camera on air: the viewer keeps decoding, nobody renegotiates, the name follows.
        await camera.get_by_role("button", name="Put on air").click()
        await expect(camera.locator(".source-badge")).to_have_text("On air")
        await expect(tile.locator(".tile-name")).to_have_text("Li Wei")
        await shows_camera(viewer, True)
        await frames_grow(viewer)
        await shot(viewer, "viewer-program-camera-en")
        line = sources.locator("li[data-kind='video']").filter(has_text="Encoder")
        await line.get_by_role("button", name="Put on air").click()
        await expect(tile.locator(".tile-name")).to_have_text("Assembly line")
        await shows_camera(viewer, False)
        await frames_grow(viewer)
        assert await viewer.evaluate("window.__offers") == 0
        program = await viewer.evaluate("window.fairwireLive.program")
        assert program["video"] == await line.get_attribute("data-track"), program
        await shot(viewer, "viewer-program-encoder-en")
        await studio.get_by_role("button", name="中文").click()
        await shot(studio, "studio-sources-zh")
    finally:
        await asyncio.to_thread(encoder.join, 60)


async def test_a_source_in_another_codec_is_refused_in_plain_words(
    fairwire_server: FairwireServer, new_page: NewPage, tmp_path: Path
) -> None:
    av.logging.set_level(av.logging.ERROR)
    server = fairwire_server
    room = "line-mismatch"
    await server.create_room(id=room, name="Foundry · Mixed cameras", kind="livestream",
                             status="live", owner="ningbo-pumps")
    studio = await open_room(new_page, server, room, "ningbo-pumps", "exhibitor", name="Li Wei")
    await go_live(studio)  # nothing else in the room: the camera goes out in VP8
    viewer = await open_room(new_page, server, room, "anna-buyer", "buyer", name="Anna Schmidt")
    await decodes(viewer)
    token = await server.token(room, "line-encoder", "host", name="Foundry line")
    encoder = FfmpegEncoder(f"{server.url}/whip/{room}", token, tmp_path, X264_HIGH, seconds=15)
    encoder.start()
    try:
        line = studio.locator("#sources li[data-kind='video']").filter(has_text="Encoder")
        await expect(line.locator(".source-codec")).to_contain_text("H.264 high",
                                                                    timeout=15_000)
        await line.get_by_role("button", name="Put on air").click()
        await expect(studio.locator("#sources-error")).to_have_text(
            "This source cannot go on air: it sends H.264 high video, but viewers are receiving"
            " VP8. Fairwire never re-encodes, so set the encoder to VP8 and try again.")
        camera = studio.locator("#sources li[data-kind='video']").filter(has_text="Camera")
        await expect(camera.locator(".source-badge")).to_have_text("On air")
        await frames_grow(viewer)
        await shot(studio, "studio-codec-mismatch-en")
        await studio.get_by_role("button", name="中文").click()
        await expect(studio.locator("#sources-error")).to_contain_text("Fairwire 不做转码")
        await shot(studio, "studio-codec-mismatch-zh")
    finally:
        await asyncio.to_thread(encoder.join, 30)


async def test_the_studio_previews_goes_live_and_shares_its_screen(
    fairwire_server: FairwireServer, new_page: NewPage
) -> None:
    """Before going live the exhibitor checks camera and microphone, seen by nobody else;
    "Go live" sends those very tracks. While live a shared screen is one more source: on air
    and off again, the viewer decoding all along without a new offer, the camera back on air
    when the sharing stops."""
    server = fairwire_server
    room = "booth-preview"
    await server.create_room(id=room, name="Ningbo Pumps · Product tour", kind="livestream",
                             status="scheduled", owner="ningbo-pumps",
                             scheduled_start=int(time.time()) + 600)
    studio = await open_room(new_page, server, room, "ningbo-pumps", "exhibitor", name="Li Wei")
    viewer = await open_room(new_page, server, room, "anna-buyer", "buyer", name="Anna Schmidt")

    await studio.get_by_role("button", name="Check camera and microphone").click()
    own = studio.locator("#tiles .tile-self")
    await expect(own.locator(".tile-badge")).to_have_text("Preview · only you see this")
    await studio.wait_for_function("() => window.fairwire.micLevel > 0.01")  # it hears
    for select in ("#camera-select", "#mic-select"):
        assert await studio.locator(f"{select} option").count() >= 1
    await expect(studio.get_by_role("button", name="Close preview")).to_be_visible()
    await expect(studio.get_by_role("button", name="Share screen")).to_be_hidden()
    assert await studio.evaluate("window.fairwire.publishing") is False
    # Nobody else sees the preview: the room is still scheduled, the viewer's stage empty.
    await asyncio.sleep(1.0)
    assert await viewer.evaluate("window.fairwire.room.status") == "scheduled"
    assert await viewer.locator("#tiles .tile").count() == 0
    await shot(studio, "studio-preview-en")
    await studio.get_by_role("button", name="中文").click()
    await expect(own.locator(".tile-badge")).to_have_text("预览 · 仅你可见")
    await shot(studio, "studio-preview-zh")
    await studio.get_by_role("button", name="English").click()

    previewed = await studio.evaluate(
        "() => window.fairwire.publisherPc === null && document.querySelector("
        "'#tiles .tile-self video').srcObject.getVideoTracks()[0].id")
    await go_live(studio)
    sent = await studio.evaluate(
        "() => window.fairwire.publisherPc.getSenders().map((s) => s.track && s.track.id)")
    assert previewed in sent  # the previewed camera went on air, not a second capture
    await expect(own.locator(".tile-badge")).to_have_text("You are live")
    await expect(viewer.locator("#room-status")).to_have_text("LIVE")
    await decodes(viewer)
    await viewer.evaluate(COUNT_OFFERS_JS)

    await studio.get_by_role("button", name="Share screen").click()
    sources = studio.locator("#sources")
    screen = sources.locator("li[data-kind='video']").filter(has_text="Screen share")
    await expect(screen).to_have_count(1, timeout=10_000)
    await screen.get_by_role("button", name="Put on air").click()
    await expect(screen.locator(".source-badge")).to_have_text("On air")
    await viewer.wait_for_function(
        "(id) => window.fairwireLive.program.video === id",
        arg=await screen.get_attribute("data-track"))
    # A still screen makes few frames (Chromium encodes what changes): a longer look.
    await frames_grow(viewer, seconds=4.0)
    await expect(studio.get_by_role("button", name="Stop sharing screen")).to_be_visible()
    await shot(studio, "studio-screen-share-en")

    await studio.get_by_role("button", name="Stop sharing screen").click()
    await expect(screen).to_have_count(0, timeout=10_000)
    camera = sources.locator("li[data-kind='video']").filter(has_text="Camera")
    await expect(camera.locator(".source-badge")).to_have_text("On air")
    await shows_camera(viewer, True)
    await frames_grow(viewer)
    assert await viewer.evaluate("window.__offers") == 0
    # Sharing again reuses the connection's screen slot.
    await studio.get_by_role("button", name="Share screen").click()
    await expect(screen).to_have_count(1, timeout=10_000)
    assert await studio.evaluate("window.fairwire.sharingScreen") is True
