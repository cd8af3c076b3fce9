/* Fairwire: who is speaking, on the room page (issue #10). A ring around the tile of each
 * person speaking (a stronger one for the dominant speaker, the one heard most) and
 * "Speaking" beside them in the people list; everyone sees it, hosts and moderators included.
 * Loaded after room.js.
 *
 * socket.io (docs/socketio.md, "Who is speaking"): the server event "speakers" {dominant,
 * speaking: [identity]} on every change reaches this page as the document event
 * "fairwire:speakers" (room.js); the join acknowledgement carries `speakers` too
 * ("fairwire:catch-up"). Tiles are found by their data-identity (one's own by data-self),
 * people by the data-identity of their list item; both are redrawn by room.js at any time, so
 * the marks are put back whenever the list or the stage changes.
 *
 * For tests: window.fairwireSpeakers = {dominant, speaking: [identity]}.
 */
(function () {
  "use strict";

  const fairwire = window.fairwire;
  const i18n = window.FairwireI18n;
  if (!fairwire || !i18n) return;
  const t = i18n.t;
  const $ = (id) => document.getElementById(id);

  i18n.add({
    en: {
      "speakers.speaking": "Speaking",
      "speakers.isSpeaking": "{name} is speaking",
    },
    zh: {
      "speakers.speaking": "正在发言",
      "speakers.isSpeaking": "{name} 正在发言",
    },
  });
  i18n.apply();

  const view = (window.fairwireSpeakers = { dominant: null, speaking: [] });

  function take(data) {
    const speaking = data && Array.isArray(data.speaking) ? data.speaking.filter((i) => typeof i === "string") : [];
    view.speaking = speaking;
    view.dominant = data && speaking.includes(data.dominant) ? data.dominant : null;
    mark();
  }

  function state(identity) {
    if (!identity || fairwire.state !== "joined") return null;
    if (identity === view.dominant) return "dominant";
    return view.speaking.includes(identity) ? "speaking" : null;
  }

  function nameOf(identity) {
    const person = fairwire.participants.find((p) => p.identity === identity);
    return (person && person.name) || identity;
  }

  function markTiles() {
    const self = fairwire.self ? fairwire.self.identity : null;
    for (const tile of $("tiles").querySelectorAll(".tile")) {
      const identity = tile.dataset.self === "true" ? self : tile.dataset.identity;
      const speaking = state(identity);
      tile.classList.toggle("tile-speaking", !!speaking);
      tile.classList.toggle("tile-dominant", speaking === "dominant");
      if (speaking) tile.dataset.speaking = speaking;
      else delete tile.dataset.speaking;
    }
  }

  function markPeople() {
    for (const item of $("participants").querySelectorAll("li[data-identity]")) {
      const speaking = state(item.dataset.identity);
      item.classList.toggle("participant-speaking", !!speaking);
      let indicator = item.querySelector(".speaking-indicator");
      if (!speaking) {
        if (indicator) indicator.remove();
        continue;
      }
      if (!indicator) {
        indicator = document.createElement("span");
        indicator.className = "speaking-indicator";
        const bars = document.createElement("span");
        bars.className = "speaking-bars";
        bars.setAttribute("aria-hidden", "true");
        bars.append(document.createElement("i"), document.createElement("i"), document.createElement("i"));
        indicator.append(bars, document.createElement("span"));
        const text = item.querySelector(".participant-text") || item;
        const name = text.querySelector(".participant-name");
        if (name) name.after(indicator);
        else text.appendChild(indicator);
      }
      indicator.lastChild.textContent = t("speakers.speaking");
      indicator.title = t("speakers.isSpeaking", { name: nameOf(item.dataset.identity) });
    }
  }

  function mark() {
    markTiles();
    markPeople();
  }

  // room.js rebuilds the list, adds or drops tiles and moves a program's tile to whoever is
  // on air when it likes: mark again after it.
  const observer = new MutationObserver(mark);
  observer.observe($("participants"), { childList: true });
  observer.observe($("tiles"), { childList: true });
  new MutationObserver(mark).observe($("tiles"), { subtree: true, attributeFilter: ["data-identity"] });

  document.addEventListener("fairwire:speakers", (event) => take(event.detail));
  document.addEventListener("fairwire:catch-up", (event) => {
    const ack = event.detail && event.detail.ack;
    if (ack && ack.speakers) take(ack.speakers);
  });
  document.addEventListener("fairwire:render", mark);
  document.addEventListener("fairwire:lang", mark);
  mark();
})();
