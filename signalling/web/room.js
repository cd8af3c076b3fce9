/* Fairwire room page: /room/{id}?token=JWT, or /room/{id} alone for a guest of a public room.
 *
 * Credentials (docs/socketio.md, "Credentials"):
 *   The link token is the ?token= of the address (valid for days). Without one the page asks
 *   POST /api/rooms/{id}/guest {language} (no credentials) -> 201 {token, token_id, identity,
 *   name, expires_in, expires_at, url}, a visitor token, kept in sessionStorage
 *   ("fairwire.guest.<room>") so that a reload is the same guest; "Change name" asks again with
 *   {name, language} and reconnects with the new token. 404 -> "does not exist or is private",
 *   409 room_ended, 429 rate_limited -> wait Retry-After seconds and ask again.
 *   Each connection gets a short session credential: join's ack `credential` and the server's
 *   "credential" event {token, expires_at, expires_in} (renewed about every half lifetime);
 *   the page keeps the newest. socket.io `auth` is a function: the session credential while
 *   it has more than 10 s left, else the link token. A refused connect (`err.data` {code,
 *   message}: missing_credentials, invalid_token, token_expired, token_revoked) with the
 *   session credential is tried once more with the link token; refused with the link token it
 *   is the end: the page explains. "revoked" {message}: the organiser withdrew the link (the
 *   server disconnects right after). REST calls carry the best credential as Bearer.
 *   The token's payload (unverified, base64url) gives `room` (a link for another room is told
 *   early), `lang` (the page's language unless the person chose one: ?lang= or the stored
 *   choice), `gst` (a guest).
 * REST before connecting: GET /api/rooms/{id} (Bearer) -> the room, or 404 room_not_found (a
 *   private room is not disclosed): "This room does not exist". A host or the owner exhibitor
 *   ends a livestream with PATCH /api/rooms/{id} {status: "ended"} (Bearer).
 *
 * socket.io (websocket only), then every request an emit with ack that may answer
 * {"error": {code, message}}.
 *
 * Presence is a sequenced event log per room (docs/socketio.md):
 *   join {since?} -> ack {room, self, ice_servers, seq, snapshot, participants? | events?,
 *                         audience: {current, peak}, stage?, credential}
 *     self = {identity, name, role, joined_at, language, tracks, grants, guest, stage}.
 *     snapshot true: `participants` is the list and `stage` {identity: "invited" | "on"} the
 *     stage as of `seq`; false: `events` are everything after `since`, applied to the state
 *     the page already has. The first join sends no `since`; after a reconnect (socket.io
 *     reconnects by itself, "connect" joins again) the page sends join {since: seq} and
 *     catches up without a reload.
 *   "room-event" {seq, type, at, ...}: participant-joined / participant-updated {participant},
 *     participant-left {identity}, room-status {room} (any change of the room's record: status,
 *     publishing, name, schedule...), stage {identity, name, state: invited | on | declined |
 *     off}. One reducer, applyEvent(state, event), handles them all. seq <= ours: old,
 *     ignored; seq == ours + 1: applied; further ahead: a gap, so the page asks "sync"
 *     {since: seq} and applies its ack (same shape as join's). Events that arrive while a join
 *     or sync is unanswered wait in a buffer and are handled after it in the same way.
 *   "audience" {current, peak}: livestreams count their watchers instead of listing them.
 *     Listed are hosts, exhibitors and whoever publishes; hosts and exhibitors page through the
 *     rest with "audience-list" {cursor, limit} -> {viewers, next, total} (the Viewers panel).
 *   "replaced": the same identity joined elsewhere; room-status "ended": the room is over.
 * Meetings (docs/socketio.md, "Meetings: moderation"): a join held in the lobby answers
 *   {lobby: true, room, meeting}: the page says it waits (state "lobby") until
 *   "meeting-admitted" (it joins again) or "meeting-denied"; "meeting-left" {reason: removed}
 *   ends the page as an error. meeting.js shows and runs the rest.
 * Stage (livestreams): a host (moderate grant) sends "stage-invite" {identity} -> {}; the
 *   invitee's page sees stage "invited" for itself and asks Accept / Decline: "stage-answer"
 *   {accept} -> {grants, stage}; with publish in its grants it offers "Go live". "stage-leave"
 *   {} steps down, "stage-leave" {identity} (a host) takes someone off; stage "off" for the
 *   page's own identity stops its broadcast and takes publish away.
 * Track state: a participant's `tracks` are [{id, kind, codec, profile, source, muted}]; the
 *   page sends "set-muted" {kind: "audio" | "video", muted} when the person turns the
 *   microphone or camera off or on, and shows a muted microphone, or "Camera off" (initials
 *   and name instead of a black picture), for everyone whose track is muted.
 * Room badge: live and on air (someone publishes, or did a moment ago: room.on_air) -> LIVE;
 *   live otherwise -> "Starting soon"; scheduled -> its start time; ended -> Ended.
 * Media over the same socket:
 *   preview:   "Check camera and microphone" opens them before going live: one's own tile
 *              (seen only here), a choice of devices and the microphone's level; "Go live"
 *              then sends the same tracks. A device chosen while live replaces its track.
 *   publish:   getUserMedia -> sendonly transceivers -> offer (ICE gathered, max 2 s)
 *              -> emit "publish" {type:"offer", sdp, sources} -> ack {type:"answer", sdp}
 *              "unpublish" stops it. While publishing, one's own camera is a tile on the stage.
 *   screen:    "Share screen" adds the screen to the publishing connection ("publish-update"
 *              with sources [..., "screen"]): in a livestream one more program source, in a
 *              meeting a tile of its own ("{name}'s screen", stream "{identity}~screen");
 *              stopping it (here or in the browser's bar) sends it inactive.
 *   subscribe: emit "subscribe" {} -> ack {type:"offer", sdp} -> answer (ICE gathered, max 2 s)
 *              -> emit "subscribe-answer" {type:"answer", sdp}; server-sent "subscriber-offer"
 *              renegotiates the same way, one negotiation at a time.
 *   trickle:   local candidates are also sent as "ice-candidate" {target, candidate}.
 * A remote MediaStream's id is the publishing participant's identity: one tile per identity; a
 * participant who leaves the list loses its tile.
 *
 * For tests: window.fairwire = {state, participants, seq, audience, error, self, room, stage
 * ({identity: "invited" | "on"}), credential (the token the page would use now), guest,
 * publisherPc, subscriberPc, publishing, previewing, sharingScreen, micLevel, catchUps (the last joins/syncs: {via, since, seq,
 * snapshot, events}), viewerPageSize (audience-list's limit), socket, applyEvent,
 * _dropConnectionFor(ms)}.
 *
 * For the page's other scripts (live.js: Q&A, chat, figures, program; watch-hls.js), the same
 * object and DOM events on `document`, dispatched synchronously:
 *   fairwire.hasGrant(grant), fairwire.moderates() (a host or the owner exhibitor);
 *   fairwire.participantControls: functions person -> an element beside that participant, or
 *     null (meeting.js: a moderator's mute and remove; messages.js: "Message");
 *   "fairwire:dm" {message} and "fairwire:dm-unread" {unread}: one-to-one messages
 *     (docs/socketio.md), for messages.js; "fairwire:invitation" {invitation} and
 *     "fairwire:meeting-ready" {reason, id, room, url}: video calls, for calls.js;
 *   "fairwire:appointment" {appointment} and "fairwire:appointment-reminder" {appointment,
 *     starts_in}: appointments (docs/socketio.md), for agenda.js;
 *   "fairwire:speakers" {dominant, speaking}: who speaks (docs/socketio.md), for speakers.js;
 *   fairwire.request(event, data) -> Promise of the ack; rejects with an Error that has
 *     {code, message, data (the server's whole error object, e.g. with retry_after)}.
 *   fairwire.credential: the Bearer for REST calls. fairwire.hooks (set by other scripts):
 *     subscription() -> the "subscribe" payload ({} when unset); videoCodec() -> {codec:
 *     "H264" | "VP8", profile?} to publish the camera in, or null; streamOwner(streamId) -> the
 *     identity whose name and track state the tile of that stream shows, and its
 *     data-identity (default: the stream id); null hides the tile (a program off air);
 *     screenStopping() -> Promise, awaited before a shared screen is unpublished;
 *     watchesElsewhere() -> true while the page shows the room another way (live HLS): it
 *     then does not subscribe over WebRTC; askUnmute(kind): the person asks to turn on what
 *     a moderator muted (fairwire.setHeld(kinds) says which: their buttons then ask).
 *     fairwire.subscribe() / fairwire.unsubscribe() start and stop receiving over WebRTC
 *     ("unsubscribe" {} tells the server).
 *   "fairwire:catch-up" {via: "join" | "sync", since, ack}: a join or sync answered, before
 *     its events are applied (a join's ack carries the features' own snapshots).
 *   "fairwire:room-event" {event}: each room event once, in seq order, as it is applied
 *     (after a catch-up too), whatever its type.
 *   "fairwire:render": the page re-rendered (state, self, room, participants, language).
 */
(function () {
  "use strict";

  const el = window.FairwireDom.el; // dom.js

  const ACK_TIMEOUT_MS = 10000;
  const GATHER_TIMEOUT_MS = 2000;
  const SYNC_RETRY_MS = 2000;
  const VIEWER_PAGE_SIZE = 50;
  const SCREEN_SUFFIX = "~screen"; // the MediaStream id of a shared screen: its sharer's + this
  // A session credential with less left than this is not offered any more: the link token is.
  const CREDENTIAL_MARGIN_MS = 10000;
  // A stored guest token with less left than this is not reused: the page asks for a new one.
  const GUEST_REUSE_MARGIN_MS = 60000;
  const GUEST_KEY = "fairwire.guest.";
  const GUEST_RETRY_DEFAULT_S = 5;
  const GUEST_NAME_MAX = 200;
  // Roles that may see who is watching a livestream ("audience-list").
  const AUDIENCE_VIEWERS = new Set(["host", "exhibitor"]);
  // Whom a host may invite on a livestream's stage; hosts and the owner exhibitor (any
  // exhibitor in a room without an owner) publish by their role.
  const STAGE_ROLES = new Set(["buyer", "visitor"]);
  const ROLE_ORDER = { host: 0, exhibitor: 1, buyer: 2, visitor: 3 };
  // Errors after which reconnecting cannot help: the page stops and explains.
  const FATAL = new Set([
    "missing_token", "missing_credentials", "invalid_token", "token_expired", "token_revoked",
    "wrong_room", "room_not_found", "room_ended", "replaced",
    "denied", "removed", "meeting_locked", "meeting_ended",
  ]);
  // A refusal of the credential itself (REST 401 or a refused connect).
  const TOKEN_REFUSALS = new Set(["missing_credentials", "invalid_token", "token_expired", "token_revoked"]);
  // A guest token kept from an earlier visit that no longer works: the page takes a new one.
  const STALE_GUEST = new Set(["invalid_token", "token_expired"]);

  const i18n = window.FairwireI18n;
  const t = i18n.t;
  const $ = (id) => document.getElementById(id);

  const fairwire = (window.fairwire = {
    state: "connecting",
    participants: [],
    seq: null, // the last room event applied; null before the first join answered
    audience: null, // {current, peak} in livestreams
    stage: {}, // identity -> "invited" | "on" (livestreams)
    catchUps: [],
    viewerPageSize: VIEWER_PAGE_SIZE,
    get socket() {
      return socket;
    },
    get credential() {
      return bestCredential();
    },
    guest: false,
    error: null,
    self: null,
    room: null,
    publisherPc: null,
    subscriberPc: null,
    publishing: false,
    micLevel: 0, // the microphone's peak level (0..1) while it is on
    get previewing() {
      return previewing;
    },
    get sharingScreen() {
      return !!screenTrack;
    },
    hooks: { subscription: null, videoCodec: null, streamOwner: null, screenStopping: null, askUnmute: null }, // set by other scripts
  });

  /** Tell the page's other scripts (live.js) what happened: a DOM event on document. */
  function announce(name, detail) {
    document.dispatchEvent(new CustomEvent("fairwire:" + name, { detail: detail || {} }));
  }

  const roomId = decodeURIComponent(window.location.pathname.replace(/^\/room\//, "").replace(/\/$/, ""));
  const roomPath = "/api/rooms/" + encodeURIComponent(roomId);
  const guestKey = GUEST_KEY + roomId;
  let linkToken = new URLSearchParams(window.location.search).get("token") || "";
  let session = null; // {token, expiresAtMs, serverExpiresAt}: the newest session credential
  let authUsed = null; // "session" | "link": what the last connect attempt offered
  let guestFromStorage = false; // the guest token is from an earlier visit (may be stale)
  let guestName = "";
  let socket = null;
  let iceServers = [];
  let localStream = null;
  // The camera and microphone on and seen only here, before going live (the studio's check).
  let previewing = false;
  let previewBusy = false;
  const chosenDevice = { audio: "", video: "" }; // deviceId picked in the device lists
  let levelMeter = null; // {context, timer}: the microphone's level while it is on
  // A shared screen: one more track on the publishing connection, a source of its own.
  let screenTrack = null;
  let screenTransceiver = null; // kept after sharing stops: the next share reuses its m-line
  let screenBusy = false;
  let mediaNotice = null; // {key, params}
  let publishError = null; // {key, params}
  let connectionNotice = null; // {key, params}
  let stageNotice = null; // {key, params}: about one's own place on the stage
  let actionNotice = null; // {key, params}: a host's stage action that failed
  let errorKey = null; // the text of a fatal error when its code alone does not say it
  let negotiation = Promise.resolve();
  // The person asked to be live: after a reconnect the page goes live again by itself.
  let wantLive = false;
  // What the person turned off; a broadcast that starts again keeps it off.
  const wantMuted = { audio: false, video: false };
  const held = { audio: false, video: false }; // muted by a moderator: only they lift it
  const tiles = new Map(); // identity -> {tile, video, label, unmute, stream, ...}
  let selfTile = null; // one's own camera while publishing (not in `tiles`: nothing arrives)
  const stageBusy = new Set(); // identities a stage request is on its way for
  // Presence as of presence.seq; fairwire.participants/room/seq/stage mirror it.
  let presence = { seq: null, room: null, participants: [], stage: {} };
  let pending = []; // room events not handled yet (a join or sync is unanswered, or a gap)
  let catchUp = null; // the join or sync whose answer the page waits for
  let syncTimer = null;
  let lastSyncAt = -Infinity;
  let freshSnapshot = false; // the next join asks for the whole list (the log did not add up)
  // The Viewers panel: one page of "audience-list" after another.
  let viewers = { items: [], next: null, total: null, loaded: false, loading: false, error: null, generation: 0 };
  let guestForm = { open: false, busy: false, notice: null };

  // -- helpers ----------------------------------------------------------------------------

  const SVG_NS = "http://www.w3.org/2000/svg";
  // Small line icons: a microphone and a camera, each struck through.
  const ICONS = {
    "mic-off": [
      ["rect", { x: 9, y: 3, width: 6, height: 11, rx: 3 }],
      ["path", { d: "M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21" }],
      ["path", { d: "M4 4l16 16" }],
    ],
    "cam-off": [
      ["rect", { x: 3, y: 7, width: 12, height: 10, rx: 2 }],
      ["path", { d: "M15 10.5l6-3.5v10l-6-3.5" }],
      ["path", { d: "M3 4l17 16" }],
    ],
  };

  function icon(name, label) {
    const span = el("span", "icon icon-" + name);
    span.setAttribute("role", "img");
    span.setAttribute("aria-label", label);
    span.title = label;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    for (const [tag, attrs] of ICONS[name]) {
      const shape = document.createElementNS(SVG_NS, tag);
      for (const [key, value] of Object.entries(attrs)) shape.setAttribute(key, String(value));
      svg.appendChild(shape);
    }
    span.appendChild(svg);
    return span;
  }

  function initials(name) {
    const words = String(name || "").trim().split(/\s+/).filter(Boolean);
    if (!words.length) return "?";
    const first = Array.from(words[0])[0] || "";
    // Latin names: two initials; a Chinese name's first character says it.
    const last = words.length > 1 ? Array.from(words[words.length - 1])[0] || "" : "";
    const second = /^[A-Za-z]/.test(first) && /^[A-Za-z]/.test(last) ? last : "";
    return (first + second).toUpperCase();
  }

  class ServerError extends Error {
    constructor(error, key) {
      super(error && error.message ? error.message : "error");
      this.code = (error && error.code) || "unknown";
      this.key = key || null; // the text to show, when the code alone does not say it
      this.data = error && typeof error === "object" ? error : {}; // e.g. retry_after
    }
  }

  /** Emit with an acknowledgement; rejects on timeout or an {"error": ...} answer. */
  async function request(event, data) {
    if (!socket) throw new ServerError({ code: "not_joined", message: event + ": not connected" });
    let ack;
    try {
      ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, data === undefined ? {} : data);
    } catch (_) {
      throw new ServerError({ code: "timeout", message: event + ": no answer from the server" });
    }
    if (ack && typeof ack === "object" && ack.error) throw new ServerError(ack.error);
    return ack;
  }

  /**
   * A REST call: {status, ok, data, headers}. Carries the best credential as Bearer unless
   * `anonymous`; a network failure rejects.
   */
  let recordBusy = false;
  let recordError = null;

  async function toggleRecording() {
    const room = fairwire.room;
    if (!room || recordBusy) return;
    recordBusy = true;
    recordError = null;
    render();
    try {
      const res = await api("PATCH", "/api/rooms/" + encodeURIComponent(room.id), { record: !room.record });
      if (!res.ok) throw new ServerError((res.data && res.data.error) || { code: "http_" + res.status, message: "" });
      fairwire.room = { ...fairwire.room, ...res.data };
    } catch (err) {
      recordError = messageOf(err);
    } finally {
      recordBusy = false;
      render();
    }
  }

  async function api(method, path, body, anonymous) {
    const headers = { Accept: "application/json" };
    const credential = anonymous ? "" : bestCredential();
    if (credential) headers.Authorization = "Bearer " + credential;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    return { status: response.status, ok: response.ok, data, headers: response.headers };
  }

  function apiError(res) {
    const error = res.data && typeof res.data === "object" ? res.data.error : null;
    if (error && error.code) return new ServerError(error);
    return new ServerError({ code: "http_" + res.status, message: "HTTP " + res.status });
  }

  function sleep(ms) {
    return new Promise((resolve) => window.setTimeout(resolve, ms));
  }

  /** Retry-After (RFC 9110 §10.2.3): seconds or an HTTP date; a sane number of seconds. */
  function retryAfterSeconds(value) {
    let seconds = NaN;
    if (value) {
      seconds = /^\s*\d+\s*$/.test(value) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
    }
    if (!isFinite(seconds)) seconds = GUEST_RETRY_DEFAULT_S;
    return Math.min(300, Math.max(1, Math.ceil(seconds)));
  }

  /** The JWT's payload, unverified: the room, the language, whether a guest. */
  function tokenClaims(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const json = decodeURIComponent(
        atob(part).split("").map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
      );
      const claims = JSON.parse(json);
      return claims && typeof claims === "object" ? claims : null;
    } catch (_) {
      return null;
    }
  }

  function errorText(error, key) {
    if (key) return t(key);
    const code = "error." + error.code;
    const text = t(code);
    return text === code ? t("error.unknown", { message: error.message || error.code }) : text;
  }

  function messageOf(err) {
    return err instanceof ServerError ? errorText(err) : String(err && err.message ? err.message : err);
  }

  function noticeText(notice) {
    return notice ? t(notice.key, notice.params) : "";
  }

  function participant(identity) {
    return fairwire.participants.find((x) => x.identity === identity) || null;
  }

  function participantName(identity) {
    const p = participant(identity);
    return p ? p.name : identity;
  }

  function formatNumber(n) {
    return new Intl.NumberFormat(i18n.locale()).format(n);
  }

  function formatTime(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "";
    return new Intl.DateTimeFormat(i18n.locale(), { timeStyle: "short" }).format(new Date(seconds * 1000));
  }

  function formatDateTime(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "";
    return new Intl.DateTimeFormat(i18n.locale(), { dateStyle: "medium", timeStyle: "short" })
      .format(new Date(seconds * 1000));
  }

  function isLivestream() {
    return !!(fairwire.room && fairwire.room.kind === "livestream");
  }

  function myIdentity() {
    return fairwire.self ? fairwire.self.identity : null;
  }

  function hasGrant(grant) {
    return !!(fairwire.self && Array.isArray(fairwire.self.grants) && fairwire.self.grants.includes(grant));
  }

  /** Who runs the room: its hosts (the `moderate` grant) and its owner exhibitor. */
  function moderates() {
    const room = fairwire.room;
    const self = fairwire.self;
    if (!room || !self || fairwire.guest) return false;
    // A meeting's owner moderates it whatever their role (a buyer who started it); a live's
    // owner is its exhibitor.
    const owns = !!room.owner && room.owner === self.identity;
    return hasGrant("moderate") || (owns && (self.role === "exhibitor" || room.kind === "meeting"));
  }
  fairwire.hasGrant = hasGrant;
  fairwire.participantControls = fairwire.participantControls || [];
  fairwire.moderates = moderates;

  function maySeeViewers() {
    return isLivestream() && !!fairwire.self && AUDIENCE_VIEWERS.has(fairwire.self.role);
  }

  /** A host of a livestream: invites people on stage and takes them off. */
  function mayManageStage() {
    return isLivestream() && hasGrant("moderate") && !fairwire.guest && fairwire.state === "joined";
  }

  /** The owner exhibitor or a host may end a livestream that is live. */
  function mayEndLive() {
    const room = fairwire.room;
    return !!room && room.kind === "livestream" && room.status === "live" && moderates();
  }

  /** What a participant's tracks say: publishing at all, microphone or camera muted. */
  function trackState(p) {
    const tracks = p && Array.isArray(p.tracks) ? p.tracks : [];
    const audio = tracks.filter((x) => x && x.kind === "audio");
    const video = tracks.filter((x) => x && x.kind === "video");
    return {
      publishing: tracks.length > 0,
      hasVideo: video.length > 0,
      audioMuted: audio.length > 0 && audio.every((x) => x.muted === true),
      videoMuted: video.length > 0 && video.every((x) => x.muted === true),
    };
  }

  function anyonePublishing() {
    return fairwire.publishing || fairwire.participants.some((p) => trackState(p).publishing);
  }

  // -- credentials -------------------------------------------------------------------------

  /** Keep the newest session credential {token, expires_at, expires_in}. */
  function noteCredential(credential) {
    if (!credential || typeof credential !== "object" || typeof credential.token !== "string" || !credential.token) return;
    const serverExpiresAt = typeof credential.expires_at === "number" ? credential.expires_at : null;
    if (session && serverExpiresAt !== null && session.serverExpiresAt !== null && serverExpiresAt < session.serverExpiresAt) {
      return; // an older one that arrived late
    }
    // Measured on this clock (expires_in) so that a skewed clock does not matter.
    let expiresAtMs = null;
    if (typeof credential.expires_in === "number") expiresAtMs = Date.now() + credential.expires_in * 1000;
    else if (serverExpiresAt !== null) expiresAtMs = serverExpiresAt * 1000;
    if (expiresAtMs === null) return;
    session = { token: credential.token, expiresAtMs, serverExpiresAt };
  }

  function sessionUsable() {
    return !!session && session.expiresAtMs - CREDENTIAL_MARGIN_MS > Date.now();
  }

  function bestCredential() {
    return sessionUsable() ? session.token : linkToken;
  }

  /** The language the token names, unless the person chose one. */
  function preferTokenLanguage(jwt) {
    const claims = tokenClaims(jwt);
    if (claims && typeof claims.lang === "string" && typeof i18n.preferIfUnchosen === "function") {
      i18n.preferIfUnchosen(claims.lang);
    }
  }

  // -- guests ------------------------------------------------------------------------------

  function loadGuest() {
    try {
      const stored = JSON.parse(window.sessionStorage.getItem(guestKey) || "null");
      if (!stored || typeof stored.token !== "string") return null;
      const claims = tokenClaims(stored.token);
      if (!claims || typeof claims.exp !== "number" || claims.exp * 1000 < Date.now() + GUEST_REUSE_MARGIN_MS) return null;
      return stored;
    } catch (_) {
      return null; // storage disabled or garbled
    }
  }

  function saveGuest(guest) {
    try {
      window.sessionStorage.setItem(guestKey, JSON.stringify({
        token: guest.token, identity: guest.identity || "", name: guest.name || "",
      }));
    } catch (_) {
      /* storage disabled: a reload makes a new guest */
    }
  }

  function forgetGuest() {
    try {
      window.sessionStorage.removeItem(guestKey);
    } catch (_) {
      /* nothing kept */
    }
  }

  /**
   * POST /api/rooms/{id}/guest: a visitor token for a public room. Too many guests from one
   * network (429): `onWait(seconds)`, then ask again after Retry-After.
   */
  async function fetchGuest(name, onWait) {
    const body = { language: i18n.lang };
    if (name) body.name = name;
    for (;;) {
      let res;
      try {
        res = await api("POST", roomPath + "/guest", body, true);
      } catch (err) {
        throw new ServerError({ code: "connect_failed", message: String(err && err.message ? err.message : err) });
      }
      if (res.ok && res.data && typeof res.data.token === "string") return res.data;
      if (res.status === 429) {
        const seconds = retryAfterSeconds(res.headers.get("Retry-After"));
        onWait(seconds);
        await sleep(seconds * 1000);
        continue;
      }
      const error = apiError(res);
      // Private and unknown rooms look the same; an ended one is room_ended (409).
      if (res.status === 404) throw new ServerError({ code: "room_not_found", message: error.message }, "error.guest_room_not_found");
      throw error;
    }
  }

  function takeGuest(guest) {
    linkToken = guest.token;
    session = null;
    guestName = guest.name || "";
    fairwire.guest = true;
    saveGuest(guest);
  }

  /** The page's first guest token; false when the page failed (it says why). */
  async function startAsGuest() {
    try {
      const guest = await fetchGuest("", (seconds) => {
        connectionNotice = { key: "room.guestBusy", params: { seconds } };
        render();
      });
      guestFromStorage = false;
      connectionNotice = null;
      takeGuest(guest);
      return true;
    } catch (err) {
      fail(err);
      return false;
    }
  }

  function openGuestForm() {
    guestForm = { open: true, busy: false, notice: null };
    renderGuest();
    const input = $("guest-name-input");
    input.value = (fairwire.self && fairwire.self.name) || guestName;
    input.focus();
    input.select();
  }

  function closeGuestForm() {
    guestForm = { open: false, busy: false, notice: null };
    renderGuest();
  }

  async function renameGuest(event) {
    event.preventDefault();
    if (guestForm.busy) return;
    const name = $("guest-name-input").value.trim().slice(0, GUEST_NAME_MAX);
    if (!name) {
      guestForm.notice = { key: "room.nameRequired" };
      renderGuest();
      return;
    }
    if (fairwire.self && name === fairwire.self.name) {
      closeGuestForm();
      return;
    }
    guestForm.busy = true;
    guestForm.notice = null;
    renderGuest();
    let guest;
    try {
      guest = await fetchGuest(name, (seconds) => {
        guestForm.notice = { key: "room.guestBusy", params: { seconds } };
        renderGuest();
      });
    } catch (err) {
      if (FATAL.has(err.code)) {
        fail(err);
        return;
      }
      guestForm.busy = false;
      guestForm.notice = { key: "room.renameFailed", params: { message: messageOf(err) } };
      renderGuest();
      return;
    }
    guestFromStorage = false;
    takeGuest(guest);
    closeGuestForm();
    reconnect();
  }

  // -- state changes ----------------------------------------------------------------------

  /**
   * An ended livestream's replay, once the node has finished it (a few seconds after the
   * end): the error panel offers it. Asked a few times, then not.
   */
  async function offerReplay() {
    const credential = bestCredential();
    if (!credential || !isLivestream()) return;
    for (let attempt = 0; attempt < 15; attempt += 1) {
      try {
        const res = await fetch("/api/replays?room=" + encodeURIComponent(roomId), {
          headers: { Accept: "application/json", Authorization: "Bearer " + credential },
          cache: "no-store",
          credentials: "omit",
        });
        if (!res.ok) return;
        const data = await res.json();
        const replay = data && Array.isArray(data.replays) ? data.replays[0] : null;
        if (replay) {
          const link = $("replay-link");
          link.href = "/replay/" + encodeURIComponent(replay.id) + (linkToken ? "?token=" + encodeURIComponent(linkToken) : "");
          link.hidden = false;
          return;
        }
      } catch (_) {
        return;
      }
      await sleep(2000);
    }
  }

  function fail(error) {
    if (error.code === "room_ended" && fairwire.state !== "error") offerReplay();
    fairwire.state = "error";
    fairwire.error = { code: error.code || "unknown", message: error.message || "" };
    errorKey = error.key || null;
    connectionNotice = null;
    wantLive = false;
    stopPublishing(false);
    closeSubscriber();
    closeViewers();
    for (const id of ["stage-invitation", "end-dialog"]) {
      const dialog = $(id);
      if (dialog && dialog.open) dialog.close();
    }
    if (socket) {
      socket.io.reconnection(false);
      socket.disconnect();
    }
    render();
  }

  function setParticipants(list) {
    fairwire.participants = Array.isArray(list) ? list.slice() : [];
    renderParticipants();
    for (const identity of tiles.keys()) renderTile(identity);
  }

  // -- presence: the room's event log ------------------------------------------------------

  /**
   * The one reducer: presence {seq, room, participants, stage} after `event`. Pure: side
   * effects (tiles, one's own place on the stage, the page's end) follow from comparing
   * states in commit().
   */
  function applyEvent(state, event) {
    const next = { seq: event.seq, room: state.room, participants: state.participants, stage: state.stage || {} };
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
      case "stage": {
        if (typeof event.identity !== "string") break;
        const stage = { ...next.stage };
        if (event.state === "invited" || event.state === "on") stage[event.identity] = event.state;
        else delete stage[event.identity]; // declined, off
        next.stage = stage;
        break;
      }
      default:
        break; // a type this page does not know still takes its place in the sequence
    }
    return next;
  }
  fairwire.applyEvent = applyEvent;
  fairwire.request = request;

  /**
   * Show `next` presence: the list, tiles of people who left, the stage, the room's end.
   * `applied`: the events that led to it, announced to the page's other scripts.
   */
  function commit(next, applied) {
    const before = presence;
    presence = next;
    fairwire.seq = next.seq;
    fairwire.stage = next.stage || {};
    if (next.room) fairwire.room = next.room;
    for (const event of applied || []) announce("room-event", { event });
    setParticipants(next.participants);
    const still = new Set(next.participants.map((p) => p.identity));
    for (const p of before.participants) if (!still.has(p.identity)) removeTile(p.identity);
    if (fairwire.room && fairwire.room.status === "ended" && fairwire.state !== "error") {
      fail({ code: "room_ended", message: "this room has ended" });
      return;
    }
    ownStageChanged(before.stage || {}, fairwire.stage);
    render();
  }

  /** One's own place on the stage moved: the invitation, the publish grant, the broadcast. */
  function ownStageChanged(beforeStage, afterStage) {
    const me = myIdentity();
    if (!me) return;
    const was = beforeStage[me] || null;
    const now = afterStage[me] || null;
    if (was === now) return;
    fairwire.self = { ...fairwire.self, stage: now };
    stageNotice = null;
    if (now === "invited") openInvitation();
    else closeInvitation();
    if (now === "on" && !hasGrant("publish")) {
      fairwire.self.grants = [...(fairwire.self.grants || []), "publish"];
    }
    if (was === "on" && now !== "on") {
      // Stepped down, or a host took us off: the server unpublished our tracks already.
      fairwire.self.grants = (fairwire.self.grants || []).filter((g) => g !== "publish");
      wantLive = false;
      if (fairwire.publishing || fairwire.publisherPc) stopPublishing(false);
      stageNotice = { key: "room.stageOff" };
    }
  }

  function isEvent(event) {
    return !!event && typeof event === "object" && Number.isInteger(event.seq) && typeof event.type === "string";
  }

  /** Events in order from state.seq + 1, as far as they go without a gap. */
  function applyRun(state, events) {
    const sorted = events.filter(isEvent).sort((a, b) => a.seq - b.seq);
    let rest = [];
    const applied = [];
    for (let i = 0; i < sorted.length; i++) {
      const event = sorted[i];
      if (event.seq <= state.seq) continue;
      if (event.seq !== state.seq + 1) {
        rest = sorted.slice(i);
        break;
      }
      state = applyEvent(state, event);
      applied.push(event);
    }
    return { state, rest, applied };
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
    const { state, rest, applied } = applyRun(presence, pending);
    pending = rest;
    if (state !== presence) commit(state, applied);
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

  /** The stage of a snapshot: its `stage` map, and what `self.stage` says of oneself. */
  function snapshotStage(ack) {
    const stage = {};
    if (ack.stage && typeof ack.stage === "object") {
      for (const [identity, state] of Object.entries(ack.stage)) {
        if (state === "invited" || state === "on") stage[identity] = state;
      }
    }
    const self = ack.self || fairwire.self;
    if (self && (self.stage === "invited" || self.stage === "on") && !(self.identity in stage)) {
      stage[self.identity] = self.stage;
    }
    return stage;
  }

  /**
   * The answer of a join or sync: the whole list (snapshot), or the events since what the page
   * has. Returns false when the events do not reach the answer's seq (the log has a hole).
   */
  function applyCatchUp(ack, via, since) {
    noteCatchUp(via, since, ack);
    announce("catch-up", { via, since: since === undefined ? null : since, ack });
    const seq = Number.isInteger(ack.seq) ? ack.seq : 0;
    let state;
    let applied = [];
    let complete = true;
    if (ack.snapshot || presence.seq === null) {
      state = {
        seq,
        room: ack.room || presence.room || fairwire.room,
        participants: Array.isArray(ack.participants) ? ack.participants.slice() : [],
        stage: snapshotStage(ack),
      };
    } else {
      ({ state, applied } = applyRun(presence, Array.isArray(ack.events) ? ack.events : []));
      if (ack.room) state = { ...state, room: ack.room };
      if (ack.stage && typeof ack.stage === "object") state = { ...state, stage: snapshotStage(ack) };
      complete = state.seq >= seq;
      if (!complete) {
        console.warn("fairwire: " + via + " since " + since + " answered seq " + seq
          + " but its events reach only " + state.seq);
      }
    }
    setAudience(ack.audience);
    commit(state, applied);
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

  /** The room's badge: LIVE on air, "Starting soon" live but nobody on air yet, scheduled, ended. */
  function roomBadge(room) {
    if (room.status === "live") {
      const onAir = room.on_air === true || room.publishing === true || anyonePublishing();
      return onAir ? { cls: "badge-live", text: t("status.live") } : { cls: "badge-soon", text: t("status.soon") };
    }
    if (room.status === "scheduled") return { cls: "badge-scheduled", text: t("status.scheduled") };
    if (room.status === "ended") return { cls: "badge-ended", text: t("status.ended") };
    return { cls: "badge-" + room.status, text: room.status };
  }

  function render() {
    const room = fairwire.room;
    const name = $("room-name");
    if (room) {
      name.removeAttribute("data-i18n");
      name.textContent = room.name;
      document.title = room.name + " · Fairwire";
      const status = $("room-status");
      const badge = roomBadge(room);
      status.hidden = false;
      status.className = "badge " + badge.cls;
      status.textContent = badge.text;
      const when = $("room-when");
      const start = room.status === "scheduled" ? formatDateTime(room.scheduled_start) : "";
      when.hidden = !start;
      when.textContent = start ? t("index.startsAt", { time: start }) : "";
      const kind = $("room-kind");
      kind.hidden = false;
      kind.className = "chip chip-" + room.kind;
      kind.textContent = t("kind." + room.kind);
      const category = $("room-category");
      category.hidden = !room.category;
      category.textContent = room.category || "";
      // Everyone is told while they are recorded (a meeting from its flag, a live on air).
      const recorded = room.record === true && (room.kind === "meeting"
        ? room.status !== "ended" : room.status === "live");
      const chip = $("recording-chip");
      chip.hidden = !recorded;
      chip.title = t(room.kind === "meeting" ? "room.recordingMeeting" : "room.recordingLive");
      const recordingNotice = $("recording-notice");
      recordingNotice.hidden = (!recorded || !fairwire.self || room.kind !== "meeting") && !recordError;
      recordingNotice.textContent = recordError
        ? t("room.recordFailed", { message: recordError }) : t("room.recordingMeeting");
      // Who holds the record grant starts and stops it (PATCH /api/rooms/{id} {record}).
      const toggle = $("record-toggle");
      toggle.hidden = !hasGrant("record") || room.status === "ended" || fairwire.guest;
      toggle.textContent = t(room.record ? "room.recordStop" : "room.recordStart");
      toggle.disabled = recordBusy;
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
      connection.textContent = noticeText(connectionNotice);
    }
    connection.hidden = !connection.textContent;

    const errorPanel = $("error-panel");
    errorPanel.hidden = fairwire.state !== "error";
    if (fairwire.state === "error") {
      $("error-message").textContent = errorText(fairwire.error, errorKey);
      $("error-code").textContent = fairwire.error.code;
      $("retry").hidden = FATAL.has(fairwire.error.code);
    }
    $("room-body").hidden = fairwire.state === "error" || !fairwire.self;
    $("lobby-panel").hidden = fairwire.state !== "lobby";
    // Without a room there is nothing to head the page: the error panel says it all.
    $("room-header").hidden = fairwire.state === "error" && !room;
    renderGuest();
    renderParticipants();
    renderAudience();
    renderViewers();
    renderMedia();
    announce("render");
  }

  function renderGuest() {
    const bar = $("guest-bar");
    const show = fairwire.guest && fairwire.state !== "error" && (!!fairwire.self || !!guestName);
    bar.hidden = !show;
    if (!show) return;
    const name = (fairwire.self && fairwire.self.name) || guestName;
    $("guest-watching").textContent = t("room.watchingAs", { name });
    $("guest-rename").hidden = guestForm.open;
    $("guest-rename").textContent = t("room.changeName");
    const form = $("guest-form");
    form.hidden = !guestForm.open;
    $("guest-save").disabled = guestForm.busy;
    $("guest-name-input").disabled = guestForm.busy;
    const notice = $("guest-form-notice");
    notice.textContent = noticeText(guestForm.notice);
    notice.hidden = !guestForm.notice;
  }

  /**
   * A guest (never invited on stage). Participants and viewers say so in `guest`; an entry
   * without the field is told by the identity the server gives guests ("guest-…").
   */
  function isGuest(person) {
    if (typeof person.guest === "boolean") return person.guest;
    return typeof person.identity === "string" && person.identity.startsWith("guest-");
  }

  /** Someone who publishes in this livestream only when a host invites them on stage. */
  function invitable(person) {
    if (STAGE_ROLES.has(person.role)) return true;
    const owner = fairwire.room && fairwire.room.owner;
    return person.role === "exhibitor" && !!owner && owner !== person.identity;
  }

  /** A host's stage controls for one person: invite, "Invited", or take off the stage. */
  function stageControls(person) {
    if (!mayManageStage() || !person || person.identity === myIdentity() || isGuest(person)) return null;
    const state = fairwire.stage[person.identity] || null;
    const busy = stageBusy.has(person.identity);
    if (state === "on") {
      const remove = el("button", "button button-small button-secondary stage-remove", t("room.removeFromStage"));
      remove.type = "button";
      remove.disabled = busy;
      remove.addEventListener("click", () => stageRemove(person.identity));
      return remove;
    }
    if (state === "invited") return el("span", "chip chip-invited", t("room.invited"));
    if (!invitable(person) || trackState(person).publishing) return null;
    const invite = el("button", "button button-small stage-invite", t("room.inviteOnStage"));
    invite.type = "button";
    invite.disabled = busy;
    invite.addEventListener("click", () => stageInvite(person.identity));
    return invite;
  }

  function renderParticipants() {
    const list = $("participants");
    const people = fairwire.participants.slice().sort(
      (a, b) => (ROLE_ORDER[a.role] ?? 9) - (ROLE_ORDER[b.role] ?? 9) || (a.joined_at || 0) - (b.joined_at || 0),
    );
    const items = people.map((p) => {
      const li = el("li", "participant");
      li.dataset.identity = p.identity;
      const avatar = el("span", "avatar role-" + p.role, initials(p.name || p.identity));
      avatar.setAttribute("aria-hidden", "true");
      li.appendChild(avatar);
      const text = el("span", "participant-text");
      const name = el("span", "participant-name", p.name);
      text.appendChild(name);
      if (fairwire.self && p.identity === fairwire.self.identity) {
        text.appendChild(el("span", "participant-you", "(" + t("room.you") + ")"));
      }
      const state = trackState(p);
      if (state.audioMuted || state.videoMuted) {
        const icons = el("span", "participant-icons");
        if (state.audioMuted) icons.appendChild(icon("mic-off", t("room.micMuted")));
        if (state.videoMuted) icons.appendChild(icon("cam-off", t("room.cameraOff")));
        text.appendChild(icons);
      }
      li.appendChild(text);
      if (state.publishing) {
        li.appendChild(el("span", "badge badge-live badge-small", t("status.live")));
      }
      li.appendChild(el("span", "role-badge role-" + p.role, t("role." + p.role)));
      const controls = [stageControls(p), ...fairwire.participantControls.map((make) => make(p))]
        .filter(Boolean);
      if (controls.length) {
        const actions = el("span", "participant-actions");
        actions.append(...controls);
        li.appendChild(actions);
      }
      return li;
    });
    const livestream = isLivestream();
    if (!items.length) items.push(el("li", "participant-empty", t(livestream ? "room.nobodyOnStage" : "room.noParticipants")));
    list.replaceChildren(...items);
    const count = formatNumber(fairwire.participants.length);
    $("participant-count").textContent = t(livestream ? "room.onStageCount" : "room.participantCount", { count });
    const notice = $("participants-notice");
    notice.textContent = noticeText(actionNotice);
    notice.hidden = !actionNotice;
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
      const avatar = el("span", "avatar role-" + v.role, initials(name));
      avatar.setAttribute("aria-hidden", "true");
      li.appendChild(avatar);
      const text = el("span", "participant-text");
      text.appendChild(el("span", "participant-name", name));
      const since = formatTime(v.joined_at);
      if (since) text.appendChild(el("span", "participant-since", t("room.viewerSince", { time: since })));
      li.appendChild(text);
      li.appendChild(el("span", "role-badge role-" + v.role, t(isGuest(v) ? "role.guest" : "role." + v.role)));
      // The stage invitation, and what the page's other scripts offer (write, call, book).
      const controls = [stageControls(v), ...fairwire.participantControls.map((make) => make(v))]
        .filter(Boolean);
      if (controls.length) {
        const actions = el("span", "participant-actions");
        actions.append(...controls);
        li.appendChild(actions);
      }
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
    const text = viewers.error
      ? viewers.error.code === "forbidden"
        ? t("room.viewersForbidden")
        : t("room.viewersError", { message: errorText(viewers.error) })
      : noticeText(actionNotice);
    error.hidden = !text;
    error.textContent = text;

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
    actionNotice = null;
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

  // -- the stage (livestreams) --------------------------------------------------------------

  async function stageRequest(identity, event, data) {
    if (stageBusy.has(identity)) return;
    stageBusy.add(identity);
    actionNotice = null;
    renderParticipants();
    renderViewers();
    try {
      await request(event, data);
    } catch (err) {
      actionNotice = { key: "room.stageActionFailed", params: { message: messageOf(err) } };
    } finally {
      stageBusy.delete(identity);
      renderParticipants();
      renderViewers();
    }
  }

  function stageInvite(identity) {
    return stageRequest(identity, "stage-invite", { identity });
  }

  function stageRemove(identity) {
    return stageRequest(identity, "stage-leave", { identity });
  }

  function openInvitation() {
    const dialog = $("stage-invitation");
    $("invitation-error").hidden = true;
    $("invitation-accept").disabled = false;
    $("invitation-decline").disabled = false;
    if (!dialog.open && fairwire.state === "joined") dialog.showModal();
  }

  function closeInvitation() {
    const dialog = $("stage-invitation");
    if (dialog.open) dialog.close();
  }

  /** Accept or decline the invitation on stage: the answer brings the grants. */
  async function answerInvitation(accept) {
    $("invitation-accept").disabled = true;
    $("invitation-decline").disabled = true;
    $("invitation-error").hidden = true;
    let ack;
    try {
      ack = await request("stage-answer", { accept });
    } catch (err) {
      $("invitation-accept").disabled = false;
      $("invitation-decline").disabled = false;
      const error = $("invitation-error");
      error.textContent = t("room.stageActionFailed", { message: messageOf(err) });
      error.hidden = false;
      return;
    }
    closeInvitation();
    if (fairwire.self && ack && typeof ack === "object") {
      const self = { ...fairwire.self };
      if (Array.isArray(ack.grants)) self.grants = ack.grants.slice();
      if ("stage" in ack) self.stage = ack.stage === "invited" || ack.stage === "on" ? ack.stage : null;
      fairwire.self = self;
    }
    stageNotice = null;
    render();
  }

  async function stepDown() {
    $("step-down").disabled = true;
    try {
      await request("stage-leave", {});
      // The "off" event follows; meanwhile the page is off already.
      wantLive = false;
      stopPublishing(false);
      if (fairwire.self) {
        fairwire.self = {
          ...fairwire.self,
          stage: null,
          grants: (fairwire.self.grants || []).filter((g) => g !== "publish"),
        };
      }
      stageNotice = { key: "room.stageOff" };
    } catch (err) {
      publishError = { key: "room.stageActionFailed", params: { message: messageOf(err) } };
    } finally {
      $("step-down").disabled = false;
      render();
    }
  }

  // -- ending a livestream -----------------------------------------------------------------

  function openEndDialog() {
    $("end-error").hidden = true;
    $("end-confirm").disabled = false;
    const dialog = $("end-dialog");
    if (!dialog.open) dialog.showModal();
  }

  async function endLive() {
    $("end-confirm").disabled = true;
    $("end-error").hidden = true;
    let res;
    try {
      res = await api("PATCH", roomPath, { status: "ended" });
    } catch (err) {
      res = { ok: false, status: 0, data: null, networkError: err };
    }
    if (res.ok && res.data && res.data.status === "ended") {
      $("end-dialog").close();
      fairwire.room = res.data;
      fail({ code: "room_ended", message: "you ended the livestream" });
      return;
    }
    $("end-confirm").disabled = false;
    const error = $("end-error");
    const message = res.networkError ? t("error.connect_failed") : errorText(apiError(res));
    error.textContent = t("room.endFailed", { message });
    error.hidden = false;
  }

  function renderMedia() {
    const joined = fairwire.state === "joined";
    const canPublish = hasGrant("publish");
    const onStage = !!(fairwire.self && fairwire.self.stage === "on");
    const canEnd = mayEndLive();
    const live = fairwire.publishing;
    $("publish-panel").hidden = !joined || !(canPublish || onStage || canEnd || live);
    const goLive = $("go-live");
    goLive.hidden = live || !canPublish;
    $("go-live-label").textContent = goLive.disabled ? t("room.startingLive") : t("room.goLive");
    const preview = $("preview");
    preview.hidden = live || previewing || !canPublish;
    preview.disabled = previewBusy;
    preview.textContent = previewBusy ? t("room.previewStarting") : t("room.previewOpen");
    $("close-preview").hidden = live || !previewing;
    $("close-preview").textContent = t("room.previewClose");
    const share = $("share-screen");
    share.hidden = !live || !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
    share.disabled = screenBusy;
    share.textContent = screenTrack ? t("room.screenStop") : t("room.screenShare");
    share.setAttribute("aria-pressed", String(!!screenTrack));
    const devices = $("media-devices");
    devices.hidden = !(live || previewing) || !localStream;
    $("camera-select").disabled = !localStream || localStream.getVideoTracks().length === 0;
    $("stop").textContent = t("room.stop");
    $("stop").hidden = !live;
    $("step-down").hidden = !onStage;
    $("step-down").textContent = t("room.stepDown");
    $("end-live").hidden = !canEnd;
    $("end-live").textContent = t("room.endLive");
    const mic = $("toggle-mic");
    const cam = $("toggle-cam");
    mic.hidden = cam.hidden = !live && !previewing;
    const micOn = !wantMuted.audio;
    const camOn = !wantMuted.video;
    mic.textContent = held.audio ? t("room.askMic") : micOn ? t("room.micOn") : t("room.micOff");
    mic.setAttribute("aria-pressed", String(!micOn));
    cam.textContent = held.video ? t("room.askCam") : camOn ? t("room.camOn") : t("room.camOff");
    cam.setAttribute("aria-pressed", String(!camOn));

    const publishErr = $("publish-error");
    publishErr.hidden = !publishError;
    publishErr.textContent = noticeText(publishError);

    const notice = $("media-notice");
    notice.hidden = !mediaNotice;
    notice.textContent = noticeText(mediaNotice);
    const stage = $("stage-notice");
    stage.hidden = !stageNotice || !joined;
    stage.textContent = noticeText(stageNotice);
    // Somebody is on air (oneself included): never "Nobody is broadcasting yet".
    const empty = $("stage-empty");
    const shown = [...tiles.values()].some((entry) => !entry.tile.hidden);
    empty.hidden = shown || !!selfTile || anyonePublishing();
    const room = fairwire.room;
    const starts = room && room.status === "scheduled" ? formatDateTime(room.scheduled_start) : "";
    empty.textContent = starts ? t("room.stageScheduled", { time: starts }) : t("room.stageEmpty");
    for (const entry of tiles.values()) {
      entry.unmute.textContent = entry.video.muted ? t("room.unmute") : t("room.mute");
      entry.unmute.setAttribute("aria-pressed", String(!entry.video.muted));
    }
    if (selfTile) renderSelfTile();
    for (const identity of tiles.keys()) renderTile(identity);
  }

  // -- tiles -------------------------------------------------------------------------------

  /** A tile: the video, a "Camera off" card (initials and name) and a caption. */
  function makeTile(stream, mine) {
    const tile = el("figure", mine ? "tile tile-self" : "tile");
    const video = el("video", "tile-video");
    video.autoplay = true;
    video.playsInline = true;
    video.setAttribute("playsinline", "");
    video.muted = true; // browsers refuse autoplay with sound: the viewer unmutes
    video.srcObject = stream;
    tile.appendChild(video);
    const off = el("div", "tile-off");
    const avatar = el("span", "tile-avatar");
    avatar.setAttribute("aria-hidden", "true");
    const offName = el("span", "tile-off-name");
    const offText = el("span", "tile-off-text");
    off.append(avatar, offName, offText);
    off.hidden = true;
    tile.appendChild(off);
    const caption = el("figcaption", "tile-caption");
    const who = el("span", "tile-who");
    const mic = icon("mic-off", t("room.micMuted"));
    mic.classList.add("tile-mic-off");
    mic.hidden = true;
    const label = el("span", "tile-name");
    who.append(mic, label);
    caption.appendChild(who);
    tile.appendChild(caption);
    return { tile, video, label, off, avatar, offName, offText, mic, caption, stream };
  }

  /** Show what the tracks say: the picture, or "Camera off"; the microphone muted or not. */
  function paintTile(entry, name, state) {
    const noPicture = state.videoMuted || entry.stream.getVideoTracks().length === 0;
    entry.tile.classList.toggle("tile-camera-off", noPicture);
    entry.tile.dataset.camera = state.videoMuted ? "off" : "on";
    entry.tile.dataset.microphone = state.audioMuted ? "off" : "on";
    entry.off.hidden = !noPicture;
    entry.avatar.textContent = initials(name);
    entry.offName.textContent = name;
    entry.offText.textContent = state.videoMuted ? t("room.cameraOff") : "";
    entry.offText.hidden = !state.videoMuted;
    entry.mic.hidden = !state.audioMuted;
    const micLabel = t("room.micMuted");
    entry.mic.setAttribute("aria-label", micLabel);
    entry.mic.title = micLabel;
  }

  function renderTile(identity) {
    const entry = tiles.get(identity);
    if (!entry) return;
    // A stream that follows a program shows whoever is on air, and nothing while nobody is.
    // A shared screen is a stream of its own beside its sharer's camera (sfu: "{identity}~screen").
    const screen = identity.endsWith(SCREEN_SUFFIX);
    const sharer = screen ? identity.slice(0, -SCREEN_SUFFIX.length) : identity;
    const owner = fairwire.hooks.streamOwner ? fairwire.hooks.streamOwner(sharer) : sharer;
    entry.tile.hidden = owner === null;
    entry.tile.dataset.identity = screen ? identity : owner || identity;
    entry.tile.classList.toggle("tile-screen", screen);
    const p = participant(owner || sharer);
    const name = p ? p.name : sharer;
    entry.label.textContent = screen ? t("room.screenOf", { name }) : name;
    paintTile(entry, name, screen ? { publishing: true, hasVideo: true } : trackState(p));
  }

  function renderSelfTile() {
    if (!selfTile) return;
    const name = (fairwire.self && fairwire.self.name) || "";
    selfTile.label.textContent = name ? t("room.youName", { name }) : t("room.youAlone");
    const live = fairwire.publishing;
    selfTile.badge.textContent = live ? t("room.youAreLive") : t("room.previewOnlyYou");
    selfTile.badge.className = "badge tile-badge " + (live ? "badge-live" : "badge-preview");
    selfTile.tile.dataset.preview = String(!live);
    paintTile(selfTile, name || t("room.youAlone"), {
      publishing: true,
      hasVideo: localStream ? localStream.getVideoTracks().length > 0 : false,
      audioMuted: wantMuted.audio,
      videoMuted: wantMuted.video,
    });
  }

  /** One's own camera on the stage, first, mirrored as people expect of themselves. */
  function showSelfTile() {
    if (!localStream) return;
    if (selfTile) selfTile.tile.remove();
    selfTile = makeTile(localStream, true);
    selfTile.tile.dataset.self = "true";
    selfTile.tile.setAttribute("aria-label", t("room.preview"));
    const badge = el("span", "badge badge-live tile-badge");
    selfTile.tile.appendChild(badge);
    selfTile.badge = badge;
    $("tiles").prepend(selfTile.tile);
    selfTile.video.play().catch(() => {});
    renderSelfTile();
  }

  function removeSelfTile() {
    if (!selfTile) return;
    selfTile.video.srcObject = null;
    selfTile.tile.remove();
    selfTile = null;
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

  function mediaConstraints(kind) {
    const video = { width: 1280, height: 720 };
    if (chosenDevice.video) video.deviceId = { exact: chosenDevice.video };
    const audio = chosenDevice.audio ? { deviceId: { exact: chosenDevice.audio } } : true;
    if (kind === "audio") return { audio };
    if (kind === "video") return { video };
    return { audio, video };
  }

  function mediaError(err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") return { key: "error.media_denied" };
    if (name === "NotFoundError" || name === "OverconstrainedError") return { key: "error.media_missing" };
    return { key: "error.media_failed", params: { message: messageOf(err) } };
  }

  /** The camera and microphone, once: the preview's, or new ones. */
  async function acquireMedia() {
    if (localStream) return;
    localStream = await navigator.mediaDevices.getUserMedia(mediaConstraints());
    // What the person turned off stays off when the broadcast starts again.
    for (const track of localStream.getAudioTracks()) track.enabled = !wantMuted.audio;
    for (const track of localStream.getVideoTracks()) track.enabled = !wantMuted.video;
    startLevelMeter();
    listDevices();
  }

  async function goLive() {
    if (fairwire.publishing || $("go-live").disabled || !hasGrant("publish")) return;
    publishError = null;
    stageNotice = null;
    $("go-live").disabled = true;
    renderMedia();
    try {
      await acquireMedia();
      await negotiatePublisher("publish");
      fairwire.publishing = true;
      previewing = false;
      wantLive = true;
      showSelfTile();
      for (const kind of ["audio", "video"]) if (wantMuted[kind]) sendMuted(kind, true);
    } catch (err) {
      stopPublishing(false);
      publishError = mediaError(err);
    } finally {
      $("go-live").disabled = false;
      render();
    }
  }

  /** The studio's check before going live: one's camera and microphone, seen only here. */
  async function openPreview() {
    if (previewing || previewBusy || fairwire.publishing || !hasGrant("publish")) return;
    publishError = null;
    previewBusy = true;
    renderMedia();
    try {
      await acquireMedia();
      previewing = true;
      showSelfTile();
    } catch (err) {
      closePreview();
      publishError = mediaError(err);
    } finally {
      previewBusy = false;
      render();
    }
  }

  function closePreview() {
    previewing = false;
    if (!fairwire.publishing) releaseMedia();
    render();
  }

  function releaseMedia() {
    stopLevelMeter();
    if (localStream) localStream.getTracks().forEach((track) => track.stop());
    localStream = null;
    removeSelfTile();
  }

  /** The cameras and microphones to choose from (their names come with the permission). */
  async function listDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch (_) {
      return;
    }
    for (const [kind, id, deviceKind] of [["video", "camera-select", "videoinput"], ["audio", "mic-select", "audioinput"]]) {
      const select = $(id);
      const inUse = localStream && (kind === "audio" ? localStream.getAudioTracks() : localStream.getVideoTracks())[0];
      const current = chosenDevice[kind] || (inUse && inUse.getSettings ? inUse.getSettings().deviceId || "" : "");
      const options = devices.filter((d) => d.kind === deviceKind && d.deviceId).map((d, index) => {
        const option = el("option", "", d.label || t(kind === "audio" ? "room.micNumber" : "room.cameraNumber", { n: index + 1 }));
        option.value = d.deviceId;
        option.selected = d.deviceId === current;
        return option;
      });
      select.replaceChildren(...options);
    }
    renderMedia();
  }

  /** Another camera or microphone: it replaces the track in place, live or not (no renegotiation). */
  async function chooseDevice(kind, deviceId) {
    chosenDevice[kind] = deviceId;
    if (!localStream) return;
    publishError = null;
    try {
      const fresh = await navigator.mediaDevices.getUserMedia(mediaConstraints(kind));
      const track = (kind === "audio" ? fresh.getAudioTracks() : fresh.getVideoTracks())[0];
      track.enabled = !wantMuted[kind];
      const old = (kind === "audio" ? localStream.getAudioTracks() : localStream.getVideoTracks())[0];
      const pc = fairwire.publisherPc;
      const sender = pc && old ? pc.getSenders().find((x) => x.track === old) : null;
      if (sender) await sender.replaceTrack(track);
      if (old) {
        localStream.removeTrack(old);
        old.stop();
      }
      localStream.addTrack(track);
      if (kind === "audio") startLevelMeter();
      if (selfTile) selfTile.video.srcObject = localStream;
    } catch (err) {
      publishError = mediaError(err);
    }
    render();
  }

  /** The microphone's peak level, ten times a second: the person sees that it hears them. */
  function startLevelMeter() {
    stopLevelMeter();
    const track = localStream && localStream.getAudioTracks()[0];
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!track || !Context) return;
    const context = new Context();
    context.resume().catch(() => {});
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const timer = window.setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let peak = 0;
      for (const sample of samples) peak = Math.max(peak, Math.abs(sample));
      const level = wantMuted.audio ? 0 : Math.min(1, peak);
      fairwire.micLevel = level;
      $("mic-level").value = level;
    }, 100);
    levelMeter = { context, timer };
  }

  function stopLevelMeter() {
    if (!levelMeter) return;
    window.clearInterval(levelMeter.timer);
    levelMeter.context.close().catch(() => {});
    levelMeter = null;
    fairwire.micLevel = 0;
  }

  // -- screen share -------------------------------------------------------------------------

  /** What each m-section of the publishing connection carries, in order (the server's names). */
  function publisherSources(pc) {
    return pc.getTransceivers().map((x) => (x === screenTransceiver ? "screen"
      : x.receiver.track.kind === "audio" ? "microphone" : "camera"));
  }

  async function updatePublisher() {
    const pc = fairwire.publisherPc;
    await pc.setLocalDescription(await pc.createOffer());
    const answer = await request("publish-update", { type: "offer", sdp: pc.localDescription.sdp, sources: publisherSources(pc) });
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  }

  /** The screen (or a window) as one more source of the live, next to the camera. */
  async function shareScreen() {
    if (screenTrack || screenBusy || !fairwire.publishing || !fairwire.publisherPc) return;
    screenBusy = true;
    publishError = null;
    renderMedia();
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
      screenTrack = stream.getVideoTracks()[0];
      screenTrack.contentHint = "detail"; // slides and drawings: sharp text over smooth motion
      const track = screenTrack;
      track.addEventListener("ended", () => {
        if (screenTrack === track) stopScreen(); // "Stop sharing" in the browser's own bar
      });
      const pc = fairwire.publisherPc;
      if (screenTransceiver && pc.getTransceivers().includes(screenTransceiver)) {
        await screenTransceiver.sender.replaceTrack(track);
        screenTransceiver.direction = "sendonly";
      } else {
        screenTransceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [localStream] });
        preferVideoCodec(screenTransceiver);
      }
      await updatePublisher();
    } catch (err) {
      // Cancelling the browser's picker is a choice, not an error.
      if (!err || err.name !== "NotAllowedError") publishError = { key: "error.screen_failed", params: { message: messageOf(err) } };
      if (screenTrack) screenTrack.stop();
      screenTrack = null;
    } finally {
      screenBusy = false;
      render();
    }
  }

  async function stopScreen() {
    if (!screenTrack || screenBusy) return;
    screenBusy = true;
    const track = screenTrack;
    screenTrack = null;
    renderMedia();
    try {
      if (fairwire.hooks.screenStopping) await fairwire.hooks.screenStopping();
      if (screenTransceiver && fairwire.publisherPc) {
        await screenTransceiver.sender.replaceTrack(null);
        screenTransceiver.direction = "inactive";
        await updatePublisher();
      }
    } catch (err) {
      console.warn("fairwire: stop sharing: " + messageOf(err));
    } finally {
      track.stop();
      screenBusy = false;
      render();
    }
  }

  /** A sending connection for localStream, negotiated with `event` (publish or restart-ice). */
  async function negotiatePublisher(event) {
    const pc = new RTCPeerConnection({ iceServers });
    fairwire.publisherPc = pc;
    trickle(pc, "publisher");
    for (const track of localStream.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [localStream] });
      if (track.kind === "video") preferVideoCodec(transceiver);
    }
    // A new connection (ICE restart) carries the shared screen on as well.
    screenTransceiver = null;
    if (screenTrack) {
      screenTransceiver = pc.addTransceiver(screenTrack, { direction: "sendonly", streams: [localStream] });
      preferVideoCodec(screenTransceiver);
    }
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" && fairwire.publisherPc === pc) restartPublisher(pc);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await waitForGathering(pc);
    const payload = { type: "offer", sdp: pc.localDescription.sdp, sources: publisherSources(pc) };
    if (event === "restart-ice") payload.target = "publisher";
    const answer = await request(event, payload);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    return pc;
  }

  // H.264 profile names (as tracks give them) -> the profile-level-id's first bytes (RFC 6184).
  const H264_PROFILE_IDS = {
    "constrained-baseline": /profile-level-id=42[ce]0/i,
    baseline: /profile-level-id=4200/i,
    main: /profile-level-id=4d/i,
    high: /profile-level-id=64/i,
  };

  /**
   * The codec the page's other scripts ask for (hooks.videoCodec() -> {codec: "H264" |
   * "VP8", profile?}; a livestream's sources must share one) goes first in the offer: for
   * H.264 that profile, then packetization mode 1. Without it, or where the browser cannot,
   * its own order stays.
   */
  function preferVideoCodec(transceiver) {
    const wanted = fairwire.hooks.videoCodec ? fairwire.hooks.videoCodec() : null;
    if (!wanted || typeof wanted.codec !== "string" || typeof transceiver.setCodecPreferences !== "function") return;
    const mime = "video/" + wanted.codec.toLowerCase();
    const profile = H264_PROFILE_IDS[wanted.profile] || null;
    const score = (c) => (profile && profile.test(c.sdpFmtpLine || "") ? 2 : 0)
      + (/packetization-mode=1/.test(c.sdpFmtpLine || "") ? 1 : 0);
    for (const source of [window.RTCRtpSender, window.RTCRtpReceiver]) {
      const capabilities = source && source.getCapabilities ? source.getCapabilities("video") : null;
      if (!capabilities) continue;
      const matches = (c) => c.mimeType.toLowerCase() === mime;
      const first = capabilities.codecs.filter(matches).sort((a, b) => score(b) - score(a));
      if (!first.length) return;
      try {
        transceiver.setCodecPreferences([...first, ...capabilities.codecs.filter((c) => !matches(c))]);
        return;
      } catch (_) {
        /* this browser wants the other list */
      }
    }
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
      publishError = { key: "error.media_failed", params: { message: messageOf(err) } };
      stopPublishing(true);
      render();
    }
  }

  function stopPublishing(tellServer) {
    const wasPublishing = fairwire.publishing || fairwire.publisherPc;
    if (tellServer && wasPublishing && socket && socket.connected) {
      request("unpublish", {}).catch(() => {});
    }
    if (fairwire.publisherPc) fairwire.publisherPc.close();
    fairwire.publisherPc = null;
    if (screenTrack) screenTrack.stop();
    screenTrack = null;
    screenTransceiver = null;
    previewing = false;
    fairwire.publishing = false;
    releaseMedia();
  }

  function sendMuted(kind, muted) {
    if (!fairwire.publishing || !socket || !socket.connected) return;
    request("set-muted", { kind, muted }).catch((err) => {
      console.warn("fairwire: set-muted " + kind + " " + muted + ": " + messageOf(err));
    });
  }

  /**
   * A moderator's mute of one's own microphone or camera (meeting.js: setHeld(["audio"])): the
   * track goes off here too, and its button asks the moderators instead of turning it back on.
   */
  function setHeld(kinds) {
    let changed = false;
    for (const kind of ["audio", "video"]) {
      const on = kinds.includes(kind);
      if (on === held[kind]) continue;
      held[kind] = on;
      changed = true;
      if (on && !wantMuted[kind]) {
        if (localStream) toggleTrack(kind);
        else wantMuted[kind] = true; // going live later starts with it off
      }
    }
    if (changed) renderMedia();
  }
  fairwire.setHeld = setHeld;

  /** The microphone or camera off or on: the track stops sending, and everyone is told. */
  function toggleTrack(kind) {
    if (!localStream) return;
    if (held[kind] && wantMuted[kind]) {
      if (fairwire.hooks.askUnmute) fairwire.hooks.askUnmute(kind);
      return;
    }
    const muted = !wantMuted[kind];
    wantMuted[kind] = muted;
    const tracks = kind === "audio" ? localStream.getAudioTracks() : localStream.getVideoTracks();
    tracks.forEach((track) => (track.enabled = !muted));
    sendMuted(kind, muted);
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
      mediaNotice = { key: "room.mediaUnavailable", params: { message: messageOf(err) } };
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

  /** Another script shows the room another way (watch-hls.js: live HLS): no WebRTC receiving. */
  function watchingElsewhere() {
    return !!(fairwire.hooks.watchesElsewhere && fairwire.hooks.watchesElsewhere());
  }

  /** Stop receiving over WebRTC (the server closes its side too). */
  function unsubscribe() {
    closeSubscriber();
    enqueue(() => request("unsubscribe", {}));
  }
  fairwire.subscribe = subscribe;
  fairwire.unsubscribe = unsubscribe;

  function subscribe() {
    // Kept for tests and diagnostics: time-to-first-frame is measured from here.
    fairwire.subscribeStartedAt = performance.now();
    enqueue(async () => {
      const wanted = fairwire.hooks.subscription ? fairwire.hooks.subscription() : null;
      const offer = await request("subscribe", wanted && typeof wanted === "object" ? wanted : {});
      // {waiting: true}: nothing is published yet; a "subscriber-offer" event follows.
      if (offer && offer.sdp) await answerOffer(offer);
    });
  }

  function onTrack(event) {
    const stream = event.streams && event.streams[0];
    if (!stream) return;
    const identity = stream.id;
    if (fairwire.self && identity === fairwire.self.identity) return; // our own tile shows it
    let entry = tiles.get(identity);
    if (!entry || entry.stream !== stream) {
      if (entry) removeTile(identity);
      entry = addTile(identity, stream);
    }
    const check = () => checkTile(identity);
    event.track.addEventListener("ended", check);
    event.track.addEventListener("unmute", () => entry.video.play().catch(() => {}));
    stream.addEventListener("removetrack", check);
    stream.addEventListener("addtrack", () => renderTile(identity));
    entry.video.play().catch(() => {});
    renderTile(identity);
  }

  function addTile(identity, stream) {
    const entry = makeTile(stream, false);
    entry.tile.dataset.identity = identity;
    const unmute = el("button", "button button-small tile-unmute", t("room.unmute"));
    unmute.type = "button";
    unmute.addEventListener("click", () => {
      entry.video.muted = !entry.video.muted;
      entry.video.play().catch(() => {});
      renderMedia();
    });
    entry.caption.appendChild(unmute);
    entry.unmute = unmute;
    $("tiles").appendChild(entry.tile);
    tiles.set(identity, entry);
    renderTile(identity);
    renderMedia();
    return entry;
  }

  function checkTile(identity) {
    const entry = tiles.get(identity);
    if (!entry) return;
    const live = entry.stream.getTracks().filter((track) => track.readyState === "live");
    if (live.length === 0) removeTile(identity);
    else renderTile(identity);
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
        connectionNotice = { key: "error.timeout" };
        render();
        return;
      }
      fail(err);
      return;
    }
    if (catchUp !== mine) return; // a newer join (another reconnect) took over
    catchUp = null;
    if (ack.lobby) {
      // A meeting's lobby: no seat yet; "meeting-admitted" asks us to join again.
      if (ack.room) fairwire.room = ack.room;
      fairwire.state = "lobby";
      render();
      return;
    }
    noteCredential(ack.credential);
    if (ack.room) fairwire.room = ack.room;
    const before = fairwire.self;
    fairwire.self = ack.self && typeof ack.self === "object" ? { ...ack.self } : null;
    if (before && fairwire.self && before.identity !== fairwire.self.identity) {
      // Another identity (a guest who changed name): the old one's stage is not ours.
      presence = { ...presence, stage: {} };
    }
    const claims = tokenClaims(linkToken);
    fairwire.guest = fairwire.guest || !!(fairwire.self && fairwire.self.guest === true) || !!(claims && claims.gst === true);
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
    if (hasGrant("subscribe") && !watchingElsewhere()) subscribe();
    if (wantLive && hasGrant("publish")) goLive();
  }

  /** What the next connect attempt offers: the session credential while it lasts, else the link. */
  function auth(cb) {
    authUsed = sessionUsable() ? "session" : "link";
    cb({ token: authUsed === "session" ? session.token : linkToken });
  }

  /** Connect again right away (after a refusal the client does not try by itself). */
  function connectAgain() {
    window.setTimeout(() => {
      if (socket && !socket.connected && fairwire.state !== "error") socket.connect();
    }, 0);
  }

  /** Leave and come back with what `auth` gives now (a new guest token). */
  function reconnect() {
    if (!socket) {
      connect();
      return;
    }
    wantLive = false;
    stopPublishing(false);
    closeSubscriber();
    closeViewers();
    closeInvitation();
    socket.disconnect();
    fairwire.state = "connecting";
    render();
    socket.connect();
  }

  async function refusedGuest() {
    guestFromStorage = false;
    forgetGuest();
    connectionNotice = null;
    if (await startAsGuest()) connectAgain();
  }

  function connect() {
    if (typeof window.io !== "function") {
      fail({ code: "connect_failed", message: "socket.io client missing" });
      return;
    }
    socket = window.io({ auth, transports: ["websocket"] });

    socket.on("connect", join);
    socket.on("connect_error", (err) => {
      const data = err && err.data && typeof err.data === "object" ? err.data : null;
      if (data && data.code) {
        if (authUsed === "session" && TOKEN_REFUSALS.has(data.code)) {
          // The session credential was refused: once more with the link token.
          session = null;
          connectAgain();
          return;
        }
        if (fairwire.guest && guestFromStorage && STALE_GUEST.has(data.code)) {
          refusedGuest(); // a guest token from an earlier visit: take a new one
          return;
        }
        fail({ code: data.code, message: data.message || err.message });
      } else if (!socket.active) {
        fail({ code: "connect_failed", message: err ? err.message : "" });
      } else {
        connectionNotice = { key: "room.reconnecting" };
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
      connectionNotice = { key: "room.reconnecting" };
      render();
    });

    socket.on("credential", noteCredential);
    socket.on("revoked", (data) => {
      fail({ code: "token_revoked", message: (data && data.message) || "" });
    });
    socket.on("room-event", onRoomEvent);
    socket.on("audience", setAudience);
    socket.on("replaced", (data) => {
      fail({ code: "replaced", message: (data && data.reason) || "" });
    });
    // Events of one's identity, in any room: for messages.js, calls.js and agenda.js.
    for (const name of ["dm", "dm-unread", "invitation", "meeting-ready", "appointment",
      "appointment-reminder"]) {
      socket.on(name, (data) => announce(name, data));
    }
    socket.on("speakers", (data) => announce("speakers", data));
    socket.on("meeting-admitted", () => {
      if (fairwire.state === "lobby") join();
    });
    socket.on("meeting-denied", () => fail({ code: "denied" }));
    socket.on("meeting-left", (data) => fail({ code: (data && data.reason) || "removed" }));
    socket.on("subscriber-offer", (offer) => {
      if (fairwire.state === "joined" && !watchingElsewhere()) enqueue(() => answerOffer(offer));
    });
    socket.on("track-published", () => {
      /* the renegotiation that follows ("subscriber-offer") brings the track */
    });
    socket.on("track-unpublished", (data) => {
      if (!data || !data.identity) return;
      // Give the renegotiation a moment to remove the track from the stream.
      window.setTimeout(() => {
        checkTile(data.identity);
        checkTile(data.identity + SCREEN_SUFFIX);
      }, 1500);
    });
  }

  // -- start ------------------------------------------------------------------------------

  $("go-live").addEventListener("click", goLive);
  $("preview").addEventListener("click", openPreview);
  $("close-preview").addEventListener("click", closePreview);
  $("share-screen").addEventListener("click", () => (screenTrack ? stopScreen() : shareScreen()));
  $("camera-select").addEventListener("change", (event) => chooseDevice("video", event.target.value));
  $("mic-select").addEventListener("change", (event) => chooseDevice("audio", event.target.value));
  $("stop").addEventListener("click", () => {
    wantLive = false;
    stopPublishing(true);
    render();
  });
  $("toggle-mic").addEventListener("click", () => toggleTrack("audio"));
  $("toggle-cam").addEventListener("click", () => toggleTrack("video"));
  $("step-down").addEventListener("click", stepDown);
  $("end-live").addEventListener("click", openEndDialog);
  $("end-cancel").addEventListener("click", () => $("end-dialog").close());
  $("end-confirm").addEventListener("click", endLive);
  $("invitation-accept").addEventListener("click", () => answerInvitation(true));
  $("invitation-decline").addEventListener("click", () => answerInvitation(false));
  // The invitation waits for an answer: Escape does not dismiss it unanswered.
  $("stage-invitation").addEventListener("cancel", (event) => event.preventDefault());
  $("viewers-button").addEventListener("click", openViewers);
  $("record-toggle").addEventListener("click", toggleRecording);
  $("viewers-close").addEventListener("click", closeViewers);
  $("viewers-more").addEventListener("click", loadViewers);
  $("viewers-panel").addEventListener("close", closeViewers);
  // A click on the backdrop (outside the panel's box) closes it, as people expect.
  $("viewers-panel").addEventListener("click", (event) => {
    if (event.target === $("viewers-panel")) closeViewers();
  });
  $("guest-rename").addEventListener("click", openGuestForm);
  $("guest-cancel").addEventListener("click", closeGuestForm);
  $("guest-form").addEventListener("submit", renameGuest);
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

  /**
   * GET /api/rooms/{id} with the token: an unknown (or undisclosed private) room is told
   * before connecting. Returns the error to show, or null.
   */
  async function checkRoom() {
    let res;
    try {
      res = await api("GET", roomPath);
    } catch (_) {
      return null; // the connection will tell what is wrong
    }
    if (res.ok && res.data && typeof res.data === "object" && res.data.id) {
      fairwire.room = res.data;
      render();
      if (res.data.status === "ended") return new ServerError({ code: "room_ended", message: "this room has ended" });
      return null;
    }
    if (res.status === 404) {
      return new ServerError({ code: "room_not_found", message: "no room " + roomId },
        fairwire.guest ? "error.guest_room_not_found" : null);
    }
    const error = apiError(res);
    return res.status === 401 && TOKEN_REFUSALS.has(error.code) ? error : null;
  }

  async function start() {
    render();
    if (!roomId) {
      fail({ code: "room_not_found", message: "no room in the address" });
      return;
    }
    if (!linkToken) {
      // A guest: the token from earlier in this tab, or a new one.
      fairwire.guest = true;
      const stored = loadGuest();
      if (stored) {
        linkToken = stored.token;
        guestName = stored.name || "";
        guestFromStorage = true;
      } else if (!(await startAsGuest())) {
        return;
      }
    }
    const claims = tokenClaims(linkToken);
    if (claims && claims.gst === true) fairwire.guest = true;
    preferTokenLanguage(linkToken);
    let error = await checkRoom();
    if (error && guestFromStorage && STALE_GUEST.has(error.code)) {
      guestFromStorage = false;
      forgetGuest();
      if (!(await startAsGuest())) return;
      error = await checkRoom();
    }
    if (error) {
      fail(error);
      return;
    }
    const tokenRoom = tokenClaims(linkToken);
    if (tokenRoom && typeof tokenRoom.room === "string" && tokenRoom.room !== roomId) {
      fail({ code: "wrong_room", message: "the token is for room " + tokenRoom.room });
      return;
    }
    connect();
  }

  start();
})();
