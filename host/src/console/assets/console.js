// jitgate console: the only script (the content security policy allows no
// other). It counts expiry times down; every page works without it.
"use strict";
(function () {
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function left(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (h > 0) { return h + " h " + pad(m) + " min left"; }
    if (m > 0) { return m + " min " + pad(sec) + " s left"; }
    return sec + " s left";
  }
  function tick() {
    var now = Date.now();
    var items = document.querySelectorAll("time.countdown[data-until]");
    for (var i = 0; i < items.length; i++) {
      var until = Number(items[i].getAttribute("data-until"));
      if (isFinite(until)) { items[i].textContent = until > now ? left(until - now) : "expired"; }
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    window.setInterval(tick, 1000);
  });
})();
