// syncd dashboard: live updates. The page reads without this script; with it, every
// "changed" event on the stream (woken by the store's notifications and this copy's
// journal) fetches fresh sections, with the page's own filters, and swaps them in.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var busy = false, again = false;

  function say(text, cls) { live.textContent = text; live.className = "live " + cls; }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch("sections" + location.search, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (got) {
        Object.keys(got.sections).forEach(function (name) {
          var el = document.getElementById(name);
          if (el) el.innerHTML = got.sections[name];
        });
        document.body.dataset.generation = got.generation;
        document.body.dataset.refreshed = String(Date.now());
      })
      .catch(function () { say("refresh failed; retrying on the next change", "off"); })
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }

  if (!window.EventSource) return;
  var source = new EventSource("events?since=" + encodeURIComponent(document.body.dataset.generation));
  source.onopen = function () { say("live", "on"); };
  source.onerror = function () { say("reconnecting…", "off"); };
  source.addEventListener("changed", refresh);
})();
