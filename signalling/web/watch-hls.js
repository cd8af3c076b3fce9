/* Fairwire live HLS on the room page (issue #12): when a livestream's viewer cannot watch in
 * real time, the page plays the live's HLS instead (hls.js, from npm, loaded only then).
 * Loaded after room.js and live.js.
 *
 * A viewer (a livestream's watcher: the subscribe grant, not a moderator, not on stage, not
 * publishing) switches to HLS when
 *   - the room says so: room.delivery == "hls" (its host or owner sent viewers there, e.g.
 *     because the node is full) -- and back to real time when it says "webrtc" again;
 *   - WebRTC cannot connect: on air, joined, and the receiving connection not connected for
 *     10 s (a network that blocks UDP, say). "Try real time again" gives WebRTC another go.
 * It then stops receiving over WebRTC (fairwire.unsubscribe()) and
 *   GET /hls/{room}/index.m3u8 (Bearer: the page's credential) -> 302 to the signed playlist,
 *   which hls.js (or a browser's own HLS) plays; 404 hls_not_on_air -> tries again every 2 s.
 * Moderators see a "How viewers watch" panel: PATCH /api/rooms/{id} {delivery} (Bearer).
 *
 * For tests: window.fairwireHls = {mode: "webrtc" | "hls", reason: "host" | "failed" | null,
 * url (the signed playlist), playing, error}.
 */
(function () {
  "use strict";

  const STUCK_MS = 10000;
  const RETRY_MS = 2000;
  const TICK_MS = 1000;
  const HLS_SCRIPT = "/static/vendor/hls.min.js";

  const fairwire = window.fairwire;
  const i18n = window.FairwireI18n;
  if (!fairwire || !i18n) return;
  const t = i18n.t;
  const $ = (id) => document.getElementById(id);

  i18n.add({
    en: {
      "hls.badge": "HLS · a few seconds behind live",
      "hls.byHost": "The organiser moved viewers to the HLS stream to make room. It runs a few seconds behind live.",
      "hls.byNetwork": "A real-time connection could not be made from your network, so you are watching the HLS stream. It runs a few seconds behind live.",
      "hls.waiting": "Waiting for the HLS stream to start…",
      "hls.unsupported": "This browser cannot play the HLS stream. Please try another browser.",
      "hls.failed": "The HLS stream could not be loaded ({message}). Retrying…",
      "hls.realtime": "Try real time again",
      "hls.deliveryTitle": "How viewers watch",
      "hls.deliveryWebrtc": "Real time",
      "hls.deliveryHls": "HLS",
      "hls.deliveryHintWebrtc": "Viewers watch in real time (WebRTC). If this server is full, move them to HLS: a few seconds behind, but it scales to any audience.",
      "hls.deliveryHintHls": "Viewers watch the HLS stream, a few seconds behind live. Guests on stage and moderators stay in real time.",
      "hls.toHls": "Move the audience to HLS",
      "hls.toWebrtc": "Bring the audience back to real time",
      "hls.deliveryFailed": "Could not change how viewers watch: {message}",
    },
    zh: {
      "hls.badge": "HLS · 比直播晚几秒",
      "hls.byHost": "为腾出容量，主办方已将观众切换到 HLS 直播流，画面会比直播晚几秒。",
      "hls.byNetwork": "您的网络无法建立实时连接，现为您播放 HLS 直播流，画面会比直播晚几秒。",
      "hls.waiting": "正在等待 HLS 直播流开始…",
      "hls.unsupported": "此浏览器无法播放 HLS 直播流，请换一个浏览器。",
      "hls.failed": "无法加载 HLS 直播流（{message}），正在重试…",
      "hls.realtime": "再试一次实时观看",
      "hls.deliveryTitle": "观众观看方式",
      "hls.deliveryWebrtc": "实时",
      "hls.deliveryHls": "HLS",
      "hls.deliveryHintWebrtc": "观众正在实时观看（WebRTC）。如果服务器已满，可将观众切换到 HLS：会晚几秒，但可支持任意规模的观众。",
      "hls.deliveryHintHls": "观众正在观看 HLS 直播流，比直播晚几秒。台上嘉宾和主持人仍为实时。",
      "hls.toHls": "将观众切换到 HLS",
      "hls.toWebrtc": "将观众切回实时",
      "hls.deliveryFailed": "无法更改观众观看方式：{message}",
    },
  });
  i18n.apply();

  const view = (window.fairwireHls = { mode: "webrtc", reason: null, url: null, playing: false, error: null });
  let player = null; // the hls.js instance
  let stuckSince = null;
  let retryTimer = 0;
  let loading = false;
  let libraryLoad = null;
  let deliveryBusy = false;
  let deliveryError = null;

  fairwire.hooks.watchesElsewhere = () => view.mode === "hls";

  const hasGrant = fairwire.hasGrant;
  const isModerator = fairwire.moderates;

  function liveRoom() {
    const room = fairwire.room;
    return !!(room && room.kind === "livestream" && room.status === "live");
  }

  function isViewer() {
    return fairwire.state === "joined" && liveRoom() && hasGrant("subscribe") && !isModerator()
      && !fairwire.publishing && !(fairwire.self && fairwire.self.stage === "on");
  }

  function realtimeConnected() {
    const pc = fairwire.subscriberPc;
    return !!(pc && pc.connectionState === "connected");
  }

  function messageOf(err) {
    return (err && err.message) || String(err);
  }

  // -- switching ---------------------------------------------------------------------------

  function decide() {
    const now = Date.now();
    if (view.mode === "hls") {
      const room = fairwire.room;
      if (!liveRoom()) leave(false);
      else if (!isViewer() || (view.reason === "host" && room.delivery !== "hls")) leave(true);
      return;
    }
    if (!isViewer()) {
      stuckSince = null;
      return;
    }
    if (fairwire.room.delivery === "hls") {
      enter("host");
      return;
    }
    const room = fairwire.room;
    const onAir = room.on_air === true || room.publishing === true;
    if (!onAir || realtimeConnected()) {
      stuckSince = null;
      return;
    }
    if (stuckSince === null) stuckSince = now;
    else if (now - stuckSince >= STUCK_MS) enter("failed");
  }

  function enter(reason) {
    view.mode = "hls";
    view.reason = reason;
    view.error = null;
    stuckSince = null;
    fairwire.unsubscribe();
    render();
    load();
  }

  function leave(realtime) {
    window.clearTimeout(retryTimer);
    if (player) player.destroy();
    player = null;
    const video = $("hls-video");
    video.pause();
    video.removeAttribute("src");
    video.load();
    view.mode = "webrtc";
    view.reason = null;
    view.url = null;
    view.playing = false;
    view.error = null;
    stuckSince = null;
    render();
    if (realtime && fairwire.state === "joined" && hasGrant("subscribe")) fairwire.subscribe();
  }

  // -- playing -----------------------------------------------------------------------------

  function library() {
    if (window.Hls) return Promise.resolve(window.Hls);
    if (!libraryLoad) {
      libraryLoad = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = HLS_SCRIPT;
        script.onload = () => resolve(window.Hls);
        script.onerror = () => {
          libraryLoad = null;
          reject(new Error("hls.js did not load"));
        };
        document.head.appendChild(script);
      });
    }
    return libraryLoad;
  }

  function retry(error) {
    view.error = error;
    render();
    window.clearTimeout(retryTimer);
    retryTimer = window.setTimeout(load, RETRY_MS);
  }

  async function load() {
    if (view.mode !== "hls" || loading) return;
    loading = true;
    try {
      const res = await fetch(`/hls/${encodeURIComponent(fairwire.room.id)}/index.m3u8`, {
        headers: fairwire.credential ? { Authorization: `Bearer ${fairwire.credential}` } : {},
      });
      if (view.mode !== "hls") return;
      if (!res.ok) {
        let code = "http_" + res.status;
        try {
          code = (await res.json()).error.code || code;
        } catch (err) {
          /* not our JSON error */
        }
        retry(code === "hls_not_on_air" ? { key: "hls.waiting" } : { key: "hls.failed", message: code });
        return;
      }
      view.url = res.url; // the signed playlist, after the redirect
      await play(view.url);
    } catch (err) {
      if (view.mode === "hls") retry({ key: "hls.failed", message: messageOf(err) });
    } finally {
      loading = false;
    }
  }

  async function play(url) {
    const video = $("hls-video");
    const Hls = await library().catch(() => null);
    if (view.mode !== "hls") return;
    if (Hls && Hls.isSupported()) {
      if (player) player.destroy();
      player = new Hls({ liveSyncDurationCount: 3 });
      player.on(Hls.Events.ERROR, (event, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
          player.recoverMediaError();
          return;
        }
        // A network error (a signature that expired, the node restarting): from the top.
        player.destroy();
        player = null;
        retry({ key: "hls.failed", message: data.details || data.type });
      });
      player.loadSource(url);
      player.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url; // Safari plays HLS itself
    } else {
      view.error = { key: "hls.unsupported" };
      render();
      return;
    }
    view.error = null;
    render();
    video.play().catch(() => {});
  }

  $("hls-video").addEventListener("playing", () => {
    view.playing = true;
    view.error = null;
    render();
  });

  $("hls-realtime").addEventListener("click", () => {
    leave(true);
    stuckSince = Date.now(); // another 10 s for WebRTC before falling back again
  });

  // -- the moderators' switch --------------------------------------------------------------

  async function setDelivery(delivery) {
    deliveryBusy = true;
    deliveryError = null;
    render();
    try {
      const res = await fetch(`/api/rooms/${encodeURIComponent(fairwire.room.id)}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${fairwire.credential}` },
        body: JSON.stringify({ delivery }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error((body.error && body.error.message) || "HTTP " + res.status);
      fairwire.room = { ...fairwire.room, ...body };
    } catch (err) {
      deliveryError = messageOf(err);
    } finally {
      deliveryBusy = false;
      render();
    }
  }

  $("delivery-toggle").addEventListener("click", () => {
    setDelivery(fairwire.room && fairwire.room.delivery === "hls" ? "webrtc" : "hls");
  });

  // -- rendering ---------------------------------------------------------------------------

  function render() {
    const hls = view.mode === "hls";
    $("hls-view").hidden = !hls;
    $("tiles").hidden = hls;
    if (hls) $("stage-empty").hidden = true;
    $("hls-badge").textContent = t("hls.badge");
    const notice = $("hls-notice");
    notice.hidden = !hls;
    const error = view.error;
    $("hls-notice-text").textContent = error
      ? t(error.key, { message: error.message || "" })
      : t(view.reason === "host" ? "hls.byHost" : "hls.byNetwork");
    const realtime = $("hls-realtime");
    realtime.hidden = !hls || view.reason !== "failed";
    realtime.textContent = t("hls.realtime");

    const panel = $("delivery-panel");
    panel.hidden = !(fairwire.state === "joined" && liveRoom() && isModerator());
    if (panel.hidden) return;
    const toHls = fairwire.room.delivery === "hls";
    $("delivery-state").textContent = t(toHls ? "hls.deliveryHls" : "hls.deliveryWebrtc");
    $("delivery-hint").textContent = t(toHls ? "hls.deliveryHintHls" : "hls.deliveryHintWebrtc");
    const toggle = $("delivery-toggle");
    toggle.textContent = t(toHls ? "hls.toWebrtc" : "hls.toHls");
    toggle.disabled = deliveryBusy;
    const failed = $("delivery-error");
    failed.hidden = !deliveryError;
    failed.textContent = deliveryError ? t("hls.deliveryFailed", { message: deliveryError }) : "";
  }

  document.addEventListener("fairwire:render", () => {
    decide();
    render();
  });
  window.setInterval(decide, TICK_MS);
  render();
})();
