// The console's only script of its own: the live indicator. Everything else is htmx attributes.
(function () {
  "use strict";
  function mark(on) {
    var el = document.getElementById("live");
    if (!el) { return; }
    el.classList.toggle("on", on);
    el.classList.toggle("off", !on);
    el.title = on ? el.dataset.on : el.dataset.off;
  }
  document.addEventListener("htmx:sseOpen", function () { mark(true); });
  document.addEventListener("htmx:sseError", function () { mark(false); });
  document.addEventListener("htmx:sseClose", function () { mark(false); });
})();
