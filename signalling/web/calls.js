/* Fairwire video calls and meetings on the room page (issue #10): call a person from any page,
 * ring on whatever page one has open, start a meeting for several, see missed and declined
 * calls with a call-back; in a meeting one moderates, ask more people in or make a guest link.
 * Loaded after room.js.
 *
 * socket.io (docs/socketio.md, "Video invitations"): invite {to: [{identity, name}], meeting?}
 * -> {invitation}; invite-answer {id, accept} -> {invitation, url?}; invite-cancel {id};
 * invitations {} -> {invitations}; meeting {action: "guest-link", name, ttl} -> {link}. Server
 * events "invitation" {invitation} and "meeting-ready" {reason, id, room, url} reach this page
 * as the document events "fairwire:invitation" and "fairwire:meeting-ready" (room.js).
 *
 * A page that placed a call, or accepted one, goes into its meeting when it is ready; the same
 * person's other pages stop ringing and offer "Join now". Guests have no calls.
 *
 * For tests: window.fairwireCalls = {ringing (the invitation ringing here, or null), outgoing
 * (the call placed here), calls (newest first), missed (unseen missed calls), ready (the last
 * meeting-ready), guestLink, error}.
 */
(function () {
  "use strict";

  const el = window.FairwireDom.el; // dom.js

  const fairwire = window.fairwire;
  const i18n = window.FairwireI18n;
  if (!fairwire || !i18n) return;
  const t = i18n.t;
  const $ = (id) => document.getElementById(id);
  const RESULT_MS = 6000; // how long "declined" / "no answer" stays on screen

  i18n.add({
    en: {
      "calls.button": "Calls",
      "calls.title": "Calls and meetings",
      "calls.done": "Done",
      "calls.call": "Video call",
      "calls.callName": "Video call with {name}",
      "calls.start": "Start a meeting",
      "calls.startHelp": "Pick the people to invite. Each of them rings; whoever accepts joins you.",
      "calls.startButton": "Start meeting",
      "calls.nobody": "Nobody else is on this page to invite.",
      "calls.history": "Recent calls",
      "calls.none": "No calls yet.",
      "calls.callBack": "Call back",
      "calls.incoming": "from {name}",
      "calls.outgoing": "to {name}",
      "calls.ringingTitle": "{name} is calling you",
      "calls.ringingMeeting": "{name} invites you to a video meeting",
      "calls.ringingFrom": "From {room}",
      "calls.ringsFor": "Rings for {seconds} s more",
      "calls.accept": "Join call",
      "calls.decline": "Decline call",
      "calls.calling": "Calling {name}…",
      "calls.hangUp": "Hang up",
      "calls.declined": "{name} declined your call.",
      "calls.missed": "{name} did not answer.",
      "calls.connecting": "{name} accepted. Opening your meeting…",
      "calls.ready": "Your meeting is ready.",
      "calls.readyAppointment": "Your appointment is starting: its meeting is open.",
      "calls.joinNow": "Join now",
      "calls.dismiss": "Later",
      "calls.missedCount": "{count} missed",
      "calls.answer.ringing": "ringing",
      "calls.answer.accepted": "accepted",
      "calls.answer.declined": "declined",
      "calls.answer.missed": "missed",
      "calls.answer.cancelled": "cancelled",
      "calls.inviteHere": "Invite to this meeting",
      "calls.inviteHelp": "Their ID on the platform (an exhibitor's or a buyer's). They ring, and come in past the lobby.",
      "calls.inviteId": "ID",
      "calls.inviteName": "Name (optional)",
      "calls.inviteButton": "Invite",
      "calls.invited": "{name} is ringing.",
      "calls.guestLink": "Guest link",
      "calls.guestHelp": "For someone outside the platform: they wait in the lobby until a moderator admits them. Valid for 24 hours.",
      "calls.guestName": "Guest's name",
      "calls.guestButton": "Create guest link",
      "calls.copy": "Copy link",
      "calls.copied": "Copied",
      "calls.failed": "That did not work: {message}",
    },
    zh: {
      "calls.button": "通话",
      "calls.title": "通话与会议",
      "calls.done": "完成",
      "calls.call": "视频通话",
      "calls.callName": "与 {name} 视频通话",
      "calls.start": "发起会议",
      "calls.startHelp": "选择要邀请的人。每个人都会收到来电提醒，接受后即可加入。",
      "calls.startButton": "开始会议",
      "calls.nobody": "此页面上没有可邀请的其他人。",
      "calls.history": "最近通话",
      "calls.none": "还没有通话记录。",
      "calls.callBack": "回拨",
      "calls.incoming": "来自 {name}",
      "calls.outgoing": "呼叫 {name}",
      "calls.ringingTitle": "{name} 正在呼叫您",
      "calls.ringingMeeting": "{name} 邀请您参加视频会议",
      "calls.ringingFrom": "来自 {room}",
      "calls.ringsFor": "还将响铃 {seconds} 秒",
      "calls.accept": "接听",
      "calls.decline": "拒接",
      "calls.calling": "正在呼叫 {name}…",
      "calls.hangUp": "挂断",
      "calls.declined": "{name} 拒绝了您的通话。",
      "calls.missed": "{name} 未接听。",
      "calls.connecting": "{name} 已接受，正在打开会议…",
      "calls.ready": "您的会议已就绪。",
      "calls.readyAppointment": "您的预约即将开始，会议室已开放。",
      "calls.joinNow": "立即加入",
      "calls.dismiss": "稍后",
      "calls.missedCount": "{count} 个未接",
      "calls.answer.ringing": "响铃中",
      "calls.answer.accepted": "已接受",
      "calls.answer.declined": "已拒绝",
      "calls.answer.missed": "未接",
      "calls.answer.cancelled": "已取消",
      "calls.inviteHere": "邀请加入本会议",
      "calls.inviteHelp": "对方在平台上的 ID（展商或采购商）。对方会收到来电提醒，并可直接进入，无需等候。",
      "calls.inviteId": "ID",
      "calls.inviteName": "姓名（可选）",
      "calls.inviteButton": "邀请",
      "calls.invited": "正在呼叫 {name}。",
      "calls.guestLink": "访客链接",
      "calls.guestHelp": "供平台外人员使用：对方需在等候室等待主持人准入。24 小时内有效。",
      "calls.guestName": "访客姓名",
      "calls.guestButton": "生成访客链接",
      "calls.copy": "复制链接",
      "calls.copied": "已复制",
      "calls.failed": "操作未成功：{message}",
    },
  });
  i18n.apply();

  const view = (window.fairwireCalls = {
    ringing: null, outgoing: null, calls: [], missed: 0, ready: null, guestLink: null, error: null,
  });
  // Invitations this page placed or accepted: it goes into their meeting when it is ready.
  const goingIn = new Set();
  let result = null; // {text, until}: how the last call placed here ended
  let notice = null; // a short line under the dialog's forms
  let loadedFor = ""; // the identity whose calls were loaded

  function button(className, text, onClick) {
    const node = el("button", "button " + className, text);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  function usable() {
    return (fairwire.state === "joined" || fairwire.state === "lobby") && !!fairwire.self && !fairwire.guest;
  }

  function me() {
    return fairwire.self ? fairwire.self.identity : "";
  }

  function inMeetingAsModerator() {
    return fairwire.state === "joined" && fairwire.room && fairwire.room.kind === "meeting" && fairwire.moderates();
  }

  function invitee(invitation, identity) {
    return (invitation.to || []).find((i) => i.identity === identity) || null;
  }

  function otherNames(invitation) {
    if (invitation.from !== me()) return invitation.from_name || invitation.from;
    return (invitation.to || []).map((i) => i.name || i.identity).join(", ");
  }

  function seenKey() {
    return "fairwire.calls.seen." + me();
  }

  function seenUntil() {
    try {
      return Number(window.localStorage.getItem(seenKey())) || 0;
    } catch (_) {
      return 0;
    }
  }

  function countMissed() {
    const since = seenUntil();
    view.missed = view.calls.filter((c) => {
      const mine = invitee(c, me());
      return mine && mine.answer === "missed" && c.created_at > since;
    }).length;
  }

  function markSeen() {
    const newest = view.calls.reduce((a, c) => Math.max(a, c.created_at || 0), 0);
    try {
      window.localStorage.setItem(seenKey(), String(newest));
    } catch (_) {
      /* private mode: the count resets with the page */
    }
    view.missed = 0;
  }

  function remember(invitation) {
    const at = view.calls.findIndex((c) => c.id === invitation.id);
    if (at >= 0) view.calls[at] = invitation;
    else view.calls.unshift(invitation);
    countMissed();
  }

  async function load() {
    if (!usable() || loadedFor === me()) return;
    loadedFor = me();
    try {
      const reply = await fairwire.request("invitations", {});
      view.calls = reply.invitations || [];
      countMissed();
      // A call still ringing when the page (re)loads rings here too.
      const now = Date.now() / 1000;
      const ringing = view.calls.find((c) => {
        const mine = invitee(c, me());
        return mine && mine.answer === "ringing" && c.rings_until > now;
      });
      if (ringing && !view.ringing) ring(ringing);
    } catch (_) {
      loadedFor = "";
    }
    render();
  }

  // -- placing calls ----------------------------------------------------------------------

  async function invite(people, meeting) {
    view.error = null;
    notice = null;
    try {
      const reply = await fairwire.request("invite", { to: people, meeting: !!meeting });
      const invitation = reply.invitation;
      goingIn.add(invitation.id);
      remember(invitation);
      if (!invitation.meeting) {
        view.outgoing = invitation;
        result = null;
      } else if (invitation.room && invitation.room === (fairwire.room && fairwire.room.id)) {
        notice = t("calls.invited", { name: otherNames(invitation) });
      }
      render();
      return invitation;
    } catch (err) {
      view.error = t("calls.failed", { message: err.message || err.code });
      render();
      return null;
    }
  }

  async function hangUp() {
    const call = view.outgoing;
    if (!call) return;
    try {
      await fairwire.request("invite-cancel", { id: call.id });
    } catch (_) {
      /* answered or rang out meanwhile: the invitation event says how */
    }
    view.outgoing = null;
    render();
  }

  fairwire.participantControls = fairwire.participantControls || [];
  fairwire.participantControls.push((person) => {
    if (fairwire.state !== "joined" || !usable() || person.identity === me()) return null;
    if (fairwire.room && fairwire.room.kind === "meeting") return null; // already together
    if (person.guest) return null;
    const name = person.name || person.identity;
    const node = button("button-small button-secondary call-person", t("calls.call"),
      () => invite([{ identity: person.identity, name }], false));
    node.setAttribute("aria-label", t("calls.callName", { name }));
    return node;
  });

  // -- ringing ----------------------------------------------------------------------------

  let ringTimer = null;
  let tone = null;

  function ring(invitation) {
    view.ringing = invitation;
    const dialog = $("call-ringing");
    if (!dialog.open) dialog.showModal();
    startTone();
    clearInterval(ringTimer);
    ringTimer = setInterval(() => {
      if (!view.ringing || Date.now() / 1000 >= view.ringing.rings_until) stopRinging();
      renderRinging();
    }, 500);
    renderRinging();
  }

  function stopRinging() {
    view.ringing = null;
    clearInterval(ringTimer);
    ringTimer = null;
    stopTone();
    const dialog = $("call-ringing");
    if (dialog.open) dialog.close();
  }

  function startTone() {
    // A soft two-tone ring; a browser that allows no sound before a click stays silent.
    try {
      if (tone) return;
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      const context = new Context();
      const gain = context.createGain();
      gain.gain.value = 0;
      gain.connect(context.destination);
      for (const frequency of [440, 480]) {
        const oscillator = context.createOscillator();
        oscillator.frequency.value = frequency;
        oscillator.connect(gain);
        oscillator.start();
      }
      let on = false;
      const pulse = setInterval(() => {
        on = !on;
        gain.gain.setTargetAtTime(on ? 0.04 : 0, context.currentTime, 0.02);
      }, 1000);
      tone = { context, pulse };
    } catch (_) {
      tone = null;
    }
  }

  function stopTone() {
    if (!tone) return;
    clearInterval(tone.pulse);
    tone.context.close().catch(() => {});
    tone = null;
  }

  async function reply(accept) {
    const invitation = view.ringing;
    if (!invitation) return;
    stopRinging();
    try {
      const answer = await fairwire.request("invite-answer", { id: invitation.id, accept });
      remember(answer.invitation);
      if (accept && answer.url) {
        goingIn.add(invitation.id);
        window.location.assign(answer.url);
      }
    } catch (err) {
      view.error = t("calls.failed", { message: err.message || err.code });
    }
    render();
  }

  document.addEventListener("fairwire:invitation", (event) => {
    const invitation = event.detail && event.detail.invitation;
    if (!invitation || !fairwire.self) return;
    remember(invitation);
    const mine = invitee(invitation, me());
    if (mine && mine.answer === "ringing" && invitation.rings_until > Date.now() / 1000) {
      if (!view.ringing || view.ringing.id === invitation.id) ring(invitation);
    } else if (view.ringing && view.ringing.id === invitation.id) {
      stopRinging(); // answered on another page, rang out, or hung up
    }
    if (view.outgoing && view.outgoing.id === invitation.id) {
      const other = invitation.to[0];
      view.outgoing = invitation;
      if (other.answer === "declined") result = t("calls.declined", { name: other.name });
      else if (other.answer === "missed") result = t("calls.missed", { name: other.name });
      else if (other.answer === "accepted") result = t("calls.connecting", { name: other.name });
      if (other.answer !== "ringing") {
        if (other.answer !== "accepted") view.outgoing = null;
        const shown = result;
        setTimeout(() => {
          if (result === shown) result = null;
          render();
        }, RESULT_MS);
      }
    }
    render();
  });

  document.addEventListener("fairwire:meeting-ready", (event) => {
    const ready = event.detail;
    if (!ready || typeof ready.url !== "string" || !ready.url.startsWith("/room/")) return;
    view.ready = ready;
    if (goingIn.has(ready.id)) {
      window.location.assign(ready.url);
      return;
    }
    render();
  });

  // -- in a meeting: more people, guests ----------------------------------------------------

  async function inviteHere(event) {
    event.preventDefault();
    const identity = $("calls-invite-id").value.trim();
    const name = $("calls-invite-name").value.trim();
    if (!identity) return;
    const person = name ? { identity, name } : { identity };
    if (await invite([person], true)) {
      $("calls-invite-id").value = "";
      $("calls-invite-name").value = "";
    }
  }

  async function makeGuestLink(event) {
    event.preventDefault();
    const name = $("calls-guest-name").value.trim();
    if (!name) return;
    view.error = null;
    try {
      const made = await fairwire.request("meeting", { action: "guest-link", name });
      view.guestLink = { ...made.link, url: new URL(made.link.url, window.location.href).href };
      $("calls-guest-name").value = "";
    } catch (err) {
      view.error = t("calls.failed", { message: err.message || err.code });
    }
    render();
  }

  // -- the page's pieces --------------------------------------------------------------------

  function build() {
    const header = $("messages-button").parentNode;
    const open = el("button", "button button-small button-secondary");
    open.id = "calls-button";
    open.type = "button";
    open.hidden = true;
    open.setAttribute("aria-haspopup", "dialog");
    open.setAttribute("aria-controls", "calls-panel");
    open.append(el("span", "", ""), " ", el("span", "count-badge", ""));
    open.firstChild.id = "calls-label";
    open.lastChild.id = "calls-count";
    open.lastChild.hidden = true;
    open.addEventListener("click", () => {
      const dialog = $("calls-panel");
      if (!dialog.open) dialog.showModal();
      markSeen();
      render();
    });
    header.insertBefore(open, $("messages-button"));

    const panel = el("dialog", "dialog calls-dialog");
    panel.id = "calls-panel";
    panel.setAttribute("aria-labelledby", "calls-title");
    panel.innerHTML = `<div class="dialog-body">
      <div class="dialog-head"><h2 id="calls-title"></h2>
        <button type="button" id="calls-done" class="button button-secondary button-small"></button></div>
      <section class="calls-section" id="calls-start">
        <h3 id="calls-start-title"></h3><p class="meta" id="calls-start-help"></p>
        <ul class="calls-pick" id="calls-people"></ul>
        <button type="button" id="calls-start-button" class="button button-small"></button>
      </section>
      <section class="calls-section" id="calls-here" hidden>
        <h3 id="calls-here-title"></h3><p class="meta" id="calls-here-help"></p>
        <form id="calls-invite-form" class="calls-form">
          <input id="calls-invite-id" class="input input-small" autocomplete="off" maxlength="128" required>
          <input id="calls-invite-name" class="input input-small" autocomplete="off" maxlength="200">
          <button type="submit" id="calls-invite-button" class="button button-small"></button>
        </form>
        <h3 id="calls-guest-title" class="calls-sub"></h3><p class="meta" id="calls-guest-help"></p>
        <form id="calls-guest-form" class="calls-form">
          <input id="calls-guest-name" class="input input-small" autocomplete="off" maxlength="200" required>
          <button type="submit" id="calls-guest-button" class="button button-small"></button>
        </form>
        <div id="calls-guest-link" class="calls-link" hidden>
          <input id="calls-guest-url" class="input input-small" readonly>
          <button type="button" id="calls-copy" class="button button-small button-secondary"></button>
        </div>
      </section>
      <p id="calls-notice" class="notice notice-info" hidden></p>
      <p id="calls-error" class="notice notice-error" role="alert" hidden></p>
      <section class="calls-section"><h3 id="calls-history-title"></h3>
        <ul class="calls-list" id="calls-list"></ul></section></div>`;
    document.body.appendChild(panel);

    const ringing = el("dialog", "dialog dialog-small call-ringing");
    ringing.id = "call-ringing";
    ringing.setAttribute("aria-labelledby", "call-ringing-title");
    ringing.innerHTML = `<div class="dialog-body">
      <div class="call-ringing-icon" aria-hidden="true"></div>
      <h2 id="call-ringing-title"></h2><p id="call-ringing-from" class="dialog-text"></p>
      <p id="call-ringing-time" class="dialog-meta"></p>
      <div class="dialog-actions dialog-actions-end">
        <button type="button" id="call-decline" class="button button-danger"></button>
        <button type="button" id="call-accept" class="button button-live"></button></div></div>`;
    ringing.addEventListener("cancel", (event) => event.preventDefault()); // Esc is not an answer
    document.body.appendChild(ringing);

    const bar = el("div", "call-bar");
    bar.id = "call-bar";
    bar.setAttribute("role", "status");
    bar.hidden = true;
    bar.innerHTML = `<span id="call-bar-text"></span>
      <button type="button" id="call-hang-up" class="button button-small button-danger" hidden></button>
      <a id="call-join" class="button button-small button-live" hidden></a>
      <button type="button" id="call-later" class="button button-small button-secondary" hidden></button>`;
    document.body.appendChild(bar);

    $("calls-done").addEventListener("click", () => $("calls-panel").close());
    $("calls-start-button").addEventListener("click", async () => {
      const picked = [...document.querySelectorAll("#calls-people input:checked")].map((box) => ({
        identity: box.value, name: box.dataset.name,
      }));
      if (picked.length && await invite(picked, true)) $("calls-panel").close();
    });
    $("calls-invite-form").addEventListener("submit", inviteHere);
    $("calls-guest-form").addEventListener("submit", makeGuestLink);
    $("calls-copy").addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText($("calls-guest-url").value);
        $("calls-copy").textContent = t("calls.copied");
      } catch (_) {
        $("calls-guest-url").select();
      }
    });
    $("call-accept").addEventListener("click", () => reply(true));
    $("call-decline").addEventListener("click", () => reply(false));
    $("call-hang-up").addEventListener("click", hangUp);
    $("call-later").addEventListener("click", () => {
      view.ready = null;
      render();
    });
  }

  function renderRinging() {
    const invitation = view.ringing;
    if (!invitation) return;
    const name = invitation.from_name || invitation.from;
    $("call-ringing-title").textContent = t(invitation.meeting ? "calls.ringingMeeting" : "calls.ringingTitle", { name });
    $("call-ringing-from").textContent = invitation.from_room_name ? t("calls.ringingFrom", { room: invitation.from_room_name }) : "";
    const left = Math.max(0, Math.ceil(invitation.rings_until - Date.now() / 1000));
    $("call-ringing-time").textContent = t("calls.ringsFor", { seconds: left });
    $("call-accept").textContent = t("calls.accept");
    $("call-decline").textContent = t("calls.decline");
  }

  function renderBar() {
    const bar = $("call-bar");
    const call = view.outgoing;
    const ringingOut = call && invitee(call, call.to[0].identity).answer === "ringing";
    const ready = view.ready && !goingIn.has(view.ready.id) ? view.ready : null;
    let text = "";
    if (ringingOut) text = t("calls.calling", { name: call.to[0].name });
    else if (result) text = result;
    else if (ready) text = t(ready.reason === "appointment" ? "calls.readyAppointment" : "calls.ready");
    bar.hidden = !text;
    $("call-bar-text").textContent = text;
    $("call-hang-up").hidden = !ringingOut;
    $("call-hang-up").textContent = t("calls.hangUp");
    $("call-join").hidden = !ready || ringingOut || !!result;
    $("call-join").textContent = t("calls.joinNow");
    if (ready) $("call-join").href = ready.url;
    $("call-later").hidden = $("call-join").hidden;
    $("call-later").textContent = t("calls.dismiss");
  }

  function renderPanel() {
    $("calls-title").textContent = t("calls.title");
    $("calls-done").textContent = t("calls.done");
    $("calls-start-title").textContent = t("calls.start");
    $("calls-start-help").textContent = t("calls.startHelp");
    $("calls-start-button").textContent = t("calls.startButton");
    const inMeeting = fairwire.room && fairwire.room.kind === "meeting";
    const others = (fairwire.participants || []).filter((p) => p.identity !== me() && !p.guest);
    $("calls-start").hidden = !!inMeeting || !others.length;
    const picked = new Set([...document.querySelectorAll("#calls-people input:checked")].map((b) => b.value));
    $("calls-people").replaceChildren(...(others.length ? others.map((p) => {
      const li = el("li");
      const label = el("label", "calls-person");
      const box = el("input");
      box.type = "checkbox";
      box.value = p.identity;
      box.dataset.name = p.name || p.identity;
      box.checked = picked.has(p.identity);
      label.append(box, " ", el("span", "", p.name || p.identity), " ", el("span", "role-badge role-" + p.role, t("role." + p.role)));
      li.appendChild(label);
      return li;
    }) : [el("li", "panel-empty", t("calls.nobody"))]));
    $("calls-start-button").disabled = !others.length;

    $("calls-here").hidden = !inMeetingAsModerator();
    $("calls-here-title").textContent = t("calls.inviteHere");
    $("calls-here-help").textContent = t("calls.inviteHelp");
    $("calls-invite-id").placeholder = t("calls.inviteId");
    $("calls-invite-id").setAttribute("aria-label", t("calls.inviteId"));
    $("calls-invite-name").placeholder = t("calls.inviteName");
    $("calls-invite-name").setAttribute("aria-label", t("calls.inviteName"));
    $("calls-invite-button").textContent = t("calls.inviteButton");
    $("calls-guest-title").textContent = t("calls.guestLink");
    $("calls-guest-help").textContent = t("calls.guestHelp");
    $("calls-guest-name").placeholder = t("calls.guestName");
    $("calls-guest-name").setAttribute("aria-label", t("calls.guestName"));
    $("calls-guest-button").textContent = t("calls.guestButton");
    $("calls-guest-link").hidden = !view.guestLink;
    if (view.guestLink && $("calls-guest-url").value !== view.guestLink.url) {
      $("calls-guest-url").value = view.guestLink.url;
      $("calls-copy").textContent = t("calls.copy");
    }
    $("calls-guest-url").setAttribute("aria-label", t("calls.guestLink"));
    if (!view.guestLink) $("calls-copy").textContent = t("calls.copy");

    $("calls-notice").hidden = !notice;
    $("calls-notice").textContent = notice || "";
    $("calls-error").hidden = !view.error;
    $("calls-error").textContent = view.error || "";

    $("calls-history-title").textContent = t("calls.history");
    const now = Date.now() / 1000;
    $("calls-list").replaceChildren(...(view.calls.length ? view.calls.slice(0, 30).map((c) => {
      const incoming = c.from !== me();
      const mine = invitee(c, me());
      const answer = incoming ? (mine ? mine.answer : "accepted") : summary(c, now);
      const li = el("li", "calls-item calls-" + answer);
      li.dataset.id = c.id;
      li.append(el("span", "calls-direction", incoming ? "↙" : "↗"));
      const text = el("span", "calls-text");
      text.append(el("span", "calls-who", t(incoming ? "calls.incoming" : "calls.outgoing", { name: otherNames(c) })),
        el("span", "calls-when meta", new Date(c.created_at * 1000).toLocaleString(i18n.locale(), { dateStyle: "short", timeStyle: "short" })));
      li.append(text, el("span", "chip calls-answer", t("calls.answer." + answer)));
      if (!inMeeting && answer !== "ringing") {
        const back = incoming ? [{ identity: c.from, name: c.from_name }]
          : (c.to || []).map((i) => ({ identity: i.identity, name: i.name }));
        li.append(button("button-small button-secondary", t("calls.callBack"), () => {
          $("calls-panel").close();
          invite(back, back.length > 1);
        }));
      }
      return li;
    }) : [el("li", "panel-empty", t("calls.none"))]));
  }

  function summary(invitation, now) {
    const answers = (invitation.to || []).map((i) => i.answer);
    if (answers.includes("accepted")) return "accepted";
    if (answers.includes("ringing") && invitation.rings_until > now) return "ringing";
    return answers[0] || "missed";
  }

  function render() {
    if (!$("calls-button")) return;
    const show = usable() && fairwire.state === "joined";
    $("calls-button").hidden = !show;
    $("calls-label").textContent = t("calls.button");
    $("calls-count").hidden = !view.missed;
    $("calls-count").textContent = String(view.missed);
    $("calls-count").setAttribute("aria-label", t("calls.missedCount", { count: view.missed }));
    if (show) load();
    renderPanel();
    renderRinging();
    renderBar();
  }

  build();
  document.addEventListener("fairwire:render", render);
  document.addEventListener("fairwire:lang", render);
  render();
})();
