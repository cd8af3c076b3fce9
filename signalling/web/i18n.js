/* Fairwire: the words of every page in English and Chinese, and the language switcher.
 *
 * Language: ?lang= first, then the choice kept in localStorage, then what the page was told the
 * person reads (FairwireI18n.preferIfUnchosen(tag), e.g. the language of their access link),
 * then navigator.language (zh* -> zh, anything else -> en). Static markup names its text with data-i18n (textContent),
 * data-i18n-aria-label, data-i18n-title and data-i18n-placeholder; scripts call FairwireI18n.t(key, params).
 * Switching language fires a "fairwire:lang" event on document so that pages re-render.
 */
(function () {
  "use strict";

  const STORAGE_KEY = "fairwire.lang";
  const LANGS = ["en", "zh"];

  const DICT = {
    en: {
      "brand.tagline": "Online trade fair",
      "lang.label": "Language",
      "lang.en": "English",
      "lang.zh": "中文",
      "nav.schedule": "Schedule",

      "index.title": "Fairwire · Live booths and meetings",
      "index.heading": "Live booths and meetings",
      "index.subtitle": "Watch exhibitors broadcast from their booths and production lines, and meet them face to face.",
      "index.loading": "Loading the programme…",
      "index.empty": "No livestreams or meetings are scheduled yet. Please check back soon.",
      "index.error": "Cannot load the programme right now. Retrying…",
      "index.updated": "Updated {time}",
      "index.past": "Past",
      "index.pastCount": "Past ({count})",
      "index.other": "Other",
      "index.roomCount": "{count} rooms",
      "index.roomCountOne": "1 room",
      "index.startsAt": "Starts {time}",
      "index.liveSince": "Live since {time}",
      "index.notScheduled": "Time to be announced",
      "index.endedAt": "Ended {time}",
      "index.enter": "Enter",
      "index.liveNow": "{count} live now",

      "status.live": "LIVE",
      "status.scheduled": "Scheduled",
      "status.ended": "Ended",
      "status.soon": "Starting soon",
      "kind.livestream": "Livestream",
      "kind.meeting": "Meeting",
      "role.exhibitor": "Exhibitor",
      "role.buyer": "Buyer",
      "role.host": "Host",
      "role.visitor": "Visitor",
      "role.guest": "Guest",

      "room.title": "Fairwire · Room",
      "room.connecting": "Connecting…",
      "room.participants": "Participants",
      "room.participantCount": "{count} here",
      "room.you": "you",
      "room.noParticipants": "Nobody is here yet.",
      "room.stage": "Stage",
      "room.stageEmpty": "Nobody is broadcasting yet. The video appears here as soon as someone goes live.",
      "room.stageScheduled": "This livestream starts {time}. The video appears here as soon as it begins.",
      "room.mediaUnavailable": "Video is not available right now: {message}",
      "room.reconnecting": "Connection lost. Reconnecting…",
      "room.goLive": "Go live",
      "room.startingLive": "Starting…",
      "room.stop": "Stop",
      "room.micOn": "Mute microphone",
      "room.micOff": "Unmute microphone",
      "room.camOn": "Turn camera off",
      "room.camOff": "Turn camera on",
      "room.askMic": "Ask to unmute microphone",
      "room.askCam": "Ask to turn camera on",
      "room.preview": "Your camera",
      "room.youAreLive": "You are live",
      "room.watchReplay": "Watch the replay",
      "room.previewOpen": "Check camera and microphone",
      "room.previewStarting": "Starting camera…",
      "room.previewClose": "Close preview",
      "room.previewOnlyYou": "Preview · only you see this",
      "room.screenShare": "Share screen",
      "room.screenStop": "Stop sharing screen",
      "room.screenOf": "{name}’s screen",
      "room.camera": "Camera",
      "room.microphone": "Microphone",
      "room.micLevel": "Microphone level",
      "room.cameraNumber": "Camera {n}",
      "room.micNumber": "Microphone {n}",
      "room.unmute": "Unmute",
      "room.mute": "Mute",
      "room.backToProgramme": "Back to the programme",
      "room.retry": "Try again",
      "room.broadcastControls": "Broadcast controls",
      "room.onStageCount": "{count} on stage",
      "room.nobodyOnStage": "Nobody is on stage yet.",
      "room.audience": "{current} watching · peak {peak}",
      "room.viewers": "Viewers",
      "room.recording": "Recording",
      "room.recordStart": "Start recording",
      "room.recordStop": "Stop recording",
      "room.recordFailed": "Recording could not be changed: {message}",
      "room.recordingLive": "This livestream is recorded: it can be watched again as a replay.",
      "room.recordingMeeting": "This meeting is being recorded. Everyone in it sees this notice; each person's camera and microphone are kept as a replay.",
      "room.viewersTitle": "Who is watching",
      "room.viewersShown": "Showing {shown} of {total}",
      "room.viewersLoading": "Loading…",
      "room.viewersMore": "Load more",
      "room.viewersEmpty": "Nobody is watching right now.",
      "room.viewersForbidden": "Only hosts and exhibitors can see who is watching.",
      "room.viewersError": "Could not load the viewers: {message}",
      "room.viewerSince": "since {time}",
      "room.close": "Close",
      "room.youName": "{name} (you)",
      "room.youAlone": "You",
      "room.cameraOff": "Camera off",
      "room.micMuted": "Microphone off",
      "room.watchingAs": "Watching as {name}",
      "room.changeName": "Change name",
      "room.yourName": "Your name",
      "room.save": "Save",
      "room.cancel": "Cancel",
      "room.nameRequired": "Please enter a name.",
      "room.renameFailed": "Could not change the name: {message}",
      "room.guestBusy": "Too many visitors from your network right now, retrying in {seconds} s…",
      "room.endLive": "End live",
      "room.endLiveTitle": "End this livestream?",
      "room.endLiveText": "Everyone watching is disconnected and the livestream is over for good. This cannot be undone.",
      "room.endLiveConfirm": "End live",
      "room.endFailed": "Could not end the livestream: {message}",
      "room.inviteOnStage": "Invite on stage",
      "room.removeFromStage": "Remove from stage",
      "room.invited": "Invited",
      "room.stepDown": "Step down",
      "room.stageOff": "You are no longer on stage.",
      "room.stageActionFailed": "That did not work: {message}",
      "room.invitationTitle": "You are invited on stage",
      "room.invitationText": "The host invites you to join this livestream on stage. Once you accept, you can go live: everyone watching will see and hear you.",
      "room.accept": "Accept",
      "room.decline": "Decline",

      "error.title": "You cannot enter this room",
      "error.missing_token": "This link has no access token. Please open the invitation link you received from the organiser.",
      "error.missing_credentials": "This link has no access token. Please open the invitation link you received from the organiser.",
      "error.invalid_token": "This access link is not valid. Please ask the organiser for a new invitation link.",
      "error.token_expired": "This access link has expired. Please ask the organiser for a new invitation link.",
      "error.wrong_room": "This access link is for another room.",
      "error.room_not_found": "This room does not exist. It may have been removed.",
      "error.guest_room_not_found": "This room does not exist or is private. Private rooms open only with the invitation link from the organiser.",
      "error.token_revoked": "This link was withdrawn by the organiser. Please ask them for a new invitation link.",
      "error.room_ended": "This session has ended. Past livestreams can be watched from the programme.",
      "error.replaced": "You joined this room from another window or device, so this one was disconnected.",
      "error.denied": "The host did not let you into this meeting.",
      "error.removed": "A moderator removed you from this meeting. You cannot rejoin it.",
      "error.meeting_locked": "This meeting is locked: nobody new can join. Ask the host to unlock it.",
      "error.meeting_ended": "This meeting has ended.",
      "room.lobbyTitle": "Waiting for the host",
      "room.lobbyText": "The host will let you in shortly. Please keep this page open.",
      "error.disconnected": "You were disconnected from the room.",
      "error.timeout": "The server did not answer in time. Please try again.",
      "error.rate_limited": "Too many requests. Please wait a moment and try again.",
      "error.connect_failed": "Cannot reach the server. Please check your connection and try again.",
      "error.unknown": "Something went wrong: {message}",
      "error.forbidden": "You are not allowed to do this.",
      "error.not_joined": "You are not in the room at the moment. Please wait while the page reconnects.",
      "error.media_denied": "Camera or microphone access was refused. Allow it in your browser settings and try again.",
      "error.media_missing": "No camera or microphone was found.",
      "error.media_failed": "Could not start the broadcast: {message}",
      "error.screen_failed": "Could not share the screen: {message}",
    },
    zh: {
      "brand.tagline": "云上展会",
      "lang.label": "语言",
      "lang.en": "English",
      "lang.zh": "中文",
      "nav.schedule": "直播时间表",

      "index.title": "Fairwire · 展台直播与洽谈",
      "index.heading": "展台直播与洽谈",
      "index.subtitle": "观看展商在展台和生产线的直播，并与他们在线面对面洽谈。",
      "index.loading": "正在加载日程…",
      "index.empty": "暂无已安排的直播或洽谈，敬请期待。",
      "index.error": "暂时无法加载日程，正在重试…",
      "index.updated": "更新于 {time}",
      "index.past": "往届回放",
      "index.pastCount": "往届回放（{count}）",
      "index.other": "其他",
      "index.roomCount": "{count} 个房间",
      "index.roomCountOne": "1 个房间",
      "index.startsAt": "开始时间 {time}",
      "index.liveSince": "{time} 开播",
      "index.notScheduled": "时间待定",
      "index.endedAt": "结束于 {time}",
      "index.enter": "进入",
      "index.liveNow": "{count} 场正在直播",

      "status.live": "直播中",
      "status.scheduled": "预告",
      "status.ended": "已结束",
      "status.soon": "即将开始",
      "kind.livestream": "直播",
      "kind.meeting": "洽谈",
      "role.exhibitor": "展商",
      "role.buyer": "采购商",
      "role.host": "主持人",
      "role.visitor": "观众",
      "role.guest": "游客",

      "room.title": "Fairwire · 房间",
      "room.connecting": "正在连接…",
      "room.participants": "参会人员",
      "room.participantCount": "{count} 人在线",
      "room.you": "我",
      "room.noParticipants": "暂时还没有人。",
      "room.stage": "直播画面",
      "room.stageEmpty": "还没有人开始直播。有人开播后，画面会显示在这里。",
      "room.stageScheduled": "本场直播将于 {time} 开始，开播后画面会显示在这里。",
      "room.mediaUnavailable": "暂时无法观看视频：{message}",
      "room.reconnecting": "连接已断开，正在重新连接…",
      "room.goLive": "开始直播",
      "room.startingLive": "正在开播…",
      "room.stop": "停止",
      "room.micOn": "关闭麦克风",
      "room.micOff": "打开麦克风",
      "room.camOn": "关闭摄像头",
      "room.camOff": "打开摄像头",
      "room.askMic": "申请打开麦克风",
      "room.askCam": "申请打开摄像头",
      "room.preview": "我的摄像头",
      "room.youAreLive": "正在直播",
      "room.watchReplay": "观看回放",
      "room.previewOpen": "检查摄像头和麦克风",
      "room.previewStarting": "正在打开摄像头…",
      "room.previewClose": "关闭预览",
      "room.previewOnlyYou": "预览 · 仅你可见",
      "room.screenShare": "共享屏幕",
      "room.screenStop": "停止共享屏幕",
      "room.screenOf": "{name} 的屏幕",
      "room.camera": "摄像头",
      "room.microphone": "麦克风",
      "room.micLevel": "麦克风音量",
      "room.cameraNumber": "摄像头 {n}",
      "room.micNumber": "麦克风 {n}",
      "room.unmute": "打开声音",
      "room.mute": "静音",
      "room.backToProgramme": "返回日程",
      "room.retry": "重试",
      "room.broadcastControls": "直播控制",
      "room.onStageCount": "台上 {count} 人",
      "room.nobodyOnStage": "台上暂时还没有人。",
      "room.audience": "{current} 人正在观看 · 最高 {peak}",
      "room.viewers": "观众名单",
      "room.recording": "录制中",
      "room.recordStart": "开始录制",
      "room.recordStop": "停止录制",
      "room.recordFailed": "无法更改录制状态：{message}",
      "room.recordingLive": "本场直播正在录制，之后可以观看回放。",
      "room.recordingMeeting": "本次会议正在录制。所有参会者都能看到此提示；每个人的摄像头和麦克风画面都会保存为回放。",
      "room.viewersTitle": "正在观看的观众",
      "room.viewersShown": "已显示 {shown} 人，共 {total} 人",
      "room.viewersLoading": "正在加载…",
      "room.viewersMore": "加载更多",
      "room.viewersEmpty": "目前没有人在观看。",
      "room.viewersForbidden": "只有主持人和展商可以查看观众名单。",
      "room.viewersError": "无法加载观众名单：{message}",
      "room.viewerSince": "{time} 进入",
      "room.close": "关闭",
      "room.youName": "{name}（我）",
      "room.youAlone": "我",
      "room.cameraOff": "摄像头已关闭",
      "room.micMuted": "麦克风已关闭",
      "room.watchingAs": "正在以“{name}”的身份观看",
      "room.changeName": "修改名称",
      "room.yourName": "您的名称",
      "room.save": "保存",
      "room.cancel": "取消",
      "room.nameRequired": "请输入名称。",
      "room.renameFailed": "无法修改名称：{message}",
      "room.guestBusy": "您所在网络的访客过多，{seconds} 秒后自动重试…",
      "room.endLive": "结束直播",
      "room.endLiveTitle": "确定结束本场直播？",
      "room.endLiveText": "所有观众将断开连接，本场直播随即结束，且无法恢复。",
      "room.endLiveConfirm": "结束直播",
      "room.endFailed": "无法结束直播：{message}",
      "room.inviteOnStage": "邀请上台",
      "room.removeFromStage": "请下台",
      "room.invited": "已邀请",
      "room.stepDown": "下台",
      "room.stageOff": "您已不在台上。",
      "room.stageActionFailed": "操作未成功：{message}",
      "room.invitationTitle": "邀请您上台",
      "room.invitationText": "主持人邀请您上台参与本场直播。接受后即可开始直播，所有观众都能看到和听到您。",
      "room.accept": "接受",
      "room.decline": "谢绝",

      "error.title": "无法进入该房间",
      "error.missing_token": "链接中缺少访问令牌。请打开主办方发送给您的邀请链接。",
      "error.missing_credentials": "链接中缺少访问令牌。请打开主办方发送给您的邀请链接。",
      "error.invalid_token": "访问链接无效。请向主办方索取新的邀请链接。",
      "error.token_expired": "访问链接已过期。请向主办方索取新的邀请链接。",
      "error.wrong_room": "该访问链接属于另一个房间。",
      "error.room_not_found": "该房间不存在，可能已被删除。",
      "error.guest_room_not_found": "该房间不存在或不公开。不公开的房间只能通过主办方发送的邀请链接进入。",
      "error.token_revoked": "该链接已被主办方撤回。请向主办方索取新的邀请链接。",
      "error.room_ended": "本场活动已结束。往届直播可在日程页观看回放。",
      "error.replaced": "您已在其他窗口或设备进入该房间，本窗口已断开。",
      "error.denied": "主持人未允许您进入本次会议。",
      "error.removed": "主持人已将您移出本次会议，您无法再次加入。",
      "error.meeting_locked": "本次会议已锁定，新成员无法加入。请联系主持人解除锁定。",
      "error.meeting_ended": "本次会议已结束。",
      "room.lobbyTitle": "正在等待主持人",
      "room.lobbyText": "主持人很快会让您进入，请保持此页面打开。",
      "error.disconnected": "您已与房间断开连接。",
      "error.timeout": "服务器响应超时，请重试。",
      "error.rate_limited": "请求过于频繁，请稍后再试。",
      "error.connect_failed": "无法连接服务器，请检查网络后重试。",
      "error.unknown": "出现错误：{message}",
      "error.forbidden": "您没有权限进行此操作。",
      "error.not_joined": "您暂时不在房间中，页面正在重新连接，请稍候。",
      "error.media_denied": "摄像头或麦克风权限被拒绝。请在浏览器设置中允许后重试。",
      "error.media_missing": "未找到摄像头或麦克风。",
      "error.media_failed": "无法开始直播：{message}",
      "error.screen_failed": "无法共享屏幕：{message}",
    },
  };

  function normalise(value) {
    if (typeof value !== "string" || !value) return null;
    const lower = value.toLowerCase();
    if (lower.startsWith("zh")) return "zh";
    if (lower.startsWith("en")) return "en";
    return null;
  }

  function storedLang() {
    try {
      return normalise(window.localStorage.getItem(STORAGE_KEY));
    } catch (_) {
      return null; // storage disabled
    }
  }

  /** The language the person chose: ?lang= or the switcher's stored choice; null if none. */
  function chosenLang() {
    return normalise(new URLSearchParams(window.location.search).get("lang")) || storedLang();
  }

  function initialLang() {
    const chosen = chosenLang();
    if (chosen) return chosen;
    const preferred = (navigator.languages && navigator.languages[0]) || navigator.language;
    return normalise(preferred) || "en";
  }

  let current = initialLang();

  function t(key, params) {
    const table = DICT[current] || DICT.en;
    let text = key in table ? table[key] : key in DICT.en ? DICT.en[key] : key;
    if (params) {
      text = text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
    }
    return text;
  }

  /** The BCP 47 locale for dates and numbers: the viewer's own region when it matches. */
  function locale() {
    const preferred = navigator.language || "";
    if (normalise(preferred) === current) return preferred;
    return current === "zh" ? "zh-CN" : "en";
  }

  function apply(root) {
    const scope = root || document;
    document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
    scope.querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = t(el.getAttribute("data-i18n"));
    });
    scope.querySelectorAll("[data-i18n-aria-label]").forEach((el) => {
      el.setAttribute("aria-label", t(el.getAttribute("data-i18n-aria-label")));
    });
    scope.querySelectorAll("[data-i18n-title]").forEach((el) => {
      el.setAttribute("title", t(el.getAttribute("data-i18n-title")));
    });
    scope.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
      el.setAttribute("placeholder", t(el.getAttribute("data-i18n-placeholder")));
    });
    document.querySelectorAll(".lang-switch button[data-lang]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-lang") === current));
    });
  }

  function setLang(lang) {
    const chosen = normalise(lang);
    if (!chosen) return;
    try {
      window.localStorage.setItem(STORAGE_KEY, chosen);
    } catch (_) {
      /* storage disabled: the choice lasts for this page only */
    }
    const url = new URL(window.location.href);
    if (url.searchParams.has("lang")) {
      url.searchParams.set("lang", chosen);
      window.history.replaceState(null, "", url.toString());
    }
    if (chosen === current) return;
    current = chosen;
    apply();
    document.dispatchEvent(new CustomEvent("fairwire:lang", { detail: { lang: current } }));
  }

  /**
   * A hint of the person's language (a language tag such as "zh-CN", e.g. from their access
   * link): taken unless they chose one themselves; not stored. Returns whether it changed.
   */
  function preferIfUnchosen(lang) {
    const preferred = normalise(lang);
    if (!preferred || chosenLang() || preferred === current) return false;
    current = preferred;
    apply();
    document.dispatchEvent(new CustomEvent("fairwire:lang", { detail: { lang: current } }));
    return true;
  }

  function bindSwitcher() {
    document.querySelectorAll(".lang-switch button[data-lang]").forEach((button) => {
      button.addEventListener("click", () => setLang(button.getAttribute("data-lang")));
    });
  }

  /** Add a page's own words: {en: {key: text}, zh: {key: text}} (pages keep them beside their script). */
  function add(words) {
    for (const lang of LANGS) Object.assign(DICT[lang], (words && words[lang]) || {});
  }

  window.FairwireI18n = {
    t,
    add,
    apply,
    setLang,
    preferIfUnchosen,
    locale,
    languages: LANGS,
    get lang() {
      return current;
    },
  };

  function start() {
    bindSwitcher();
    apply();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
