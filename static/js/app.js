// Keep the banner offset in a CSS variable so pinned elements stay visible below a banner.
(function () {
  function measure() {
    var slot = document.getElementById("banners");
    var height = slot ? slot.getBoundingClientRect().height : 0;
    document.documentElement.style.setProperty("--banner-offset", height + "px");
  }
  document.addEventListener("DOMContentLoaded", measure);
  document.addEventListener("htmx:afterSettle", measure);
  window.addEventListener("resize", measure);
})();

// Lists with a side pane: arrow keys move between rows (the focused row loads the pane), Enter opens the row.
(function () {
  document.addEventListener("keydown", function (event) {
    var row = event.target.closest && event.target.closest("table[data-keyboard-list] tbody tr");
    if (!row) return;
    var next = null;
    if (event.key === "ArrowDown") next = row.nextElementSibling;
    else if (event.key === "ArrowUp") next = row.previousElementSibling;
    else if (event.key === "Enter" && row.dataset.href) { window.location.assign(row.dataset.href); return; }
    if (next) { event.preventDefault(); next.focus(); }
  });
  document.addEventListener("focusin", function (event) {
    var row = event.target.closest && event.target.closest("table[data-keyboard-list] tbody tr");
    if (!row) return;
    row.parentElement.querySelectorAll("tr.selected").forEach(function (other) { other.classList.remove("selected"); });
    row.classList.add("selected");
  });
  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest("[data-close-pane]");
    if (!close) return;
    event.preventDefault();
    document.getElementById("pane").innerHTML = "";
  });
})();

// A filter dropdown closes once its choice is applied.
document.addEventListener("submit", function (event) {
  event.target.querySelectorAll("details.filter[open]").forEach(function (dropdown) { dropdown.removeAttribute("open"); });
});
