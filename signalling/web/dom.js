/* Fairwire: the one small DOM helper every page script uses. Loaded before them. */
(function () {
  "use strict";

  /** A new element: el("li", "participant", "Ana") -> <li class="participant">Ana</li>. */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  window.FairwireDom = { el };
})();
