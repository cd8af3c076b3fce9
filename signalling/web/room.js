/* Fairwire room page: /room/{id}?token=JWT
 *
 * socket.io (websocket only, auth {token}), then every request an emit with ack that may answer
 * {"error": {code, message}}.
 *
 * Presence is a sequenced event log per room (docs/socketio.md):
 *   join {since?} -> ack {room, self, ice_servers, seq, snapshot, participants? | events?,
 *                         audience: {current, peak}}
 *     snapshot true: `participants` is the list as of `seq`; false: `events` are everything
 *     after `since`, applied to the list the page already has. The first join sends no `since`;
 *     after a reconnect (socket.io reconnects by itself, "connect" joins again) the page sends
 *     join {since: seq} and catches up without a reload.
 *   "room-event" {seq, type, at, ...}: participant-joined / participant-updated {participant},
 *     participant-left {identity}, room-status {room}. One reducer, applyEvent(state, event),
 *     handles them all. seq <= ours: old, ignored; seq == ours + 1: applied; further ahead: a
 *     gap, so the page asks "sync" {since: seq} and applies its ack (same shape as join's).
 *     Events that arrive while a join or sync is unanswered wait in a buffer and are handled
 *     after it in the same way.
 *   "audience" {current, peak}: livestreams count their watchers instead of listing them.
 *     Listed are hosts, exhibitors and whoever publishes; hosts and exhibitors page through the
 *     rest with "audience-list" {cursor, limit} -> {viewers, next, total} (the Viewers panel).
 *   "replaced": the same identity joined elsewhere; room-status "ended": the room is over.
 * Media over the same socket:
 *   publish:   getUserMedia -> sendonly transceivers -> offer (ICE gathered, max 2 s)
 *              -> emit "publish" {type:"offer", sdp} -> ack {type:"answer", sdp}
 *              "unpublish" stops it.
 *   subscribe: emit "subscribe" {} -> ack {type:"offer", sdp} -> answer (ICE gathered, max 2 s)
 *              -> emit "subscribe-answer" {type:"answer", sdp}; server-sent "subscriber-offer"
 *              renegotiates the same way, one negotiation at a time.
 *   trickle:   local candidates are also sent as "ice-candidate" {target, candidate}.
 * A remote MediaStream's id is the publishing participant's identity: one tile per identity; a
 * participant who leaves the list loses its tile.
 *
 * For tests: window.fairwire = {state, participants, seq, audience, error, self, room,
 * publisherPc, subscriberPc, publishing, catchUps (the last joins/syncs: {via, since, seq,
 * snapshot, events}), viewerPageSize (audience-list's limit), socket, applyEvent,
 * _dropConnectionFor(ms)}.
 */
(function () {
  "use strict";

  const ACK_TIMEOUT_MS = 10000;
  const GATHER_TIMEOUT_MS = 2000;
  const SYNC_RETRY_MS = 2000;
  const VIEWER_PAGE_SIZE = 50;
  // Roles that may see who is watching a livestream ("audience-list").
  const AUDIENCE_VIEWERS = new Set(["host", "exhibitor"]);
  const ROLE_ORDER = { host: 0, exhibitor: 1, buyer: 2, visitor: 3 };
  // Errors after which reconnecting cannot help: the page stops and explains.
  const FATAL = new Set([
    "missing_token", "missing_credentials", "invalid_token", "token_expired", "wrong_room",
    "room_not_found", "room_ended", "replaced",
  ]);

  const i18n = window.FairwireI18n;
  const t = i18n.t;
  const $ = (id) => document.getElementById(id);

  const fairwire = (window.fairwire = {
    state: "connecting",
    participants: [],
    seq: null, // the last room event applied; null before the first join answered
    audience: null, // {current, peak} in livestreams
    catchUps: [],
    viewerPageSize: VIEWER_PAGE_SIZE,
    get socket() {
      return socket;
    },
    error: null,
    self: null,
    room: null,
    publisherPc: null,
    subscriberPc: null,
    publishing: false,
  });

  const roomId = decodeURIComponent(window.location.pathname.replace(/^\/room\//, "").replace(/\/$/, ""));
  const token = new URLSearchParams(window.location.search).get("token") || "";
  let socket = null;
  let iceServers = [];
  let localStream = null;
  let mediaNotice = null; // {key, params}
  let publishError = null; // {key, params}
  let connectionNotice = null; // i18n key
  let negotiation = Promise.resolve();
  // The person asked to be live: after a reconnect the page goes live again by itself.
  let wantLive = false;
  const tiles = new Map(); // identity -> {tile, video, label, unmute, stream}
  // Presence as of presence.seq; fairwire.participants/room/seq mirror it.
  let presence = { seq: null, room: null, participants: [] };
  let pending = []; // room events not handled yet (a join or sync is unanswered, or a gap)
  let catchUp = null; // the join or sync whose answer the page waits for
  let syncTimer = null;
  let lastSyncAt = -Infinity;
  let freshSnapshot = false; // the next join asks for the whole list (the log did not add up)
  // The Viewers panel: one page of "audience-list" after another.
  let viewers = { items: [], next: null, total: null, loaded: false, loading: false, error: null, generation: 0 };

  // -- helpers ----------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  class ServerError extends Error {
    constructor(error) {
      super(error && error.message ? error.message : "error");
      this.code = (error && error.code) || "unknown";
    }
  }

  /** Emit with an acknowledgement; rejects on timeout or an {"error": ...} answer. */
  async function request(event, data) {
    let ack;
    try {
      ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, data === undefined ? {} : data);
    } catch (_) {
      throw new ServerError({ code: "timeout", message: event + ": no answer from the server" });
    }
    if (ack && typeof ack === "object" && ack.error) throw new ServerError(ack.error);
    return ack;
  }

  /** The JWT's payload, unverified: only to tell a link for another room early. */
  function tokenClaims(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const json = decodeURIComponent(
        atob(part).split("").map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
      );
      return JSON.parse(json);
    } catch (_) {
      return null;
    }
  }

  function errorText(error) {
    const key = "error." + error.code;
    const text = t(key);
    return text === key ? t("error.unknown", { message: error.message || error.code }) : text;
  }

  function participantName(identity) {
    const p = fairwire.participants.find((x) => x.identity === identity);
    return p ? p.name : identity;
  }

  function formatNumber(n) {
    return new Intl.NumberFormat(i18n.locale()).format(n);
  }

  function formatTime(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "";
    return new Intl.DateTimeFormat(i18n.locale(), { timeStyle: "short" }).format(new Date(seconds * 1000));
  }

  function isLivestream() {
    return !!(fairwire.room && fairwire.room.kind === "livestream");
  }

  function maySeeViewers() {
    return isLivestream() && !!fairwire.self && AUDIENCE_VIEWERS.has(fairwire.self.role);
  }

  // -- state changes ----------------------------------------------------------------------

  function fail(error) {
    fairwire.state = "error";
    fairwire.error = { code: error.code || "unknown", message: error.message || "" };
    connectionNotice = null;
    stopPublishing(false);
    closeSubscriber();
    closeViewers();
    if (socket) {
      socket.io.reconnection(false);
      socket.disconnect();
    }
    render();
  }

  function setParticipants(list) {
    fairwire.participants = Array.isArray(list) ? list.slice() : [];
    renderParticipants();
    for (const [identity, entry] of tiles) entry.label.textContent = participantName(identity);
  }

  // -- presence: the room's event log ------------------------------------------------------

  /**
   * The one reducer: presence {seq, room, participants} after `event`. Pure: side effects
   * (tiles, the page's end) follow from comparing states in commit().
   */
  function applyEvent(state, event) {
    const next = { seq: event.seq, room: state.room, participants: state.participants };
    switch (event.type) {
      case "participant-joined": {
        // A newer connection of the same identity takes the old one's place, at the end
        // (rooms/presence.py folds the same way).
        const p = event.participant;
        if (!p || typeof p.identity !== "string") break;
        next.participants = [...state.participants.filter((x) => x.identity !== p.identity), p];
        break;
      }
      case "participant-updated": {
        const p = event.participant;
        if (!p || typeof p.identity !== "string") break;
        const at = state.participants.findIndex((x) => x.identity === p.identity);
        next.participants = at < 0
          ? [...state.participants, p]
          : state.participants.map((x, i) => (i === at ? p : x));
        break;
      }
      case "participant-left":
        next.participants = state.participants.filter((x) => x.identity !== event.identity);
        break;
      case "room-status":
        if (event.room && typeof event.room === "object") next.room = event.room;
        break;
      default:
        break; // a type this page does not know still takes its place in the sequence
    }
    return next;
  }
  fairwire.applyEvent = applyEvent;

  /** Show `next` presence: the list, tiles of people who left, the end of the room. */
  function commit(next) {
    const before = presence;
    presence = next;
    fairwire.seq = next.seq;
    if (next.room) fairwire.room = next.room;
    setParticipants(next.participants);
    const still = new Set(next.participants.map((p) => p.identity));
    for (const p of before.participants) if (!still.has(p.identity)) removeTile(p.identity);
    if (fairwire.room && fairwire.room.status === "ended" && fairwire.state !== "error") {
      fail({ code: "room_ended", message: "this room has ended" });
      return;
    }
    render();
  }

  function isEvent(event) {
    return !!event && typeof event === "object" && Number.isInteger(event.seq) && typeof event.type === "string";
  }

  /** Events in order from state.seq + 1, as far as they go without a gap. */
  function applyRun(state, events) {
    const sorted = events.filter(isEvent).sort((a, b) => a.seq - b.seq);
    let rest = [];
    for (let i = 0; i < sorted.length; i++) {
      const event = sorted[i];
      if (event.seq <= state.seq) continue;
      if (event.seq !== state.seq + 1) {
        rest = sorted.slice(i);
        break;
      }
      state = applyEvent(state, event);
    }
    return { state, rest };
  }

  function onRoomEvent(event) {
    if (!isEvent(event)) return;
    pending.push(event);
    drain();
  }

  /**
   * Apply the buffered events that follow on; a gap asks the server for what is missing. Right
   * after a sync, a gap that is left waits a moment: its events may still be on their way.
   */
  function drain() {
    if (catchUp || presence.seq === null || fairwire.state !== "joined") return;
    const { state, rest } = applyRun(presence, pending);
    pending = rest;
    if (state !== presence) commit(state);
    if (!pending.length || fairwire.state !== "joined") return;
    const wait = lastSyncAt + SYNC_RETRY_MS - performance.now();
    if (wait <= 0) {
      sync();
    } else {
      window.clearTimeout(syncTimer);
      syncTimer = window.setTimeout(drain, wait);
    }
  }

  function noteCatchUp(via, since, ack) {
    fairwire.catchUps.push({
      via,
      since: since === undefined ? null : since,
      seq: ack.seq,
      snapshot: !!ack.snapshot,
      events: Array.isArray(ack.events) ? ack.events.length : 0,
    });
    if (fairwire.catchUps.length > 20) fairwire.catchUps.shift();
  }

  /**
   * The answer of a join or sync: the whole list (snapshot), or the events since what the page
   * has. Returns false when the events do not reach the answer's seq (the log has a hole).
   */
  function applyCatchUp(ack, via, since) {
    noteCatchUp(via, since, ack);
    const seq = Number.isInteger(ack.seq) ? ack.seq : 0;
    let state;
    let complete = true;
    if (ack.snapshot || presence.seq === null) {
      state = {
        seq,
        room: ack.room || presence.room,
        participants: Array.isArray(ack.participants) ? ack.participants.slice() : [],
      };
    } else {
      state = applyRun(presence, Array.isArray(ack.events) ? ack.events : []).state;
      if (ack.room) state = { ...state, room: ack.room };
      complete = state.seq >= seq;
      if (!complete) {
        console.warn("fairwire: " + via + " since " + since + " answered seq " + seq
          + " but its events reach only " + state.seq);
      }
    }
    setAudience(ack.audience);
    commit(state);
    return complete;
  }

  async function sync() {
    if (catchUp || fairwire.state !== "joined" || presence.seq === null) return;
    window.clearTimeout(syncTimer);
    const since = presence.seq;
    const mine = (catchUp = { via: "sync", since });
    lastSyncAt = performance.now();
    let ack;
    try {
      ack = await request("sync", { since });
    } catch (err) {
      if (catchUp !== mine) return;
      catchUp = null;
      // The gap is still in the buffer: drain tries again shortly (a reconnect joins instead).
      lastSyncAt = performance.now();
      drain();
      return;
    }
    if (catchUp !== mine) return; // a join after a reconnect took over
    catchUp = null;
    if (!applyCatchUp(ack, "sync", since)) {
      freshSnapshot = true;
      join();
      return;
    }
    drain();
  }

  function setAudience(audience) {
    if (!audience || typeof audience !== "object" || typeof audience.current !== "number") return;
    fairwire.audience = {
      current: audience.current,
      peak: typeof audience.peak === "number" ? Math.max(audience.peak, audience.current) : audience.current,
    };
    renderAudience();
  }

  // -- rendering --------------------------------------------------------------------------

  function render() {
    const room = fairwire.room;
    const name = $("room-name");
    if (room) {
      name.removeAttribute("data-i18n");
      name.textContent = room.name;
      document.title = room.name + " · Fairwire";
      const status = $("room-status");
      status.hidden = false;
      status.className = "badge badge-" + room.status;
      status.textContent = t("status." + room.status);
      const kind = $("room-kind");
      kind.hidden = false;
      kind.className = "chip chip-" + room.kind;
      kind.textContent = t("kind." + room.kind);
      const category = $("room-category");
      category.hidden = !room.category;
      category.textContent = room.category || "";
    } else if (fairwire.state === "error") {
      name.removeAttribute("data-i18n");
      name.textContent = t("error.title");
    } else {
      name.textContent = t("room.connecting");
    }

    const connection = $("connection");
    if (fairwire.state === "connecting" && !connectionNotice) {
      connection.textContent = t("room.connecting");
    } else {
      connection.textContent = connectionNotice ? t(connectionNotice) : "";
    }
    connection.hidden = !connection.textContent;

    const errorPanel = $("error-panel");
    errorPanel.hidden = fairwire.state !== "error";
    if (fairwire.state === "error") {
      $("error-message").textContent = errorText(fairwire.error);
      $("error-code").textContent = fairwire.error.code;
      $("retry").hidden = FATAL.has(fairwire.error.code);
    }
    $("room-body").hidden = fairwire.state === "error" || !fairwire.self;
    // Without a room there is nothing to head the page: the error panel says it all.
    $("room-header").hidden = fairwire.state === "error" && !room;
    renderParticipants();
    renderAudience();
    renderViewers();
    renderMedia();
  }

  function renderParticipants() {
    const list = $("participants");
    const people = fairwire.participants.slice().sort(
      (a, b) => (ROLE_ORDER[a.role] ?? 9) - (ROLE_ORDER[b.role] ?? 9) || (a.joined_at || 0) - (b.joined_at || 0),
    );
    const items = people.map((p) => {
      const li = el("li", "participant");
      li.dataset.identity = p.identity;
      const avatar = el("span", "avatar role-" + p.role, (p.name || p.identity).trim().charAt(0).toUpperCase());
      avatar.setAttribute("aria-hidden", "true");
      li.appendChild(avatar);
      const text = el("span", "participant-text");
      const name = el("span", "participant-name", p.name);
      text.appendChild(name);
      if (fairwire.self && p.identity === fairwire.self.identity) {
        text.appendChild(el("span", "participant-you", "(" + t("room.you") + ")"));
      }
      li.appendChild(text);
      if (Array.isArray(p.tracks) && p.tracks.length) {
        li.appendChild(el("span", "badge badge-live badge-small", t("status.live")));
      }
      li.appendChild(el("span", "role-badge role-" + p.role, t("role." + p.role)));
      return li;
    });
    const livestream = isLivestream();
    if (!items.length) items.push(el("li", "participant-empty", t(livestream ? "room.nobodyOnStage" : "room.noParticipants")));
    list.replaceChildren(...items);
    const count = formatNumber(fairwire.participants.length);
    $("participant-count").textContent = t(livestream ? "room.onStageCount" : "room.participantCount", { count });
  }

  function renderAudience() {
    const chip = $("audience");
    const audience = fairwire.audience;
    const show = isLivestream() && !!audience && fairwire.state !== "error";
    chip.hidden = !show;
    if (show) {
      $("audience-text").textContent = t("room.audience", {
        current: formatNumber(audience.current),
        peak: formatNumber(audience.peak),
      });
    }
    const button = $("viewers-button");
    button.hidden = !(maySeeViewers() && fairwire.state === "joined");
    button.textContent = t("room.viewers");
  }

  function renderViewers() {
    const panel = $("viewers-panel");
    if (!panel.open) return;
    const items = viewers.items.map((v) => {
      const li = el("li", "participant");
      li.dataset.identity = v.identity;
      const name = v.name || v.identity;
      const avatar = el("span", "avatar role-" + v.role, name.trim().charAt(0).toUpperCase());
      avatar.setAttribute("aria-hidden", "true");
      li.appendChild(avatar);
      const text = el("span", "participant-text");
      text.appendChild(el("span", "participant-name", name));
      const since = formatTime(v.joined_at);
      if (since) text.appendChild(el("span", "participant-since", t("room.viewerSince", { time: since })));
      li.appendChild(text);
      li.appendChild(el("span", "role-badge role-" + v.role, t("role." + v.role)));
      return li;
    });
    if (viewers.loaded && !items.length) items.push(el("li", "participant-empty", t("room.viewersEmpty")));
    $("viewers-list").replaceChildren(...items);

    const summary = $("viewers-summary");
    if (viewers.loaded && viewers.total > 0) {
      summary.textContent = t("room.viewersShown", {
        shown: formatNumber(viewers.items.length),
        total: formatNumber(viewers.total),
      });
    } else {
      summary.textContent = viewers.loaded || viewers.error ? "" : t("room.viewersLoading");
    }

    const error = $("viewers-error");
    error.hidden = !viewers.error;
    if (viewers.error) {
      error.textContent = viewers.error.code === "forbidden"
        ? t("room.viewersForbidden")
        : t("room.viewersError", { message: errorText(viewers.error) });
    }

    const more = $("viewers-more");
    const canRetry = !!viewers.error && viewers.error.code !== "forbidden";
    // The first page: the summary says "Loading…"; later ones: the button does.
    more.hidden = !(canRetry || (viewers.loaded && (viewers.loading || viewers.next !== null)));
    more.disabled = viewers.loading;
    more.textContent = viewers.loading ? t("room.viewersLoading") : canRetry ? t("room.retry") : t("room.viewersMore");
  }

  // -- the Viewers panel -------------------------------------------------------------------

  function openViewers() {
    const panel = $("viewers-panel");
    viewers = { items: [], next: null, total: null, loaded: false, loading: false, error: null, generation: viewers.generation + 1 };
    if (!panel.open) panel.showModal();
    renderViewers();
    loadViewers();
  }

  function closeViewers() {
    const panel = $("viewers-panel");
    viewers.generation += 1; // answers still on their way are dropped
    viewers.loading = false;
    if (panel.open) panel.close();
  }

  async function loadViewers() {
    if (viewers.loading) return;
    const generation = viewers.generation;
    viewers.loading = true;
    viewers.error = null;
    renderViewers();
    const limit = Math.min(200, Math.max(1, Math.floor(Number(fairwire.viewerPageSize)) || VIEWER_PAGE_SIZE));
    const query = { limit };
    if (viewers.next !== null) query.cursor = viewers.next;
    try {
      const page = await request("audience-list", query);
      if (generation !== viewers.generation) return;
      const seen = new Set(viewers.items.map((v) => v.identity));
      const firstNew = viewers.items.length;
      for (const v of Array.isArray(page && page.viewers) ? page.viewers : []) {
        if (!v || typeof v.identity !== "string" || seen.has(v.identity)) continue;
        seen.add(v.identity);
        viewers.items.push(v);
      }
      viewers.next = page && typeof page.next === "string" && page.next ? page.next : null;
      viewers.total = page && typeof page.total === "number" ? page.total : viewers.items.length;
      viewers.loaded = true;
      viewers.loading = false;
      renderViewers();
      const list = $("viewers-list");
      if (firstNew === 0) {
        list.scrollTop = 0; // a new look starts at the top, not where the last one ended
      } else if (list.children[firstNew]) {
        // Show where the new page starts: the button sits below the scrolling list.
        list.children[firstNew].scrollIntoView({ block: "start" });
      }
    } catch (err) {
      if (generation !== viewers.generation) return;
      viewers.error = err instanceof ServerError ? err : new ServerError({ code: "unknown", message: String(err) });
    } finally {
      if (generation === viewers.generation && viewers.loading) {
        viewers.loading = false;
        renderViewers();
      }
    }
  }

  function renderMedia() {
    const canPublish = !!(fairwire.self && fairwire.self.grants && fairwire.self.grants.includes("publish"));
    $("publish-panel").hidden = !canPublish || fairwire.state !== "joined";
    const live = fairwire.publishing;
    const goLive = $("go-live");
    goLive.hidden = live;
    $("go-live-label").textContent = goLive.disabled ? t("room.startingLive") : t("room.goLive");
    $("stop").textContent = t("room.stop");
    $("stop").hidden = !live;
    $("preview-wrap").hidden = !live;
    const mic = $("toggle-mic");
    const cam = $("toggle-cam");
    mic.hidden = cam.hidden = !live;
    const audio = localStream && localStream.getAudioTracks()[0];
    const video = localStream && localStream.getVideoTracks()[0];
    const micOn = !!(audio && audio.enabled);
    const camOn = !!(video && video.enabled);
    mic.textContent = micOn ? t("room.micOn") : t("room.micOff");
    mic.setAttribute("aria-pressed", String(!micOn));
    cam.textContent = camOn ? t("room.camOn") : t("room.camOff");
    cam.setAttribute("aria-pressed", String(!camOn));

    const publishErr = $("publish-error");
    publishErr.hidden = !publishError;
    publishErr.textContent = publishError ? t(publishError.key, publishError.params) : "";

    const notice = $("media-notice");
    notice.hidden = !mediaNotice;
    notice.textContent = mediaNotice ? t(mediaNotice.key, mediaNotice.params) : "";
    $("stage-empty").hidden = tiles.size > 0;
    for (const entry of tiles.values()) {
      entry.unmute.textContent = entry.video.muted ? t("room.unmute") : t("room.mute");
      entry.unmute.setAttribute("aria-pressed", String(!entry.video.muted));
    }
  }

  // -- WebRTC -----------------------------------------------------------------------------

  function normaliseIceServers(raw) {
    if (!Array.isArray(raw)) return [];
    return raw
      .map((s) => (typeof s === "string" ? { urls: s } : s))
      .filter((s) => s && (typeof s.urls === "string" || Array.isArray(s.urls)));
  }

  function waitForGathering(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        window.clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => {
        if (pc.iceGatheringState === "complete") done();
      };
      const timer = window.setTimeout(done, GATHER_TIMEOUT_MS);
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  function trickle(pc, target) {
    pc.addEventListener("icecandidate", (event) => {
      if (event.candidate && socket && socket.connected) {
        socket.emit("ice-candidate", { target, candidate: event.candidate.toJSON() });
      }
    });
  }

  async function goLive() {
    if (fairwire.publishing || $("go-live").disabled) return;
    publishError = null;
    $("go-live").disabled = true;
    renderMedia();
    let pc = null;
    try {
      localStream = await navigator.mediaDevices.getUserMedia({
        audio: true,
        video: { width: 1280, height: 720 },
      });
      pc = await negotiatePublisher("publish");
      fairwire.publishing = true;
      wantLive = true;
      const preview = $("preview");
      preview.srcObject = localStream;
      preview.play().catch(() => {});
    } catch (err) {
      stopPublishing(false);
      const name = err && err.name;
      if (name === "NotAllowedError" || name === "SecurityError") publishError = { key: "error.media_denied" };
      else if (name === "NotFoundError" || name === "OverconstrainedError") publishError = { key: "error.media_missing" };
      else publishError = { key: "error.media_failed", params: { message: err instanceof ServerError ? errorText(err) : String(err && err.message ? err.message : err) } };
    } finally {
      $("go-live").disabled = false;
      renderMedia();
    }
  }

  /** A sending connection for localStream, negotiated with `event` (publish or restart-ice). */
  async function negotiatePublisher(event) {
    const pc = new RTCPeerConnection({ iceServers });
    fairwire.publisherPc = pc;
    trickle(pc, "publisher");
    for (const track of localStream.getTracks()) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [localStream] });
    }
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" && fairwire.publisherPc === pc) restartPublisher(pc);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await waitForGathering(pc);
    const payload = { type: "offer", sdp: pc.localDescription.sdp };
    if (event === "restart-ice") payload.target = "publisher";
    const answer = await request(event, payload);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    return pc;
  }

  /**
   * The network path failed (ICE): a new connection replaces the old one. Viewers keep their
   * stream: the server moves the tracks over and asks for a keyframe.
   */
  async function restartPublisher(failed) {
    if (!localStream || fairwire.state !== "joined") return;
    try {
      await negotiatePublisher("restart-ice");
      failed.close();
    } catch (err) {
      const message = err instanceof ServerError ? errorText(err) : String(err && err.message ? err.message : err);
      publishError = { key: "error.media_failed", params: { message } };
      stopPublishing(true);
      renderMedia();
    }
  }

  function stopPublishing(tellServer) {
    const wasPublishing = fairwire.publishing || fairwire.publisherPc;
    if (tellServer && wasPublishing && socket && socket.connected) {
      request("unpublish", {}).catch(() => {});
    }
    if (fairwire.publisherPc) fairwire.publisherPc.close();
    fairwire.publisherPc = null;
    if (localStream) localStream.getTracks().forEach((track) => track.stop());
    localStream = null;
    fairwire.publishing = false;
    const preview = $("preview");
    if (preview) preview.srcObject = null;
  }

  function toggleTrack(kind) {
    if (!localStream) return;
    const tracks = kind === "audio" ? localStream.getAudioTracks() : localStream.getVideoTracks();
    tracks.forEach((track) => (track.enabled = !track.enabled));
    renderMedia();
  }

  function subscriberPc() {
    if (fairwire.subscriberPc) return fairwire.subscriberPc;
    const pc = new RTCPeerConnection({ iceServers });
    fairwire.subscriberPc = pc;
    trickle(pc, "subscriber");
    pc.addEventListener("track", onTrack);
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" && fairwire.subscriberPc === pc) {
        // A new receiving connection replaces the failed one.
        closeSubscriber();
        enqueue(async () => {
          const offer = await request("restart-ice", { target: "subscriber" });
          if (offer && offer.sdp) await answerOffer(offer);
        });
      }
    });
    return pc;
  }

  function closeSubscriber() {
    if (fairwire.subscriberPc) fairwire.subscriberPc.close();
    fairwire.subscriberPc = null;
    for (const identity of [...tiles.keys()]) removeTile(identity);
  }

  /** Run negotiations one after another: a renegotiation never overlaps another. */
  function enqueue(job) {
    negotiation = negotiation.then(job).catch((err) => {
      if (fairwire.state !== "joined") return;
      mediaNotice = { key: "room.mediaUnavailable", params: { message: err instanceof ServerError ? errorText(err) : String(err && err.message ? err.message : err) } };
      renderMedia();
    });
    return negotiation;
  }

  async function answerOffer(offer) {
    if (!offer || offer.type !== "offer" || typeof offer.sdp !== "string") {
      throw new ServerError({ code: "bad_offer", message: "the server sent no offer" });
    }
    const pc = subscriberPc();
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    dropStoppedTracks(pc);
    await waitForGathering(pc);
    await request("subscribe-answer", { type: "answer", sdp: pc.localDescription.sdp });
    mediaNotice = null;
    renderMedia();
  }

  /**
   * The server marks a track that was unpublished as inactive in its next offer. Chromium only
   * mutes such a track, so take it out of its participant's stream here; a tile whose stream
   * has no track left goes away.
   */
  function dropStoppedTracks(pc) {
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.currentDirection !== "inactive") continue;
      const track = transceiver.receiver.track;
      for (const [identity, entry] of [...tiles.entries()]) {
        if (entry.stream.getTracks().includes(track)) {
          entry.stream.removeTrack(track);
          checkTile(identity);
        }
      }
    }
  }

  function subscribe() {
    // Kept for tests and diagnostics: time-to-first-frame is measured from here.
    fairwire.subscribeStartedAt = performance.now();
    enqueue(async () => {
      const offer = await request("subscribe", {});
      // {waiting: true}: nothing is published yet; a "subscriber-offer" event follows.
      if (offer && offer.sdp) await answerOffer(offer);
    });
  }

  function onTrack(event) {
    const stream = event.streams && event.streams[0];
    if (!stream) return;
    const identity = stream.id;
    if (fairwire.self && identity === fairwire.self.identity) return; // our own preview shows it
    let entry = tiles.get(identity);
    if (!entry || entry.stream !== stream) {
      if (entry) removeTile(identity);
      entry = addTile(identity, stream);
    }
    const check = () => checkTile(identity);
    event.track.addEventListener("ended", check);
    event.track.addEventListener("unmute", () => entry.video.play().catch(() => {}));
    stream.addEventListener("removetrack", check);
    entry.video.play().catch(() => {});
  }

  function addTile(identity, stream) {
    const tile = el("figure", "tile");
    tile.dataset.identity = identity;
    const video = el("video", "tile-video");
    video.autoplay = true;
    video.playsInline = true;
    video.setAttribute("playsinline", "");
    video.muted = true; // browsers refuse autoplay with sound: the viewer unmutes
    video.srcObject = stream;
    tile.appendChild(video);
    const caption = el("figcaption", "tile-caption");
    const label = el("span", "tile-name", participantName(identity));
    caption.appendChild(label);
    const unmute = el("button", "button button-small tile-unmute", t("room.unmute"));
    unmute.type = "button";
    unmute.addEventListener("click", () => {
      video.muted = !video.muted;
      video.play().catch(() => {});
      renderMedia();
    });
    caption.appendChild(unmute);
    tile.appendChild(caption);
    $("tiles").appendChild(tile);
    const entry = { tile, video, label, unmute, stream };
    tiles.set(identity, entry);
    renderMedia();
    return entry;
  }

  function checkTile(identity) {
    const entry = tiles.get(identity);
    if (!entry) return;
    const live = entry.stream.getTracks().filter((track) => track.readyState === "live");
    if (live.length === 0) removeTile(identity);
  }

  function removeTile(identity) {
    const entry = tiles.get(identity);
    if (!entry) return;
    entry.video.srcObject = null;
    entry.tile.remove();
    tiles.delete(identity);
    renderMedia();
  }

  // -- socket.io --------------------------------------------------------------------------

  /**
   * Take the seat. A page that already has presence asks only for what it missed
   * (join {since: seq}); room events arriving meanwhile wait in `pending`.
   */
  async function join() {
    fairwire.state = "connecting";
    connectionNotice = null;
    window.clearTimeout(syncTimer);
    render();
    const since = presence.seq !== null && !freshSnapshot ? presence.seq : undefined;
    freshSnapshot = false;
    const mine = (catchUp = { via: "join", since });
    let ack;
    try {
      ack = await request("join", since === undefined ? {} : { since });
    } catch (err) {
      if (catchUp !== mine) return;
      catchUp = null;
      if (err instanceof ServerError && err.code === "timeout") {
        connectionNotice = "error.timeout";
        render();
        return;
      }
      fail({ code: err.code || "unknown", message: err.message });
      return;
    }
    if (catchUp !== mine) return; // a newer join (another reconnect) took over
    catchUp = null;
    if (ack.room) fairwire.room = ack.room;
    fairwire.self = ack.self;
    iceServers = normaliseIceServers(ack.ice_servers);
    fairwire.state = "joined";
    fairwire.error = null;
    if (!applyCatchUp(ack, "join", since)) {
      freshSnapshot = true;
      join();
      return;
    }
    if (fairwire.state !== "joined") return; // the room had ended meanwhile
    drain();
    if (fairwire.state !== "joined") return;
    if (fairwire.self && (fairwire.self.grants || []).includes("subscribe")) subscribe();
    if (wantLive && (fairwire.self.grants || []).includes("publish")) goLive();
  }

  function connect() {
    if (typeof window.io !== "function") {
      fail({ code: "connect_failed", message: "socket.io client missing" });
      return;
    }
    socket = window.io({ auth: { token }, transports: ["websocket"] });

    socket.on("connect", join);
    socket.on("connect_error", (err) => {
      const data = err && err.data && typeof err.data === "object" ? err.data : null;
      if (data && data.code) {
        fail({ code: data.code, message: data.message || err.message });
      } else if (!socket.active) {
        fail({ code: "connect_failed", message: err ? err.message : "" });
      } else {
        connectionNotice = "room.reconnecting";
        render();
      }
    });
    socket.on("disconnect", (reason) => {
      stopPublishing(false);
      closeSubscriber();
      if (fairwire.state === "error") return;
      if (reason === "io server disconnect") {
        // The server sent us away (the room ended, another tab took the seat): say so.
        const code = fairwire.room && fairwire.room.status === "ended" ? "room_ended" : "disconnected";
        fail({ code, message: reason });
        return;
      }
      if (reason === "io client disconnect") return;
      fairwire.state = "connecting";
      connectionNotice = "room.reconnecting";
      render();
    });

    socket.on("room-event", onRoomEvent);
    socket.on("audience", setAudience);
    socket.on("replaced", (data) => {
      fail({ code: "replaced", message: (data && data.reason) || "" });
    });
    socket.on("subscriber-offer", (offer) => {
      if (fairwire.state === "joined") enqueue(() => answerOffer(offer));
    });
    socket.on("track-published", () => {
      /* the renegotiation that follows ("subscriber-offer") brings the track */
    });
    socket.on("track-unpublished", (data) => {
      if (!data || !data.identity) return;
      // Give the renegotiation a moment to remove the track from the stream.
      window.setTimeout(() => checkTile(data.identity), 1500);
    });
  }

  // -- start ------------------------------------------------------------------------------

  $("go-live").addEventListener("click", goLive);
  $("stop").addEventListener("click", () => {
    wantLive = false;
    stopPublishing(true);
    renderMedia();
  });
  $("toggle-mic").addEventListener("click", () => toggleTrack("audio"));
  $("viewers-button").addEventListener("click", openViewers);
  $("viewers-close").addEventListener("click", closeViewers);
  $("viewers-more").addEventListener("click", loadViewers);
  $("viewers-panel").addEventListener("close", closeViewers);
  // A click on the backdrop (outside the panel's box) closes it, as people expect.
  $("viewers-panel").addEventListener("click", (event) => {
    if (event.target === $("viewers-panel")) closeViewers();
  });
  $("toggle-cam").addEventListener("click", () => toggleTrack("video"));
  $("retry").addEventListener("click", () => window.location.reload());
  document.addEventListener("fairwire:lang", render);
  window.addEventListener("pagehide", () => {
    if (socket) socket.disconnect();
  });

  /**
   * For tests: the connection drops (the transport closes, as when the network goes) and
   * socket.io's own reconnection comes back after `ms`, not sooner.
   */
  fairwire._dropConnectionFor = (ms) => {
    if (!socket || !socket.io.engine) return false;
    const manager = socket.io;
    const saved = [manager.reconnectionDelay(), manager.reconnectionDelayMax(), manager.randomizationFactor()];
    manager.randomizationFactor(0);
    manager.reconnectionDelay(ms);
    manager.reconnectionDelayMax(ms);
    manager.once("reconnect", () => {
      manager.reconnectionDelay(saved[0]);
      manager.reconnectionDelayMax(saved[1]);
      manager.randomizationFactor(saved[2]);
    });
    manager.engine.close();
    return true;
  };

  render();
  if (!token) {
    fail({ code: "missing_token", message: "no ?token= in the link" });
  } else {
    const claims = tokenClaims(token);
    if (claims && typeof claims.room === "string" && roomId && claims.room !== roomId) {
      fail({ code: "wrong_room", message: "the token is for room " + claims.room });
    } else {
      connect();
    }
  }
})();
