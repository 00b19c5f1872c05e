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
