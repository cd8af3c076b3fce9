/* Fairwire livestream panels on the room page: Q&A, chat, the pinned question over the video,
 * and for moderators (the studio) figures and the program's sources. Loaded after room.js.
 *
 * Talks to room.js through window.fairwire (see room.js's header):
 *   fairwire.request(event, data) -> ack, or throws {code, message, data};
 *   fairwire.self / room / participants / state / credential; fairwire.hooks.subscription and
 *   fairwire.hooks.streamOwner (set here: viewers subscribe to the program, whose tile shows
 *   the name of whoever is on air);
 *   document events "fairwire:catch-up" {via, since, ack} (a join's ack replaces what this
 *   script holds: qa {questions, voted}, chat, chat_muted, program), "fairwire:room-event"
 *   {event} (each event once, in seq order: question, chat, chat-deleted, chat-muted,
 *   program; others are ignored) and "fairwire:render".
 *
 * Moderators: the `moderate` grant (hosts) or the owner exhibitor (role exhibitor and
 * room.owner == self.identity). A panel appears only when the server offers its feature (the
 * join ack has `qa`, `chat`, `program`).
 *
 * socket.io (docs/socketio.md, "Live Q&A and chat"):
 *   question-ask {text} -> {question}; question-vote {id} -> {question, voted};
 *   question-answer {id, answered}, question-hide {id, hidden} -> {question};
 *   question-pin {id | null} -> {}; chat-send {text} -> {message} (rate_limited with
 *   retry_after, chat_muted); chat-delete {id}, chat-mute {identity, muted} -> {};
 *   program-set {video} or {audio} (the other kind stays) -> {program} (codec_mismatch,
 *   track_not_found).
 * REST: GET /api/rooms/{id}/stats every 2 s (moderators, Bearer credential); after a sync that
 *   had to send a snapshot, GET /api/rooms/{id}/questions (the log no longer had the changes).
 *
 * For tests: window.fairwireLive = {questions (ranked as shown), pinned, chat, stats, program,
 * voted, chatMuted, moderator, features, actions: [{event, ok, code, at (Date.now() of the
 * ack)}]}.
 */
(function () {
  "use strict";

  const el = window.FairwireDom.el; // dom.js

  const ASK_MAX = 500;
  const CHAT_MAX = 1000;
  const CHAT_KEEP = 500; // messages kept on the page (the join brings the last 200)
  const STATS_MS = 2000;
  const ACTIONS_KEEP = 50;
  // Closer than this to the bottom of the chat: new messages scroll it along.
  const CHAT_STICK_PX = 48;

  const fairwire = window.fairwire;
  const i18n = window.FairwireI18n;
  const t = i18n.t;
  const $ = (id) => document.getElementById(id);
  if (!fairwire || !i18n) return;

  i18n.add({
    en: {
      "live.studio": "Studio",
      "live.pinnedLabel": "Pinned question",
      "live.questions": "Questions",
      "live.questionCount": "{count} · {answered} answered",
      "live.askLabel": "Your question",
      "live.askPlaceholder": "Ask the exhibitor a question…",
      "live.ask": "Ask",
      "live.asking": "Sending…",
      "live.askEmpty": "Please type your question first.",
      "live.askTooLong": "Your question is {count} characters long. Please shorten it to {max} characters or fewer.",
      "live.askRefused": "Your question was not accepted: {message}",
      "live.noQuestions": "No questions yet. Be the first to ask.",
      "live.noQuestionsStudio": "No questions yet. Viewers' questions appear here, most upvoted first.",
      "live.upvote": "Upvote ({count})",
      "live.unvoteHint": "You upvoted this. Click again to take your vote back.",
      "live.votes": "{count} votes",
      "live.voteOne": "1 vote",
      "live.answered": "Answered",
      "live.pinned": "Pinned",
      "live.hidden": "Hidden",
      "live.hiddenForAsker": "A moderator hid this question: only you and the moderators see it.",
      "live.markAnswered": "Mark answered",
      "live.markOpen": "Reopen",
      "live.pin": "Pin over video",
      "live.unpin": "Unpin",
      "live.hide": "Hide",
      "live.unhide": "Show again",
      "live.actionFailed": "That did not work: {message}",
      "live.by": "{name} · {time}",
      "live.you": "{name} (you)",
      "live.chat": "Chat",
      "live.chatLabel": "Your message",
      "live.chatPlaceholder": "Write a message… (Enter sends)",
      "live.send": "Send",
      "live.chatEmpty": "No messages yet. Say hello!",
      "live.machineTranslated": "Machine translated",
      "live.originalShown": "Original",
      "live.showOriginal": "Show original",
      "live.showTranslation": "Show translation",
      "live.chatEmptyText": "Please type a message first.",
      "live.chatTooLong": "Your message is {count} characters long. Please shorten it to {max} characters or fewer.",
      "live.chatRefused": "Your message was not sent: {message}",
      "live.chatRateLimited": "You are sending messages too quickly. You can send again in {seconds} s.",
      "live.chatMutedSelf": "A moderator has muted you in this chat. You can still read it.",
      "live.delete": "Delete",
      "live.mute": "Mute",
      "live.unmute": "Unmute",
      "live.mutedChip": "Muted",
      "live.figures": "Live figures",
      "live.figuresUpdated": "Updated {time}",
      "live.figuresStale": "The figures could not be refreshed ({message}). Retrying…",
      "live.stat.current": "Watching now",
      "live.stat.peak": "Peak",
      "live.stat.unique": "Unique viewers",
      "live.stat.average": "Average watch time",
      "live.stat.total": "Total watch time",
      "live.stat.asked": "Questions asked",
      "live.stat.answered": "Questions answered",
      "live.stat.chat": "Chat messages",
      "live.seconds": "{s} s",
      "live.minutes": "{m} min {s} s",
      "live.hours": "{h} h {m} min",
      "live.sources": "Sources",
      "live.sourcesHint": "Everything being sent into this room. Viewers see the video source that is on air; switching does not interrupt them.",
      "live.sourcesEmpty": "No source is sending yet. Go live with your camera, or connect an encoder (WHIP) to this room.",
      "live.sourcesSummary": "{count} sources",
      "live.onAir": "On air",
      "live.putOnAir": "Put on air",
      "live.switching": "Switching…",
      "live.source.camera": "Camera",
      "live.source.screen": "Screen share",
      "live.source.encoder": "Encoder",
      "live.source.microphone": "Microphone",
      "live.kind.video": "Video",
      "live.kind.audio": "Sound",
      "live.programNone": "Nothing is on air yet: choose the video viewers should see.",
      "live.codecMismatch": "This source cannot go on air: it sends {codec} video, but viewers are receiving {program}. Fairwire never re-encodes, so set the encoder to {program} and try again.",
      "live.codecMismatchPlain": "This source cannot go on air: its video format differs from what viewers are receiving. Set the encoder to the same codec and try again.",
      "live.switchFailed": "Could not put this source on air: {message}",
      "error.not_found": "This no longer exists (it may have been removed).",
      "error.chat_muted": "A moderator has muted you in this chat.",
      "error.codec_mismatch": "This source uses another video format than the one viewers receive.",
      "error.missing_grant": "Your access link does not allow this.",
      "error.question_hidden": "A hidden question cannot be pinned. Show it again first.",
      "error.not_a_livestream": "This is only available in livestreams.",
      "error.invalid_field": "The server did not accept this: {message}",
      "error.track_not_found": "This source is no longer sending.",
    },
    zh: {
      "live.studio": "直播间后台",
      "live.pinnedLabel": "置顶问题",
      "live.questions": "提问",
      "live.questionCount": "{count} 个 · 已回答 {answered}",
      "live.askLabel": "您的问题",
      "live.askPlaceholder": "向展商提问…",
      "live.ask": "提问",
      "live.asking": "正在发送…",
      "live.askEmpty": "请先输入您的问题。",
      "live.askTooLong": "您的问题有 {count} 个字，请缩短到 {max} 个字以内。",
      "live.askRefused": "问题未能提交：{message}",
      "live.noQuestions": "还没有人提问，来问第一个问题吧。",
      "live.noQuestionsStudio": "还没有提问。观众的问题会显示在这里，点赞多的排在前面。",
      "live.upvote": "点赞（{count}）",
      "live.unvoteHint": "您已点赞，再点一次可取消。",
      "live.votes": "{count} 个赞",
      "live.voteOne": "1 个赞",
      "live.answered": "已回答",
      "live.pinned": "已置顶",
      "live.hidden": "已隐藏",
      "live.hiddenForAsker": "主持人已隐藏此问题：只有您和主持人能看到。",
      "live.markAnswered": "标为已回答",
      "live.markOpen": "重新打开",
      "live.pin": "置顶到画面",
      "live.unpin": "取消置顶",
      "live.hide": "隐藏",
      "live.unhide": "取消隐藏",
      "live.actionFailed": "操作未成功：{message}",
      "live.by": "{name} · {time}",
      "live.you": "{name}（我）",
      "live.chat": "聊天",
      "live.chatLabel": "您的消息",
      "live.chatPlaceholder": "输入消息…（按回车发送）",
      "live.send": "发送",
      "live.chatEmpty": "还没有消息，打个招呼吧！",
      "live.machineTranslated": "机器翻译",
      "live.originalShown": "原文",
      "live.showOriginal": "显示原文",
      "live.showTranslation": "显示译文",
      "live.chatEmptyText": "请先输入消息。",
      "live.chatTooLong": "您的消息有 {count} 个字，请缩短到 {max} 个字以内。",
      "live.chatRefused": "消息未能发送：{message}",
      "live.chatRateLimited": "您发送消息太快了，请 {seconds} 秒后再发。",
      "live.chatMutedSelf": "您已被主持人禁言，仍可查看聊天内容。",
      "live.delete": "删除",
      "live.mute": "禁言",
      "live.unmute": "解除禁言",
      "live.mutedChip": "已禁言",
      "live.figures": "实时数据",
      "live.figuresUpdated": "更新于 {time}",
      "live.figuresStale": "数据暂时无法刷新（{message}），正在重试…",
      "live.stat.current": "正在观看",
      "live.stat.peak": "最高同时在线",
      "live.stat.unique": "观看人数",
      "live.stat.average": "平均观看时长",
      "live.stat.total": "总观看时长",
      "live.stat.asked": "提问数",
      "live.stat.answered": "已回答",
      "live.stat.chat": "聊天消息",
      "live.seconds": "{s} 秒",
      "live.minutes": "{m} 分 {s} 秒",
      "live.hours": "{h} 小时 {m} 分",
      "live.sources": "信号源",
      "live.sourcesHint": "正在向本房间发送的所有信号。观众看到的是“直播中”的视频源；切换时观众的画面不会中断。",
      "live.sourcesEmpty": "还没有信号源。用摄像头开始直播，或将编码器（WHIP）接入本房间。",
      "live.sourcesSummary": "{count} 个信号源",
      "live.onAir": "直播中",
      "live.putOnAir": "切换到直播",
      "live.switching": "正在切换…",
      "live.source.camera": "摄像头",
      "live.source.screen": "屏幕共享",
      "live.source.encoder": "编码器",
      "live.source.microphone": "麦克风",
      "live.kind.video": "视频",
      "live.kind.audio": "声音",
      "live.programNone": "尚未选择直播画面：请选择观众要看的视频源。",
      "live.codecMismatch": "该信号源无法切换到直播：它发送的是 {codec} 视频，而观众接收的是 {program}。Fairwire 不做转码，请将编码器设置为 {program} 后重试。",
      "live.codecMismatchPlain": "该信号源无法切换到直播：它的视频格式与观众接收的不同。请将编码器设置为相同的编码后重试。",
      "live.switchFailed": "无法切换到该信号源：{message}",
      "error.not_found": "该内容已不存在（可能已被删除）。",
      "error.chat_muted": "您已被主持人禁言。",
      "error.codec_mismatch": "该信号源的视频格式与观众接收的不同。",
      "error.missing_grant": "您的访问链接不允许此操作。",
      "error.question_hidden": "已隐藏的问题不能置顶，请先取消隐藏。",
      "error.not_a_livestream": "仅直播中可用。",
      "error.invalid_field": "服务器未接受：{message}",
      "error.track_not_found": "该信号源已停止发送。",
    },
  });
  i18n.apply(); // the static markup's live.* words: i18n.js applied before they were added

  // -- state ------------------------------------------------------------------------------

  const features = { qa: false, chat: false, program: false }; // what the server offered
  const questions = new Map(); // id -> question
  const touched = new Map(); // question id -> the event counter when its last event came
  let eventCounter = 0;
  let voted = new Set();
  let chat = []; // oldest first
  let chatMuted = false;
  const mutedChatters = new Set(); // known from chat-muted events (moderators)
  let program = null; // {video, audio}
  let stats = null;
  let statsAt = null;
  let statsError = null;
  let statsTimer = null;
  let statsRunning = false;
  const actions = [];
  const busy = new Set(); // "kind:id" of requests on their way
  // Notices are functions giving their text, so that a language switch re-words them.
  let qaNotice = null;
  let askNotice = null;
  let chatNotice = null; // {text()} or {rateLimited: true}
  let sourcesNotice = null;
  let cooldownUntil = 0; // ms (Date.now()) until which the chat refuses us
  let cooldownTimer = null;
  let asking = false;
  let sending = false;
  let renderQueued = false;
  let stickChat = true; // the next render scrolls the chat to its newest message

  window.fairwireLive = {
    get questions() {
      return visibleQuestions();
    },
    get pinned() {
      return pinnedQuestion();
    },
    get chat() {
      return chat.slice();
    },
    get stats() {
      return stats;
    },
    get program() {
      return program;
    },
    get voted() {
      return [...voted];
    },
    get chatMuted() {
      return chatMuted;
    },
    get moderator() {
      return isModerator();
    },
    features,
    actions,
  };

  // -- helpers ----------------------------------------------------------------------------

  function button(className, onClick) {
    const node = el("button", "button button-small " + className);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  /** Characters as the server counts them (code points), after trimming. */
  function length(text) {
    return Array.from(text.trim()).length;
  }

  function formatNumber(n) {
    return new Intl.NumberFormat(i18n.locale()).format(n);
  }

  function formatTime(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "";
    return new Intl.DateTimeFormat(i18n.locale(), { timeStyle: "short" }).format(new Date(seconds * 1000));
  }

  function formatClock(ms) {
    return new Intl.DateTimeFormat(i18n.locale(), { timeStyle: "medium" }).format(new Date(ms));
  }

  function formatDuration(seconds) {
    const total = Math.max(0, Math.round(Number(seconds) || 0));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    if (h) return t("live.hours", { h, m });
    if (m) return t("live.minutes", { m, s });
    return t("live.seconds", { s });
  }

  function errorText(err) {
    const code = (err && err.code) || "unknown";
    const message = (err && err.message) || code;
    const key = "error." + code;
    const text = t(key, { message });
    return text === key ? t("error.unknown", { message }) : text;
  }

  function joined() {
    return fairwire.state === "joined" && !!fairwire.self;
  }

  function isLivestream() {
    return !!(fairwire.room && fairwire.room.kind === "livestream");
  }

  function myIdentity() {
    return fairwire.self ? fairwire.self.identity : null;
  }

  // -- machine translation -----------------------------------------------------------------
  // The server sends the original at once and a "translation" event when it has one per
  // language; a message shows in its reader's language (their link's), marked, with the
  // original one click away.
  const translated = new Map(); // message or question id -> {lang: {text, provider, from}}
  const showingOriginal = new Set();

  function readerLanguage() {
    const own = fairwire.self && typeof fairwire.self.language === "string" ? fairwire.self.language : "";
    return (own || i18n.lang || "en").split("-")[0].toLowerCase();
  }

  function translationOf(item) {
    const reader = readerLanguage();
    if (item.language && item.language === reader) return null;
    const all = translated.get(item.id);
    return all && all[reader] && typeof all[reader].text === "string" ? all[reader] : null;
  }

  function translationNote(onToggle) {
    const note = el("p", "translation-note");
    const mark = el("span", "translation-mark");
    const toggle = button("translation-toggle", onToggle);
    note.append(mark, toggle);
    note.hidden = true;
    return { note, mark, toggle };
  }

  /** Put the item's text in its reader's language (or the original) into `view`. */
  function paintTranslated(view, item, shownText) {
    const translation = shownText === undefined ? translationOf(item) : null;
    const original = showingOriginal.has(item.id);
    view.text.textContent = translation && !original ? translation.text : shownText === undefined ? item.text : shownText;
    view.text.lang = translation && !original ? readerLanguage() : item.language || "";
    view.translation.note.hidden = !translation;
    if (!translation) return;
    view.translation.mark.textContent = t(original ? "live.originalShown" : "live.machineTranslated");
    view.translation.toggle.textContent = t(original ? "live.showTranslation" : "live.showOriginal");
  }

  function toggleOriginal(id) {
    if (showingOriginal.has(id)) showingOriginal.delete(id);
    else showingOriginal.add(id);
    scheduleRender();
  }

  function addTranslations(byId, lang) {
    if (!byId || typeof byId !== "object") return;
    for (const [id, value] of Object.entries(byId)) {
      if (!value || typeof value !== "object") continue;
      const all = translated.get(id) || {};
      if (lang) all[lang] = value;
      else Object.assign(all, value);
      translated.set(id, all);
    }
  }

  const hasGrant = fairwire.hasGrant;
  /** Hosts (the `moderate` grant) and the room's owner exhibitor. */
  const isModerator = fairwire.moderates;

  function note(event, ok, err) {
    actions.push({ event, ok, code: ok ? null : (err && err.code) || "unknown", at: Date.now() });
    if (actions.length > ACTIONS_KEEP) actions.shift();
  }

  /** A request that records its outcome for tests; rethrows the error. */
  async function act(event, data) {
    try {
      const ack = await fairwire.request(event, data);
      note(event, true);
      return ack;
    } catch (err) {
      note(event, false, err);
      throw err;
    }
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    queueMicrotask(() => {
      renderQueued = false;
      render();
    });
  }

  // -- questions --------------------------------------------------------------------------

  function isQuestion(q) {
    return !!q && typeof q === "object" && typeof q.id === "string" && q.id !== "";
  }

  /** Keep the question's new state; a hidden one arrives without its text: keep ours. */
  function upsertQuestion(q) {
    if (!isQuestion(q)) return;
    const old = questions.get(q.id);
    const next = { ...q, text: typeof q.text === "string" ? q.text : "" };
    if (next.hidden && !next.text && old && old.text) next.text = old.text;
    questions.set(q.id, next);
    if (next.pinned) {
      // One pinned at a time, whatever order the unpinning event comes in.
      for (const [id, other] of questions) if (id !== q.id && other.pinned) questions.set(id, { ...other, pinned: false });
    }
  }

  function replaceQuestions(list) {
    const before = questions;
    const fresh = new Map();
    for (const q of Array.isArray(list) ? list : []) {
      if (!isQuestion(q)) continue;
      const old = before.get(q.id);
      const next = { ...q, text: typeof q.text === "string" ? q.text : "" };
      if (next.hidden && !next.text && old && old.text) next.text = old.text;
      fresh.set(q.id, next);
    }
    questions.clear();
    for (const [id, q] of fresh) questions.set(id, q);
  }

  /** Whether this page shows the question: a hidden one only to moderators and its asker. */
  function visible(q) {
    if (!q.hidden) return true;
    return (isModerator() || q.identity === myIdentity()) && !!q.text;
  }

  function rank(a, b) {
    if (!!a.answered !== !!b.answered) return a.answered ? 1 : -1;
    return (b.votes || 0) - (a.votes || 0) || (a.at || 0) - (b.at || 0) || (a.id < b.id ? -1 : 1);
  }

  function visibleQuestions() {
    return [...questions.values()].filter(visible).sort(rank);
  }

  function pinnedQuestion() {
    for (const q of questions.values()) if (q.pinned && !q.hidden && q.text) return q;
    return null;
  }

  /**
   * The ack of one's own change: its question is applied unless an event for that question
   * came after the request left (the event is as new or newer).
   */
  function fromAck(q, sentAt) {
    if (!isQuestion(q)) return;
    if ((touched.get(q.id) || 0) > sentAt) return;
    upsertQuestion(q);
  }

  async function ask(event) {
    event.preventDefault();
    if (asking) return;
    const input = $("ask-input");
    const count = length(input.value);
    if (!count) askNotice = () => t("live.askEmpty");
    else if (count > ASK_MAX) askNotice = () => t("live.askTooLong", { count: formatNumber(count), max: formatNumber(ASK_MAX) });
    else askNotice = null;
    if (askNotice) {
      render();
      input.focus();
      return;
    }
    asking = true;
    render();
    const sentAt = eventCounter;
    try {
      const ack = await act("question-ask", { text: input.value.trim() });
      fromAck(ack && ack.question, sentAt);
      input.value = "";
    } catch (err) {
      askNotice = err.code === "invalid_field" && count > ASK_MAX
        ? () => t("live.askTooLong", { count: formatNumber(count), max: formatNumber(ASK_MAX) })
        : () => t("live.askRefused", { message: errorText(err) });
    } finally {
      asking = false;
      render();
    }
  }

  /** A change to one question (vote, answer, pin, hide), one at a time per question. */
  async function questionAction(q, kind, event, data) {
    const key = kind + ":" + q.id;
    if (busy.has(key)) return;
    busy.add(key);
    qaNotice = null;
    render();
    const sentAt = eventCounter;
    try {
      const ack = await act(event, data);
      if (ack && typeof ack.voted === "boolean") {
        if (ack.voted) voted.add(q.id);
        else voted.delete(q.id);
      }
      fromAck(ack && ack.question, sentAt);
    } catch (err) {
      qaNotice = () => t("live.actionFailed", { message: errorText(err) });
    } finally {
      busy.delete(key);
      render();
    }
  }

  // -- chat -------------------------------------------------------------------------------

  function isMessage(m) {
    return !!m && typeof m === "object" && typeof m.id === "string" && typeof m.text === "string";
  }

  function addMessage(m) {
    if (!isMessage(m) || chat.some((x) => x.id === m.id)) return;
    chat.push(m);
    if (chat.length > CHAT_KEEP) chat = chat.slice(chat.length - CHAT_KEEP);
  }

  function cooldownSeconds() {
    return Math.max(0, Math.ceil((cooldownUntil - Date.now()) / 1000));
  }

  function startCooldown(seconds) {
    cooldownUntil = Date.now() + Math.max(1, Number(seconds) || 1) * 1000;
    window.clearInterval(cooldownTimer);
    cooldownTimer = window.setInterval(() => {
      if (cooldownSeconds() <= 0) {
        window.clearInterval(cooldownTimer);
        cooldownTimer = null;
        chatNotice = null;
      }
      render();
    }, 250);
  }

  async function sendChat(event) {
    if (event) event.preventDefault();
    if (sending || chatMuted || cooldownSeconds() > 0) return;
    const input = $("chat-input");
    const count = length(input.value);
    if (!count) chatNotice = { text: () => t("live.chatEmptyText") };
    else if (count > CHAT_MAX) chatNotice = { text: () => t("live.chatTooLong", { count: formatNumber(count), max: formatNumber(CHAT_MAX) }) };
    else chatNotice = null;
    if (chatNotice) {
      render();
      input.focus();
      return;
    }
    sending = true;
    render();
    try {
      const ack = await act("chat-send", { text: input.value.trim() });
      addMessage(ack && ack.message);
      input.value = "";
      stickChat = true;
    } catch (err) {
      if (err.code === "rate_limited") {
        const wait = err.data && typeof err.data.retry_after === "number" ? err.data.retry_after : 5;
        startCooldown(wait);
        chatNotice = { rateLimited: true };
      } else if (err.code === "chat_muted") {
        chatMuted = true;
        chatNotice = null;
      } else if (err.code === "invalid_field" && count > CHAT_MAX) {
        chatNotice = { text: () => t("live.chatTooLong", { count: formatNumber(count), max: formatNumber(CHAT_MAX) }) };
      } else {
        chatNotice = { text: () => t("live.chatRefused", { message: errorText(err) }) };
      }
    } finally {
      sending = false;
      render();
      if (!chatMuted) input.focus();
    }
  }

  async function chatAction(key, event, data) {
    if (busy.has(key)) return;
    busy.add(key);
    qaNotice = null;
    render();
    try {
      await act(event, data);
      if (event === "chat-delete") chat = chat.filter((m) => m.id !== data.id);
      if (event === "chat-mute") {
        if (data.muted) mutedChatters.add(data.identity);
        else mutedChatters.delete(data.identity);
      }
      chatNotice = null;
    } catch (err) {
      chatNotice = { text: () => t("live.actionFailed", { message: errorText(err) }) };
    } finally {
      busy.delete(key);
      render();
    }
  }

  // -- program ----------------------------------------------------------------------------

  function allTracks() {
    const out = [];
    for (const p of fairwire.participants || []) {
      for (const track of Array.isArray(p.tracks) ? p.tracks : []) {
        if (track && typeof track.id === "string") out.push({ participant: p, track });
      }
    }
    return out;
  }

  function trackById(id) {
    if (!id) return null;
    return allTracks().find((x) => x.track.id === id) || null;
  }

  function codecName(track) {
    const codec = String(track.codec || "").replace(/^(video|audio)\//i, "");
    const name = /^h\.?264$/i.test(codec) ? "H.264" : /^opus$/i.test(codec) ? "Opus" : codec.toUpperCase();
    return track.profile ? name + " " + track.profile : name;
  }

  async function putOnAir(entry) {
    const key = "program:" + entry.track.id;
    if (busy.has(key)) return;
    busy.add(key);
    sourcesNotice = null;
    render();
    // The other kind stays as it is: the presenter's microphone across video switches.
    const data = entry.track.kind === "video" ? { video: entry.track.id } : { audio: entry.track.id };
    try {
      const ack = await act("program-set", data);
      if (ack && ack.program && typeof ack.program === "object") program = ack.program;
    } catch (err) {
      if (err.code === "codec_mismatch") {
        const onAir = trackById(program && program.video);
        const codec = codecName(entry.track);
        const receiving = onAir ? codecName(onAir.track) : "";
        sourcesNotice = receiving
          ? () => t("live.codecMismatch", { codec, program: receiving })
          : () => t("live.codecMismatchPlain");
      } else {
        sourcesNotice = () => t("live.switchFailed", { message: errorText(err) });
      }
    } finally {
      busy.delete(key);
      render();
    }
  }

  // Viewers of a livestream watch the program (one video, one audio: stream id "program");
  // moderators receive every source to choose from.
  fairwire.hooks.subscription = () => (features.program && isLivestream() && !isModerator() ? { program: true } : {});
  // The studio's camera goes out in the codec the room's other video sources use (an
  // encoder's H.264): program sources must share one, nothing is transcoded.
  fairwire.hooks.videoCodec = () => {
    if (!isLivestream()) return null;
    const me = myIdentity();
    const others = allTracks().filter(({ participant: p, track }) => track.kind === "video" && track.codec
      && !(p.identity === me && (track.source === "camera" || track.source === "screen")));
    const onAir = others.find((x) => program && x.track.id === program.video);
    const pick = onAir || others.find((x) => x.track.source === "encoder") || others[0];
    return pick ? { codec: pick.track.codec, profile: pick.track.profile || "" } : null;
  };
  // A shared screen that stops while on air hands the picture back to the camera, not to
  // black: the switch comes first, so viewers see no gap.
  fairwire.hooks.screenStopping = async () => {
    if (!program || !isModerator()) return;
    const mine = allTracks().filter(({ participant: p }) => p.identity === myIdentity());
    const screen = mine.find((x) => x.track.source === "screen" && x.track.id === program.video);
    const camera = mine.find((x) => x.track.source === "camera" && x.track.kind === "video");
    if (!screen || !camera) return;
    try {
      const ack = await act("program-set", { video: camera.track.id });
      if (ack && ack.program && typeof ack.program === "object") program = ack.program;
    } catch (_) {
      /* the screen goes, the program's video is silent: the studio picks another */
    }
  };
  fairwire.hooks.streamOwner = (streamId) => {
    if (streamId !== "program") return streamId;
    if (!program || !program.video) return null; // nothing on air: no black tile
    const onAir = trackById(program.video);
    return onAir ? onAir.participant.identity : streamId;
  };

  // -- figures ----------------------------------------------------------------------------

  function wantStats() {
    return joined() && isLivestream() && isModerator() && fairwire.room.status !== "ended";
  }

  async function pollStats() {
    statsTimer = null;
    if (!wantStats()) {
      statsRunning = false;
      return;
    }
    const path = "/api/rooms/" + encodeURIComponent(fairwire.room.id) + "/stats";
    try {
      const response = await fetch(path, {
        headers: { Accept: "application/json", Authorization: "Bearer " + fairwire.credential },
        cache: "no-store",
        credentials: "omit",
      });
      let data = null;
      try {
        data = await response.json();
      } catch (_) {
        data = null;
      }
      if (response.ok && data && typeof data === "object") {
        stats = data;
        statsAt = Date.now();
        statsError = null;
      } else {
        const error = data && data.error ? data.error : { code: "http_" + response.status, message: "HTTP " + response.status };
        statsError = error;
        if (response.status === 403 || response.status === 404) {
          statsRunning = false; // not ours to see: stop asking
          render();
          return;
        }
      }
    } catch (err) {
      statsError = { code: "connect_failed", message: String(err && err.message ? err.message : err) };
    }
    render();
    statsTimer = window.setTimeout(pollStats, STATS_MS);
  }

  function updateStatsPolling() {
    if (wantStats()) {
      if (!statsRunning) {
        statsRunning = true;
        pollStats();
      }
    } else if (statsRunning) {
      window.clearTimeout(statsTimer);
      statsTimer = null;
      statsRunning = false;
    }
  }

  // -- what room.js tells -----------------------------------------------------------------

  document.addEventListener("fairwire:catch-up", (e) => {
    const { via, ack } = e.detail || {};
    if (!ack || typeof ack !== "object") return;
    if (via === "join") {
      // A join (the first, or after a reconnect) brings the whole state: it replaces ours.
      if (ack.qa && typeof ack.qa === "object") {
        features.qa = true;
        replaceQuestions(ack.qa.questions);
        voted = new Set(Array.isArray(ack.qa.voted) ? ack.qa.voted.filter((x) => typeof x === "string") : []);
      } else {
        features.qa = false;
      }
      features.chat = Array.isArray(ack.chat);
      if (features.chat) {
        chat = [];
        for (const m of ack.chat) addMessage(m);
        addTranslations(ack.translations, readerLanguage());
        stickChat = true;
      }
      chatMuted = ack.chat_muted === true;
      features.program = "program" in ack;
      program = ack.program && typeof ack.program === "object" ? ack.program : null;
    } else if (via === "sync" && ack.snapshot && features.qa) {
      // The log no longer had what was missed: ask for the questions as they are now.
      refetchQuestions();
    }
    scheduleRender();
  });

  document.addEventListener("fairwire:room-event", (e) => {
    const event = e.detail && e.detail.event;
    if (!event) return;
    switch (event.type) {
      case "question":
        if (!isQuestion(event.question)) return;
        eventCounter += 1;
        touched.set(event.question.id, eventCounter);
        upsertQuestion(event.question);
        break;
      case "chat":
        addMessage(event.message);
        break;
      case "translation":
        if (typeof event.id !== "string") return;
        addTranslations({ [event.id]: event.translations });
        break;
      case "chat-deleted":
        chat = chat.filter((m) => m.id !== event.id);
        break;
      case "chat-muted":
        if (typeof event.identity !== "string") return;
        if (event.muted) mutedChatters.add(event.identity);
        else mutedChatters.delete(event.identity);
        if (event.identity === myIdentity()) chatMuted = event.muted === true;
        break;
      case "program":
        program = event.program && typeof event.program === "object" ? event.program : null;
        break;
      default:
        return;
    }
    scheduleRender();
  });

  document.addEventListener("fairwire:render", () => {
    updateStatsPolling();
    render();
  });

  async function refetchQuestions() {
    if (!fairwire.room) return;
    const sentAt = eventCounter; // what changes after this is newer than the answer
    try {
      const response = await fetch("/api/rooms/" + encodeURIComponent(fairwire.room.id) + "/questions", {
        headers: { Accept: "application/json", Authorization: "Bearer " + fairwire.credential },
        cache: "no-store",
        credentials: "omit",
      });
      const data = await response.json();
      if (response.ok && data && Array.isArray(data.questions)) {
        for (const q of data.questions) fromAck(q, sentAt);
        render();
      }
    } catch (_) {
      /* the next join brings them */
    }
  }

  // -- rendering --------------------------------------------------------------------------

  function render() {
    const on = joined();
    const live = isLivestream();
    const moderator = isModerator();
    $("studio-chip").hidden = !(on && live && moderator);
    renderPinned(on && live);
    renderQuestions(on && live && features.qa, moderator);
    renderChat(on && features.chat, moderator);
    renderFigures(on && live && moderator);
    renderSources(on && live && moderator && features.program);
  }

  function renderPinned(show) {
    const q = show ? pinnedQuestion() : null;
    const box = $("pinned");
    box.hidden = !q;
    if (!q) return;
    $("pinned-text").textContent = q.text;
    $("pinned-text").title = q.text;
    $("pinned-who").textContent = q.name || "";
  }

  // Question items are kept and updated in place, so that focus stays on a button pressed.
  const questionViews = new Map(); // id -> view

  function questionView(id) {
    let view = questionViews.get(id);
    if (view) return view;
    const li = el("li", "question");
    li.dataset.id = id;
    const vote = button("vote-button", () => {
      const q = questions.get(id);
      if (q) questionAction(q, "vote", "question-vote", { id });
    });
    const arrow = el("span", "vote-arrow");
    arrow.setAttribute("aria-hidden", "true");
    const votes = el("span", "vote-count");
    vote.append(arrow, votes);
    const body = el("div", "question-body");
    const text = el("p", "question-text");
    const translation = translationNote(() => toggleOriginal(id));
    const meta = el("div", "question-meta");
    const who = el("span", "question-who");
    const chips = el("span", "question-chips");
    meta.append(who, chips);
    const hint = el("p", "question-note");
    const tools = el("div", "question-actions");
    const answer = button("button-secondary question-answer", () => {
      const q = questions.get(id);
      if (q) questionAction(q, "answer", "question-answer", { id, answered: !q.answered });
    });
    const pin = button("button-secondary question-pin", () => {
      const q = questions.get(id);
      if (q) questionAction(q, "pin", "question-pin", { id: q.pinned ? null : id });
    });
    const hide = button("button-secondary question-hide", () => {
      const q = questions.get(id);
      if (q) questionAction(q, "hide", "question-hide", { id, hidden: !q.hidden });
    });
    tools.append(answer, pin, hide);
    body.append(text, translation.note, meta, hint, tools);
    li.append(vote, body);
    view = { li, vote, votes, text, translation, who, chips, hint, tools, answer, pin, hide };
    questionViews.set(id, view);
    return view;
  }

  function chip(className, text) {
    return el("span", "chip " + className, text);
  }

  function paintQuestion(view, q, moderator) {
    const mine = q.identity === myIdentity();
    const count = q.votes || 0;
    const hasVote = voted.has(q.id);
    view.li.classList.toggle("question-answered", !!q.answered);
    view.li.classList.toggle("question-hidden", !!q.hidden);
    view.li.classList.toggle("question-pinned", !!q.pinned);
    view.li.dataset.votes = String(count);
    view.votes.textContent = formatNumber(count);
    view.vote.setAttribute("aria-pressed", String(hasVote));
    // A toggle: pressed is one's own vote; the label stays the same.
    view.vote.setAttribute("aria-label", t("live.upvote", { count: formatNumber(count) }));
    view.vote.title = hasVote ? t("live.unvoteHint")
      : count === 1 ? t("live.voteOne") : t("live.votes", { count: formatNumber(count) });
    view.vote.disabled = !!q.hidden || busy.has("vote:" + q.id) || !hasGrant("subscribe");
    // A hidden question's text is not sent to viewers: nothing to translate either.
    if (q.hidden && !q.text) paintTranslated(view, q, q.text);
    else paintTranslated(view, q);
    const name = mine ? t("live.you", { name: q.name || "" }) : q.name || q.identity;
    view.who.textContent = t("live.by", { name, time: formatTime(q.at) });
    const chips = [];
    if (q.answered) chips.push(chip("chip-answered", t("live.answered")));
    if (q.pinned) chips.push(chip("chip-pinned", t("live.pinned")));
    if (q.hidden) chips.push(chip("chip-hidden", t("live.hidden")));
    view.chips.replaceChildren(...chips);
    view.hint.hidden = !(q.hidden && mine && !moderator);
    view.hint.textContent = view.hint.hidden ? "" : t("live.hiddenForAsker");
    view.tools.hidden = !moderator;
    if (moderator) {
      view.answer.textContent = t(q.answered ? "live.markOpen" : "live.markAnswered");
      view.answer.disabled = busy.has("answer:" + q.id);
      view.pin.textContent = t(q.pinned ? "live.unpin" : "live.pin");
      view.pin.disabled = busy.has("pin:" + q.id) || (!!q.hidden && !q.pinned);
      view.hide.textContent = t(q.hidden ? "live.unhide" : "live.hide");
      view.hide.disabled = busy.has("hide:" + q.id);
    }
  }

  /** Put `items` in `list` in this order, moving only what is out of place. */
  function arrange(list, items) {
    const keep = new Set(items);
    for (const child of [...list.children]) if (!keep.has(child)) child.remove();
    items.forEach((item, i) => {
      if (list.children[i] !== item) list.insertBefore(item, list.children[i] || null);
    });
  }

  function renderQuestions(show, moderator) {
    $("qa-panel").hidden = !show;
    if (!show) return;
    const shown = visibleQuestions();
    for (const id of [...questionViews.keys()]) if (!questions.has(id)) questionViews.delete(id);
    const items = shown.map((q) => {
      const view = questionView(q.id);
      paintQuestion(view, q, moderator);
      return view.li;
    });
    arrange($("questions"), items);
    const answered = shown.filter((q) => q.answered).length;
    $("qa-count").textContent = shown.length
      ? t("live.questionCount", { count: formatNumber(shown.length), answered: formatNumber(answered) })
      : "";
    const empty = $("qa-empty");
    empty.hidden = shown.length > 0;
    empty.textContent = t(moderator ? "live.noQuestionsStudio" : "live.noQuestions");

    const form = $("ask-form");
    form.hidden = !hasGrant("subscribe");
    const input = $("ask-input");
    const count = length(input.value);
    const counter = $("ask-counter");
    counter.textContent = formatNumber(count) + " / " + formatNumber(ASK_MAX);
    counter.classList.toggle("counter-over", count > ASK_MAX);
    input.setAttribute("aria-invalid", String(count > ASK_MAX));
    $("ask-submit").disabled = asking;
    $("ask-submit").textContent = t(asking ? "live.asking" : "live.ask");
    const error = $("ask-error");
    error.hidden = !askNotice;
    error.textContent = askNotice ? askNotice() : "";
    const notice = $("qa-notice");
    notice.hidden = !qaNotice;
    notice.textContent = qaNotice ? qaNotice() : "";
  }

  const messageViews = new Map(); // id -> view

  function messageView(m) {
    let view = messageViews.get(m.id);
    if (view) return view;
    const li = el("li", "chat-message");
    li.dataset.id = m.id;
    li.dataset.identity = m.identity;
    const head = el("div", "chat-head");
    const who = el("span", "chat-who");
    const time = el("time", "chat-time");
    const muted = chip("chip-muted", "");
    head.append(who, muted, time);
    const text = el("p", "chat-text", m.text);
    const translation = translationNote(() => toggleOriginal(m.id));
    const tools = el("span", "chat-actions");
    const del = button("button-secondary chat-delete", () => chatAction("delete:" + m.id, "chat-delete", { id: m.id }));
    const mute = button("button-secondary chat-mute", () => {
      const muteNow = !mutedChatters.has(m.identity);
      chatAction("mute:" + m.identity, "chat-mute", { identity: m.identity, muted: muteNow });
    });
    tools.append(del, mute);
    li.append(head, text, translation.note, tools);
    view = { li, who, time, muted, text, translation, tools, del, mute };
    messageViews.set(m.id, view);
    return view;
  }

  function paintMessage(view, m, moderator) {
    const mine = m.identity === myIdentity();
    view.li.classList.toggle("chat-mine", mine);
    view.who.textContent = mine ? t("live.you", { name: m.name || "" }) : m.name || m.identity;
    view.time.textContent = formatTime(m.at);
    paintTranslated(view, m);
    const isMuted = mutedChatters.has(m.identity);
    view.muted.hidden = !(moderator && isMuted);
    view.muted.textContent = t("live.mutedChip");
    view.tools.hidden = !moderator;
    if (moderator) {
      view.del.textContent = t("live.delete");
      view.del.disabled = busy.has("delete:" + m.id);
      view.mute.hidden = mine;
      view.mute.textContent = t(isMuted ? "live.unmute" : "live.mute");
      view.mute.disabled = busy.has("mute:" + m.identity);
    }
  }

  function renderChat(show, moderator) {
    $("chat-panel").hidden = !show;
    if (!show) return;
    const list = $("chat");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < CHAT_STICK_PX;
    const ids = new Set(chat.map((m) => m.id));
    for (const id of [...messageViews.keys()]) if (!ids.has(id)) messageViews.delete(id);
    const items = chat.map((m) => {
      const view = messageView(m);
      paintMessage(view, m, moderator);
      return view.li;
    });
    arrange(list, items);
    if (atBottom || stickChat) list.scrollTop = list.scrollHeight;
    stickChat = false;
    const empty = $("chat-empty");
    empty.hidden = chat.length > 0;
    empty.textContent = t("live.chatEmpty");

    const form = $("chat-form");
    form.hidden = !hasGrant("subscribe");
    const input = $("chat-input");
    const count = length(input.value);
    const counter = $("chat-counter");
    counter.textContent = formatNumber(count) + " / " + formatNumber(CHAT_MAX);
    counter.classList.toggle("counter-over", count > CHAT_MAX);
    input.setAttribute("aria-invalid", String(count > CHAT_MAX));
    input.disabled = chatMuted;
    const waiting = cooldownSeconds();
    $("chat-submit").disabled = sending || chatMuted || waiting > 0;
    $("chat-submit").textContent = t("live.send");
    let text = "";
    if (chatMuted) text = t("live.chatMutedSelf");
    else if (chatNotice && chatNotice.rateLimited) text = waiting > 0 ? t("live.chatRateLimited", { seconds: waiting }) : "";
    else if (chatNotice) text = chatNotice.text();
    const error = $("chat-error");
    error.hidden = !text;
    error.textContent = text;
    error.classList.toggle("notice-warn", chatMuted || !!(chatNotice && chatNotice.rateLimited));
    error.classList.toggle("notice-error", !(chatMuted || (chatNotice && chatNotice.rateLimited)));
  }

  const FIGURES = [
    ["current", "live.stat.current", "count"],
    ["peak", "live.stat.peak", "count"],
    ["unique_viewers", "live.stat.unique", "count"],
    ["average_watch_seconds", "live.stat.average", "duration"],
    ["total_watch_seconds", "live.stat.total", "duration"],
    ["questions_asked", "live.stat.asked", "count"],
    ["questions_answered", "live.stat.answered", "count"],
    ["chat_messages", "live.stat.chat", "count"],
  ];

  function renderFigures(show) {
    const panel = $("figures-panel");
    panel.hidden = !show || (!stats && !statsError);
    if (panel.hidden) return;
    const list = $("figures");
    const items = FIGURES.map(([field, key, format]) => {
      const item = el("div", "figure");
      item.dataset.figure = field;
      const value = stats ? stats[field] : null;
      const shown = typeof value !== "number" ? "–" : format === "duration" ? formatDuration(value) : formatNumber(value);
      item.append(el("dt", "figure-label", t(key)), el("dd", "figure-value", shown));
      return item;
    });
    list.replaceChildren(...items);
    $("figures-updated").textContent = statsAt ? t("live.figuresUpdated", { time: formatClock(statsAt) }) : "";
    const error = $("figures-error");
    error.hidden = !statsError;
    error.textContent = statsError ? t("live.figuresStale", { message: errorText(statsError) }) : "";
  }

  function sourceLabel(track) {
    const key = "live.source." + track.source;
    const text = t(key);
    return text === key ? String(track.source || t("live.kind." + track.kind)) : text;
  }

  function renderSources(show) {
    $("sources-panel").hidden = !show;
    if (!show) return;
    const entries = allTracks().filter((x) => x.track.kind === "video" || x.track.kind === "audio");
    entries.sort((a, b) => (a.track.kind === b.track.kind ? 0 : a.track.kind === "video" ? -1 : 1));
    const items = entries.map((entry) => {
      const { participant: p, track } = entry;
      const onAir = !!program && (track.kind === "video" ? program.video === track.id : program.audio === track.id);
      const li = el("li", "source" + (onAir ? " source-on-air" : ""));
      li.dataset.track = track.id;
      li.dataset.kind = track.kind;
      const kind = el("span", "source-kind source-kind-" + track.kind, t("live.kind." + track.kind));
      const text = el("span", "source-text");
      text.append(el("span", "source-name", sourceLabel(track)), el("span", "source-who", p.name || p.identity));
      const codec = el("span", "source-codec", codecName(track));
      li.append(kind, text, codec);
      if (onAir) {
        li.appendChild(el("span", "badge badge-live source-badge", t("live.onAir")));
      } else {
        const key = "program:" + track.id;
        const put = button("source-put", () => putOnAir(entry));
        put.textContent = busy.has(key) ? t("live.switching") : t("live.putOnAir");
        put.disabled = busy.has(key);
        li.appendChild(put);
      }
      return li;
    });
    if (!items.length) items.push(el("li", "source-empty", t("live.sourcesEmpty")));
    $("sources").replaceChildren(...items);
    $("sources-summary").textContent = entries.length ? t("live.sourcesSummary", { count: formatNumber(entries.length) }) : "";
    const error = $("sources-error");
    const text = sourcesNotice ? sourcesNotice() : entries.length && !(program && program.video) ? t("live.programNone") : "";
    error.hidden = !text;
    error.textContent = text;
    error.classList.toggle("notice-error", !!sourcesNotice);
    error.classList.toggle("notice-info", !sourcesNotice);
  }

  // -- start ------------------------------------------------------------------------------

  $("ask-form").addEventListener("submit", ask);
  $("ask-input").addEventListener("input", () => {
    if (askNotice && length($("ask-input").value) <= ASK_MAX) askNotice = null;
    render();
  });
  $("chat-form").addEventListener("submit", sendChat);
  $("chat-input").addEventListener("input", () => {
    if (chatNotice && !chatNotice.rateLimited && length($("chat-input").value) <= CHAT_MAX) chatNotice = null;
    render();
  });
  $("chat-input").addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter starts a new line; never while an input method composes.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      sendChat();
    }
  });
  render();
})();
