// The shell on a phone: the menu button opens the side menu over the page; Escape, the backdrop or a link closes it.
(function () {
  function button() { return document.querySelector(".menu-button"); }
  function setOpen(open) {
    var toggle = button();
    if (!toggle) return;
    document.body.classList.toggle("menu-open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    toggle.setAttribute("aria-label", toggle.dataset[open ? "labelClose" : "labelOpen"]);
    var backdrop = document.querySelector(".menu-backdrop");
    if (backdrop) backdrop.hidden = !open;
    if (open) {
      var first = document.querySelector("#side-menu a");
      if (first) first.focus();
    }
  }
  // With JavaScript the button opens the menu; the no-script link and the URL target stay out of the way.
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = button();
    if (toggle) toggle.hidden = false;
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest) return;
    if (event.target.closest(".menu-button")) {
      setOpen(!document.body.classList.contains("menu-open"));
    } else if (event.target.closest("[data-close-menu]")) {
      event.preventDefault();  // the × is a link to #main for the no-script menu
      setOpen(false);
      var toggle = button();
      if (toggle) toggle.focus();
    } else if (event.target.closest("#side-menu a")) {
      setOpen(false);
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && document.body.classList.contains("menu-open")) {
      setOpen(false);
      var toggle = button();
      if (toggle) toggle.focus();
    }
  });
  // History restore brings back a snapshot taken before the menu closed.
  document.addEventListener("htmx:historyRestore", function () { setOpen(false); });
})();

// Back and Forward: the results follow the URL, and so must the controls. htmx's history snapshot keeps the markup
// as first rendered (an input's typed value is a property, not an attribute), so each GET form's visible controls
// are set again from the query string. Hidden inputs are left alone: the server wrote them for that URL.
(function () {
  function restore() {
    var query = new URLSearchParams(window.location.search);
    document.querySelectorAll("form[method=get], form[method=GET]").forEach(function (form) {
      // Only the forms of this page's list: the shell's global search has a URL of its own.
      if (new URL(form.action, window.location.href).pathname !== window.location.pathname) return;
      Array.prototype.forEach.call(form.elements, function (control) {
        if (!control.name || control.type === "hidden" || control.type === "submit" || control.type === "button") return;
        var values = query.getAll(control.name);
        if (control.type === "checkbox" || control.type === "radio") {
          control.checked = values.indexOf(control.value) !== -1;
        } else if (control.tagName === "SELECT") {
          Array.prototype.forEach.call(control.options, function (option) {
            option.selected = values.length ? values.indexOf(option.value) !== -1 : option.defaultSelected;
          });
        } else {
          control.value = values.length ? values[0] : "";
        }
      });
      // A filter's count badge says how many of its boxes are ticked.
      form.querySelectorAll("details.filter").forEach(function (filter) {
        var badge = filter.querySelector("summary .count-badge");
        var ticked = filter.querySelectorAll("input[type=checkbox]:checked").length;
        if (badge) {
          badge.textContent = String(ticked);
          badge.hidden = ticked === 0;
        }
      });
    });
  }
  document.addEventListener("htmx:historyRestore", restore);
  // A plain Back (no htmx snapshot involved) still lands here; run after htmx has swapped its snapshot in.
  window.addEventListener("popstate", function () { window.setTimeout(restore, 0); });
  window.addEventListener("pageshow", function (event) { if (event.persisted) restore(); });
})();

// Money columns stay on a phone's screen: the first column of amounts (its cells carry .number) is marked .pinned,
// header included, and app.css pins it to the right edge of its scrolling table. Marked by column index because
// some headers (a sortable amount) are not .number themselves.
(function () {
  function pin(root) {
    (root || document).querySelectorAll(".list-table").forEach(function (table) {
      var row = table.querySelector("tbody tr");
      if (!row) return;
      var index = Array.prototype.findIndex.call(row.cells, function (cell) { return cell.classList.contains("number"); });
      if (index < 0) return;
      Array.prototype.forEach.call(table.rows, function (tableRow) {
        if (tableRow.cells.length === row.cells.length) tableRow.cells[index].classList.add("pinned");
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { pin(document); });
  document.addEventListener("htmx:afterSettle", function (event) { pin(event.detail && event.detail.elt); });
})();
