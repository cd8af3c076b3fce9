/* Fairwire meeting moderation on the room page (issue #10): the lobby, mutes a moderator
 * holds, removal, the lock, raised hands and the floor with its countdown, the end.
 * Loaded after room.js.
 *
 * Talks to room.js through window.fairwire: fairwire.request("meeting", {action, ...}) ->
 * {meeting} or throws {code, message}; fairwire.moderates(); fairwire.participantControls
 * (one added here: a moderator's buttons beside each participant); document events
 * "fairwire:catch-up" {ack} (a meeting's join carries `meeting`), "fairwire:room-event"
 * {event} (type "meeting": the new state) and "fairwire:render".
 * The state is {lobby, locked, ended, waiting: [{identity, name, since}], muted: {identity:
 * [kind]}, unmute_requests: [{identity, kind}], hands: [identity], floor: {identity, since,
 * until} | null} (docs/socketio.md, "Meetings: moderation").
 *
 * For tests: window.fairwireMeeting = {state, actions: [{action, ok, code}]}.
 */
(function () {
  "use strict";

  const el = window.FairwireDom.el; // dom.js

  const fairwire = window.fairwire;
  const i18n = window.FairwireI18n;
  if (!fairwire || !i18n) return;
  const t = i18n.t;
  const $ = (id) => document.getElementById(id);

  i18n.add({
    en: {
      "meeting.panel": "Meeting controls",
      "meeting.lobby": "Lobby",
      "meeting.lobbyOn": "Newcomers wait in the lobby",
      "meeting.lobbyOff": "Newcomers come straight in",
      "meeting.lock": "Lock the meeting",
      "meeting.unlock": "Unlock the meeting",
      "meeting.locked": "Locked: nobody new can join.",
      "meeting.waiting": "Waiting to join ({count})",
      "meeting.nobodyWaiting": "Nobody is waiting.",
      "meeting.admit": "Admit",
      "meeting.deny": "Deny",
      "meeting.hands": "Raised hands",
      "meeting.noHands": "No hands raised.",
      "meeting.giveFloor": "Give the floor",
      "meeting.floorFor": "Time box (seconds)",
      "meeting.floorOpen": "no limit",
      "meeting.seconds": "{s} s",
      "meeting.endFloor": "End the floor",
      "meeting.floor": "{name} has the floor",
      "meeting.floorLeft": "{name} has the floor · {time} left",
      "meeting.end": "End the meeting for everyone",
      "meeting.endConfirm": "End this meeting for everyone? Everyone leaves and nobody can come back.",
      "meeting.raiseHand": "Raise hand",
      "meeting.lowerHand": "Lower hand",
      "meeting.handRaised": "Your hand is raised ({position} in line).",
      "meeting.mutedMic": "A moderator muted your microphone.",
      "meeting.mutedCam": "A moderator turned off your camera.",
      "meeting.askUnmute": "Ask to unmute",
      "meeting.asked": "Asked: waiting for a moderator.",
      "meeting.muteMic": "Mute mic",
      "meeting.allowMic": "Allow mic",
      "meeting.muteCam": "Stop camera",
      "meeting.allowCam": "Allow camera",
      "meeting.remove": "Remove",
      "meeting.removeConfirm": "Remove {name} from this meeting? They cannot come back.",
      "meeting.wantsToUnmute": "asks to unmute",
      "meeting.hand": "Hand raised",
      "meeting.failed": "That did not work: {message}",
      "error.muted_by_moderator": "A moderator muted you. Ask to unmute.",
      "error.no_hands": "Nobody has raised a hand.",
      "error.not_waiting": "This person is no longer waiting.",
    },
    zh: {
      "meeting.panel": "会议控制",
      "meeting.lobby": "等候室",
      "meeting.lobbyOn": "新来者先在等候室等候",
      "meeting.lobbyOff": "新来者直接进入",
      "meeting.lock": "锁定会议",
      "meeting.unlock": "解除锁定",
      "meeting.locked": "已锁定：任何新人都无法加入。",
      "meeting.waiting": "等候加入（{count}）",
      "meeting.nobodyWaiting": "没有人在等候。",
      "meeting.admit": "允许进入",
      "meeting.deny": "拒绝",
      "meeting.hands": "举手",
      "meeting.noHands": "没有人举手。",
      "meeting.giveFloor": "请其发言",
      "meeting.floorFor": "限时（秒）",
      "meeting.floorOpen": "不限时",
      "meeting.seconds": "{s} 秒",
      "meeting.endFloor": "结束发言",
      "meeting.floor": "{name} 正在发言",
      "meeting.floorLeft": "{name} 正在发言 · 还剩 {time}",
      "meeting.end": "为所有人结束会议",
      "meeting.endConfirm": "确定为所有人结束本次会议吗？所有人都将离开，且无法再次进入。",
      "meeting.raiseHand": "举手",
      "meeting.lowerHand": "放下手",
      "meeting.handRaised": "您已举手（排第 {position} 位）。",
      "meeting.mutedMic": "主持人已将您的麦克风静音。",
      "meeting.mutedCam": "主持人已关闭您的摄像头。",
      "meeting.askUnmute": "申请取消静音",
      "meeting.asked": "已申请，等待主持人处理。",
      "meeting.muteMic": "静音",
      "meeting.allowMic": "允许发言",
      "meeting.muteCam": "关闭摄像头",
      "meeting.allowCam": "允许摄像头",
      "meeting.remove": "移出",
      "meeting.removeConfirm": "确定将 {name} 移出本次会议吗？对方将无法再次进入。",
      "meeting.wantsToUnmute": "申请取消静音",
      "meeting.hand": "已举手",
      "meeting.failed": "操作未成功：{message}",
      "error.muted_by_moderator": "主持人已将您静音，请申请取消静音。",
      "error.no_hands": "没有人举手。",
      "error.not_waiting": "此人已不在等候中。",
    },
  });
  i18n.apply();

  const view = (window.fairwireMeeting = { state: null, actions: [] });
  let failure = null;
  let floorTimer = 0;

  function isMeeting() {
    return !!(fairwire.room && fairwire.room.kind === "meeting");
  }

  function me() {
    return fairwire.self ? fairwire.self.identity : null;
  }

  function nameOf(identity) {
    const person = fairwire.participants.find((p) => p.identity === identity);
    if (person) return person.name || identity;
    const waiting = view.state && view.state.waiting.find((w) => w.identity === identity);
    return waiting ? waiting.name || identity : identity;
  }

  function mutedKinds(identity) {
    return (view.state && view.state.muted[identity]) || [];
  }

  function button(text, onClick, className) {
    const b = el("button", className || "button button-small button-secondary", text);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }

  async function act(action, data) {
    failure = null;
    try {
      const reply = await fairwire.request("meeting", { action, ...(data || {}) });
      if (reply && reply.meeting) view.state = reply.meeting;
      view.actions.push({ action, ok: true });
    } catch (err) {
      view.actions.push({ action, ok: false, code: err.code });
      failure = err;
    }
    render();
  }

  // -- the moderator's buttons beside each participant --------------------------------------

  fairwire.participantControls.push((person) => {
    if (!isMeeting() || !view.state || !fairwire.moderates() || person.identity === me()) return null;
    const box = el("span", "meeting-person-actions");
    const muted = mutedKinds(person.identity);
    const asks = view.state.unmute_requests.filter((r) => r.identity === person.identity);
    if (asks.length) box.appendChild(el("span", "chip chip-ask", t("meeting.wantsToUnmute")));
    if (view.state.hands.includes(person.identity)) box.appendChild(el("span", "chip chip-hand", t("meeting.hand")));
    box.appendChild(muted.includes("audio")
      ? button(t("meeting.allowMic"), () => act("allow-unmute", { identity: person.identity, kind: "audio" }))
      : button(t("meeting.muteMic"), () => act("mute", { identity: person.identity, kind: "audio" })));
    box.appendChild(muted.includes("video")
      ? button(t("meeting.allowCam"), () => act("allow-unmute", { identity: person.identity, kind: "video" }))
      : button(t("meeting.muteCam"), () => act("mute", { identity: person.identity, kind: "video" })));
    box.appendChild(button(t("meeting.remove"), () => {
      if (window.confirm(t("meeting.removeConfirm", { name: person.name || person.identity }))) {
        act("remove", { identity: person.identity });
      }
    }, "button button-small button-danger"));
    return box;
  });

  // -- rendering --------------------------------------------------------------------------

  function formatLeft(seconds) {
    const s = Math.max(0, Math.ceil(seconds));
    return s >= 60 ? `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}` : t("meeting.seconds", { s });
  }

  function renderFloor() {
    const banner = $("floor-banner");
    const floor = view.state && view.state.floor;
    banner.hidden = !isMeeting() || !floor;
    window.clearTimeout(floorTimer);
    if (!floor) return;
    const name = nameOf(floor.identity);
    if (floor.until) {
      const left = floor.until - Date.now() / 1000;
      banner.textContent = t("meeting.floorLeft", { name, time: formatLeft(left) });
      banner.dataset.left = String(Math.max(0, Math.ceil(left)));
      if (left > 0) floorTimer = window.setTimeout(renderFloor, 250);
    } else {
      banner.textContent = t("meeting.floor", { name });
      delete banner.dataset.left;
    }
  }

  function renderSelf() {
    const box = $("meeting-self");
    const state = view.state;
    const show = isMeeting() && !!state && fairwire.state === "joined";
    box.hidden = !show;
    if (!show) return;
    const identity = me();
    const parts = [];
    const muted = mutedKinds(identity);
    for (const kind of muted) {
      const line = el("p", "notice notice-warn meeting-muted");
      line.dataset.kind = kind;
      line.appendChild(el("span", "", t(kind === "audio" ? "meeting.mutedMic" : "meeting.mutedCam")));
      const asked = state.unmute_requests.some((r) => r.identity === identity && r.kind === kind);
      if (asked) line.appendChild(el("span", "meeting-asked", " " + t("meeting.asked")));
      else line.appendChild(button(t("meeting.askUnmute"), () => act("ask-unmute", { kind })));
      parts.push(line);
    }
    const raised = state.hands.indexOf(identity);
    const hand = button(t(raised >= 0 ? "meeting.lowerHand" : "meeting.raiseHand"),
      () => act(raised >= 0 ? "lower-hand" : "raise-hand"), "button button-secondary");
    hand.id = "raise-hand";
    hand.setAttribute("aria-pressed", String(raised >= 0));
    const row = el("div", "meeting-self-row");
    row.appendChild(hand);
    if (raised >= 0) row.appendChild(el("span", "meeting-hand-place", t("meeting.handRaised", { position: raised + 1 })));
    parts.push(row);
    box.replaceChildren(...parts);
  }

  function renderPanel() {
    const panel = $("meeting-panel");
    const state = view.state;
    const show = isMeeting() && !!state && fairwire.state === "joined" && fairwire.moderates();
    panel.hidden = !show;
    if (!show) return;
    $("meeting-lobby-state").textContent = t(state.lobby ? "meeting.lobbyOn" : "meeting.lobbyOff");
    const lobby = $("meeting-lobby-toggle");
    lobby.checked = state.lobby;
    const lock = $("meeting-lock");
    lock.textContent = t(state.locked ? "meeting.unlock" : "meeting.lock");
    lock.setAttribute("aria-pressed", String(state.locked));
    $("meeting-locked").hidden = !state.locked;

    $("meeting-waiting-title").textContent = t("meeting.waiting", { count: state.waiting.length });
    const waiting = $("meeting-waiting");
    waiting.replaceChildren(...(state.waiting.length ? state.waiting.map((w) => {
      const li = el("li", "meeting-row");
      li.dataset.identity = w.identity;
      li.appendChild(el("span", "meeting-row-name", w.name || w.identity));
      li.appendChild(button(t("meeting.admit"), () => act("admit", { identity: w.identity }), "button button-small"));
      li.appendChild(button(t("meeting.deny"), () => act("deny", { identity: w.identity })));
      return li;
    }) : [el("li", "panel-empty", t("meeting.nobodyWaiting"))]));

    const hands = $("meeting-hands");
    hands.replaceChildren(...(state.hands.length ? state.hands.map((identity, n) => {
      const li = el("li", "meeting-row");
      li.dataset.identity = identity;
      li.appendChild(el("span", "meeting-row-name", `${n + 1}. ${nameOf(identity)}`));
      li.appendChild(button(t("meeting.giveFloor"), () => giveFloor(identity), "button button-small"));
      return li;
    }) : [el("li", "panel-empty", t("meeting.noHands"))]));
    $("meeting-end-floor").hidden = !state.floor;

    const error = $("meeting-error");
    error.hidden = !failure;
    error.textContent = failure ? t("meeting.failed", { message: failure.message || failure.code }) : "";
  }

  function giveFloor(identity) {
    const raw = $("meeting-floor-seconds").value;
    const data = { identity };
    if (raw) data.seconds = Number(raw);
    act("give-floor", data);
  }

  function render() {
    // What a moderator muted of one's own is off here too; its buttons ask to unmute.
    if (fairwire.setHeld) fairwire.setHeld(isMeeting() && fairwire.self ? mutedKinds(me()) : []);
    renderFloor();
    renderSelf();
    renderPanel();
  }

  fairwire.hooks.askUnmute = (kind) => {
    const asked = view.state && view.state.unmute_requests.some((r) => r.identity === me() && r.kind === kind);
    if (!asked) act("ask-unmute", { kind });
  };

  // -- wiring -----------------------------------------------------------------------------

  $("meeting-lobby-toggle").addEventListener("change", (event) => act("lobby", { on: event.target.checked }));
  $("meeting-lock").addEventListener("click", () => act("lock", { on: !(view.state && view.state.locked) }));
  $("meeting-end-floor").addEventListener("click", () => act("end-floor"));
  $("meeting-end").addEventListener("click", () => {
    if (window.confirm(t("meeting.endConfirm"))) act("end");
  });
  document.addEventListener("fairwire:catch-up", (event) => {
    const ack = event.detail && event.detail.ack;
    if (ack && ack.meeting) view.state = ack.meeting;
  });
  document.addEventListener("fairwire:room-event", (event) => {
    const e = event.detail && event.detail.event;
    if (e && e.type === "meeting" && e.meeting) {
      view.state = e.meeting;
      render();
    }
  });
  document.addEventListener("fairwire:render", render);
  render();
})();
