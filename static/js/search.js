// The shell's global search: `/` (outside a field) or Ctrl-K / ⌘K focuses the box; the arrow keys walk the
// results and come back to the box; Escape empties it. Tab order works as well without any of this.
(function () {
  "use strict";

  function box() { return document.getElementById("global-search-input"); }
  function hits() {
    const results = document.getElementById("global-search-results");
    return results ? Array.from(results.querySelectorAll("a")) : [];
  }
  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  document.addEventListener("keydown", function (event) {
    const input = box();
    if (!input) { return; }
    const shortcut = (event.key === "k" || event.key === "K") && (event.ctrlKey || event.metaKey);
    if (shortcut || (event.key === "/" && !typing(event.target) && !event.altKey && !event.ctrlKey && !event.metaKey)) {
      event.preventDefault();
      input.focus();
      input.select();
      return;
    }
    const links = hits();
    const at = links.indexOf(document.activeElement);
    if (event.target === input && event.key === "ArrowDown" && links.length) {
      event.preventDefault();
      links[0].focus();
    } else if (at >= 0 && event.key === "ArrowDown") {
      event.preventDefault();
      links[Math.min(at + 1, links.length - 1)].focus();
    } else if (at >= 0 && event.key === "ArrowUp") {
      event.preventDefault();
      (at === 0 ? input : links[at - 1]).focus();
    } else if (event.key === "Escape" && (event.target === input || at >= 0)) {
      input.value = "";
      document.getElementById("global-search-results").replaceChildren();
      input.focus();
    }
  });
})();
