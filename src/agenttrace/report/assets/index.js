// agenttrace runs index: draws the table of runs from the JSON in #runs-data, as text only. Each
// run links (relatively) to its report, written next to this file.
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("runs-data").textContent);
  var root = document.getElementById("index");

  function el(tag, attrs) {
    var node = document.createElement(tag);
    for (var key in attrs || {}) {
      if (attrs[key] !== null && attrs[key] !== undefined) node.setAttribute(key, String(attrs[key]));
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function seconds(s) {
    if (s === null || s === undefined) return "-";
    if (s < 1) return (s * 1000).toFixed(0) + " ms";
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + "m " + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }
  function num(v) { return v === null || v === undefined ? "-" : Number(v).toLocaleString("en-US"); }

  var filters = [];
  if (DATA.since_s) filters.push("started in the last " + seconds(DATA.since_s));
  if (DATA.states && DATA.states.length) filters.push("state " + DATA.states.join(" or "));
  root.appendChild(el("h1", null, "agenttrace runs"));
  root.appendChild(el("p", { "class": "muted" }, DATA.runs.length + (DATA.runs.length === 1 ? " run" : " runs")
    + (filters.length ? " (" + filters.join(", ") + ")" : "") + " · store " + DATA.store + " · " + DATA.generated_at));
  var table = el("table", { id: "runs", "class": "grid" }, el("tr", null, el("th", null, "run"), el("th", null, "state"),
    el("th", null, "started"), el("th", { "class": "num" }, "duration"), el("th", { "class": "num" }, "steps"),
    el("th", { "class": "num" }, "tokens"), el("th", null, "failing gates"), el("th", null, "command")));
  DATA.runs.forEach(function (r) {
    var link = r.report ? el("a", { href: encodeURIComponent(r.report) }, r.run_id) : el("span", null, r.run_id);
    table.appendChild(el("tr", { "class": "run", "data-run-id": r.run_id, "data-state": r.state },
      el("td", null, link),
      el("td", null, el("span", { "class": "badge s-" + r.state }, r.state)),
      el("td", null, r.started ? r.started.replace("T", " ").replace(/\.\d+Z$/, "Z") : "-"),
      el("td", { "class": "num" }, seconds(r.duration_s)),
      el("td", { "class": "num" }, num(r.steps)),
      el("td", { "class": "num" }, num(r.tokens)),
      el("td", null, r.error ? el("span", { "class": "warning" }, r.error) : (r.failing_gates || []).join(", ")),
      el("td", null, el("code", null, r.name || ""))));
  });
  root.appendChild(table);
  root.appendChild(el("footer", null, DATA.generator + " · one self-contained file: no network."));
  document.body.dataset.ready = "true";
})();
