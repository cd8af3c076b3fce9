/* Fairwire replays: /replay/{id} plays one replay with its live's questions beside the video
 * (click one to jump to its moment; the question pinned at the end of the live shows over the
 * video at its moment); /replays lists the replays one may watch, by category and exhibitor.
 *
 * Credentials: the room link's ?token= (kept along the page's own links), or the console's
 * credential (sessionStorage "fairwire.console.credential": the operator's API key or a host
 * token). REST: GET /api/replays[?room=], GET /api/replays/{id}, GET /api/rooms/{room}/questions;
 * media and thumbnails come from the signed URLs those answers carry.
 *
 * For tests: window.fairwireReplay = {state: "loading" | "ready" | "error", replay,
 * questions, error}.
 */
(function () {
  "use strict";

  const el = window.FairwireDom.el; // dom.js

  const CONSOLE_KEY = "fairwire.console.credential";
  const i18n = window.FairwireI18n;
  const t = i18n.t;
  const $ = (id) => document.getElementById(id);

  i18n.add({
    en: {
      "replay.title": "Fairwire · Replays",
      "replay.nav": "Pages",
      "replay.programme": "Programme",
      "replay.all": "Replays",
      "replay.heading": "Replays",
      "replay.subtitle": "Past livestreams, by industry and exhibitor. Watch any of them again, whenever suits you.",
      "replay.loading": "Loading…",
      "replay.noCredential": "This page needs your access link. Open the replay from the link you were sent, or sign in on the console.",
      "replay.notFound": "This replay does not exist, or your link does not give access to it.",
      "replay.failed": "Cannot load the replay right now ({message}). Please try again.",
      "replay.empty": "No replays yet. Replays appear here when a livestream ends.",
      "replay.by": "by {owner}",
      "replay.recorded": "recorded {time}",
      "replay.length": "{minutes} min {seconds} s",
      "replay.lengthShort": "{seconds} s",
      "replay.questions": "Questions from the live",
      "replay.questionsHint": "Click a question to watch the moment it was asked.",
      "replay.noQuestions": "Nobody asked a question during this live.",
      "replay.questionsUnavailable": "The live's questions are not available any more.",
      "replay.questionCount": "{count} questions",
      "replay.votes": "{count} votes",
      "replay.answered": "Answered",
      "replay.pinnedLabel": "Pinned question",
      "replay.chapters": "Chapters",
      "replay.chaptersHint": "The questions pinned during the live. Click one to jump there.",
      "replay.chapterStart": "Start",
      "replay.participant": "{title} · {name}",
      "replay.meetingOf": "Meeting recording: {name}'s camera and microphone",
      "replay.otherCategory": "Other",
      "replay.noOwner": "Hosted by the organiser",
      "replay.play": "Watch the replay of {title}",
    },
    zh: {
      "replay.title": "Fairwire · 直播回放",
      "replay.nav": "页面导航",
      "replay.programme": "全部日程",
      "replay.all": "直播回放",
      "replay.heading": "直播回放",
      "replay.subtitle": "往期直播，按行业和展商排列，随时重温。",
      "replay.loading": "正在加载…",
      "replay.noCredential": "此页面需要您的访问链接。请通过收到的链接打开回放，或在管理后台登录。",
      "replay.notFound": "该回放不存在，或您的链接无权观看。",
      "replay.failed": "暂时无法加载回放（{message}），请稍后重试。",
      "replay.empty": "暂无回放。直播结束后，回放会出现在这里。",
      "replay.by": "展商：{owner}",
      "replay.recorded": "录制于 {time}",
      "replay.length": "{minutes} 分 {seconds} 秒",
      "replay.lengthShort": "{seconds} 秒",
      "replay.questions": "直播中的提问",
      "replay.questionsHint": "点击问题，即可跳转到提问的时刻。",
      "replay.noQuestions": "本场直播没有观众提问。",
      "replay.questionsUnavailable": "本场直播的提问已无法查看。",
      "replay.questionCount": "{count} 个问题",
      "replay.votes": "{count} 票",
      "replay.answered": "已回答",
      "replay.pinnedLabel": "置顶问题",
      "replay.chapters": "章节",
      "replay.chaptersHint": "直播中置顶的问题，点击即可跳转。",
      "replay.chapterStart": "开始",
      "replay.participant": "{title} · {name}",
      "replay.meetingOf": "会议录像：{name} 的摄像头和麦克风",
      "replay.otherCategory": "其他",
      "replay.noOwner": "主办方主持",
      "replay.play": "观看「{title}」的回放",
    },
  });

  i18n.apply(); // this page's own words were added after i18n.js applied its own

  const state = (window.fairwireReplay = { state: "loading", replay: null, questions: [], chapters: [], error: null });
  const linkToken = new URLSearchParams(window.location.search).get("token") || "";
  let statusKey = "replay.loading";
  let statusParams = null;
  let replays = [];
  let questionsUnavailable = false;

  function credential() {
    if (linkToken) return linkToken;
    try {
      return window.sessionStorage.getItem(CONSOLE_KEY) || "";
    } catch (_) {
      return "";
    }
  }

  /** A page link that keeps the room link's token, so that the next page is allowed too. */
  function withToken(path) {
    return linkToken ? path + "?token=" + encodeURIComponent(linkToken) : path;
  }

  async function api(path) {
    const response = await fetch(path, {
      headers: { Accept: "application/json", Authorization: "Bearer " + credential() },
      cache: "no-store",
      credentials: "omit",
    });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const error = (body && body.error) || { code: "http_" + response.status, message: "HTTP " + response.status };
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function formatClock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = String(s % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + rest : m + ":" + rest;
  }

  function formatDate(epochSeconds) {
    return new Intl.DateTimeFormat(i18n.locale(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(epochSeconds * 1000));
  }

  function lengthText(seconds) {
    const s = Math.round(seconds);
    if (s < 60) return t("replay.lengthShort", { seconds: s });
    return t("replay.length", { minutes: Math.floor(s / 60), seconds: s % 60 });
  }

  function fail(err) {
    state.state = "error";
    state.error = err;
    if (err && (err.status === 404 || err.status === 403)) statusKey = "replay.notFound";
    else if (err && err.status === 401) statusKey = "replay.noCredential";
    else {
      statusKey = "replay.failed";
      statusParams = { message: (err && err.message) || String(err) };
    }
    render();
  }

  // -- one replay ---------------------------------------------------------------------------

  /** Where a question sits in the replay: seconds from the recording's start. */
  function momentOf(question) {
    return Math.max(0, question.at - state.replay.start);
  }

  /** Chapters: the start, then each question pinned during the recording, from its pin. */
  function chaptersOf(replay, questions) {
    const pinned = questions
      .filter((q) => typeof q.pinned_at === "number" && q.pinned_at >= replay.start - 1 && q.pinned_at <= replay.end)
      .map((q) => ({ at: Math.max(0, q.pinned_at - replay.start), question: q }))
      .sort((a, b) => a.at - b.at);
    if (!pinned.length) return [];
    return pinned[0].at > 1 ? [{ at: 0, question: null }, ...pinned] : pinned;
  }

  function vttTime(seconds) {
    const ms = Math.round(seconds * 1000);
    const h = String(Math.floor(ms / 3600000)).padStart(2, "0");
    const m = String(Math.floor((ms % 3600000) / 60000)).padStart(2, "0");
    const sec = String(Math.floor((ms % 60000) / 1000)).padStart(2, "0");
    return `${h}:${m}:${sec}.${String(ms % 1000).padStart(3, "0")}`;
  }

  /** The chapters as a WebVTT chapters track too, for players and assistive technology. */
  function chapterTrack(chapters, duration) {
    const old = $("replay-video").querySelector("track[kind=chapters]");
    if (old) old.remove();
    if (!chapters.length) return;
    const cues = chapters.map((c, n) => {
      const end = n + 1 < chapters.length ? chapters[n + 1].at : duration;
      const title = c.question ? c.question.text.replace(/\s+/g, " ") : t("replay.chapterStart");
      return `${n + 1}\n${vttTime(c.at)} --> ${vttTime(Math.max(end, c.at + 0.001))}\n${title.replace(/-->/g, "→")}\n`;
    });
    const track = document.createElement("track");
    track.kind = "chapters";
    track.label = t("replay.chapters");
    track.srclang = i18n.lang || "en";
    track.src = URL.createObjectURL(new Blob(["WEBVTT\n\n" + cues.join("\n")], { type: "text/vtt" }));
    $("replay-video").appendChild(track);
  }

  async function openReplay(id) {
    const replay = await api("/api/replays/" + encodeURIComponent(id));
    state.replay = replay;
    const video = $("replay-video");
    video.src = replay.playback_url;
    if (replay.thumbnail_url) video.poster = replay.thumbnail_url;
    video.addEventListener("timeupdate", renderMoment);
    try {
      const qa = await api("/api/rooms/" + encodeURIComponent(replay.room) + "/questions");
      const all = Array.isArray(qa.questions) ? qa.questions : [];
      state.questions = all.filter((q) => q && !q.hidden && typeof q.at === "number"
        && q.at >= replay.start - 5 && q.at <= replay.end + 5).sort((a, b) => a.at - b.at);
    } catch (_) {
      questionsUnavailable = true; // the room is gone (or its questions): the video still plays
      state.questions = [];
    }
    state.chapters = chaptersOf(replay, state.questions);
    chapterTrack(state.chapters, replay.duration);
    state.state = "ready";
    statusKey = null;
    render();
  }

  function seekTo(seconds) {
    const video = $("replay-video");
    video.currentTime = seconds;
    video.play().catch(() => {});
  }

  function renderQuestions() {
    const list = $("replay-questions");
    const items = state.questions.map((q) => {
      const item = el("li", "replay-question");
      item.dataset.id = q.id;
      const button = el("button");
      button.type = "button";
      const moment = momentOf(q);
      button.dataset.moment = String(moment);
      button.append(el("span", "replay-question-time", formatClock(moment)), el("span", "replay-question-text", q.text));
      const meta = [q.name, t("replay.votes", { count: q.votes || 0 })];
      if (q.answered) meta.push(t("replay.answered"));
      if (q.pinned) meta.push(t("replay.pinnedLabel"));
      button.append(el("span", "replay-question-meta", meta.join(" · ")));
      button.addEventListener("click", () => seekTo(moment));
      item.appendChild(button);
      return item;
    });
    list.replaceChildren(...items);
    $("qa-count").textContent = state.questions.length ? t("replay.questionCount", { count: state.questions.length }) : "";
    const empty = $("qa-empty");
    empty.hidden = state.questions.length > 0;
    empty.textContent = questionsUnavailable ? t("replay.questionsUnavailable") : t("replay.noQuestions");
    renderMoment();
  }

  function renderChapters() {
    const chapters = state.chapters || [];
    $("replay-chapters").hidden = !chapters.length;
    $("replay-chapter-list").replaceChildren(...chapters.map((c, n) => {
      const item = el("li", "replay-chapter");
      item.dataset.index = String(n);
      const button = el("button");
      button.type = "button";
      button.dataset.moment = String(c.at);
      button.append(el("span", "replay-question-time", formatClock(c.at)),
        el("span", "replay-chapter-title", c.question ? c.question.text : t("replay.chapterStart")));
      button.addEventListener("click", () => seekTo(c.at));
      item.appendChild(button);
      return item;
    }));
  }

  /** The question of the moment is marked; the chapter's pinned question shows over the video. */
  function renderMoment() {
    if (!state.replay) return;
    const now = $("replay-video").currentTime || 0;
    let current = null;
    for (const q of state.questions) if (momentOf(q) <= now) current = q;
    for (const item of $("replay-questions").children) {
      item.setAttribute("aria-current", String(!!current && item.dataset.id === current.id));
    }
    let chapter = -1;
    (state.chapters || []).forEach((c, n) => { if (c.at <= now + 0.05) chapter = n; });
    for (const item of $("replay-chapter-list").children) {
      item.setAttribute("aria-current", String(Number(item.dataset.index) === chapter));
    }
    const pinned = chapter >= 0 ? state.chapters[chapter].question : null;
    $("replay-pinned").hidden = !pinned;
    $("replay-pinned-text").textContent = pinned ? pinned.text : "";
  }

  /** Who is seen: the owner exhibitor's name for a live, the participant's in a meeting. */
  function whoText(replay) {
    if (replay.participant) {
      return t("replay.meetingOf", { name: replay.participant_name || replay.participant });
    }
    const owner = replay.owner_name || replay.owner;
    return owner ? t("replay.by", { owner }) : t("replay.noOwner");
  }

  function titleOf(replay) {
    return replay.participant
      ? t("replay.participant", { title: replay.title, name: replay.participant_name || replay.participant })
      : replay.title;
  }

  function renderPlayer() {
    const replay = state.replay;
    $("replay-title").textContent = titleOf(replay);
    document.title = titleOf(replay) + " · Fairwire";
    $("replay-who").textContent = whoText(replay);
    $("replay-when").textContent = t("replay.recorded", { time: formatDate(replay.start) });
    $("replay-length").textContent = lengthText(replay.duration);
    renderChapters();
    renderQuestions();
  }

  // -- the list -----------------------------------------------------------------------------

  async function openList() {
    const found = [];
    let cursor = null;
    do {
      const page = await api("/api/replays?limit=100" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      found.push(...page.replays);
      cursor = page.next_cursor;
    } while (cursor && found.length < 1000);
    replays = found;
    state.state = "ready";
    statusKey = found.length ? null : "replay.empty";
    render();
  }

  function renderList() {
    const byCategory = new Map();
    for (const replay of replays) {
      const category = replay.category || "";
      if (!byCategory.has(category)) byCategory.set(category, []);
      byCategory.get(category).push(replay);
    }
    const groups = [...byCategory.entries()].sort(([a], [b]) => (a === "") - (b === "") || a.localeCompare(b));
    $("replay-groups").replaceChildren(...groups.map(([category, items]) => {
      const section = el("section", "replay-group");
      section.appendChild(el("h2", "", category || t("replay.otherCategory")));
      const cards = el("ul", "replay-cards");
      // Within an industry, an exhibitor's replays together, newest first.
      items.sort((a, b) => String(a.owner || "").localeCompare(String(b.owner || "")) || b.start - a.start);
      for (const replay of items) {
        const card = el("li", "replay-card");
        const link = el("a");
        link.href = withToken("/replay/" + encodeURIComponent(replay.id));
        link.setAttribute("aria-label", t("replay.play", { title: titleOf(replay) }));
        const image = el("img");
        image.alt = "";
        if (replay.thumbnail_url) image.src = replay.thumbnail_url;
        const body = el("div", "replay-card-body");
        body.append(
          el("div", "replay-card-title", titleOf(replay)),
          el("div", "replay-card-meta", whoText(replay) + " · " + lengthText(replay.duration)),
          el("div", "replay-card-meta", formatDate(replay.start)),
        );
        link.append(image, body);
        card.appendChild(link);
        cards.appendChild(card);
      }
      section.appendChild(cards);
      return section;
    }));
  }

  function render() {
    const status = $("status");
    status.hidden = !statusKey;
    status.textContent = statusKey ? t(statusKey, statusParams || undefined) : "";
    status.className = "notice" + (state.state === "error" ? " notice-error" : "");
    const playing = state.state === "ready" && !!state.replay;
    $("player-view").hidden = !playing;
    $("list-view").hidden = state.state !== "ready" || playing;
    $("replays-link").href = withToken("/replays");
    if (playing) renderPlayer();
    else if (state.state === "ready") renderList();
  }

  document.addEventListener("fairwire:lang", render);

  const match = window.location.pathname.match(/^\/replay\/([^/]+)\/?$/);
  render();
  if (!credential()) {
    fail({ status: 401 });
  } else if (match) {
    openReplay(decodeURIComponent(match[1])).catch(fail);
  } else {
    openList().catch(fail);
  }
})();
