/* Fairwire appointments on the room page (issue #10, §5.3.1): "Book a meeting" beside each
 * person proposes a time slot; "Agenda" lists one's appointments in the browser's time zone,
 * to accept, decline, cancel, join, or add to one's calendar. Loaded after room.js.
 *
 * REST (docs/socketio.md, "Appointments"), with the page's credential as Bearer:
 *   POST /api/appointments {with, with_name, title, start, end} -> 201 the appointment; 409
 *   overlap; POST /api/appointments/{id}/accept | decline | cancel -> the appointment;
 *   POST /api/appointments/{id}/join -> {room, url}; GET /api/agenda?tz= -> {appointments}
 *   (each with `with`, `side`, `actions`); GET /api/agenda.ics[?id=] -> text/calendar.
 * socket.io "appointment" {appointment} and "appointment-reminder" {appointment, starts_in}
 *   reach this page as the document events "fairwire:appointment" and
 *   "fairwire:appointment-reminder" (room.js): the agenda is read again and a toast says what
 *   the other side did. "meeting-ready" is not handled here. Guests have no agenda.
 *
 * For tests: window.fairwireAgenda = {appointments (the agenda's entries), timeZone, toasts
 * (every toast's text, oldest first), pending (proposals waiting for this person's answer),
 * booking (the person being booked: {identity, name} | null), error}.
 */
(function () {
  "use strict";

  const el = window.FairwireDom.el; // dom.js

  const TOAST_MS = 10000;
  const DURATIONS = [15, 30, 45, 60, 90, 120]; // minutes
  const DEFAULT_DURATION = 30;
  const SLOT_STEP_MINUTES = 15;
  const MAX_TITLE = 200;
  const fairwire = window.fairwire;
  const i18n = window.FairwireI18n;
  if (!fairwire || !i18n) return;
  const t = i18n.t;
  const $ = (id) => document.getElementById(id);
  const timeZone = new Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

  i18n.add({
    en: {
      "agenda.button": "Agenda",
      "agenda.title": "Your agenda",
      "agenda.zone": "Times in {zone}",
      "agenda.done": "Done",
      "agenda.empty": "No appointments yet. Use “Book a meeting” beside a person to propose a time.",
      "agenda.with": "with {name}",
      "agenda.status.proposed": "Proposed",
      "agenda.status.accepted": "Accepted",
      "agenda.status.declined": "Declined",
      "agenda.status.cancelled": "Cancelled",
      "agenda.waitingForYou": "{name} proposes this time: accept or decline",
      "agenda.waitingForThem": "Waiting for {name} to answer",
      "agenda.meetingOpen": "The meeting room is open",
      "agenda.cancelledBy": "Cancelled by {name}",
      "agenda.you": "you",
      "agenda.accept": "Accept appointment",
      "agenda.decline": "Decline appointment",
      "agenda.cancel": "Cancel appointment",
      "agenda.join": "Join meeting",
      "agenda.calendar": "Add to calendar",
      "agenda.calendarAll": "Add all to calendar",
      "agenda.failed": "That did not work: {message}",
      "agenda.overlap": "That time overlaps an accepted appointment",
      "agenda.openAgenda": "Open agenda",
      "agenda.pending": "{count} waiting for your answer",
      "agenda.toastProposed": "{name} proposes “{title}” on {when}",
      "agenda.toastAccepted": "{name} accepted “{title}” on {when}",
      "agenda.toastDeclined": "{name} declined “{title}”",
      "agenda.toastCancelled": "{name} cancelled “{title}”",
      "agenda.toastReminder": "“{title}” with {name} starts in {minutes} min",
      "agenda.toastSent": "Proposal sent to {name}",
      "book.button": "Book a meeting",
      "book.with": "Book a meeting with {name}",
      "book.hint": "Propose a time in your time zone ({zone}); {name} accepts or declines.",
      "book.date": "Date",
      "book.time": "Time",
      "book.duration": "Duration",
      "book.minutes": "{minutes} min",
      "book.subject": "Subject",
      "book.defaultSubject": "Meeting with {name}",
      "book.back": "Back",
      "book.submit": "Propose time",
      "book.missing": "Choose a date and a time.",
      "book.tooMany": "Too many proposals at once: try again in a minute.",
    },
    zh: {
      "agenda.button": "日程",
      "agenda.title": "我的日程",
      "agenda.zone": "时间按 {zone} 显示",
      "agenda.done": "完成",
      "agenda.empty": "还没有预约。点击参会人员旁的“预约会谈”即可提议时间。",
      "agenda.with": "与 {name}",
      "agenda.status.proposed": "待确认",
      "agenda.status.accepted": "已接受",
      "agenda.status.declined": "已婉拒",
      "agenda.status.cancelled": "已取消",
      "agenda.waitingForYou": "{name} 提议了这个时间：请接受或婉拒",
      "agenda.waitingForThem": "等待 {name} 答复",
      "agenda.meetingOpen": "会议室已开放",
      "agenda.cancelledBy": "由 {name} 取消",
      "agenda.you": "您",
      "agenda.accept": "接受预约",
      "agenda.decline": "婉拒预约",
      "agenda.cancel": "取消预约",
      "agenda.join": "进入会议",
      "agenda.calendar": "添加到日历",
      "agenda.calendarAll": "全部添加到日历",
      "agenda.failed": "操作未成功：{message}",
      "agenda.overlap": "该时间与已接受的预约冲突",
      "agenda.openAgenda": "打开日程",
      "agenda.pending": "{count} 个待您答复",
      "agenda.toastProposed": "{name} 提议于 {when} 会谈：“{title}”",
      "agenda.toastAccepted": "{name} 已接受 {when} 的“{title}”",
      "agenda.toastDeclined": "{name} 婉拒了“{title}”",
      "agenda.toastCancelled": "{name} 取消了“{title}”",
      "agenda.toastReminder": "与 {name} 的“{title}”将在 {minutes} 分钟后开始",
      "agenda.toastSent": "已向 {name} 发出提议",
      "book.button": "预约会谈",
      "book.with": "与 {name} 预约会谈",
      "book.hint": "按您的时区（{zone}）提议时间，由 {name} 接受或婉拒。",
      "book.date": "日期",
      "book.time": "时间",
      "book.duration": "时长",
      "book.minutes": "{minutes} 分钟",
      "book.subject": "主题",
      "book.defaultSubject": "与 {name} 会谈",
      "book.back": "返回",
      "book.submit": "提议时间",
      "book.missing": "请选择日期和时间。",
      "book.tooMany": "提议过于频繁，请一分钟后再试。",
    },
  });
  i18n.apply();

  const view = (window.fairwireAgenda = {
    appointments: [], timeZone, toasts: [], pending: 0, booking: null, error: null,
  });
  let loadedFor = null; // the socket.io connection the agenda was last read for
  let loading = null; // the agenda request under way
  let bookingError = null;

  function button(className, text, onClick) {
    const node = el("button", "button button-small " + className, text);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  function usable() {
    return fairwire.state === "joined" && !!fairwire.self && !fairwire.guest;
  }

  function me() {
    return fairwire.self ? fairwire.self.identity : "";
  }

  // -- times in the browser's zone --------------------------------------------------------

  function when(start, end) {
    const day = new Intl.DateTimeFormat(i18n.locale(), {
      timeZone, weekday: "short", month: "short", day: "numeric",
    }).format(new Date(start * 1000));
    const clock = new Intl.DateTimeFormat(i18n.locale(), { timeZone, hour: "2-digit", minute: "2-digit" });
    const range = end === undefined ? clock.format(new Date(start * 1000))
      : clock.formatRange(new Date(start * 1000), new Date(end * 1000));
    return day + " " + range;
  }

  function localDate(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate());
  }

  function localClock(date) {
    return String(date.getHours()).padStart(2, "0") + ":" + String(date.getMinutes()).padStart(2, "0");
  }

  // -- REST -------------------------------------------------------------------------------

  async function api(method, path, body) {
    const headers = { Accept: "application/json", Authorization: "Bearer " + fairwire.credential };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, cache: "no-store", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    return { status: response.status, ok: response.ok, data };
  }

  function errorText(res) {
    const error = (res.data && res.data.error) || {};
    if (error.code === "overlap") return t("agenda.overlap");
    return error.message || error.code || "HTTP " + res.status;
  }

  async function load() {
    if (!usable()) return;
    if (loading) return loading;
    loading = (async () => {
      try {
        const res = await api("GET", "/api/agenda?tz=" + encodeURIComponent(timeZone));
        if (!res.ok) throw new Error(errorText(res));
        view.appointments = res.data.appointments || [];
      } catch (err) {
        view.error = t("agenda.failed", { message: err.message });
      } finally {
        loading = null;
      }
      render();
    })();
    return loading;
  }

  async function act(id, action) {
    view.error = null;
    try {
      const res = await api("POST", "/api/appointments/" + encodeURIComponent(id) + "/" + action);
      if (!res.ok) {
        view.error = res.data && res.data.error && res.data.error.code === "overlap"
          ? t("agenda.overlap") : t("agenda.failed", { message: errorText(res) });
      } else if (action === "join") {
        window.location.assign(res.data.url);
        return;
      }
    } catch (err) {
      view.error = t("agenda.failed", { message: err.message });
    }
    await load();
  }

  async function download(id) {
    view.error = null;
    try {
      const path = "/api/agenda.ics" + (id ? "?id=" + encodeURIComponent(id) : "");
      const response = await fetch(path, {
        headers: { Authorization: "Bearer " + fairwire.credential }, cache: "no-store", credentials: "omit",
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const link = el("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = id ? "fairwire-" + id + ".ics" : "fairwire-agenda.ics";
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    } catch (err) {
      view.error = t("agenda.failed", { message: err.message });
      render();
    }
  }

  // -- the dialogs and toasts (built here: room.html only holds the header button) ---------

  const agendaDialog = el("dialog", "dialog agenda-dialog");
  agendaDialog.id = "agenda-panel";
  agendaDialog.setAttribute("aria-labelledby", "agenda-title");
  agendaDialog.innerHTML = `
    <div class="dialog-body">
      <div class="dialog-head">
        <h2 id="agenda-title"></h2>
        <button type="button" id="agenda-done" class="button button-secondary button-small"></button>
      </div>
      <p id="agenda-zone" class="dialog-meta"></p>
      <ol id="agenda-list" class="agenda-list" aria-live="polite"></ol>
      <p id="agenda-error" class="notice notice-error" role="alert" hidden></p>
      <div class="dialog-actions">
        <button type="button" id="agenda-ics-all" class="button button-secondary button-small"></button>
      </div>
    </div>`;

  const bookingDialog = el("dialog", "dialog dialog-small booking-dialog");
  bookingDialog.id = "booking-panel";
  bookingDialog.setAttribute("aria-labelledby", "booking-title");
  bookingDialog.innerHTML = `
    <form id="booking-form" class="dialog-body booking-form" novalidate>
      <h2 id="booking-title"></h2>
      <p id="booking-hint" class="dialog-text"></p>
      <div class="booking-row">
        <label class="booking-field"><span id="booking-date-label"></span>
          <input id="booking-date" class="input" type="date" required></label>
        <label class="booking-field"><span id="booking-time-label"></span>
          <input id="booking-time" class="input" type="time" step="300" required></label>
        <label class="booking-field"><span id="booking-duration-label"></span>
          <select id="booking-duration" class="input"></select></label>
      </div>
      <label class="booking-field"><span id="booking-subject-label"></span>
        <input id="booking-subject" class="input" type="text" maxlength="${MAX_TITLE}" required></label>
      <p id="booking-error" class="notice notice-error" role="alert" hidden></p>
      <div class="dialog-actions dialog-actions-end">
        <button type="button" id="booking-back" class="button button-secondary"></button>
        <button type="submit" id="booking-submit" class="button"></button>
      </div>
    </form>`;

  const toasts = el("div", "agenda-toasts");
  toasts.id = "agenda-toasts";
  toasts.setAttribute("role", "status");
  toasts.setAttribute("aria-live", "polite");
  ($("main") || document.body).append(agendaDialog, bookingDialog);
  document.body.appendChild(toasts);

  function toast(text) {
    view.toasts.push(text);
    const item = el("div", "agenda-toast");
    item.append(el("span", "agenda-toast-text", text),
      button("button-secondary agenda-toast-open", t("agenda.openAgenda"), () => {
        item.remove();
        openAgenda();
      }));
    toasts.appendChild(item);
    setTimeout(() => item.remove(), TOAST_MS);
  }

  function openAgenda() {
    if (!agendaDialog.open) agendaDialog.showModal();
    render();
    load();
  }

  // -- "Book a meeting" beside each person ------------------------------------------------

  fairwire.participantControls = fairwire.participantControls || [];
  fairwire.participantControls.push((person) => {
    if (!usable() || person.identity === me() || person.guest) return null; // guests book nothing
    const name = person.name || person.identity;
    const book = button("button-secondary agenda-book", t("book.button"), () => openBooking(person.identity, name));
    book.setAttribute("aria-label", t("book.with", { name }));
    book.setAttribute("aria-haspopup", "dialog");
    return book;
  });

  function openBooking(identity, name) {
    view.booking = { identity, name };
    bookingError = null;
    // The next quarter hour from now, today: the form starts on a time one may book.
    const next = new Date(Math.ceil(Date.now() / (SLOT_STEP_MINUTES * 60000)) * SLOT_STEP_MINUTES * 60000);
    $("booking-date").value = localDate(next);
    $("booking-date").min = localDate(new Date());
    $("booking-time").value = localClock(next);
    $("booking-duration").value = String(DEFAULT_DURATION);
    $("booking-subject").value = t("book.defaultSubject", { name });
    renderBooking();
    if (!bookingDialog.open) bookingDialog.showModal();
    $("booking-date").focus();
  }

  async function propose(event) {
    event.preventDefault();
    const person = view.booking;
    if (!person) return;
    const date = $("booking-date").value;
    const clock = $("booking-time").value;
    bookingError = null;
    if (!date || !clock) {
      bookingError = t("book.missing");
      renderBooking();
      return;
    }
    // "YYYY-MM-DDTHH:MM" without an offset is the browser's local time (ECMA-262 Date.parse).
    const start = Math.floor(new Date(date + "T" + clock).getTime() / 1000);
    const end = start + Number($("booking-duration").value) * 60;
    $("booking-submit").disabled = true;
    try {
      const res = await api("POST", "/api/appointments", {
        with: person.identity, with_name: person.name, title: $("booking-subject").value.trim(), start, end,
      });
      if (res.ok) {
        bookingDialog.close();
        view.booking = null;
        toast(t("agenda.toastSent", { name: person.name }));
        await load();
        return;
      }
      bookingError = res.status === 429 ? t("book.tooMany") : errorText(res);
    } catch (err) {
      bookingError = err.message;
    } finally {
      $("booking-submit").disabled = false;
    }
    renderBooking();
  }

  // -- what the other side did ------------------------------------------------------------

  function whoDid(appointment) {
    const mine = me();
    if (appointment.room) return null; // its meeting opened: meeting-ready tells
    if (appointment.status === "proposed") return appointment.organizer.identity === mine ? null : appointment.organizer;
    if (appointment.status === "cancelled") {
      if (appointment.cancelled_by === mine) return null;
      return appointment.organizer.identity === appointment.cancelled_by ? appointment.organizer : appointment.counterpart;
    }
    return appointment.counterpart.identity === mine ? null : appointment.counterpart; // answered
  }

  document.addEventListener("fairwire:appointment", (event) => {
    const appointment = event.detail && event.detail.appointment;
    if (!appointment || !usable()) return;
    const other = whoDid(appointment);
    if (other) {
      const key = { proposed: "agenda.toastProposed", accepted: "agenda.toastAccepted", declined: "agenda.toastDeclined", cancelled: "agenda.toastCancelled" }[appointment.status];
      if (key) toast(t(key, { name: other.name, title: appointment.title, when: when(appointment.start, appointment.end) }));
    }
    load();
  });

  document.addEventListener("fairwire:appointment-reminder", (event) => {
    const detail = event.detail || {};
    const appointment = detail.appointment;
    if (!appointment || !usable()) return;
    const other = appointment.organizer.identity === me() ? appointment.counterpart : appointment.organizer;
    const minutes = Math.max(1, Math.round((detail.starts_in || 0) / 60));
    toast(t("agenda.toastReminder", { title: appointment.title, name: other.name, minutes }));
    load();
  });

  // -- rendering --------------------------------------------------------------------------

  function statusLine(entry) {
    const name = entry.with.name;
    if (entry.status === "proposed") {
      return t(entry.side === "counterpart" ? "agenda.waitingForYou" : "agenda.waitingForThem", { name });
    }
    if (entry.status === "accepted" && entry.room) return t("agenda.meetingOpen");
    if (entry.status === "cancelled") {
      return t("agenda.cancelledBy", { name: entry.cancelled_by === me() ? t("agenda.you") : name });
    }
    return "";
  }

  const ACTION_BUTTONS = {
    accept: ["button-live", "agenda.accept"],
    decline: ["button-secondary", "agenda.decline"],
    cancel: ["button-secondary", "agenda.cancel"],
    join: ["", "agenda.join"],
  };

  function renderEntry(entry) {
    const li = el("li", "agenda-item agenda-" + entry.status);
    li.dataset.id = entry.id;
    li.dataset.status = entry.status;
    const head = el("div", "agenda-item-head");
    head.append(el("span", "agenda-when", when(entry.start, entry.end)),
      el("span", "chip agenda-status agenda-status-" + entry.status, t("agenda.status." + entry.status)));
    li.append(head, el("span", "agenda-subject", entry.title), el("span", "agenda-with", t("agenda.with", { name: entry.with.name })));
    const line = statusLine(entry);
    if (line) li.appendChild(el("span", "agenda-note", line));
    const actions = el("div", "agenda-actions");
    for (const action of entry.actions || []) {
      const [style, key] = ACTION_BUTTONS[action] || [];
      if (key) actions.appendChild(button(style, t(key), () => act(entry.id, action)));
    }
    if (entry.status === "proposed" || entry.status === "accepted") {
      actions.appendChild(button("button-secondary agenda-ics", t("agenda.calendar"), () => download(entry.id)));
    }
    if (actions.children.length) li.appendChild(actions);
    return li;
  }

  function renderBooking() {
    const person = view.booking;
    const name = person ? person.name : "";
    $("booking-title").textContent = t("book.with", { name });
    $("booking-hint").textContent = t("book.hint", { zone: timeZone, name });
    $("booking-date-label").textContent = t("book.date");
    $("booking-time-label").textContent = t("book.time");
    $("booking-duration-label").textContent = t("book.duration");
    $("booking-subject-label").textContent = t("book.subject");
    const select = $("booking-duration");
    const chosen = select.value || String(DEFAULT_DURATION);
    select.replaceChildren(...DURATIONS.map((minutes) => {
      const option = el("option", "", t("book.minutes", { minutes }));
      option.value = String(minutes);
      return option;
    }));
    select.value = chosen;
    $("booking-back").textContent = t("book.back");
    $("booking-submit").textContent = t("book.submit");
    const error = $("booking-error");
    error.hidden = !bookingError;
    error.textContent = bookingError || "";
  }

  /** The header button and its count: on every page render (presence changes, joins). */
  function renderButton() {
    const pending = view.appointments.filter((e) => (e.actions || []).includes("accept")).length;
    view.pending = pending;
    $("agenda-button").hidden = !usable();
    $("agenda-label").textContent = t("agenda.button");
    $("agenda-count").hidden = !pending;
    $("agenda-count").textContent = String(pending);
    $("agenda-count").title = t("agenda.pending", { count: pending });
  }

  /** Everything: when the agenda or the language changes (the list keeps focus otherwise). */
  function render() {
    renderButton();
    $("agenda-title").textContent = t("agenda.title");
    $("agenda-done").textContent = t("agenda.done");
    $("agenda-zone").textContent = t("agenda.zone", { zone: timeZone });
    $("agenda-ics-all").textContent = t("agenda.calendarAll");
    $("agenda-ics-all").hidden = !view.appointments.length;
    const list = $("agenda-list");
    list.replaceChildren(...(view.appointments.length ? view.appointments.map(renderEntry)
      : [el("li", "panel-empty", t("agenda.empty"))]));
    const error = $("agenda-error");
    error.hidden = !view.error;
    error.textContent = view.error || "";
    renderBooking();
  }

  $("agenda-button").addEventListener("click", openAgenda);
  $("agenda-done").addEventListener("click", () => agendaDialog.close());
  $("agenda-ics-all").addEventListener("click", () => download(null));
  $("booking-form").addEventListener("submit", propose);
  $("booking-back").addEventListener("click", () => {
    bookingDialog.close();
    view.booking = null;
  });
  document.addEventListener("fairwire:render", () => {
    // Once per connection: after a reconnect, what changed meanwhile is read again.
    const connection = fairwire.socket && fairwire.socket.id;
    if (usable() && connection && connection !== loadedFor) {
      loadedFor = connection;
      load();
    }
    renderButton();
  });
  document.addEventListener("fairwire:lang", render);
  render();
})();
