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

// Dashboard cards load on their own: one that fails says so and offers to try again, leaving the others be.
(function () {
  function failed(event) {
    var card = event.detail && event.detail.elt;
    if (!card || !card.matches || !card.matches("[data-card][data-state=loading]")) return;
    card.setAttribute("data-state", "error");
    card.setAttribute("aria-busy", "false");
    var message = document.createElement("p");
    message.className = "card-error";
    message.textContent = card.getAttribute("data-error");
    var retry = document.createElement("button");
    retry.type = "button";
    retry.className = "secondary outline";
    retry.textContent = card.getAttribute("data-retry");
    retry.addEventListener("click", function () {
      card.setAttribute("data-state", "loading");
      card.setAttribute("aria-busy", "true");
      htmx.trigger(card, "retry");
    });
    card.replaceChildren(message, retry);
  }
  document.addEventListener("htmx:responseError", failed);
  document.addEventListener("htmx:sendError", failed);
})();

// Chart tooltips: the day, its value and the signed change against the prior period (green up, red down).
(function () {
  function show(event) {
    var hit = event.target.closest && event.target.closest(".chart .hit");
    if (!hit) return;
    var figure = hit.closest(".chart");
    var tip = figure.querySelector(".chart-tip");
    var svg = figure.querySelector("svg");
    var day = document.createElement("strong");
    day.textContent = hit.dataset.label;
    var value = document.createElement("span");
    value.textContent = hit.dataset.value;
    var delta = document.createElement("span");
    delta.className = "delta " + (hit.dataset.direction || "");
    delta.textContent = hit.dataset.delta + " " + figure.dataset.vsPrior;
    tip.replaceChildren(day, value, delta);
    var box = svg.getBoundingClientRect();
    var x = (parseFloat(hit.getAttribute("x")) + parseFloat(hit.getAttribute("width")) / 2) / svg.viewBox.baseVal.width;
    tip.style.left = Math.min(Math.max(x * box.width, 60), box.width - 60) + "px";
    tip.hidden = false;
  }
  function hide(event) {
    var hit = event.target.closest && event.target.closest(".chart .hit");
    if (hit) hit.closest(".chart").querySelector(".chart-tip").hidden = true;
  }
  document.addEventListener("mouseover", show);
  document.addEventListener("focusin", show);
  document.addEventListener("mouseout", hide);
  document.addEventListener("focusout", hide);
})();
