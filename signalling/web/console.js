/* Fairwire host console: /console
 *
 * Sign in with the operator's API key (every room, create rooms, host links) or a host token
 * (JWT with role "host": its own room only). The credential is kept in sessionStorage and sent
 * as "Authorization: Bearer" on every request; a 401 signs out with the server's message.
 *
 * Views (location.hash): "#/" the rooms, "#/new" create a room, "#/room/{id}" one room (who is
 * in it, its links), "#/room/{id}/edit" edit it. The rooms, and the open room's participants and
 * links, are refreshed every 5 s; lists are redrawn only when what they show changed, so that
 * forms and focus are left alone.
 *
 * REST used: GET /api/rooms, GET/PATCH /api/rooms/{id}, POST /api/rooms,
 * GET /api/rooms/{id}/participants, GET /api/rooms/{id}/links, POST /api/tokens,
 * DELETE /api/tokens/{token_id}. Errors are {"error": {code, message, field?}}.
 *
 * For tests: window.fairwireConsole = {signedIn, mode ("operator" | "host"), view, rooms,
 * room, participants, participantsTotal, links, lastLink {url, token_id, ...}, copied, error
 * {status, code, message, field} | null, notice, loadedAt}.
 */
(function () {
  "use strict";

  const el = window.FairwireDom.el; // dom.js

  const REFRESH_MS = 5000;
  const STORAGE_KEY = "fairwire.console.credential";
  const PARTICIPANTS_PAGE = 50;
  const LANGUAGE_RE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;
  const IDENTITY_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;
  const LANGUAGE_NAMES = { en: "English", zh: "中文", "zh-CN": "中文（简体）", "zh-TW": "中文（繁體）" };

  const i18n = window.FairwireI18n;
  const t = i18n.t;
  const $ = (id) => document.getElementById(id);

  i18n.add({
    en: {
      "console.title": "Fairwire · Host console",
      "console.tagline": "Host console",
      "console.toProgramme": "Open the public programme",
      "console.signIn.heading": "Sign in to the host console",
      "console.signIn.lead": "Schedule livestreams and meetings, see who is in them, and send people their links.",
      "console.signIn.label": "API key or host token",
      "console.signIn.hint": "Operators use the server's API key and manage every room. Hosts paste the host token or the host link they were given and manage their own room.",
      "console.signIn.show": "Show",
      "console.signIn.hide": "Hide",
      "console.signIn.submit": "Sign in",
      "console.signIn.checking": "Checking…",
      "console.signOut": "Sign out",
      "console.signedOut": "You are signed out: the key or token was removed from this browser tab.",
      "console.who.operator": "Operator · all rooms",
      "console.who.host": "Host · {room}",
      "console.err.notHost": "This token is for a {role}, not a host. Sign in with a host token or the API key.",
      "console.err.tokenExpired": "This host token expired on {time}. Ask the operator for a new host link.",
      "console.err.rejected": "The server did not accept this key or token: {message}",
      "console.err.sessionEnded": "You were signed out: {message}. Please sign in again.",
      "console.err.network": "Cannot reach the server. Check the connection; the console keeps trying.",
      "console.err.forbidden": "You are not allowed to do this: {message}",
      "console.err.failed": "{action} failed: {message}",
      "console.action.load": "Loading the rooms",
      "console.action.create": "Creating the room",
      "console.action.save": "Saving the room",
      "console.action.end": "Ending the room",
      "console.action.issue": "Creating the link",
      "console.action.revoke": "Revoking the link",
      "console.action.participants": "Loading who is in the room",
      "console.action.links": "Loading the links",

      "console.rooms.heading": "Rooms",
      "console.rooms.new": "New room",
      "console.rooms.updated": "Updated {time} · refreshed every 5 seconds",
      "console.rooms.loading": "Loading the rooms…",
      "console.rooms.empty": "No rooms yet. Create the first one with “New room”.",
      "console.rooms.emptyFilter": "No rooms match this filter.",
      "console.rooms.filter": "Show",
      "console.filter.all": "All rooms",
      "console.filter.current": "Live and scheduled",
      "console.filter.live": "Live",
      "console.filter.scheduled": "Scheduled",
      "console.filter.ended": "Ended",
      "console.col.name": "Room",
      "console.col.kind": "Kind",
      "console.col.category": "Category",
      "console.col.owner": "Owner",
      "console.col.schedule": "Schedule",
      "console.col.status": "Status",
      "console.col.visibility": "Visibility",
      "console.col.people": "People",
      "console.col.actions": "Actions",
      "console.open": "Manage",
      "console.none": "—",
      "console.notScheduled": "Not scheduled",
      "console.status.live": "LIVE",
      "console.status.soon": "Starting soon",
      "console.status.scheduled": "Scheduled",
      "console.status.ended": "Ended",
      "console.status.soonHint": "Open, waiting for the exhibitor to go live",
      "console.visibility.public": "Public",
      "console.visibility.private": "Private",
      "console.visibility.publicHint": "Listed on the programme: anyone can watch without a link.",
      "console.visibility.privateHint": "Not listed: only people with a link can enter.",

      "console.form.newHeading": "New room",
      "console.form.editHeading": "Edit “{name}”",
      "console.form.name": "Name",
      "console.form.namePlaceholder": "e.g. CNC line tour · Booth 42",
      "console.form.kind": "Kind",
      "console.form.kindLivestream": "The owner exhibitor broadcasts; everyone else watches and asks questions.",
      "console.form.kindMeeting": "Everyone who joins can speak and be seen: buyer negotiations, small groups.",
      "console.form.kindFixed": "The kind cannot change after the room is created.",
      "console.form.id": "Room ID (optional)",
      "console.form.idPlaceholder": "e.g. booth-42",
      "console.form.idHint": "Letters, digits, - and _. It appears in the links; one is made up when empty.",
      "console.form.category": "Category",
      "console.form.categoryPlaceholder": "e.g. Machinery",
      "console.form.owner": "Owner (exhibitor identity)",
      "console.form.ownerPlaceholder": "e.g. ningbo-pumps",
      "console.form.ownerHint": "The exhibitor who broadcasts or holds the meeting. Their studio link uses this identity.",
      "console.form.start": "Starts",
      "console.form.end": "Ends",
      "console.form.zone": "Times are in your local time zone ({zone}). Leave empty when not known yet.",
      "console.form.languages": "Languages",
      "console.form.languagesHint": "Language tags separated by commas, e.g. en, zh-CN",
      "console.form.visibility": "Visibility",
      "console.form.record": "Record for replay",
      "console.form.lobby": "Start with a lobby",
      "console.form.lobbyHint": "Newcomers wait until a host or the owner lets them in (for meetings a host runs).",
      "console.form.recordHint": "Visitors can watch the recording after the show.",
      "console.form.create": "Create room",
      "console.form.save": "Save changes",
      "console.form.saving": "Saving…",
      "console.form.cancel": "Cancel",
      "console.form.created": "Room “{name}” created. Now send people their links.",
      "console.form.saved": "Changes to “{name}” saved.",
      "console.form.nothing": "Nothing was changed.",
      "console.form.badLanguages": "Languages must be tags such as en or zh-CN, separated by commas.",
      "console.form.badSchedule": "The end must be after the start.",
      "console.form.badIdentity": "An identity has letters, digits and . _ @ - and starts with a letter or digit.",
      "console.form.badId": "A room ID has letters, digits, - and _ and starts with a letter or digit.",
      "console.form.noCreate": "Only the operator (with the API key) can create rooms.",

      "console.back": "← All rooms",
      "console.room.edit": "Edit",
      "console.room.end": "End room",
      "console.room.endTitle": "End “{name}”?",
      "console.room.endText": "Everyone in the room is disconnected, and the room cannot be opened again. Its links stop working.",
      "console.room.ended": "“{name}” has ended.",
      "console.room.notFound": "This room does not exist, or you cannot see it.",
      "console.room.loading": "Loading the room…",
      "console.room.id": "Room ID",
      "console.room.category": "Category",
      "console.room.owner": "Owner",
      "console.room.schedule": "Schedule",
      "console.room.languages": "Languages",
      "console.room.record": "Recording",
      "console.room.recordOn": "Recorded for replay",
      "console.room.recordOff": "Not recorded",
      "console.room.people": "In the room",
      "console.room.page": "Room page",
      "console.room.started": "Live since {time}",
      "console.room.endedAt": "Ended {time}",

      "console.participants.heading": "Who is in the room",
      "console.participants.count": "{count} in the room",
      "console.participants.shown": "{shown} of {count} shown",
      "console.participants.empty": "Nobody is in the room right now.",
      "console.participants.more": "Load more",
      "console.participants.since": "joined {time}",
      "console.participants.publishing": "On air",
      "console.track.audio": "Microphone",
      "console.track.video": "Camera",
      "console.track.muted": "{track} off",

      "console.links.heading": "Links",
      "console.links.lead": "Everyone gets their own link. Send it by e-mail or chat: it opens the room until it expires or you revoke it.",
      "console.links.for": "Who is the link for?",
      "console.preset.studio": "Studio link",
      "console.preset.exhibitor": "Exhibitor link",
      "console.preset.viewer": "Viewer link",
      "console.preset.buyer": "Buyer link",
      "console.preset.guest": "Guest link",
      "console.preset.host": "Host link",
      "console.preset.studioHint": "For the owner exhibitor {owner}: opens the room with the Go live button.",
      "console.preset.exhibitorHint": "For the owner exhibitor {owner}: joins the meeting with camera and microphone.",
      "console.preset.studioNoOwner": "For the exhibitor who broadcasts. This room has no owner: type the exhibitor's identity (or set an owner with Edit).",
      "console.preset.viewerHint": "For a visitor: watches the livestream.",
      "console.preset.buyerHint": "For a buyer: watches the livestream and asks questions.",
      "console.preset.guestHint": "For a guest of the meeting (a buyer): joins with camera and microphone. The meeting is private: only people with a link get in.",
      "console.preset.hostHint": "For a colleague who moderates this room and hands out its links.",
      "console.links.name": "Name shown in the room",
      "console.links.namePlaceholder": "e.g. Anna Schmidt",
      "console.links.identity": "Identity",
      "console.links.identityAuto": "Unique per person. Left empty, one is made from the name.",
      "console.links.startLive": "May start their own lives",
      "console.links.startLiveHint": "Also after the show: with this link they create livestreams of their own and land in their studio.",
      "console.links.identityOwner": "The room's owner.",
      "console.links.language": "Their language",
      "console.links.languageAny": "Their browser's language",
      "console.links.validity": "Valid for",
      "console.ttl.1d": "1 day",
      "console.ttl.3d": "3 days",
      "console.ttl.7d": "7 days",
      "console.ttl.30d": "30 days",
      "console.links.issue": "Create link",
      "console.links.issuing": "Creating…",
      "console.links.issued": "{preset} for {name}, valid until {time}. Copy it and send it to them:",
      "console.links.url": "Link",
      "console.links.copy": "Copy",
      "console.links.copied": "Copied to the clipboard.",
      "console.links.copyFallback": "The link is selected: press Ctrl+C (⌘C on a Mac) to copy it.",
      "console.links.list": "Links issued for this room",
      "console.links.empty": "No links were issued for this room yet.",
      "console.links.roomEnded": "This room has ended: new links would not open it.",
      "console.links.issuedAt": "issued {time}",
      "console.links.expiresAt": "until {time}",
      "console.links.active": "Active",
      "console.links.revoked": "Revoked",
      "console.links.expired": "Expired",
      "console.links.revoke": "Revoke",
      "console.links.revokeTitle": "Revoke the link for {name}?",
      "console.links.revokeText": "The link stops working, and {name} is disconnected within a minute. You can issue a new link afterwards.",
      "console.links.revokedDone": "The link for {name} was revoked.",
      "console.links.new": "new",
      "console.links.you": "(your sign-in)",
      "console.confirm.cancel": "Cancel",
    },
    zh: {
      "console.title": "Fairwire · 主持人控制台",
      "console.tagline": "主持人控制台",
      "console.toProgramme": "打开公开日程",
      "console.signIn.heading": "登录主持人控制台",
      "console.signIn.lead": "安排直播和洽谈，查看在场人员，并向参与者发送专属链接。",
      "console.signIn.label": "API 密钥或主持人令牌",
      "console.signIn.hint": "运营人员使用服务器的 API 密钥，可管理所有房间。主持人粘贴收到的主持人令牌或主持人链接，管理自己的房间。",
      "console.signIn.show": "显示",
      "console.signIn.hide": "隐藏",
      "console.signIn.submit": "登录",
      "console.signIn.checking": "正在验证…",
      "console.signOut": "退出登录",
      "console.signedOut": "您已退出登录：密钥或令牌已从本浏览器标签页中清除。",
      "console.who.operator": "运营人员 · 全部房间",
      "console.who.host": "主持人 · {room}",
      "console.err.notHost": "该令牌属于{role}，不是主持人令牌。请使用主持人令牌或 API 密钥登录。",
      "console.err.tokenExpired": "该主持人令牌已于 {time} 过期。请向运营人员索取新的主持人链接。",
      "console.err.rejected": "服务器未接受该密钥或令牌：{message}",
      "console.err.sessionEnded": "您已被退出登录：{message}。请重新登录。",
      "console.err.network": "无法连接服务器。请检查网络，控制台会自动重试。",
      "console.err.forbidden": "您无权进行此操作：{message}",
      "console.err.failed": "{action}失败：{message}",
      "console.action.load": "加载房间列表",
      "console.action.create": "创建房间",
      "console.action.save": "保存房间",
      "console.action.end": "结束房间",
      "console.action.issue": "生成链接",
      "console.action.revoke": "撤销链接",
      "console.action.participants": "加载在场人员",
      "console.action.links": "加载链接",

      "console.rooms.heading": "房间",
      "console.rooms.new": "新建房间",
      "console.rooms.updated": "更新于 {time} · 每 5 秒刷新",
      "console.rooms.loading": "正在加载房间…",
      "console.rooms.empty": "还没有房间。点击“新建房间”创建第一个。",
      "console.rooms.emptyFilter": "没有符合筛选条件的房间。",
      "console.rooms.filter": "显示",
      "console.filter.all": "全部房间",
      "console.filter.current": "直播中和已预告",
      "console.filter.live": "直播中",
      "console.filter.scheduled": "已预告",
      "console.filter.ended": "已结束",
      "console.col.name": "房间",
      "console.col.kind": "类型",
      "console.col.category": "行业类别",
      "console.col.owner": "负责展商",
      "console.col.schedule": "时间",
      "console.col.status": "状态",
      "console.col.visibility": "公开范围",
      "console.col.people": "人数",
      "console.col.actions": "操作",
      "console.open": "管理",
      "console.none": "—",
      "console.notScheduled": "时间待定",
      "console.status.live": "直播中",
      "console.status.soon": "即将开始",
      "console.status.scheduled": "预告",
      "console.status.ended": "已结束",
      "console.status.soonHint": "房间已开放，等待展商开播",
      "console.visibility.public": "公开",
      "console.visibility.private": "私密",
      "console.visibility.publicHint": "显示在日程中：任何人无需链接即可观看。",
      "console.visibility.privateHint": "不在日程中显示：只有持链接的人才能进入。",

      "console.form.newHeading": "新建房间",
      "console.form.editHeading": "编辑“{name}”",
      "console.form.name": "名称",
      "console.form.namePlaceholder": "例如：数控生产线参观 · 42 号展台",
      "console.form.kind": "类型",
      "console.form.kindLivestream": "负责展商直播，其他人观看并提问。",
      "console.form.kindMeeting": "所有参与者都可以发言和露面：采购洽谈、小组会议。",
      "console.form.kindFixed": "房间创建后不能更改类型。",
      "console.form.id": "房间 ID（可选）",
      "console.form.idPlaceholder": "例如：booth-42",
      "console.form.idHint": "字母、数字、- 和 _，会出现在链接中；留空则自动生成。",
      "console.form.category": "行业类别",
      "console.form.categoryPlaceholder": "例如：机械",
      "console.form.owner": "负责展商（展商标识）",
      "console.form.ownerPlaceholder": "例如：ningbo-pumps",
      "console.form.ownerHint": "负责直播或主持洽谈的展商。其直播间链接使用此标识。",
      "console.form.start": "开始时间",
      "console.form.end": "结束时间",
      "console.form.zone": "时间为您所在的时区（{zone}）。时间未定可留空。",
      "console.form.languages": "语言",
      "console.form.languagesHint": "用逗号分隔的语言代码，例如 en, zh-CN",
      "console.form.visibility": "公开范围",
      "console.form.record": "录制回放",
      "console.form.lobby": "启用等候室",
      "console.form.lobbyHint": "新来者需等待主持人或会议发起人允许后才能进入（适用于主持人主持的会议）。",
      "console.form.recordHint": "展会结束后观众可观看录像。",
      "console.form.create": "创建房间",
      "console.form.save": "保存修改",
      "console.form.saving": "正在保存…",
      "console.form.cancel": "取消",
      "console.form.created": "房间“{name}”已创建。现在可以向参与者发送链接。",
      "console.form.saved": "“{name}”的修改已保存。",
      "console.form.nothing": "没有任何修改。",
      "console.form.badLanguages": "语言须为 en、zh-CN 这样的代码，用逗号分隔。",
      "console.form.badSchedule": "结束时间必须晚于开始时间。",
      "console.form.badIdentity": "标识只能包含字母、数字和 . _ @ -，并以字母或数字开头。",
      "console.form.badId": "房间 ID 只能包含字母、数字、- 和 _，并以字母或数字开头。",
      "console.form.noCreate": "只有持 API 密钥的运营人员可以创建房间。",

      "console.back": "← 全部房间",
      "console.room.edit": "编辑",
      "console.room.end": "结束房间",
      "console.room.endTitle": "结束“{name}”？",
      "console.room.endText": "房间内所有人将被断开，房间无法再次开启，其链接全部失效。",
      "console.room.ended": "“{name}”已结束。",
      "console.room.notFound": "该房间不存在，或您无权查看。",
      "console.room.loading": "正在加载房间…",
      "console.room.id": "房间 ID",
      "console.room.category": "行业类别",
      "console.room.owner": "负责展商",
      "console.room.schedule": "时间",
      "console.room.languages": "语言",
      "console.room.record": "录制",
      "console.room.recordOn": "录制回放",
      "console.room.recordOff": "不录制",
      "console.room.people": "在场人数",
      "console.room.page": "房间页面",
      "console.room.started": "{time} 开播",
      "console.room.endedAt": "结束于 {time}",

      "console.participants.heading": "在场人员",
      "console.participants.count": "{count} 人在场",
      "console.participants.shown": "已显示 {shown} 人，共 {count} 人",
      "console.participants.empty": "目前房间里没有人。",
      "console.participants.more": "加载更多",
      "console.participants.since": "{time} 进入",
      "console.participants.publishing": "直播中",
      "console.track.audio": "麦克风",
      "console.track.video": "摄像头",
      "console.track.muted": "{track}已关闭",

      "console.links.heading": "链接",
      "console.links.lead": "每人一个专属链接。通过邮件或聊天发送：在过期或被撤销之前都能打开房间。",
      "console.links.for": "链接发给谁？",
      "console.preset.studio": "直播间链接",
      "console.preset.exhibitor": "展商链接",
      "console.preset.viewer": "观众链接",
      "console.preset.buyer": "采购商链接",
      "console.preset.guest": "嘉宾链接",
      "console.preset.host": "主持人链接",
      "console.preset.studioHint": "发给负责展商 {owner}：打开房间后可点击“开始直播”。",
      "console.preset.exhibitorHint": "发给负责展商 {owner}：带摄像头和麦克风加入洽谈。",
      "console.preset.studioNoOwner": "发给负责直播的展商。该房间未设置负责展商：请填写展商标识（或通过“编辑”设置）。",
      "console.preset.viewerHint": "发给观众：观看直播。",
      "console.preset.buyerHint": "发给采购商：观看直播并提问。",
      "console.preset.guestHint": "发给洽谈嘉宾（采购商）：带摄像头和麦克风加入。洽谈为私密房间，只有持链接的人才能进入。",
      "console.preset.hostHint": "发给协助主持本房间、分发链接的同事。",
      "console.links.name": "在房间中显示的名字",
      "console.links.namePlaceholder": "例如：张伟",
      "console.links.identity": "标识",
      "console.links.identityAuto": "每人唯一。留空则根据名字生成。",
      "console.links.startLive": "可自行开播",
      "console.links.startLiveHint": "展会结束后也可以：凭此链接自行创建直播，并直接进入自己的直播间。",
      "console.links.identityOwner": "房间的负责展商。",
      "console.links.language": "对方语言",
      "console.links.languageAny": "跟随对方浏览器",
      "console.links.validity": "有效期",
      "console.ttl.1d": "1 天",
      "console.ttl.3d": "3 天",
      "console.ttl.7d": "7 天",
      "console.ttl.30d": "30 天",
      "console.links.issue": "生成链接",
      "console.links.issuing": "正在生成…",
      "console.links.issued": "{name}的{preset}，有效期至 {time}。复制后发送给对方：",
      "console.links.url": "链接",
      "console.links.copy": "复制",
      "console.links.copied": "已复制到剪贴板。",
      "console.links.copyFallback": "链接已选中：按 Ctrl+C（Mac 上按 ⌘C）复制。",
      "console.links.list": "本房间已发出的链接",
      "console.links.empty": "本房间还没有发出链接。",
      "console.links.roomEnded": "该房间已结束：新链接无法打开它。",
      "console.links.issuedAt": "{time} 发出",
      "console.links.expiresAt": "有效期至 {time}",
      "console.links.active": "有效",
      "console.links.revoked": "已撤销",
      "console.links.expired": "已过期",
      "console.links.revoke": "撤销",
      "console.links.revokeTitle": "撤销发给{name}的链接？",
      "console.links.revokeText": "该链接将失效，{name}会在一分钟内被断开。之后可以重新发出链接。",
      "console.links.revokedDone": "发给{name}的链接已撤销。",
      "console.links.new": "新",
      "console.links.you": "（您的登录凭证）",
      "console.confirm.cancel": "取消",
    },
  });
  // i18n.js has already filled the page's data-i18n texts: fill ours too.
  i18n.apply();

  // -- state ------------------------------------------------------------------------------

  const state = (window.fairwireConsole = {
    signedIn: false,
    mode: null, // "operator" | "host"
    hostRoom: null, // host mode: the token's room
    who: null, // host mode: the token's payload
    view: "signin",
    roomId: null,
    rooms: null,
    room: null,
    participants: [],
    participantsTotal: null,
    participantsNext: null,
    links: null,
    lastLink: null,
    copied: null,
    error: null,
    notice: null,
    loadedAt: null,
  });

  let credential = null;
  let generation = 0; // bumped on sign-in/out: answers for an older session are dropped
  let timer = null;
  let ticking = false;
  let preset = null; // the chosen link preset
  let formRoomId = null; // the room the form was filled for (null: new)
  let visibilityTouched = false;
  let recordTouched = false;
  const drawn = { rooms: "", participants: "", links: "", room: "" };

  // -- helpers ----------------------------------------------------------------------------

  function enc(value) {
    return encodeURIComponent(value);
  }

  function formatDateTime(seconds, withWeekday) {
    if (typeof seconds !== "number") return "";
    const options = { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
    if (withWeekday) options.weekday = "short";
    return new Intl.DateTimeFormat(i18n.locale(), options).format(new Date(seconds * 1000));
  }

  function formatTime(seconds) {
    return new Intl.DateTimeFormat(i18n.locale(), { hour: "numeric", minute: "2-digit" }).format(
      new Date(seconds * 1000),
    );
  }

  function sameDay(a, b) {
    const x = new Date(a * 1000);
    const y = new Date(b * 1000);
    return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() && x.getDate() === y.getDate();
  }

  function schedule(room) {
    const start = room.scheduled_start;
    const end = room.scheduled_end;
    if (typeof start !== "number" && typeof end !== "number") return t("console.notScheduled");
    if (typeof start !== "number") return "– " + formatDateTime(end, true);
    if (typeof end !== "number") return formatDateTime(start, true);
    const tail = sameDay(start, end) ? formatTime(end) : formatDateTime(end, true);
    return formatDateTime(start, true) + " – " + tail;
  }

  /** seconds -> "YYYY-MM-DDTHH:MM" in local time (a datetime-local value). */
  function toLocalInput(seconds) {
    if (typeof seconds !== "number") return "";
    const d = new Date(seconds * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return (
      d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes())
    );
  }

  function fromLocalInput(value) {
    if (!value) return null;
    const ms = new Date(value).getTime();
    return Number.isFinite(ms) ? Math.round(ms / 1000) : null;
  }

  /** live && on_air -> "live"; live && !on_air -> "soon"; otherwise the status. */
  function displayStatus(room) {
    if (room.status === "live") return room.on_air ? "live" : "soon";
    return room.status === "ended" ? "ended" : "scheduled";
  }

  function statusBadge(room) {
    const status = displayStatus(room);
    const badge = el("span", "badge badge-" + status, t("console.status." + status));
    badge.dataset.status = status;
    if (status === "soon") badge.title = t("console.status.soonHint");
    return badge;
  }

  function kindChip(kind) {
    return el("span", "chip chip-" + kind, t("kind." + kind));
  }

  function visibilityChip(visibility) {
    const value = visibility === "private" ? "private" : "public";
    const chip = el("span", "chip chip-visibility chip-" + value, t("console.visibility." + value));
    chip.dataset.visibility = value;
    return chip;
  }

  function roleLabel(role) {
    return t("role." + role);
  }

  function initials(name) {
    const words = String(name || "?").trim().split(/\s+/).filter(Boolean);
    if (!words.length) return "?";
    if (words.length === 1) return Array.from(words[0]).slice(0, 2).join("").toUpperCase();
    return (Array.from(words[0])[0] + Array.from(words[words.length - 1])[0]).toUpperCase();
  }

  function languageName(tag) {
    return LANGUAGE_NAMES[tag] || tag;
  }

  function decodeJwt(token) {
    const parts = token.split(".");
    if (parts.length !== 3) return null;
    try {
      let b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
      while (b64.length % 4) b64 += "=";
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const payload = JSON.parse(new TextDecoder().decode(bytes));
      return payload && typeof payload === "object" ? payload : null;
    } catch (_) {
      return null;
    }
  }

  /** What was pasted: a key, a token, "Bearer ..." or a whole link with ?token=. */
  function readCredential(raw) {
    let value = String(raw || "").trim().replace(/^Bearer\s+/i, "");
    if (/^https?:\/\//i.test(value)) {
      try {
        const fromLink = new URL(value).searchParams.get("token");
        if (fromLink) value = fromLink;
      } catch (_) {
        /* not a URL after all */
      }
    }
    return { value, payload: decodeJwt(value) };
  }

  function randomSuffix() {
    const bytes = new Uint8Array(3);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** An identity for a new person: from the name where it has Latin letters, else the role. */
  function makeIdentity(name, role) {
    const slug = String(name || "")
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 40)
      .replace(/-+$/, "");
    return (slug || role) + "-" + randomSuffix();
  }

  // -- notices and errors -----------------------------------------------------------------

  let noticeTimer = null;

  /** The page-wide notice; confirmations fade after a while, errors stay until replaced. */
  function showNotice(text, kind) {
    window.clearTimeout(noticeTimer);
    state.notice = text ? { text, kind: kind || "info" } : null;
    if (text && kind !== "error") noticeTimer = window.setTimeout(() => showNotice(""), 10000);
    const node = $("notice");
    node.textContent = text || "";
    node.className = "notice" + (text ? " notice-" + (kind || "info") : "");
  }

  class ApiError extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field || null;
    }
  }

  /** A problem the page found itself (its message is already a whole sentence). */
  function localError(code, message) {
    const err = new ApiError(400, code, message);
    err.local = true;
    return err;
  }

  function recordError(err) {
    state.error = { status: err.status || 0, code: err.code || "error", message: err.message, field: err.field || null };
  }

  /** The words for a failed action: the server's message, in a sentence. */
  function describe(err, actionKey) {
    if (err.status === 0) return t("console.err.network");
    if (err.status === 403) return t("console.err.forbidden", { message: err.message });
    return t("console.err.failed", { action: t(actionKey), message: err.message });
  }

  function setBlockError(id, text) {
    const node = $(id);
    node.textContent = text || "";
  }

  async function api(method, path, body, options) {
    const opts = options || {};
    const key = opts.credential !== undefined ? opts.credential : credential;
    const mine = generation;
    const headers = { Accept: "application/json" };
    if (key) headers.Authorization = "Bearer " + key;
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (_) {
      throw new ApiError(0, "network", t("console.err.network"));
    }
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch (_) {
        data = null;
      }
    }
    if (!response.ok) {
      const info = (data && data.error) || {};
      const err = new ApiError(
        response.status,
        info.code || "http_" + response.status,
        info.message || response.statusText || "HTTP " + response.status,
        info.field,
      );
      recordError(err);
      if (response.status === 401 && !opts.signingIn && mine === generation && credential) {
        signOut(t("console.err.sessionEnded", { message: err.message }));
      }
      throw err;
    }
    if (mine !== generation && !opts.signingIn) throw new ApiError(0, "stale", "signed out");
    return data;
  }

  // -- sign in / out ----------------------------------------------------------------------

  function modeFor(payload) {
    return payload ? "host" : "operator";
  }

  /** Checks a credential with the server; resolves to the session fields or throws. */
  async function check(raw) {
    const { value, payload } = readCredential(raw);
    if (!value) throw localError("missing_credentials", t("console.signIn.label"));
    if (payload) {
      if (payload.role !== "host") {
        throw localError("not_host", t("console.err.notHost", { role: roleLabel(payload.role || "visitor") }));
      }
      if (typeof payload.exp === "number" && payload.exp * 1000 < Date.now()) {
        throw localError("token_expired", t("console.err.tokenExpired", { time: formatDateTime(payload.exp) }));
      }
      const room = await api("GET", "/api/rooms/" + enc(payload.room), undefined, { credential: value, signingIn: true });
      return { value, payload, mode: "host", rooms: [room] };
    }
    const data = await api("GET", "/api/rooms", undefined, { credential: value, signingIn: true });
    return { value, payload: null, mode: "operator", rooms: data.rooms || [] };
  }

  function begin(session) {
    generation += 1;
    credential = session.value;
    state.signedIn = true;
    state.mode = session.mode;
    state.who = session.payload;
    state.hostRoom = session.payload ? session.payload.room : null;
    state.rooms = null;
    state.error = null;
    try {
      window.sessionStorage.setItem(STORAGE_KEY, session.value);
    } catch (_) {
      /* storage disabled: signed in for this page only */
    }
    $("credential").value = "";
    renderWho();
    if (timer === null) timer = window.setInterval(tick, REFRESH_MS);
    route();
    tick();
  }

  function signOut(message, kind) {
    generation += 1;
    credential = null;
    Object.assign(state, {
      signedIn: false, mode: null, who: null, hostRoom: null, rooms: null, room: null, roomMissing: null,
      participants: [], participantsTotal: null, participantsNext: null, links: null, lastLink: null,
      loadedAt: null,
    });
    for (const key of Object.keys(drawn)) drawn[key] = "";
    try {
      window.sessionStorage.removeItem(STORAGE_KEY);
    } catch (_) {
      /* nothing kept */
    }
    if (timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
    renderWho();
    showNotice("");
    $("signin-message").textContent = message || "";
    $("signin-message").className = "notice " + (kind === "info" ? "notice-info" : "notice-error");
    // The hash is kept: after signing in again the person lands where they were.
    route();
  }

  async function onSignIn(event) {
    event.preventDefault();
    const button = $("signin-submit");
    button.disabled = true;
    button.textContent = t("console.signIn.checking");
    $("signin-message").textContent = "";
    try {
      begin(await check($("credential").value));
    } catch (err) {
      recordError(err);
      const text = err.local ? err.message : err.status === 0 ? t("console.err.network") : t("console.err.rejected", { message: err.message });
      $("signin-message").textContent = text;
      $("signin-message").className = "notice notice-error";
      $("credential").focus();
    } finally {
      button.disabled = false;
      button.textContent = t("console.signIn.submit");
    }
  }

  function renderWho() {
    const who = $("who");
    who.hidden = !state.signedIn;
    $("sign-out").hidden = !state.signedIn;
    if (!state.signedIn) return;
    if (state.mode === "operator") {
      who.textContent = t("console.who.operator");
    } else {
      const room = (state.rooms || []).find((r) => r.id === state.hostRoom);
      const name = (state.who && state.who.name) || (state.who && state.who.sub) || "";
      who.textContent = t("console.who.host", { room: room ? room.name : state.hostRoom }) + (name ? " · " + name : "");
    }
  }

  // -- routing ----------------------------------------------------------------------------

  function parseHash() {
    const hash = decodeURI(window.location.hash.replace(/^#\/?/, ""));
    const parts = hash.split("/").filter(Boolean);
    if (parts[0] === "new") return { view: "form", roomId: null };
    if (parts[0] === "room" && parts[1]) {
      return { view: parts[2] === "edit" ? "form" : "room", roomId: decodeURIComponent(parts[1]) };
    }
    return { view: "list", roomId: null };
  }

  function go(hash) {
    if (window.location.hash === hash) route();
    else window.location.hash = hash;
  }

  function roomHash(id, edit) {
    return "#/room/" + enc(id) + (edit ? "/edit" : "");
  }

  function route() {
    let { view, roomId } = state.signedIn ? parseHash() : { view: "signin", roomId: null };
    if (state.signedIn && state.mode === "host") {
      // A host has one room: the list is that room, and there is nothing to create.
      if (view === "list" || (view === "form" && roomId === null) || (roomId && roomId !== state.hostRoom)) {
        view = "room";
        roomId = state.hostRoom;
      }
    }
    const changedRoom = roomId !== state.roomId;
    const previous = state.view;
    state.view = view;
    state.roomId = roomId;
    $("view-signin").hidden = view !== "signin";
    $("view-list").hidden = view !== "list";
    $("view-form").hidden = view !== "form";
    $("view-room").hidden = view !== "room";
    // A host's console is their room: there is no list to go back to.
    $("room-back").hidden = state.mode === "host";
    $("main").classList.toggle("console-narrow", view === "signin");

    if (view === "signin") {
      window.setTimeout(() => $("credential").focus(), 0);
      return;
    }
    if (changedRoom) {
      state.room = (state.rooms || []).find((r) => r.id === roomId) || null;
      state.participants = [];
      state.participantsTotal = null;
      state.participantsNext = null;
      state.links = null;
      drawn.participants = drawn.links = drawn.room = "";
      if (!state.lastLink || state.lastLink.room !== roomId) {
        $("link-result").hidden = true;
      }
      preset = null;
      resetLinkForm();
    }
    if (view === "list") renderRooms(true);
    if (view === "form") fillForm(roomId);
    if (view === "room") {
      renderRoom(true);
      if (changedRoom || previous !== "room") {
        setBlockError("link-error", "");
        setBlockError("room-error", "");
        refreshRoom();
      }
    }
    if (previous !== view) window.scrollTo(0, 0);
  }

  // -- refresh ----------------------------------------------------------------------------

  async function loadRooms() {
    const mine = generation;
    let rooms;
    if (state.mode === "host") {
      rooms = [await api("GET", "/api/rooms/" + enc(state.hostRoom))];
    } else {
      const data = await api("GET", "/api/rooms");
      rooms = Array.isArray(data.rooms) ? data.rooms : [];
      // The list may not carry participant counts: ask each open room.
      const missing = rooms.filter((r) => r.participant_count === undefined && r.status !== "ended");
      await Promise.all(
        missing.map(async (room) => {
          try {
            const detail = await api("GET", "/api/rooms/" + enc(room.id));
            room.participant_count = detail.participant_count;
            if (detail.on_air !== undefined) room.on_air = detail.on_air;
          } catch (err) {
            if (err.status === 401) throw err;
          }
        }),
      );
    }
    if (mine !== generation) return;
    state.rooms = rooms;
    state.loadedAt = new Date();
    if (state.roomId) {
      const room = rooms.find((r) => r.id === state.roomId);
      if (room) state.room = room;
    }
  }

  async function loadParticipants(append) {
    const id = state.roomId;
    if (!id) return;
    const query = new URLSearchParams({ limit: String(PARTICIPANTS_PAGE) });
    if (append && state.participantsNext) query.set("cursor", state.participantsNext);
    const data = await api("GET", "/api/rooms/" + enc(id) + "/participants?" + query.toString());
    if (id !== state.roomId) return;
    const page = Array.isArray(data.participants) ? data.participants : [];
    state.participants = append ? state.participants.concat(page) : page;
    state.participantsNext = data.next || null;
    state.participantsTotal = typeof data.total === "number" ? data.total : state.participants.length;
    setBlockError("participants-error", "");
  }

  async function loadLinks() {
    const id = state.roomId;
    if (!id) return;
    const data = await api("GET", "/api/rooms/" + enc(id) + "/links");
    if (id !== state.roomId) return;
    state.links = Array.isArray(data.links) ? data.links : [];
    setBlockError("links-error", "");
  }

  async function refreshRoom() {
    const id = state.roomId;
    if (!id) return;
    const jobs = [
      api("GET", "/api/rooms/" + enc(id)).then(
        (room) => {
          if (id !== state.roomId) return;
          state.room = room;
          if (state.rooms) {
            const index = state.rooms.findIndex((r) => r.id === id);
            if (index >= 0) state.rooms[index] = room;
          }
        },
        (err) => {
          if (err.status === 404 && id === state.roomId) {
            state.room = null;
            state.roomMissing = id;
          }
        },
      ),
      loadParticipants(false).catch((err) => {
        if (err.status !== 401 && id === state.roomId) setBlockError("participants-error", describe(err, "console.action.participants"));
      }),
      loadLinks().catch((err) => {
        if (err.status !== 401 && id === state.roomId) setBlockError("links-error", describe(err, "console.action.links"));
      }),
    ];
    await Promise.all(jobs);
    if (id === state.roomId && state.view === "room") renderRoom(false);
  }

  async function tick() {
    if (!state.signedIn || ticking) return;
    ticking = true;
    const mine = generation;
    try {
      try {
        await loadRooms();
        if (state.notice && state.notice.kind === "error" && state.notice.network) showNotice("");
      } catch (err) {
        if (mine === generation && err.status !== 401 && err.code !== "stale") {
          showNotice(describe(err, "console.action.load"), "error");
          state.notice.network = true;
        }
      }
      if (mine !== generation) return;
      renderWho();
      if (state.view === "list") renderRooms(false);
      if (state.view === "room") await refreshRoom();
    } finally {
      ticking = false;
    }
  }

  // -- rooms list -------------------------------------------------------------------------

  const STATUS_ORDER = { live: 0, soon: 1, scheduled: 2, ended: 3 };

  function sortedRooms(rooms) {
    return rooms.slice().sort((a, b) => {
      const sa = STATUS_ORDER[displayStatus(a)];
      const sb = STATUS_ORDER[displayStatus(b)];
      if (sa !== sb) return sa - sb;
      if (a.status === "ended") return (b.ended_at || 0) - (a.ended_at || 0);
      const ta = a.scheduled_start ?? Number.MAX_SAFE_INTEGER;
      const tb = b.scheduled_start ?? Number.MAX_SAFE_INTEGER;
      return ta - tb || String(a.name).localeCompare(String(b.name));
    });
  }

  function matchesFilter(room, filter) {
    const status = displayStatus(room);
    if (filter === "current") return status !== "ended";
    if (filter === "live") return status === "live" || status === "soon";
    if (filter === "scheduled") return status === "scheduled";
    if (filter === "ended") return status === "ended";
    return true;
  }

  function cell(row, label, content, className) {
    const td = el("td", className);
    td.dataset.label = label;
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content;
    row.appendChild(td);
    return td;
  }

  function renderRooms(force) {
    const filter = $("filter").value;
    const key = JSON.stringify([i18n.lang, filter, state.rooms, state.loadedAt && state.loadedAt.getMinutes()]);
    $("new-room").hidden = state.mode !== "operator";
    $("updated").textContent = state.loadedAt
      ? t("console.rooms.updated", { time: state.loadedAt.toLocaleTimeString(i18n.locale()) })
      : t("console.rooms.loading");
    if (!force && key === drawn.rooms) return;
    drawn.rooms = key;

    const body = $("rooms-body");
    body.replaceChildren();
    const rooms = state.rooms;
    $("rooms-table").hidden = !rooms || rooms.length === 0;
    if (!rooms) {
      $("rooms-empty").hidden = true;
      return;
    }
    const shown = sortedRooms(rooms).filter((r) => matchesFilter(r, filter));
    $("rooms-empty").hidden = shown.length > 0;
    $("rooms-empty-text").textContent = rooms.length === 0 ? t("console.rooms.empty") : t("console.rooms.emptyFilter");
    $("rooms-table").hidden = shown.length === 0;

    for (const room of shown) {
      const row = el("tr", "room-row status-" + displayStatus(room));
      row.dataset.roomId = room.id;
      const nameCell = el("div", "room-cell-name");
      const link = el("a", "room-link", room.name);
      link.href = roomHash(room.id);
      nameCell.appendChild(link);
      nameCell.appendChild(el("span", "room-id", room.id));
      cell(row, t("console.col.name"), nameCell, "col-name");
      cell(row, t("console.col.kind"), kindChip(room.kind));
      cell(row, t("console.col.category"), room.category || t("console.none"), room.category ? "" : "muted");
      cell(row, t("console.col.owner"), room.owner || t("console.none"), room.owner ? "mono nowrap" : "muted");
      cell(row, t("console.col.schedule"), schedule(room), "col-schedule");
      cell(row, t("console.col.status"), statusBadge(room), "col-status");
      cell(row, t("console.col.visibility"), visibilityChip(room.visibility));
      const count = typeof room.participant_count === "number" ? String(room.participant_count) : t("console.none");
      cell(row, t("console.col.people"), count, "num col-people");
      const open = el("a", "button button-secondary button-small", t("console.open"));
      open.href = roomHash(room.id);
      cell(row, t("console.col.actions"), open, "col-actions");
      body.appendChild(row);
    }

    const categories = [...new Set(rooms.map((r) => r.category).filter(Boolean))].sort();
    $("category-list").replaceChildren(...categories.map((c) => {
      const option = document.createElement("option");
      option.value = c;
      return option;
    }));
  }

  // -- create / edit form -----------------------------------------------------------------

  function kindHint() {
    lobbyField();
    const kind = $("f-kind").value;
    let text = kind === "meeting" ? t("console.form.kindMeeting") : t("console.form.kindLivestream");
    if (formRoomId) text += (i18n.lang === "zh" ? "" : " ") + t("console.form.kindFixed");
    $("f-kind-hint").textContent = text;
  }

  function setVisibility(value) {
    $("f-public").checked = value === "public";
    $("f-private").checked = value === "private";
  }

  function fillForm(roomId) {
    const form = $("room-form");
    setBlockError("form-error", "");
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    formRoomId = roomId;
    const room = roomId ? (state.rooms || []).find((r) => r.id === roomId) || (state.room && state.room.id === roomId ? state.room : null) : null;
    if (roomId && !room) {
      // Not loaded yet: the next refresh fills it.
      $("form-heading").textContent = t("console.room.loading");
      form.hidden = true;
      const mine = generation;
      api("GET", "/api/rooms/" + enc(roomId)).then(
        (loaded) => {
          if (mine !== generation || state.view !== "form" || state.roomId !== roomId) return;
          state.room = loaded;
          if (!state.rooms) state.rooms = [loaded];
          else if (!state.rooms.some((r) => r.id === roomId)) state.rooms.push(loaded);
          fillForm(roomId);
        },
        (err) => {
          if (err.status === 401) return;
          $("form-heading").textContent = err.status === 404 ? t("console.room.notFound") : describe(err, "console.action.load");
        },
      );
      return;
    }
    if (!roomId && state.mode !== "operator") {
      $("form-heading").textContent = t("console.form.noCreate");
      form.hidden = true;
      return;
    }
    form.hidden = false;
    visibilityTouched = !!room;
    recordTouched = !!room;
    $("form-heading").textContent = room ? t("console.form.editHeading", { name: room.name }) : t("console.form.newHeading");
    $("form-submit").textContent = room ? t("console.form.save") : t("console.form.create");
    $("form-cancel").href = room ? roomHash(room.id) : "#/";
    $("form-back").href = room ? roomHash(room.id) : "#/";
    $("form-back").textContent = room ? "← " + room.name : t("console.back");
    $("f-name").value = room ? room.name : "";
    $("f-kind").value = room ? room.kind : "livestream";
    $("f-kind").disabled = !!room;
    $("f-id-field").hidden = !!room;
    $("f-id").value = "";
    $("f-category").value = room ? room.category || "" : "";
    $("f-owner").value = room ? room.owner || "" : "";
    $("f-start").value = room ? toLocalInput(room.scheduled_start) : "";
    $("f-end").value = room ? toLocalInput(room.scheduled_end) : "";
    $("f-languages").value = room ? (room.languages || []).join(", ") : "";
    setVisibility(room ? room.visibility || "public" : "public");
    $("f-record").checked = room ? !!room.record : true;
    $("f-lobby").checked = room ? !!room.lobby : false;
    kindHint();
    zoneHint();
    window.setTimeout(() => $("f-name").focus(), 0);
  }

  function zoneHint() {
    let zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (_) {
      zone = "";
    }
    $("f-zone").textContent = t("console.form.zone", { zone: zone || "UTC" + -new Date().getTimezoneOffset() / 60 });
  }

  function onKindChange() {
    const kind = $("f-kind").value;
    if (!visibilityTouched) setVisibility(kind === "meeting" ? "private" : "public");
    if (!recordTouched) $("f-record").checked = kind === "livestream";
    kindHint();
  }

  /** The lobby is a meeting's: shown only for meetings. */
  function lobbyField() {
    $("f-lobby-field").hidden = $("f-kind").value !== "meeting";
  }

  function invalid(input, message) {
    input.setAttribute("aria-invalid", "true");
    setBlockError("form-error", message);
    input.focus();
    return null;
  }

  /** The form's values as a room body, or null (with the problem shown). */
  function formValues() {
    const form = $("room-form");
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    if (!form.reportValidity()) return null;
    const languages = $("f-languages").value.split(/[\s,，;]+/).map((s) => s.trim()).filter(Boolean);
    if (languages.some((l) => !LANGUAGE_RE.test(l))) return invalid($("f-languages"), t("console.form.badLanguages"));
    const owner = $("f-owner").value.trim();
    if (owner && !IDENTITY_RE.test(owner)) return invalid($("f-owner"), t("console.form.badIdentity"));
    const id = $("f-id").value.trim();
    if (id && !/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(id)) return invalid($("f-id"), t("console.form.badId"));
    const start = fromLocalInput($("f-start").value);
    const end = fromLocalInput($("f-end").value);
    if (start !== null && end !== null && end <= start) return invalid($("f-end"), t("console.form.badSchedule"));
    return {
      id,
      name: $("f-name").value.trim(),
      kind: $("f-kind").value,
      category: $("f-category").value.trim(),
      owner,
      scheduled_start: start,
      scheduled_end: end,
      record: $("f-record").checked,
      lobby: $("f-lobby").checked,
      languages,
      visibility: $("f-private").checked ? "private" : "public",
    };
  }

  function fieldInput(field) {
    const map = {
      name: "f-name", kind: "f-kind", id: "f-id", category: "f-category", owner: "f-owner",
      scheduled_start: "f-start", scheduled_end: "f-end", languages: "f-languages", record: "f-record",
      lobby: "f-lobby", visibility: "f-public",
    };
    return map[field] ? $(map[field]) : null;
  }

  async function onSubmitRoom(event) {
    event.preventDefault();
    const values = formValues();
    if (!values) return;
    const editing = formRoomId ? (state.rooms || []).find((r) => r.id === formRoomId) || state.room : null;
    let body;
    if (editing) {
      body = {};
      if (values.name !== editing.name) body.name = values.name;
      if (values.category !== (editing.category || "")) body.category = values.category;
      if (values.owner !== (editing.owner || "")) body.owner = values.owner || null;
      if ($("f-start").value !== toLocalInput(editing.scheduled_start)) body.scheduled_start = values.scheduled_start;
      if ($("f-end").value !== toLocalInput(editing.scheduled_end)) body.scheduled_end = values.scheduled_end;
      if (values.record !== !!editing.record) body.record = values.record;
      if (editing.kind === "meeting" && values.lobby !== !!editing.lobby) body.lobby = values.lobby;
      if (values.languages.length && values.languages.join(",") !== (editing.languages || []).join(",")) {
        body.languages = values.languages;
      }
      if (values.visibility !== editing.visibility) body.visibility = values.visibility;
      if (!Object.keys(body).length) {
        showNotice(t("console.form.nothing"), "info");
        go(roomHash(editing.id));
        return;
      }
    } else {
      body = { name: values.name, kind: values.kind, record: values.record, visibility: values.visibility };
      if (values.kind === "meeting") body.lobby = values.lobby;
      if (values.id) body.id = values.id;
      if (values.category) body.category = values.category;
      if (values.owner) body.owner = values.owner;
      if (values.scheduled_start !== null) body.scheduled_start = values.scheduled_start;
      if (values.scheduled_end !== null) body.scheduled_end = values.scheduled_end;
      if (values.languages.length) body.languages = values.languages;
    }
    const button = $("form-submit");
    button.disabled = true;
    button.textContent = t("console.form.saving");
    setBlockError("form-error", "");
    try {
      const room = editing
        ? await api("PATCH", "/api/rooms/" + enc(editing.id), body)
        : await api("POST", "/api/rooms", body);
      upsertRoom(room);
      state.error = null;
      showNotice(t(editing ? "console.form.saved" : "console.form.created", { name: room.name }), "ok");
      drawn.room = "";
      go(roomHash(room.id));
    } catch (err) {
      if (err.status === 401) return;
      setBlockError("form-error", describe(err, editing ? "console.action.save" : "console.action.create"));
      const input = err.field && fieldInput(err.field);
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
    } finally {
      button.disabled = false;
      button.textContent = formRoomId ? t("console.form.save") : t("console.form.create");
    }
  }

  function upsertRoom(room) {
    if (!state.rooms) state.rooms = [];
    const index = state.rooms.findIndex((r) => r.id === room.id);
    if (index >= 0) {
      if (room.participant_count === undefined) room.participant_count = state.rooms[index].participant_count;
      state.rooms[index] = room;
    } else {
      state.rooms.push(room);
    }
    if (state.roomId === room.id) state.room = room;
  }

  // -- one room ---------------------------------------------------------------------------

  function fact(list, label, value, className) {
    const wrap = el("div", "fact");
    wrap.appendChild(el("dt", null, label));
    const dd = el("dd", className);
    if (value instanceof Node) dd.appendChild(value);
    else dd.textContent = value;
    wrap.appendChild(dd);
    list.appendChild(wrap);
  }

  function renderRoom(force) {
    const room = state.room && state.room.id === state.roomId ? state.room : null;
    const key = JSON.stringify([i18n.lang, room, state.roomMissing === state.roomId]);
    if (force || key !== drawn.room) {
      drawn.room = key;
      renderSummary(room);
      renderPresets(room);
    }
    renderParticipants(force);
    renderLinks(force);
  }

  function renderSummary(room) {
    const badges = $("room-badges");
    badges.replaceChildren();
    const facts = $("room-facts");
    facts.replaceChildren();
    const canEdit = !!room && room.status !== "ended";
    $("room-edit").hidden = !room;
    $("room-end").hidden = !canEdit;
    if (!room) {
      $("room-title").textContent = state.roomMissing === state.roomId ? t("console.room.notFound") : t("console.room.loading");
      $("links-panel").hidden = true;
      $("participants-panel").hidden = true;
      return;
    }
    $("links-panel").hidden = false;
    $("participants-panel").hidden = false;
    $("room-title").textContent = room.name;
    badges.appendChild(statusBadge(room));
    badges.appendChild(kindChip(room.kind));
    badges.appendChild(visibilityChip(room.visibility));
    $("room-edit").href = roomHash(room.id, true);

    fact(facts, t("console.room.id"), room.id, "mono");
    fact(facts, t("console.room.category"), room.category || t("console.none"));
    fact(facts, t("console.room.owner"), room.owner || t("console.none"), room.owner ? "mono" : "");
    let when = schedule(room);
    if (room.status === "live" && room.started_at) when += " · " + t("console.room.started", { time: formatDateTime(room.started_at) });
    if (room.status === "ended" && room.ended_at) when += " · " + t("console.room.endedAt", { time: formatDateTime(room.ended_at) });
    fact(facts, t("console.room.schedule"), when);
    fact(facts, t("console.room.languages"), (room.languages || []).map(languageName).join(", ") || t("console.none"));
    fact(facts, t("console.room.record"), room.record ? t("console.room.recordOn") : t("console.room.recordOff"));
    fact(
      facts,
      t("console.room.people"),
      typeof room.participant_count === "number" ? String(room.participant_count) : t("console.none"),
      "num-left",
    );
    if (room.visibility !== "private") {
      const page = el("a", null, "/room/" + room.id);
      page.href = "/room/" + enc(room.id);
      page.target = "_blank";
      page.rel = "noopener";
      fact(facts, t("console.room.page"), page, "mono");
    }
    renderWho();
  }

  function presetsFor(room) {
    const list = [];
    if (room.kind === "meeting") {
      list.push({ id: "studio", role: "exhibitor", label: "console.preset.exhibitor", hint: "console.preset.exhibitorHint" });
      list.push({ id: "guest", role: "buyer", label: "console.preset.guest", hint: "console.preset.guestHint" });
    } else {
      list.push({ id: "studio", role: "exhibitor", label: "console.preset.studio", hint: "console.preset.studioHint" });
      list.push({ id: "viewer", role: "visitor", label: "console.preset.viewer", hint: "console.preset.viewerHint" });
      list.push({ id: "buyer", role: "buyer", label: "console.preset.buyer", hint: "console.preset.buyerHint" });
    }
    if (state.mode === "operator") {
      list.push({ id: "host", role: "host", label: "console.preset.host", hint: "console.preset.hostHint" });
    }
    return list;
  }

  function renderPresets(room) {
    if (!room) return;
    const list = presetsFor(room);
    if (!preset || !list.some((p) => p.id === preset.id)) preset = list[0];
    else preset = list.find((p) => p.id === preset.id);
    const box = $("presets");
    box.replaceChildren();
    for (const item of list) {
      const label = el("label", "preset");
      label.dataset.preset = item.id;
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "preset";
      input.value = item.id;
      input.checked = item.id === preset.id;
      input.addEventListener("change", () => choosePreset(item.id));
      label.appendChild(input);
      label.appendChild(el("span", "preset-name", t(item.label)));
      label.appendChild(el("span", "role-badge role-" + item.role, roleLabel(item.role)));
      box.appendChild(label);
    }
    applyPreset(room, false);

    // Languages: the room's and the fair's two; keep the choice across refreshes.
    const select = $("l-language");
    const chosen = select.value;
    const tags = [...new Set((room.languages || []).concat(["en", "zh-CN"]))];
    const options = [["", t("console.links.languageAny")]].concat(tags.map((tag) => [tag, languageName(tag)]));
    select.replaceChildren(
      ...options.map(([value, text]) => {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = text;
        return option;
      }),
    );
    select.value = options.some(([v]) => v === chosen) ? chosen : "";

    const ended = room.status === "ended";
    $("link-ended").hidden = !ended;
    $("link-submit").disabled = ended;
  }

  /** The operator's "may start their own lives" box for exhibitor links (the start-live grant),
   * made once, below the form's fields. */
  function startLiveField() {
    let field = document.getElementById("l-start-live-field");
    if (field) return field;
    field = el("div", "field field-wide");
    field.id = "l-start-live-field";
    const label = el("label", "choice");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = "l-start-live";
    label.appendChild(box);
    const text = el("span");
    const strong = el("strong");
    strong.setAttribute("data-i18n", "console.links.startLive");
    const hint = el("span", "hint");
    hint.setAttribute("data-i18n", "console.links.startLiveHint");
    text.append(strong, " ", hint);
    label.appendChild(text);
    field.appendChild(label);
    $("link-form").querySelector(".form-grid").appendChild(field);
    i18n.apply(field);
    return field;
  }

  /** A fresh link form for another room: nobody's name, default validity and language. */
  function resetLinkForm() {
    startLiveField().querySelector("input").checked = false;
    $("l-name").value = "";
    $("l-identity").value = "";
    $("l-identity").removeAttribute("aria-invalid");
    $("l-language").value = "";
    $("l-ttl").value = "604800";
    setBlockError("link-error", "");
  }

  function choosePreset(id) {
    const room = state.room;
    if (!room) return;
    preset = presetsFor(room).find((p) => p.id === id) || preset;
    applyPreset(room, true);
  }

  /** The identity/name fields for the preset: the owner for studio links, free otherwise. */
  function applyPreset(room, changed) {
    const identity = $("l-identity");
    const studio = preset.id === "studio";
    const owner = room.owner || "";
    $("preset-hint").textContent =
      studio && !owner ? t("console.preset.studioNoOwner") : t(preset.hint, { owner: owner });
    if (studio && owner) {
      identity.value = owner;
      identity.readOnly = true;
      identity.required = true;
      $("l-identity-hint").textContent = t("console.links.identityOwner");
      if (changed) $("l-name").value = "";
    } else {
      if (identity.readOnly || changed) identity.value = "";
      identity.readOnly = false;
      identity.required = studio;
      $("l-identity-hint").textContent = t("console.links.identityAuto");
    }
    $("l-name").placeholder = studio && owner ? owner : t("console.links.namePlaceholder");
    const mayStartLives = state.mode === "operator" && preset.role === "exhibitor";
    startLiveField().hidden = !mayStartLives;
    if (changed || !mayStartLives) $("l-start-live").checked = false;
    for (const label of $("presets").querySelectorAll(".preset")) {
      label.classList.toggle("is-chosen", label.dataset.preset === preset.id);
    }
  }

  async function onIssueLink(event) {
    event.preventDefault();
    const room = state.room;
    if (!room || !preset) return;
    const form = $("link-form");
    if (!form.reportValidity()) return;
    const name = $("l-name").value.trim();
    let identity = $("l-identity").value.trim();
    if (identity && !IDENTITY_RE.test(identity)) {
      $("l-identity").setAttribute("aria-invalid", "true");
      setBlockError("link-error", t("console.form.badIdentity"));
      return;
    }
    $("l-identity").removeAttribute("aria-invalid");
    if (!identity) identity = makeIdentity(name, preset.role);
    const body = { room: room.id, identity, role: preset.role, ttl: Number($("l-ttl").value) };
    if (name) body.name = name;
    const language = $("l-language").value;
    if (language) body.language = language;
    if (!startLiveField().hidden && $("l-start-live").checked) {
      body.grants = ["publish", "subscribe", "start-live"];
    }

    const button = $("link-submit");
    button.disabled = true;
    button.textContent = t("console.links.issuing");
    setBlockError("link-error", "");
    const used = preset;
    try {
      const data = await api("POST", "/api/tokens", body);
      state.error = null;
      state.lastLink = {
        url: data.url,
        token_id: data.token_id,
        token: data.token,
        expires_at: data.expires_at,
        expires_in: data.expires_in,
        room: room.id,
        identity,
        role: used.role,
        preset: used.id,
        name: name || identity,
      };
      showLinkResult();
      if (!$("l-identity").readOnly) $("l-identity").value = "";
      $("l-name").value = "";
      $("l-start-live").checked = false; // each link that may start lives is a choice
      try {
        await loadLinks();
      } catch (_) {
        /* shown at the next refresh */
      }
      renderLinks(true);
    } catch (err) {
      if (err.status === 401) return;
      setBlockError("link-error", describe(err, "console.action.issue"));
    } finally {
      button.textContent = t("console.links.issue");
      button.disabled = !!(state.room && state.room.status === "ended");
    }
  }

  function showLinkResult() {
    const link = state.lastLink;
    const box = $("link-result");
    if (!link || link.room !== state.roomId) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    const presetDef = state.room ? presetsFor(state.room).find((p) => p.id === link.preset) : null;
    const expires = typeof link.expires_at === "number" ? link.expires_at : Date.now() / 1000 + (link.expires_in || 0);
    $("link-result-title").textContent = t("console.links.issued", {
      preset: presetDef ? t(presetDef.label) : roleLabel(link.role),
      name: link.name,
      time: formatDateTime(expires, true),
    });
    $("link-url").value = link.url || "";
    $("copy-status").textContent = "";
  }

  async function copyLink() {
    const input = $("link-url");
    const text = input.value;
    if (!text) return;
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
      await navigator.clipboard.writeText(text);
      state.copied = text;
      $("copy-status").textContent = t("console.links.copied");
    } catch (_) {
      input.focus();
      input.select();
      input.setSelectionRange(0, text.length);
      state.copied = null;
      $("copy-status").textContent = t("console.links.copyFallback");
    }
  }

  function renderParticipants(force) {
    const key = JSON.stringify([i18n.lang, state.participants, state.participantsTotal, state.participantsNext]);
    if (!force && key === drawn.participants) return;
    drawn.participants = key;
    const list = $("participants");
    list.replaceChildren();
    const total = state.participantsTotal;
    $("participants-count").textContent =
      total === null
        ? ""
        : state.participants.length < total
          ? t("console.participants.shown", { shown: state.participants.length, count: total })
          : t("console.participants.count", { count: total });
    $("participants-empty").hidden = total === null || state.participants.length > 0;
    $("participants-more").hidden = !state.participantsNext;
    for (const person of state.participants) {
      const item = el("li", "participant");
      item.dataset.identity = person.identity;
      const avatar = el("span", "avatar role-" + person.role, initials(person.name || person.identity));
      avatar.setAttribute("aria-hidden", "true");
      item.appendChild(avatar);
      const text = el("div", "participant-text");
      text.appendChild(el("span", "participant-name", person.name || person.identity));
      text.appendChild(el("span", "participant-identity mono", person.identity));
      const meta = [];
      if (typeof person.joined_at === "number") meta.push(t("console.participants.since", { time: formatTime(person.joined_at) }));
      if (person.language) meta.push(languageName(person.language));
      text.appendChild(el("span", "participant-since", meta.join(" · ")));
      const tracks = Array.isArray(person.tracks) ? person.tracks : [];
      if (tracks.length) {
        const row = el("span", "tracks");
        row.appendChild(el("span", "on-air", t("console.participants.publishing")));
        for (const track of tracks) {
          const name = t("console.track." + (track.kind === "audio" ? "audio" : "video"));
          const chip = el("span", "track" + (track.muted ? " track-muted" : ""), track.muted ? t("console.track.muted", { track: name }) : name);
          row.appendChild(chip);
        }
        text.appendChild(row);
      }
      item.appendChild(text);
      item.appendChild(el("span", "role-badge role-" + person.role, roleLabel(person.role)));
      list.appendChild(item);
    }
  }

  function linkState(link) {
    if (link.revoked) return "revoked";
    if (typeof link.expires_at === "number" && link.expires_at * 1000 < Date.now()) return "expired";
    return "active";
  }

  function renderLinks(force) {
    const key = JSON.stringify([i18n.lang, state.links, state.lastLink && state.lastLink.token_id]);
    if (!force && key === drawn.links) return;
    drawn.links = key;
    showLinkResult();
    const list = $("links-list");
    list.replaceChildren();
    const links = state.links;
    $("links-empty").hidden = !links || links.length > 0;
    if (!links) return;
    for (const link of links) {
      const status = linkState(link);
      const item = el("li", "link-item link-" + status);
      item.dataset.tokenId = link.token_id;
      item.dataset.state = status;
      if (state.lastLink && state.lastLink.token_id === link.token_id) item.classList.add("is-new");
      const who = el("div", "link-who");
      const title = el("div", "link-title");
      title.appendChild(el("span", "link-name", link.name || link.identity));
      title.appendChild(el("span", "role-badge role-" + link.role, roleLabel(link.role)));
      if (item.classList.contains("is-new")) title.appendChild(el("span", "badge badge-small badge-new", t("console.links.new")));
      if (state.mode === "host" && state.who && link.identity === state.who.sub && link.role === "host") {
        title.appendChild(el("span", "participant-you", t("console.links.you")));
      }
      who.appendChild(title);
      const meta = [link.identity];
      if (typeof link.issued_at === "number") meta.push(t("console.links.issuedAt", { time: formatDateTime(link.issued_at) }));
      if (typeof link.expires_at === "number") meta.push(t("console.links.expiresAt", { time: formatDateTime(link.expires_at) }));
      who.appendChild(el("div", "link-meta", meta.join(" · ")));
      item.appendChild(who);
      const side = el("div", "link-side");
      const badge = el("span", "link-state link-state-" + status, t("console.links." + status));
      side.appendChild(badge);
      if (status === "active") {
        const revoke = el("button", "button button-secondary button-small button-revoke", t("console.links.revoke"));
        revoke.type = "button";
        revoke.addEventListener("click", () => revokeLink(link));
        side.appendChild(revoke);
      }
      item.appendChild(side);
      list.appendChild(item);
    }
  }

  async function revokeLink(link) {
    const name = link.name || link.identity;
    const ok = await confirmAction(
      t("console.links.revokeTitle", { name }),
      t("console.links.revokeText", { name }),
      t("console.links.revoke"),
    );
    if (!ok) return;
    try {
      await api("DELETE", "/api/tokens/" + enc(link.token_id));
      state.error = null;
      link.revoked = true;
      renderLinks(true);
      showNotice(t("console.links.revokedDone", { name }), "ok");
      try {
        await loadLinks();
      } catch (_) {
        /* the next refresh */
      }
      renderLinks(false);
    } catch (err) {
      if (err.status === 401) return;
      setBlockError("links-error", describe(err, "console.action.revoke"));
    }
  }

  async function endRoom() {
    const room = state.room;
    if (!room) return;
    const ok = await confirmAction(
      t("console.room.endTitle", { name: room.name }),
      t("console.room.endText"),
      t("console.room.end"),
    );
    if (!ok) return;
    setBlockError("room-error", "");
    try {
      const updated = await api("PATCH", "/api/rooms/" + enc(room.id), { status: "ended" });
      state.error = null;
      upsertRoom(updated);
      showNotice(t("console.room.ended", { name: updated.name }), "ok");
      renderRoom(true);
    } catch (err) {
      if (err.status === 401) return;
      setBlockError("room-error", describe(err, "console.action.end"));
    }
  }

  // -- confirm dialog ---------------------------------------------------------------------

  let confirmResolve = null;

  function confirmAction(title, text, okLabel) {
    const dialog = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = okLabel;
    if (confirmResolve) confirmResolve(false);
    return new Promise((resolve) => {
      confirmResolve = resolve;
      dialog.returnValue = "";
      if (typeof dialog.showModal === "function") {
        dialog.showModal();
        $("confirm-cancel").focus();
      } else {
        resolve(window.confirm(title + "\n\n" + text));
        confirmResolve = null;
      }
    });
  }

  function onConfirmClose() {
    const resolve = confirmResolve;
    confirmResolve = null;
    if (resolve) resolve($("confirm").returnValue === "ok");
  }

  // -- language ---------------------------------------------------------------------------

  function applyPlaceholders() {
    document.querySelectorAll("[data-i18n-placeholder]").forEach((node) => {
      node.setAttribute("placeholder", t(node.getAttribute("data-i18n-placeholder")));
    });
  }

  function onLanguage() {
    applyPlaceholders();
    renderWho();
    const revealed = $("show-credential").getAttribute("aria-pressed") === "true";
    $("show-credential").textContent = revealed ? t("console.signIn.hide") : t("console.signIn.show");
    if (state.view === "list") renderRooms(true);
    if (state.view === "room") renderRoom(true);
    if (state.view === "form") {
      const room = formRoomId ? (state.rooms || []).find((r) => r.id === formRoomId) : null;
      $("form-heading").textContent = room ? t("console.form.editHeading", { name: room.name }) : t("console.form.newHeading");
      $("form-submit").textContent = room ? t("console.form.save") : t("console.form.create");
      if (room) $("form-back").textContent = "← " + room.name;
      kindHint();
      zoneHint();
    }
    if (state.notice) showNotice("");
  }

  // -- start ------------------------------------------------------------------------------

  function bind() {
    $("signin-form").addEventListener("submit", onSignIn);
    $("show-credential").addEventListener("click", () => {
      const input = $("credential");
      const reveal = input.type === "password";
      input.type = reveal ? "text" : "password";
      $("show-credential").setAttribute("aria-pressed", String(reveal));
      $("show-credential").textContent = reveal ? t("console.signIn.hide") : t("console.signIn.show");
    });
    $("sign-out").addEventListener("click", () => {
      window.location.hash = "#/";
      signOut(t("console.signedOut"), "info");
    });
    $("filter").addEventListener("change", () => renderRooms(true));
    $("room-form").addEventListener("submit", onSubmitRoom);
    $("f-kind").addEventListener("change", onKindChange);
    $("f-public").addEventListener("change", () => (visibilityTouched = true));
    $("f-private").addEventListener("change", () => (visibilityTouched = true));
    $("f-record").addEventListener("change", () => (recordTouched = true));
    $("link-form").addEventListener("submit", onIssueLink);
    $("copy-link").addEventListener("click", copyLink);
    $("link-url").addEventListener("focus", () => $("link-url").select());
    $("room-end").addEventListener("click", endRoom);
    $("participants-more").addEventListener("click", async () => {
      try {
        await loadParticipants(true);
      } catch (err) {
        if (err.status !== 401) setBlockError("participants-error", describe(err, "console.action.participants"));
      }
      renderParticipants(false);
    });
    $("confirm").addEventListener("close", onConfirmClose);
    window.addEventListener("hashchange", route);
    document.addEventListener("fairwire:lang", onLanguage);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") tick();
    });
  }

  async function start() {
    bind();
    applyPlaceholders();
    $("show-credential").textContent = t("console.signIn.show");
    let kept = null;
    try {
      kept = window.sessionStorage.getItem(STORAGE_KEY);
    } catch (_) {
      kept = null;
    }
    if (!kept) {
      route();
      return;
    }
    // Signed in earlier in this tab: check the key again quietly.
    try {
      begin(await check(kept));
    } catch (err) {
      signOut(err.status === 0 ? t("console.err.network") : t("console.err.sessionEnded", { message: err.message }));
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
