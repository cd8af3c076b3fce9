/* Fairwire one-to-one messages on the room page (issue #10): write to a person outside any
 * room, read what came while away. Loaded after room.js.
 *
 * socket.io (docs/socketio.md, "One-to-one messages"): dm-send {to, text} -> {message};
 * dm-history {with, limit} -> {messages}; dm-read {with} -> {unread}; server events "dm"
 * {message} and "dm-unread" {unread: {identity: count}} reach this page as the document events
 * "fairwire:dm" and "fairwire:dm-unread" (room.js). Guests have no messages.
 *
 * For tests: window.fairwireMessages = {unread: {identity: count}, open (identity | null),
 * messages (the open conversation, oldest first), error}.
 */
(function () {
  "use strict";

  const el = window.FairwireDom.el; // dom.js

  const MAX_CHARS = 1000;
  const fairwire = window.fairwire;
  const i18n = window.FairwireI18n;
  if (!fairwire || !i18n) return;
  const t = i18n.t;
  const $ = (id) => document.getElementById(id);

  i18n.add({
    en: {
      "dm.button": "Messages",
      "dm.title": "Messages",
      "dm.close": "Close",
      "dm.write": "Message",
      "dm.writeTo": "Write to {name}",
      "dm.empty": "No conversations yet. Use “Message” beside a person to write to them.",
      "dm.none": "No messages yet. Say hello!",
      "dm.placeholder": "Write a message… (Enter sends)",
      "dm.send": "Send",
      "dm.unread": "{count} new",
      "dm.failed": "Your message was not sent: {message}",
      "dm.you": "You",
    },
    zh: {
      "dm.button": "私信",
      "dm.title": "私信",
      "dm.close": "关闭",
      "dm.write": "私信",
      "dm.writeTo": "写给 {name}",
      "dm.empty": "还没有对话。点击参会人员旁的“私信”即可开始。",
      "dm.none": "还没有消息，打个招呼吧！",
      "dm.placeholder": "输入消息…（按回车发送）",
      "dm.send": "发送",
      "dm.unread": "{count} 条新消息",
      "dm.failed": "消息未发送：{message}",
      "dm.you": "我",
    },
  });
  i18n.apply();

  const view = (window.fairwireMessages = { unread: {}, open: null, messages: [], error: null });
  const names = new Map(); // identity -> display name, as far as this page knows
  const talkedTo = new Set();

  function usable() {
    return fairwire.state === "joined" && !!fairwire.self && !fairwire.guest;
  }

  function nameOf(identity) {
    const person = fairwire.participants.find((p) => p.identity === identity);
    return (person && person.name) || names.get(identity) || identity;
  }

  function totalUnread() {
    return Object.values(view.unread).reduce((a, b) => a + b, 0);
  }

  // -- "Message" beside each person -------------------------------------------------------

  fairwire.participantControls = fairwire.participantControls || [];
  fairwire.participantControls.push((person) => {
    if (!usable() || person.identity === fairwire.self.identity || person.guest) return null; // guests have no messages
    const button = el("button", "button button-small button-secondary dm-write", t("dm.write"));
    button.type = "button";
    button.setAttribute("aria-label", t("dm.writeTo", { name: person.name || person.identity }));
    button.addEventListener("click", () => openConversation(person.identity));
    return button;
  });

  // -- conversations ----------------------------------------------------------------------

  async function openConversation(identity) {
    view.open = identity;
    view.error = null;
    talkedTo.add(identity);
    const dialog = $("messages-panel");
    if (!dialog.open) dialog.showModal();
    render();
    try {
      const reply = await fairwire.request("dm-history", { with: identity, limit: 100 });
      if (view.open !== identity) return;
      view.messages = reply.messages || [];
      for (const m of view.messages) if (m.from !== fairwire.self.identity) names.set(m.from, m.from_name);
      if (view.unread[identity]) {
        const read = await fairwire.request("dm-read", { with: identity });
        view.unread = read.unread || {};
      }
    } catch (err) {
      view.error = err.message || err.code;
    }
    render();
    $("dm-text").focus();
  }

  async function send(event) {
    event.preventDefault();
    const input = $("dm-text");
    const text = input.value.trim();
    if (!text || !view.open) return;
    view.error = null;
    try {
      const reply = await fairwire.request("dm-send", { to: view.open, text });
      view.messages.push(reply.message);
      input.value = "";
    } catch (err) {
      view.error = t("dm.failed", { message: err.message || err.code });
    }
    render();
  }

  document.addEventListener("fairwire:dm", async (event) => {
    const message = event.detail && event.detail.message;
    if (!message || !fairwire.self) return;
    const mine = message.from === fairwire.self.identity;
    const other = mine ? message.to : message.from;
    if (!mine) names.set(message.from, message.from_name);
    talkedTo.add(other);
    if (view.open === other && $("messages-panel").open) {
      view.messages.push(message);
      if (!mine) {
        try {
          view.unread = (await fairwire.request("dm-read", { with: other })).unread || {};
        } catch (_) {
          /* counted as unread until the next read */
        }
      }
    } else if (!mine) {
      view.unread = { ...view.unread, [other]: (view.unread[other] || 0) + 1 };
    }
    render();
  });

  document.addEventListener("fairwire:dm-unread", (event) => {
    const unread = event.detail && event.detail.unread;
    if (unread && typeof unread === "object") view.unread = unread;
    for (const identity of Object.keys(view.unread)) talkedTo.add(identity);
    render();
  });

  // -- rendering --------------------------------------------------------------------------

  function render() {
    const button = $("messages-button");
    button.hidden = !usable();
    const total = totalUnread();
    $("messages-count").hidden = !total;
    $("messages-count").textContent = String(total);
    $("messages-label").textContent = t("dm.button");
    $("messages-title").textContent = t("dm.title");
    $("messages-close").textContent = t("dm.close");

    const people = [...talkedTo].sort((a, b) => (view.unread[b] || 0) - (view.unread[a] || 0));
    const list = $("dm-conversations");
    list.replaceChildren(...(people.length ? people.map((identity) => {
      const li = el("li", "dm-conversation");
      li.dataset.identity = identity;
      li.setAttribute("aria-current", String(view.open === identity));
      const pick = el("button", "dm-pick");
      pick.type = "button";
      pick.append(el("span", "dm-name", nameOf(identity)));
      if (view.unread[identity]) pick.append(el("span", "chip chip-ask", t("dm.unread", { count: view.unread[identity] })));
      pick.addEventListener("click", () => openConversation(identity));
      li.appendChild(pick);
      return li;
    }) : [el("li", "panel-empty", t("dm.empty"))]));

    const open = view.open;
    $("dm-thread").hidden = !open;
    if (open) {
      $("dm-with").textContent = nameOf(open);
      const thread = $("dm-messages");
      const me = fairwire.self ? fairwire.self.identity : "";
      thread.replaceChildren(...(view.messages.length ? view.messages.map((m) => {
        const li = el("li", m.from === me ? "dm-message dm-mine" : "dm-message");
        li.append(el("span", "dm-who", m.from === me ? t("dm.you") : m.from_name || m.from),
          el("span", "dm-text", m.text));
        return li;
      }) : [el("li", "panel-empty", t("dm.none"))]));
      thread.scrollTop = thread.scrollHeight;
    }
    $("dm-text").placeholder = t("dm.placeholder");
    $("dm-text").maxLength = MAX_CHARS;
    $("dm-send").textContent = t("dm.send");
    const error = $("dm-error");
    error.hidden = !view.error;
    error.textContent = view.error || "";
  }

  $("messages-button").addEventListener("click", () => {
    const dialog = $("messages-panel");
    if (!dialog.open) dialog.showModal();
    const first = Object.keys(view.unread)[0];
    if (first && !view.open) openConversation(first);
    render();
  });
  $("messages-close").addEventListener("click", () => $("messages-panel").close());
  $("dm-form").addEventListener("submit", send);
  $("dm-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) send(event);
  });
  document.addEventListener("fairwire:render", render);
  document.addEventListener("fairwire:lang", render);
  render();
})();
