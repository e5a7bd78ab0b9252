// Strand review app: live updates and line picking. No dependencies.
"use strict";

(function () {
  // Live: follow the session's events (server-sent events); reload the
  // page when it moves, unless the reviewer is writing something, then say
  // so and offer the reload.
  var live = document.getElementById("live");
  var dirty = false;
  document.addEventListener("input", function (e) {
    if (e.target.matches("input, textarea, select")) dirty = true;
  });
  if (live && window.EventSource) {
    var id = live.dataset.session, pos = live.dataset.position;
    var es = new EventSource("/s/" + encodeURIComponent(id) + "/live?from=" + encodeURIComponent(pos));
    live.textContent = "Live";
    es.addEventListener("moved", function (m) {
      var ev = JSON.parse(m.data);
      if (!dirty) { es.close(); location.reload(); return; }
      live.classList.add("moved");
      live.textContent = "";
      live.append("The session moved (" + ev.type + " at " + ev.position + "). ");
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = "Reload";
      b.addEventListener("click", function () { location.reload(); });
      live.append(b);
    });
    es.onerror = function () { live.textContent = "Live updates paused"; };
    es.onopen = function () { if (!live.classList.contains("moved")) live.textContent = "Live"; };
  }

  // Diff: a new-side line number picks the lines of the file's note form;
  // shift picks a range from the last one picked.
  var anchor = {};
  document.addEventListener("click", function (e) {
    var a = e.target.closest("a[data-line]");
    if (!a) return;
    var form = document.getElementById(a.dataset.form);
    if (!form) return;
    e.preventDefault();
    var box = form.closest("details");
    if (box) box.open = true;
    var n = parseInt(a.dataset.line, 10), from = n;
    if (e.shiftKey && anchor[a.dataset.form]) from = anchor[a.dataset.form];
    else anchor[a.dataset.form] = n;
    var lo = Math.min(from, n), hi = Math.max(from, n);
    form.elements.lines.value = lo === hi ? String(lo) : lo + "-" + hi;
    var table = a.closest("table");
    table.querySelectorAll("tr.sel").forEach(function (tr) { tr.classList.remove("sel"); });
    table.querySelectorAll("a[data-line]").forEach(function (x) {
      var v = parseInt(x.dataset.line, 10);
      if (v >= lo && v <= hi) x.closest("tr").classList.add("sel");
    });
    history.replaceState(null, "", "#" + a.closest("tr").id);
    form.elements.body.focus({ preventScroll: true });
    form.scrollIntoView({ block: "nearest" });
  });
})();
