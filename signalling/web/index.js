/* Fairwire programme page: rooms from GET /api/rooms grouped by category, refreshed every 10 s.
 * The request carries no credentials, so only public rooms are listed (private meetings are
 * reachable with their own links only). Badges: status live and on air (someone broadcasts) ->
 * LIVE; live but nobody on air yet -> "Starting soon"; scheduled (with its start time); ended
 * rooms under "Past". On air first, then starting soon, then scheduled ones by start time.
 * A card opens /room/{id} without a token: the room page asks for a guest token by itself.
 */
(function () {
  "use strict";

  const el = window.FairwireDom.el; // dom.js

  const REFRESH_MS = 10000;
  const i18n = window.FairwireI18n;
  const t = i18n.t;

  i18n.add({
    en: {
      "index.startingSoonHint": "The room is open: the broadcast starts any moment.",
      "index.opensSince": "Open since {time}",
    },
    zh: {
      "index.startingSoonHint": "房间已开放，直播马上开始。",
      "index.opensSince": "{time} 开放",
    },
  });
  i18n.apply();

  const els = {
    programme: document.getElementById("programme"),
    status: document.getElementById("status"),
    updated: document.getElementById("updated"),
    past: document.getElementById("past"),
    pastTitle: document.getElementById("past-title"),
    pastList: document.getElementById("past-list"),
  };

  // Tests and curious people can look at what the page shows.
  const state = (window.fairwireIndex = { rooms: null, error: null, loadedAt: null });

  function formatTime(seconds) {
    if (typeof seconds !== "number") return "";
    return new Intl.DateTimeFormat(i18n.locale(), {
      weekday: "short",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    }).format(new Date(seconds * 1000));
  }

  function clock(date) {
    return new Intl.DateTimeFormat(i18n.locale(), { timeStyle: "short" }).format(date);
  }

  /** live && on_air -> "live"; live && !on_air -> "soon"; else scheduled or ended. */
  function shownStatus(room) {
    if (room.status === "live") return room.on_air ? "live" : "soon";
    return room.status === "ended" ? "ended" : "scheduled";
  }

  function roomCard(room) {
    const status = shownStatus(room);
    const card = el("article", "room-card status-" + status);
    card.dataset.roomId = room.id;
    card.dataset.status = status;
    card.setAttribute("aria-labelledby", "room-" + room.id + "-name");

    const head = el("div", "room-card-head");
    if (status === "live") {
      const badge = el("span", "badge badge-live", t("status.live"));
      head.appendChild(badge);
    } else if (status === "soon") {
      const badge = el("span", "badge badge-soon", t("status.soon"));
      badge.title = t("index.startingSoonHint");
      head.appendChild(badge);
    } else if (status === "ended") {
      head.appendChild(el("span", "badge badge-ended", t("status.ended")));
    } else {
      head.appendChild(el("span", "badge badge-scheduled", t("status.scheduled")));
    }
    head.appendChild(el("span", "chip chip-" + room.kind, t("kind." + room.kind)));
    card.appendChild(head);

    const name = el("h3", "room-name");
    name.id = "room-" + room.id + "-name";
    const link = el("a", null, room.name);
    link.href = "/room/" + encodeURIComponent(room.id);
    name.appendChild(link);
    card.appendChild(name);

    let when = "";
    if (status === "live") {
      when = room.started_at ? t("index.liveSince", { time: formatTime(room.started_at) }) : "";
    } else if (status === "soon") {
      when = room.scheduled_start
        ? t("index.startsAt", { time: formatTime(room.scheduled_start) })
        : room.started_at
          ? t("index.opensSince", { time: formatTime(room.started_at) })
          : "";
    } else if (room.status === "ended") {
      const end = room.ended_at || room.scheduled_end;
      when = end ? t("index.endedAt", { time: formatTime(end) }) : "";
    } else {
      when = room.scheduled_start
        ? t("index.startsAt", { time: formatTime(room.scheduled_start) })
        : t("index.notScheduled");
    }
    if (when) {
      const time = el("p", "room-time", when);
      card.appendChild(time);
    }
    return card;
  }

  function byStart(a, b) {
    const sa = a.scheduled_start ?? Number.MAX_SAFE_INTEGER;
    const sb = b.scheduled_start ?? Number.MAX_SAFE_INTEGER;
    return sa - sb || a.name.localeCompare(b.name);
  }

  function render() {
    const rooms = state.rooms;
    els.programme.setAttribute("aria-busy", String(rooms === null));
    els.programme.replaceChildren();
    els.pastList.replaceChildren();
    if (state.error) {
      els.status.textContent = t("index.error");
      els.status.className = "notice notice-error";
    } else if (rooms === null) {
      els.status.textContent = t("index.loading");
      els.status.className = "notice";
    } else {
      els.status.textContent = "";
      els.status.className = "notice";
    }
    els.updated.textContent = state.loadedAt ? t("index.updated", { time: clock(state.loadedAt) }) : "";
    if (rooms === null) {
      els.past.hidden = true;
      return;
    }

    const current = rooms.filter((r) => r.status !== "ended");
    const ended = rooms.filter((r) => r.status === "ended");

    if (rooms.length === 0) {
      const empty = el("div", "empty-state");
      empty.appendChild(el("p", null, t("index.empty")));
      els.programme.appendChild(empty);
    }

    // Categories: the ones with something on air first, then open ones, then by name; "Other" last.
    const groups = new Map();
    for (const room of current) {
      const key = (room.category || "").trim();
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(room);
    }
    const keys = [...groups.keys()].sort((a, b) => {
      if (!a !== !b) return a ? -1 : 1;
      const rank = (key) => {
        const shown = groups.get(key).map(shownStatus);
        return shown.includes("live") ? 0 : shown.includes("soon") ? 1 : 2;
      };
      if (rank(a) !== rank(b)) return rank(a) - rank(b);
      return a.localeCompare(b, i18n.locale());
    });

    for (const key of keys) {
      const list = groups.get(key);
      const onAir = list.filter((r) => shownStatus(r) === "live").sort((a, b) => a.name.localeCompare(b.name));
      const soon = list.filter((r) => shownStatus(r) === "soon").sort(byStart);
      const scheduled = list.filter((r) => r.status !== "live").sort(byStart);
      const section = el("section", "category");
      section.dataset.category = key;
      const header = el("div", "category-head");
      const title = el("h2", null, key || t("index.other"));
      header.appendChild(title);
      const count = el(
        "span",
        "category-count",
        list.length === 1 ? t("index.roomCountOne") : t("index.roomCount", { count: list.length }),
      );
      header.appendChild(count);
      if (onAir.length) {
        header.appendChild(el("span", "category-live", t("index.liveNow", { count: onAir.length })));
      }
      section.appendChild(header);
      const grid = el("div", "room-grid");
      for (const room of [...onAir, ...soon, ...scheduled]) grid.appendChild(roomCard(room));
      section.appendChild(grid);
      els.programme.appendChild(section);
    }

    els.past.hidden = ended.length === 0;
    els.pastTitle.textContent = t("index.pastCount", { count: ended.length });
    ended
      .sort((a, b) => (b.ended_at || 0) - (a.ended_at || 0))
      .forEach((room) => els.pastList.appendChild(roomCard(room)));
  }

  async function load() {
    try {
      const response = await fetch("/api/rooms", { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const body = await response.json();
      state.rooms = Array.isArray(body.rooms) ? body.rooms : [];
      state.error = null;
      state.loadedAt = new Date();
    } catch (err) {
      state.error = String(err && err.message ? err.message : err);
    }
    render();
  }

  document.addEventListener("fairwire:lang", render);
  render();
  load();
  window.setInterval(load, REFRESH_MS);
})();
