// The shell's global search, an ARIA combobox (the APG "list autocomplete" pattern): `/` (outside a field) or
// Ctrl-K / ⌘K focuses the box; focus stays in the box while the arrow keys move the active option
// (aria-activedescendant), Enter opens it, Escape closes the list and then empties the box. Without a chosen
// option Enter submits the form to the search page, which also works without any of this.
(function () {
  "use strict";

  function box() { return document.getElementById("global-search-input"); }
  function results() { return document.getElementById("global-search-results"); }
  function options() {
    const list = results();
    return list ? Array.from(list.querySelectorAll("[role=option]")) : [];
  }
  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }
  function activate(input, option) {
    options().forEach(function (each) { each.setAttribute("aria-selected", each === option ? "true" : "false"); });
    if (option) {
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }
  function close(input) {
    activate(input, null);
    results().replaceChildren();
    input.setAttribute("aria-expanded", "false");
  }

  // A fresh answer: the list is open when it holds options (a hint or "nothing matches" is read by aria-live),
  // and nothing in it is active yet.
  document.addEventListener("htmx:afterSwap", function (event) {
    const input = box();
    if (!input || event.detail.target !== results()) { return; }
    input.setAttribute("aria-expanded", options().length ? "true" : "false");
    activate(input, null);
  });

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
    if (event.target !== input) { return; }
    const list = options();
    const active = document.getElementById(input.getAttribute("aria-activedescendant") || "");
    const at = list.indexOf(active);
    if ((event.key === "ArrowDown" || event.key === "ArrowUp") && list.length) {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      // Past either end the box itself is active again, as in the APG example.
      const next = at < 0 ? (step > 0 ? 0 : list.length - 1) : at + step;
      activate(input, next >= 0 && next < list.length ? list[next] : null);
      input.setAttribute("aria-expanded", "true");
    } else if (event.key === "Enter" && at >= 0) {
      event.preventDefault();
      window.location.assign(list[at].href);
    } else if (event.key === "Escape") {
      event.preventDefault();
      if (input.getAttribute("aria-expanded") === "true") {
        close(input);
      } else {
        input.value = "";
        close(input);
      }
    }
  });

  // The mouse: hovering an option makes it the active one, so the keyboard continues from there.
  document.addEventListener("mousemove", function (event) {
    const input = box();
    const option = event.target.closest && event.target.closest("#global-search-results [role=option]");
    if (input && option && option.getAttribute("aria-selected") !== "true") { activate(input, option); }
  });
})();
