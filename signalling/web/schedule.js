/* Fairwire livestream schedule: GET /api/rooms?kind=livestream&from=&to= (UNIX seconds) for the
 * viewer's today and the next DAYS_AHEAD - 1 days, refreshed every 15 s. The request carries no
 * credentials, so only public livestreams are listed.
 *
 * "Live now" comes first: rooms on air (status live and someone broadcasts), then live rooms
 * nobody broadcasts in yet ("starting soon"). Below, every other livestream by day (in the
 * viewer's time zone, from Intl) and, within a day, by category, each by start time. A category
 * filter (?category=, kept in the address) narrows both. Every entry opens /room/{id}.
 */
(function () {
  "use strict";

  const el = window.FairwireDom.el; // dom.js

  const REFRESH_MS = 15000;
  const DAYS_AHEAD = 14;
  const i18n = window.FairwireI18n;
  const t = i18n.t;

  i18n.add({
    en: {
      "schedule.title": "Fairwire · Livestream schedule",
      "schedule.heading": "Livestream schedule",
      "schedule.subtitle": "Booth and production-line livestreams of the next two weeks, by day and industry.",
      "schedule.nav": "Pages",
      "schedule.programme": "Programme",
      "schedule.timezone": "Times in your time zone ({zone}).",
      "schedule.updated": "Updated {time}",
      "schedule.loading": "Loading the schedule…",
      "schedule.error": "Cannot load the schedule right now. Retrying…",
      "schedule.empty": "No livestreams are scheduled for the next two weeks yet. Please check back soon.",
      "schedule.emptyCategory": "No livestreams in {category} for the next two weeks.",
      "schedule.filter": "Filter by category",
      "schedule.all": "All categories",
      "schedule.other": "Other",
      "schedule.liveNow": "Live now",
      "schedule.onAirCount": "{count} on air",
      "schedule.soonCount": "{count} starting soon",
      "schedule.today": "Today",
      "schedule.tomorrow": "Tomorrow",
      "schedule.count": "{count} livestreams",
      "schedule.countOne": "1 livestream",
      "schedule.liveSince": "Live since {time}",
      "schedule.opensSince": "Open since {time}: the broadcast starts any moment",
      "schedule.startsAt": "Starts {time}",
    },
    zh: {
      "schedule.title": "Fairwire · 直播时间表",
      "schedule.heading": "直播时间表",
      "schedule.subtitle": "未来两周的展台与生产线直播，按日期和行业排列。",
      "schedule.nav": "页面导航",
      "schedule.programme": "全部日程",
      "schedule.timezone": "时间均为您所在的时区（{zone}）。",
      "schedule.updated": "更新于 {time}",
      "schedule.loading": "正在加载直播时间表…",
      "schedule.error": "暂时无法加载直播时间表，正在重试…",
      "schedule.empty": "未来两周暂无已安排的直播，敬请期待。",
      "schedule.emptyCategory": "未来两周「{category}」暂无直播。",
      "schedule.filter": "按行业筛选",
      "schedule.all": "全部行业",
      "schedule.other": "其他",
      "schedule.liveNow": "正在直播",
      "schedule.onAirCount": "{count} 场直播中",
      "schedule.soonCount": "{count} 场即将开始",
      "schedule.today": "今天",
      "schedule.tomorrow": "明天",
      "schedule.count": "{count} 场直播",
      "schedule.countOne": "1 场直播",
      "schedule.liveSince": "{time} 开播",
      "schedule.opensSince": "{time} 起开放，直播马上开始",
      "schedule.startsAt": "{time} 开始",
    },
  });
  i18n.apply();

  const els = {
    filters: document.getElementById("filters"),
    status: document.getElementById("status"),
    timezone: document.getElementById("timezone"),
    updated: document.getElementById("updated"),
    liveNow: document.getElementById("live-now"),
    liveNowCount: document.getElementById("live-now-count"),
    liveNowList: document.getElementById("live-now-list"),
    days: document.getElementById("days"),
  };

  const timeZone = new Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const initial = new URLSearchParams(window.location.search).get("category");

  // Tests and curious people can look at what the page shows.
  const state = (window.fairwireSchedule = {
    rooms: null,
    error: null,
    loadedAt: null,
    category: initial === null ? null : initial.trim(),
    timeZone,
    window: null,
    days: [],
  });

  // -- time, in the viewer's time zone -------------------------------------------------------

  const dayKeyFormat = new Intl.DateTimeFormat("en-CA", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  });

  /** "2026-12-01": the calendar day of a UNIX time where the viewer is. */
  function dayKey(seconds) {
    const parts = dayKeyFormat.formatToParts(new Date(seconds * 1000));
    const part = (type) => (parts.find((p) => p.type === type) || { value: "" }).value;
    return part("year") + "-" + part("month") + "-" + part("day");
  }

  /** [start of today, start of the day DAYS_AHEAD later) in UNIX seconds (local midnights). */
  function scheduleWindow() {
    const now = new Date();
    const from = new Date(now.getFullYear(), now.getMonth(), now.getDate());
    const to = new Date(now.getFullYear(), now.getMonth(), now.getDate() + DAYS_AHEAD);
    const tomorrow = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1, 12);
    return {
      from: Math.floor(from.getTime() / 1000),
      to: Math.floor(to.getTime() / 1000),
      today: dayKey(now.getTime() / 1000),
      tomorrow: dayKey(tomorrow.getTime() / 1000),
    };
  }

  // One clock style everywhere (formatRange drops a 2-digit hour's zero: "9:00 – 10:00 AM").
  const CLOCK = { hour: "numeric", minute: "2-digit" };

  function clock(seconds) {
    return new Intl.DateTimeFormat(i18n.locale(), { timeZone, ...CLOCK }).format(new Date(seconds * 1000));
  }

  /** A time of today as a clock, of another day with its date. */
  function when(seconds) {
    if (dayKey(seconds) === (state.window && state.window.today)) return clock(seconds);
    return dated(seconds);
  }

  function dated(seconds) {
    return new Intl.DateTimeFormat(i18n.locale(), {
      timeZone,
      month: "short",
      day: "numeric",
      ...CLOCK,
    }).format(new Date(seconds * 1000));
  }

  /** Start and end as a day's list shows them: clocks, with the date of a time on another day
   * (a live that began the day before, or runs past midnight). Returns the parts to show. */
  function timeRange(start, end, key) {
    const sameDay = (seconds) => dayKey(seconds) === key;
    const hasEnd = typeof end === "number" && end > start;
    if (hasEnd && sameDay(start) && sameDay(end)) {
      const format = new Intl.DateTimeFormat(i18n.locale(), { timeZone, ...CLOCK });
      if (typeof format.formatRange === "function") {
        return [format.formatRange(new Date(start * 1000), new Date(end * 1000))];
      }
    }
    const part = (seconds) => (sameDay(seconds) ? clock(seconds) : dated(seconds));
    return hasEnd ? [part(start) + " –", part(end)] : [part(start)];
  }

  function dayTitle(key) {
    const [year, month, day] = key.split("-").map(Number);
    // Noon UTC of that calendar day names the same day in every time zone but the farthest.
    const date = new Date(Date.UTC(year, month - 1, day, 12));
    return new Intl.DateTimeFormat(i18n.locale(), {
      timeZone: "UTC",
      weekday: "long",
      month: "long",
      day: "numeric",
    }).format(date);
  }

  // -- rooms ---------------------------------------------------------------------------------

  /** When a room takes place: the earlier of its scheduled and actual start (as the API sorts). */
  function startOf(room) {
    const starts = [room.scheduled_start, room.started_at].filter((v) => typeof v === "number");
    return starts.length ? Math.min(...starts) : null;
  }

  function endOf(room) {
    if (room.status === "ended" && typeof room.ended_at === "number") return room.ended_at;
    return typeof room.scheduled_end === "number" ? room.scheduled_end : null;
  }

  /** live && on_air -> "live"; live && !on_air -> "soon"; else scheduled or ended. */
  function shownStatus(room) {
    if (room.status === "live") return room.on_air ? "live" : "soon";
    return room.status === "ended" ? "ended" : "scheduled";
  }

  function categoryOf(room) {
    return (room.category || "").trim();
  }

  function byStart(a, b) {
    return (startOf(a) ?? 0) - (startOf(b) ?? 0) || a.name.localeCompare(b.name, i18n.locale());
  }

  /** Categories by name in the viewer's language; rooms without one ("Other") last. */
  function byCategory(a, b) {
    if (!a !== !b) return a ? -1 : 1;
    return a.localeCompare(b, i18n.locale());
  }

  /** "Chinese · English": the languages a room is held in, by name in the page's language. */
  function languageNames(tags) {
    let names = null;
    try {
      names = new Intl.DisplayNames([i18n.locale()], { type: "language" });
    } catch (_) {
      /* no DisplayNames: the tags themselves */
    }
    const shown = [];
    for (const tag of tags || []) {
      const primary = String(tag).split("-")[0];
      let name = primary;
      try {
        name = (names && names.of(primary)) || primary;
      } catch (_) {
        /* not a language tag the browser knows */
      }
      if (!shown.includes(name)) shown.push(name);
    }
    return shown.join(" · ");
  }

  function badge(status) {
    const classes = { live: "badge-live", soon: "badge-soon", ended: "badge-ended", scheduled: "badge-scheduled" };
    return el("span", "badge " + classes[status], t("status." + status));
  }

  function roomLink(room, className) {
    const link = el("a", className, room.name);
    link.href = "/room/" + encodeURIComponent(room.id);
    return link;
  }

  /** A card of the "Live now" section. */
  function liveCard(room) {
    const status = shownStatus(room);
    const card = el("article", "room-card status-" + status);
    card.dataset.roomId = room.id;
    card.dataset.status = status;
    const head = el("div", "room-card-head");
    head.appendChild(badge(status));
    const category = categoryOf(room);
    head.appendChild(el("span", "chip chip-plain", category || t("schedule.other")));
    card.appendChild(head);
    const name = el("h3", "room-name");
    name.appendChild(roomLink(room));
    card.appendChild(name);
    const since = room.started_at ?? startOf(room);
    if (typeof since === "number") {
      const key = status === "live" ? "schedule.liveSince" : "schedule.opensSince";
      card.appendChild(el("p", "room-time", t(key, { time: when(since) })));
    }
    return card;
  }

  /** A line of the list of day ``key``: time, status, name. */
  function scheduleItem(room, key) {
    const status = shownStatus(room);
    const item = el("li", "schedule-item status-" + status);
    item.dataset.roomId = room.id;
    item.dataset.status = status;
    const start = startOf(room);
    const time = el("time", "schedule-time");
    const parts = timeRange(start, endOf(room), key);
    parts.forEach((text, index) => {
      if (index) time.appendChild(document.createTextNode(" "));
      time.appendChild(el("span", null, text));
    });
    time.dateTime = new Date(start * 1000).toISOString();
    item.appendChild(time);
    const main = el("div", "schedule-main");
    main.appendChild(roomLink(room, "schedule-name"));
    const meta = el("div", "schedule-meta");
    meta.appendChild(badge(status));
    const languages = languageNames(room.languages);
    if (languages) meta.appendChild(el("span", "schedule-language", languages));
    main.appendChild(meta);
    item.appendChild(main);
    return item;
  }

  function renderFilters(rooms) {
    const categories = [...new Set(rooms.map(categoryOf))].sort(byCategory);
    els.filters.hidden = categories.length < 2 && !state.category;
    els.filters.replaceChildren();
    const options = [[null, t("schedule.all")]].concat(categories.map((c) => [c, c || t("schedule.other")]));
    if (state.category !== null && !categories.includes(state.category)) {
      options.push([state.category, state.category || t("schedule.other")]);
    }
    for (const [value, label] of options) {
      const button = el("button", "chip schedule-filter", label);
      button.type = "button";
      button.dataset.category = value === null ? "*" : value;
      button.setAttribute("aria-pressed", String(state.category === value));
      button.addEventListener("click", () => chooseCategory(value));
      els.filters.appendChild(button);
    }
  }

  function chooseCategory(value) {
    state.category = value;
    const url = new URL(window.location.href);
    if (value === null) url.searchParams.delete("category");
    else url.searchParams.set("category", value);
    window.history.replaceState(null, "", url.toString());
    render();
  }

  function render() {
    const rooms = state.rooms;
    els.days.setAttribute("aria-busy", String(rooms === null));
    els.days.replaceChildren();
    els.liveNowList.replaceChildren();
    els.timezone.textContent = t("schedule.timezone", { zone: timeZone });
    els.updated.textContent = state.loadedAt ? t("schedule.updated", { time: clock(state.loadedAt / 1000) }) : "";
    if (state.error) {
      els.status.textContent = t("schedule.error");
      els.status.className = "notice notice-error";
    } else {
      els.status.textContent = rooms === null ? t("schedule.loading") : "";
      els.status.className = "notice";
    }
    if (rooms === null) {
      els.liveNow.hidden = true;
      els.filters.hidden = true;
      return;
    }
    renderFilters(rooms);
    const chosen = rooms.filter((r) => state.category === null || categoryOf(r) === state.category);

    // Live now: on air first, then open rooms nobody broadcasts in yet.
    const onAir = chosen.filter((r) => shownStatus(r) === "live").sort(byStart);
    const soon = chosen.filter((r) => shownStatus(r) === "soon").sort(byStart);
    els.liveNow.hidden = onAir.length + soon.length === 0;
    const counts = [];
    if (onAir.length) counts.push(t("schedule.onAirCount", { count: onAir.length }));
    if (soon.length) counts.push(t("schedule.soonCount", { count: soon.length }));
    els.liveNowCount.textContent = counts.join(" · ");
    for (const room of [...onAir, ...soon]) els.liveNowList.appendChild(liveCard(room));

    // The rest by day (a room that began before today counts for today), then by category.
    const windowed = state.window;
    const days = new Map();
    for (const room of chosen) {
      if (room.status === "live") continue;
      const start = startOf(room);
      if (start === null) continue;
      const key = start < windowed.from ? windowed.today : dayKey(start);
      if (!days.has(key)) days.set(key, new Map());
      const categories = days.get(key);
      const category = categoryOf(room);
      if (!categories.has(category)) categories.set(category, []);
      categories.get(category).push(room);
    }
    state.days = [];
    for (const key of [...days.keys()].sort()) {
      const categories = days.get(key);
      const section = el("section", "schedule-day");
      section.dataset.day = key;
      const head = el("div", "schedule-day-head");
      const relative = key === windowed.today ? "schedule.today" : key === windowed.tomorrow ? "schedule.tomorrow" : null;
      const title = el("h2", "schedule-day-title");
      if (relative) title.appendChild(el("span", "schedule-day-relative", t(relative)));
      title.appendChild(el("span", "schedule-day-date", dayTitle(key)));
      head.appendChild(title);
      const total = [...categories.values()].reduce((sum, list) => sum + list.length, 0);
      head.appendChild(el("span", "category-count", total === 1 ? t("schedule.countOne") : t("schedule.count", { count: total })));
      section.appendChild(head);
      const shownCategories = [];
      for (const category of [...categories.keys()].sort(byCategory)) {
        const list = categories.get(category).sort(byStart);
        const block = el("div", "schedule-category");
        block.dataset.category = category;
        block.appendChild(el("h3", "schedule-category-title", category || t("schedule.other")));
        const items = el("ol", "schedule-list");
        for (const room of list) items.appendChild(scheduleItem(room, key));
        block.appendChild(items);
        section.appendChild(block);
        shownCategories.push({ category, rooms: list.map((r) => r.id) });
      }
      state.days.push({ day: key, categories: shownCategories });
      els.days.appendChild(section);
    }

    if (chosen.length === 0) {
      const empty = el("div", "empty-state");
      const text =
        state.category === null
          ? t("schedule.empty")
          : t("schedule.emptyCategory", { category: state.category || t("schedule.other") });
      empty.appendChild(el("p", null, text));
      els.days.appendChild(empty);
    }
  }

  async function load() {
    const windowed = scheduleWindow();
    const query = new URLSearchParams({ kind: "livestream", from: String(windowed.from), to: String(windowed.to) });
    try {
      const response = await fetch("/api/rooms?" + query.toString(), {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const body = await response.json();
      state.rooms = Array.isArray(body.rooms) ? body.rooms : [];
      state.window = windowed;
      state.error = null;
      state.loadedAt = Date.now();
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
