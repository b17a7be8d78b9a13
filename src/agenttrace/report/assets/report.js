// agenttrace report: draws one run from the JSON in #run-data. Every piece of run data goes into
// the page as text (textContent, createTextNode, setAttribute), never as markup: span names,
// inputs and outputs are the agent's, and are shown inert. No network: nothing is fetched.
(function () {
  "use strict";

  var SVG = ["http:", "", "www.w3.org", "2000", "svg"].join("/"); // SVG's namespace name: never fetched
  var DATA = JSON.parse(document.getElementById("run-data").textContent);
  var root = document.getElementById("report");
  var anchored = Object.create(null); // span id -> the element holding id="span-<id>"
  var highlighted = null;

  // --- DOM helpers: text only -------------------------------------------------------------------
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var key in attrs) {
        if (attrs[key] !== null && attrs[key] !== undefined) node.setAttribute(key, String(attrs[key]));
      }
    }
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function add(node, child) {
    if (child === null || child === undefined || child === false) return node;
    if (Array.isArray(child)) { child.forEach(function (c) { add(node, c); }); return node; }
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    for (var key in attrs || {}) node.setAttribute(key, String(attrs[key]));
    return node;
  }
  function badge(status, text) { return el("span", { "class": "badge s-" + String(status).replace("/", "") }, text || status); }
  function anchor(node, spanId) {
    if (spanId && !anchored[spanId]) { node.id = "span-" + spanId; anchored[spanId] = node; }
    return node;
  }
  function spanLink(spanId, text, cls) {
    var a = el("a", { href: "#span-" + spanId, "class": cls || null, "data-span-id": spanId }, text);
    a.addEventListener("click", function (event) { event.preventDefault(); reveal(spanId); });
    return a;
  }
  function fileLink(path, text, cls) {
    var a = el("a", { href: "#file-" + path, "class": cls || null }, text);
    a.addEventListener("click", function (event) {
      var target = document.getElementById("file-" + path);
      if (target) { event.preventDefault(); show(target); }
    });
    return a;
  }

  // --- formatting -------------------------------------------------------------------------------
  function seconds(s) {
    if (s === null || s === undefined) return "-";
    if (s < 1) return s >= 0.001 ? (s * 1000).toFixed(0) + " ms" : (s * 1000).toFixed(2) + " ms";
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + "m " + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }
  function ms(v) { return v === null || v === undefined ? "-" : seconds(v / 1000); }
  function num(v) { return v === null || v === undefined ? "-" : Number(v).toLocaleString("en-US"); }
  function usd(v) { return v === null || v === undefined ? "-" : "$" + Number(v).toFixed(4); }
  function plainText(v) { return typeof v === "string" ? v : JSON.stringify(v, null, 2); }

  // --- following a link to a span ---------------------------------------------------------------
  function show(target) {
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS" && !node.open) { node.open = true; fill(node); }
    }
    if (highlighted) highlighted.classList.remove("highlight");
    target.classList.add("highlight");
    highlighted = target;
    target.scrollIntoView({ block: "center" });
  }
  function reveal(spanId) {
    var target = document.getElementById("span-" + spanId);
    if (!target) return false;
    show(target);
    if (history.replaceState) history.replaceState(null, "", "#span-" + spanId);
    return true;
  }

  // --- the verdict, first -----------------------------------------------------------------------
  function verdictSection() {
    var v = DATA.verdict, run = DATA.run;
    var facts = [];
    facts.push("exit code " + (v.exit.code === null ? "-" : v.exit.code) + (v.exit.signal ? ", signal " + v.exit.signal : ""));
    facts.push("duration " + seconds(run.duration_s));
    facts.push(num(run.span_count) + " spans");
    if (run.started) facts.push("started " + run.started.replace("T", " ").replace(/\.\d+Z$/, "Z"));
    facts.push(v.supervised ? "recorded by agenttrace run" : "not recorded by a supervisor");
    var section = el("section", { id: "verdict", "data-state": v.state },
      el("p", { "class": "state" }, v.state === "succeeded" ? "SUCCEEDED" : v.state.toUpperCase().replace("_", " ")),
      el("p", { "class": "run" }, el("strong", null, "Run " + run.run_id), run.command ? el("span", { "class": "mono" }, "  " + run.command) : null),
      el("p", { "class": "facts" }, facts.join(" · ")));
    if (v.reasons.length) {
      section.appendChild(el("ul", { "class": "reasons" }, v.reasons.map(function (r) { return el("li", null, r); })));
    } else {
      section.appendChild(el("p", null, "Every error-severity gate passed."));
    }
    return section;
  }

  function gatesSection() {
    var list = el("ul", { id: "gates" });
    DATA.verdict.gates.forEach(function (g) {
      var item = el("li", { "class": "gate", "data-gate": g.name, "data-status": g.status },
        badge(g.status), el("span", { "class": "name" }, g.name),
        g.severity !== "error" ? el("span", { "class": "muted" }, " (" + g.severity + ")") : null,
        el("p", { "class": "desc" }, g.description));
      if (g.violations.length) {
        var ol = el("ol");
        g.violations.forEach(function (viol) {
          var reason;
          if (viol.span_id) reason = spanLink(viol.span_id, viol.reason, "reason");
          else if (viol.path) reason = fileLink(viol.path, viol.reason, "reason");
          else reason = el("span", { "class": "reason" }, viol.reason);
          ol.appendChild(el("li", null, reason));
        });
        item.appendChild(ol);
      }
      list.appendChild(item);
    });
    return el("section", null, el("h2", null, "Gates"), list);
  }

  function limitsSection() {
    var L = DATA.limits, a = L.applied;
    var used = Object.keys(a).filter(function (k) { return a[k]; });
    var text = "Limits of this page: at most " + num(L.steps) + " steps in full, each input and output cut to "
      + num(L.text_chars) + " characters; at most " + num(L.bars) + " timeline bars (more are merged into grey bars "
      + "per lane and time bucket); at most " + num(L.tree_nodes) + " processes in the tree, " + num(L.files)
      + " files and " + num(L.claims) + " claims; any other text (names, command lines, paths) cut to "
      + num(L.other_chars) + " characters. ";
    text += used.length ? "Applied to this run: " + used.join(", ") + "." : "None applied to this run: everything is shown.";
    return el("p", { id: "limits", "class": used.length ? "applied" : null, "data-applied": used.join(" ") }, text);
  }

  // --- the timeline -----------------------------------------------------------------------------
  var LANE_NAMES = { step: "Steps", process: "Processes", verification: "Verification", gpu: "GPU" };
  var ROW_H = 14, ROW_GAP = 3, LANE_PAD = 6, LABEL_W = 110, AXIS_H = 22, MAX_ROWS = 40;

  function timelineSection() {
    var T = DATA.timeline;
    var section = el("section", { id: "timeline-section" }, el("h2", null, "Timeline"));
    var zin = el("button", { id: "zoom-in", type: "button", title: "Zoom in" }, "+");
    var zout = el("button", { id: "zoom-out", type: "button", title: "Zoom out" }, "−");
    var zreset = el("button", { id: "zoom-reset", type: "button", title: "Show the whole run" }, "Reset");
    var legend = el("span", { "class": "legend" },
      [["llm", "LLM step"], ["tool", "other step"], ["proc", "process"], ["verify", "verification"], ["gpu", "GPU"], ["agg", "merged"], ["fail", "error"]]
        .map(function (p) { return el("span", null, el("i", { "class": "sw-" + p[0] }), p[1]); }));
    var range = el("span", { "class": "muted", id: "zoom-range" });
    section.appendChild(el("div", { "class": "toolbar" }, zin, zout, zreset, range, legend,
      el("span", { "class": "muted" }, " · wheel to zoom, drag to pan, click a bar for its details")));
    var box = el("div", { "class": "timeline-box" });
    var chart = svg("svg", { id: "timeline", role: "img", "aria-label": "Timeline of the run" });
    box.appendChild(chart);
    section.appendChild(box);

    // rows: each lane packs its bars into rows so that overlapping bars do not hide each other
    var lanes = T.lanes.map(function (name) { return { name: name, rows: [], bars: [] }; });
    var byName = {};
    lanes.forEach(function (l) { byName[l.name] = l; });
    T.bars.forEach(function (b) {
      var lane = byName[b.lane];
      if (!lane) return;
      var row = 0;
      while (row < lane.rows.length && lane.rows[row] > b.start && row < MAX_ROWS - 1) row++;
      lane.rows[row] = Math.max(lane.rows[row] || 0, b.end);
      lane.bars.push({ bar: b, row: row });
    });
    var y = AXIS_H, rects = [];
    var axis = svg("g"), bg = svg("g"), bars = svg("g");
    chart.appendChild(bg); chart.appendChild(axis); chart.appendChild(bars);
    lanes.forEach(function (lane, index) {
      var rows = Math.max(1, lane.rows.length);
      var h = Math.max(34, rows * (ROW_H + ROW_GAP) + 2 * LANE_PAD);
      bg.appendChild(svg("rect", { "class": "lane-bg" + (index % 2 ? " odd" : ""), x: 0, y: y, width: "100%", height: h }));
      var label = svg("text", { "class": "lane-label", x: 8, y: y + LANE_PAD + 11 });
      label.textContent = LANE_NAMES[lane.name] || lane.name;
      bg.appendChild(label);
      var count = svg("text", { x: 8, y: y + LANE_PAD + 24 });
      count.textContent = lane.bars.length + " bars";
      bg.appendChild(count);
      lane.bars.forEach(function (item) {
        var b = item.bar;
        var r = svg("rect", {
          "class": "bar" + (b.error ? " error" : "") + (b.step_kind === "llm" ? " llm" : ""),
          "data-kind": b.kind, "data-lane": b.lane, y: y + LANE_PAD + item.row * (ROW_H + ROW_GAP), height: ROW_H
        });
        if (b.span_id) r.setAttribute("data-span-id", b.span_id);
        if (b.unfinished) r.setAttribute("data-unfinished", "true");
        if (b.orphaned) r.setAttribute("data-orphaned", "true");
        if (b.exit_code !== undefined && b.exit_code !== null) r.setAttribute("data-exit-code", String(b.exit_code));
        if (b.step !== undefined) r.setAttribute("data-step", String(b.step));
        if (b.count !== undefined) r.setAttribute("data-count", String(b.count));
        var title = svg("title");
        var lines = [b.label || b.kind, "duration " + ms(b.end - b.start) + (b.unfinished ? " (never ended)" : "")];
        if (b.exit_code !== undefined && b.exit_code !== null) lines.push("exit code " + b.exit_code);
        if (b.orphaned) lines.push("still running when the agent exited (orphaned)");
        if (b.count !== undefined) lines.push(b.count + " spans merged into this bar");
        title.textContent = lines.join("\n");
        r.appendChild(title);
        r.addEventListener("click", function () { if (b.span_id) reveal(b.span_id); });
        bars.appendChild(r);
        rects.push({ node: r, bar: b });
      });
      y += h;
    });
    var height = y + 4;
    chart.setAttribute("height", height);

    var full = Math.max(T.duration, 1e-3), view = [0, full];
    function width() { return Math.max(300, chart.getBoundingClientRect().width || box.clientWidth || 1200); }
    function draw() {
      var W = width() - LABEL_W - 10, span = view[1] - view[0];
      rects.forEach(function (item) {
        var b = item.bar;
        var x0 = LABEL_W + (b.start - view[0]) / span * W, x1 = LABEL_W + (b.end - view[0]) / span * W;
        if (x1 < LABEL_W || x0 > LABEL_W + W) { item.node.setAttribute("display", "none"); return; }
        item.node.removeAttribute("display");
        x0 = Math.max(x0, LABEL_W); x1 = Math.min(x1, LABEL_W + W);
        item.node.setAttribute("x", x0.toFixed(1));
        item.node.setAttribute("width", Math.max(1.5, x1 - x0).toFixed(1));
      });
      while (axis.firstChild) axis.removeChild(axis.firstChild);
      var step = niceStep(span / 8);
      for (var t = Math.ceil(view[0] / step) * step; t <= view[1]; t += step) {
        var x = LABEL_W + (t - view[0]) / span * W;
        axis.appendChild(svg("line", { "class": "tick", x1: x, x2: x, y1: AXIS_H - 4, y2: height }));
        var label = svg("text", { x: x + 2, y: 14 });
        label.textContent = ms(t);
        axis.appendChild(label);
      }
      range.textContent = ms(view[0]) + " – " + ms(view[1]) + " of " + ms(full);
    }
    function niceStep(raw) {
      var p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-6))));
      var m = raw / p;
      return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
    }
    function zoom(factor, at) {
      var span = view[1] - view[0], center = at === undefined ? view[0] + span / 2 : at;
      var next = Math.min(full, Math.max(full / 1e6, span * factor));
      var left = center - (center - view[0]) * (next / span);
      left = Math.max(0, Math.min(left, full - next));
      view = [left, left + next];
      draw();
    }
    function timeAt(clientX) {
      var box2 = chart.getBoundingClientRect(), W = width() - LABEL_W - 10;
      var frac = Math.max(0, Math.min(1, (clientX - box2.left - LABEL_W) / W));
      return view[0] + frac * (view[1] - view[0]);
    }
    zin.addEventListener("click", function () { zoom(0.5); });
    zout.addEventListener("click", function () { zoom(2); });
    zreset.addEventListener("click", function () { view = [0, full]; draw(); });
    chart.addEventListener("wheel", function (event) {
      event.preventDefault();
      zoom(event.deltaY < 0 ? 0.8 : 1.25, timeAt(event.clientX));
    }, { passive: false });
    var drag = null;
    chart.addEventListener("mousedown", function (event) { drag = { x: event.clientX, view: view.slice() }; });
    window.addEventListener("mousemove", function (event) {
      if (!drag) return;
      var dx = event.clientX - drag.x;
      if (Math.abs(dx) > 2) chart.classList.add("dragging");
      var span = drag.view[1] - drag.view[0], shift = -dx / (width() - LABEL_W - 10) * span;
      var left = Math.max(0, Math.min(drag.view[0] + shift, full - span));
      view = [left, left + span];
      draw();
    });
    window.addEventListener("mouseup", function () { drag = null; chart.classList.remove("dragging"); });
    window.addEventListener("resize", draw);
    section.draw = draw;
    return section;
  }

  // --- steps ------------------------------------------------------------------------------------
  function stepsSection() {
    var S = DATA.steps;
    var count = el("span", { id: "step-count" }, S.of + (S.of === 1 ? " step" : " steps"));
    var head = el("h2", null, "Steps ", el("span", { "class": "muted" }, "(", count,
      S.items.length < S.of ? ", the first " + S.items.length + " shown in full" : "", ")"));
    var section = el("section", { id: "steps" }, head);
    S.items.forEach(function (s) {
      var d = el("details", { "class": "step", "data-step": s.step, "data-kind": s.kind, "data-status": s.status },
        el("summary", null,
          el("span", { "class": "num" }, "#" + s.step), el("span", { "class": "kind" }, s.kind), " ",
          el("span", { "class": "nm" }, s.name || ""), " ",
          el("span", { "class": "muted" }, ms(s.duration_ms)), " ",
          s.status !== "ok" ? badge(s.status) : null,
          s.decided_by ? el("span", { "class": "muted" }, "  asked for by step " + s.decided_by.step) : null));
      if (s.span_id) anchor(d, s.span_id); else d.id = "step-" + s.step;
      d.stepData = s;
      d.addEventListener("toggle", function () { if (d.open) fill(d); });
      section.appendChild(d);
    });
    return section;
  }
  function fill(d) { // a step's body is drawn when first opened: thousands of steps stay light
    var s = d.stepData;
    if (!s || d.filled) return;
    d.filled = true;
    var kv = el("dl", { "class": "kv" });
    function row(k, v) { if (v !== null && v !== undefined && v !== "") kv.appendChild(el("dt", null, k)).parentNode.appendChild(el("dd", null, v)); }
    row("status", s.status + (s.status_message ? ": " + s.status_message : ""));
    row("span", s.span_id ? el("code", null, s.span_id) : null);
    row("started", s.start_time);
    row("ended", s.end_time);
    row("duration", ms(s.duration_ms));
    row("model", s.model);
    row("finish reason", s.finish_reason);
    row("tokens", s.input_tokens !== null || s.output_tokens !== null ? num(s.input_tokens) + " in, " + num(s.output_tokens) + " out" : null);
    row("cost", s.cost_usd !== null ? usd(s.cost_usd) : null);
    row("tool", s.tool_name);
    row("tool call id", s.tool_call_id);
    row("command", s.command);
    row("exit code", s.exit_code);
    if (s.decided_by) {
      row("asked for by", el("span", null, spanLink(s.decided_by.span_id, "step " + s.decided_by.step, "decided-by"), " (" + s.decided_by.reason + ")"));
    }
    var body = el("div", { "class": "body" }, kv);
    [["input", s.input], ["output", s.output]].forEach(function (p) {
      if (!p[1]) return;
      body.appendChild(el("h3", null, p[0], p[1].cut ? el("span", { "class": "cut" }, " (cut: the first " + num(DATA.limits.text_chars) + " of " + num(p[1].chars) + " characters)") : null));
      body.appendChild(el("pre", { "class": p[0] }, plainText(p[1].value)));
    });
    d.appendChild(body);
  }

  // --- the process tree -------------------------------------------------------------------------
  function treeSection() {
    var P = DATA.processes;
    var section = el("section", { id: "process-tree" }, el("h2", null, "Process tree ",
      el("span", { "class": "muted" }, "(" + P.of + (P.of === 1 ? " process" : " processes") + (P.items.length < P.of ? ", the first " + P.items.length + " shown" : "") + ")")));
    var children = Object.create(null), tops = [];
    P.items.forEach(function (p) { if (p.parent) (children[p.parent] = children[p.parent] || []).push(p); else tops.push(p); });
    function node(p, depth) {
      var label = el("span", { "class": "proc", "data-span-id": p.span_id },
        el("span", { "class": "pid" }, "pid " + (p.pid === null ? "?" : p.pid)),
        el("code", null, p.command_line || p.executable || "?"), " ",
        p.ended ? badge(p.exit_code === 0 ? "ok" : "fail", "exit " + (p.exit_code === null ? "?" : p.exit_code) + (p.signal ? " " + p.signal : "")) : badge("unfinished", "never ended"),
        p.orphaned ? [" ", badge("orphaned", "orphaned: alive after the agent exited")] : null,
        p.reported_by_agent ? [" ", badge("agent", "reported by the agent")] : null);
      var li = el("li", { "class": "process", "data-pid": p.pid, "data-exit-code": p.exit_code, "data-orphaned": p.orphaned ? "true" : null, "data-reported-by-agent": p.reported_by_agent ? "true" : null }, label);
      anchor(li, p.span_id);
      var kids = children[p.span_id];
      if (kids && depth < 200) li.appendChild(el("ul", null, kids.map(function (k) { return node(k, depth + 1); })));
      return li;
    }
    section.appendChild(tops.length ? el("ul", null, tops.map(function (p) { return node(p, 0); })) : el("p", { "class": "muted" }, "No processes were recorded."));
    return section;
  }

  // --- claims, objective, tokens, files, environment -------------------------------------------
  function claimsSection() {
    var C = DATA.claims;
    var section = el("section", { id: "claims" }, el("h2", null, "Claims and evidence ", el("span", { "class": "muted" }, "(" + C.of + ")")));
    if (!C.items.length) section.appendChild(el("p", { "class": "muted" }, "The agent made no claims."));
    C.items.forEach(function (c) {
      var ev = el("ul");
      (c.evidence || []).forEach(function (e) {
        ev.appendChild(el("li", null, badge(e.resolved ? "ok" : "fail", e.resolved ? "resolves" : "does not resolve"), " ",
          e.kind + " ", el("code", null, e.ref),
          e.sha256 ? el("span", { "class": "muted" }, " sha256 " + String(e.sha256).slice(0, 12) + "…") : null,
          e.problem ? el("span", { "class": "warning" }, " — " + e.problem) : null));
      });
      if (!(c.evidence || []).length) ev.appendChild(el("li", { "class": "warning" }, "no evidence"));
      var div = el("div", { "class": "claim", "data-status": c.status }, badge(c.status), " ",
        el("strong", null, c.text), c.step ? el("span", { "class": "muted" }, " (step " + c.step + ")") : null, ev);
      anchor(div, c.span_id);
      section.appendChild(div);
    });
    return section;
  }

  function objectiveSection() {
    var O = DATA.objective;
    var section = el("section", { id: "objective" }, el("h2", null, "Objective"));
    if (!O) { section.appendChild(el("p", { "class": "muted" }, "The run had no objective (agenttrace run --objective FILE).")); return section; }
    section.appendChild(el("p", null, el("strong", null, "Goal: "), O.goal || "-"));
    if (O.scope) section.appendChild(el("p", null, el("strong", null, "Scope: "), el("code", null, O.scope.join(", "))));
    O.criteria.forEach(function (c) {
      var ch = c.check || {};
      var detail = [];
      if (c.kind === "covers" || c.covers && c.covers.length) detail.push("covers " + (c.covers || []).join(", ") + " in " + c["in"]);
      if (c.command) detail.push("command `" + c.command + "`");
      if (ch.missing && ch.missing.length) detail.push("missing: " + ch.missing.join(", "));
      if (ch.exit_code !== null && ch.exit_code !== undefined) detail.push("exit code " + ch.exit_code);
      if (ch.timed_out) detail.push("timed out");
      if (ch.skipped) detail.push("skipped: " + ch.skipped);
      var div = el("div", { "class": "criterion", "data-criterion": c.id, "data-status": c.status }, badge(c.status), " ",
        el("strong", null, c.id), " ", el("span", { "class": "muted" }, detail.join(" · ")),
        ch.output_tail ? el("pre", null, ch.output_tail) : null);
      if (ch.span_id) anchor(div, ch.span_id);
      section.appendChild(div);
    });
    O.deliverables.forEach(function (d) {
      var ch = d.check || {};
      var div = el("div", { "class": "deliverable", "data-status": d.status }, badge(d.status), " deliverable ",
        el("code", null, d.path), el("span", { "class": "muted" }, ch.sha256 ? " sha256 " + ch.sha256.slice(0, 12) + "…" : ""));
      if (ch.span_id) anchor(div, ch.span_id);
      section.appendChild(div);
    });
    (O.evidence || []).forEach(function (v) {
      var div = el("div", { "class": "deliverable", "data-status": v.passed ? "pass" : "fail" }, badge(v.passed ? "pass" : "fail"), " evidence ", el("code", null, v.path));
      anchor(div, v.span_id);
      section.appendChild(div);
    });
    if (O.limits) {
      var lim = [];
      for (var k in O.limits) if (O.limits[k] !== null) lim.push(k + " " + O.limits[k]);
      if (lim.length) section.appendChild(el("p", null, el("strong", null, "Limits: "), lim.join(", ")));
    }
    return section;
  }

  function tokensSection() {
    var T = DATA.tokens;
    var section = el("section", { id: "tokens" }, el("h2", null, "Tokens and cost"));
    var table = el("table", { "class": "grid" }, el("tr", null, el("th", null, "step"), el("th", null, "model"),
      el("th", { "class": "num" }, "input"), el("th", { "class": "num" }, "output"), el("th", { "class": "num" }, "cost")));
    T.steps.forEach(function (s) {
      table.appendChild(el("tr", { "data-step": s.step }, el("td", null, s.span_id ? spanLink(s.span_id, "#" + s.step) : "#" + s.step),
        el("td", null, s.model || s.name), el("td", { "class": "num" }, num(s.input_tokens)),
        el("td", { "class": "num" }, num(s.output_tokens)), el("td", { "class": "num" }, usd(s.cost_usd))));
    });
    table.appendChild(el("tr", { "class": "total" }, el("td", null, "total"), el("td", null, T.total.llm_steps + " LLM steps"),
      el("td", { "class": "num" }, num(T.total.input_tokens)), el("td", { "class": "num" }, num(T.total.output_tokens)),
      el("td", { "class": "num" }, usd(T.total.cost_usd))));
    section.appendChild(table);
    return section;
  }

  function filesSection() {
    var F = DATA.files;
    var section = el("section", { id: "files" }, el("h2", null, "Files ", el("span", { "class": "muted" }, "(" + F.of + ")")));
    if (!F.items.length) { section.appendChild(el("p", { "class": "muted" }, "No files in the artifact manifest.")); return section; }
    var table = el("table", { "class": "grid" }, el("tr", null, el("th", null, "path"), el("th", null, "role"), el("th", { "class": "num" }, "bytes"), el("th", null, "sha256")));
    var seen = Object.create(null);
    F.items.forEach(function (f) {
      var tr = el("tr", { "class": "file" }, el("td", null, el("code", null, f.path)), el("td", null, f.role),
        el("td", { "class": "num" }, num(f.size)), el("td", null, el("code", null, f.sha256 ? String(f.sha256).slice(0, 16) + "…" : "-")));
      if (!seen[f.path]) { tr.id = "file-" + f.path; seen[f.path] = true; }
      table.appendChild(tr);
    });
    section.appendChild(table);
    return section;
  }

  function spansSection() {
    var rest = (DATA.spans || []).filter(function (s) { return !anchored[s.span_id]; });
    if (!rest.length) return null;
    var section = el("section", { id: "other-spans" }, el("h2", null, "Other spans named by the gates"));
    rest.forEach(function (s) {
      var div = el("div", { "class": "claim", "data-status": s.status_code === "Error" ? "failed" : "ok" },
        el("strong", null, s.name), " ", el("code", null, s.span_id), " ",
        el("span", { "class": "muted" }, ms(s.duration_ms) + (s.ended ? "" : " (never ended)") + (s.origin ? " · written by " + s.origin : "")),
        s.status_message ? el("div", { "class": "warning" }, s.status_message) : null);
      anchor(div, s.span_id);
      section.appendChild(div);
    });
    return section;
  }

  function environmentSection() {
    var E = DATA.environment;
    var kv = el("dl", { "class": "kv" });
    function row(k, v) { kv.appendChild(el("dt", null, k)); kv.appendChild(el("dd", null, v)); }
    row("argv", el("code", null, Array.isArray(E.argv) ? E.argv.map(function (a) { return /[\s"']/.test(a) ? JSON.stringify(a) : a; }).join(" ") : String(E.argv || DATA.run.command || "-")));
    var A = E.attributes;
    if (A["process.working_directory"]) row("working directory", el("code", null, A["process.working_directory"]));
    row("git commit", A["vcs.ref.head.revision"] ? el("code", null, A["vcs.ref.head.revision"] + (A["agenttrace.git.dirty"] === "true" ? " (with uncommitted changes)" : "")) : "not a git checkout");
    if (A["process.runtime.name"]) row("Python", A["process.runtime.name"] + " " + (A["process.runtime.version"] || ""));
    if (A["host.name"]) row("host", A["host.name"] + (A["os.type"] ? " (" + A["os.type"] + ")" : ""));
    if (A["agenttrace.watcher.mode"]) row("process watcher", A["agenttrace.watcher.mode"]);
    if (A["agenttrace.gpu.sampling"]) row("GPU sampling", A["agenttrace.gpu.sampling"]);
    if (DATA.run.service_name) row("service", DATA.run.service_name);
    row("report by", E.report_by + ", " + DATA.generated_at);
    var section = el("section", { id: "environment" }, el("h2", null, "Environment"), kv);
    var names = Object.keys(E.packages || {});
    if (names.length) {
      var table = el("table", { "class": "grid" }, el("tr", null, el("th", null, "package"), el("th", null, "version")));
      names.forEach(function (n) { table.appendChild(el("tr", null, el("td", null, n), el("td", null, E.packages[n]))); });
      section.appendChild(el("details", null, el("summary", null, names.length + " Python packages"), table));
    }
    return section;
  }

  // --- draw ---------------------------------------------------------------------------------------
  try {
    document.title = "agenttrace report: " + DATA.run.run_id + " " + DATA.verdict.state;
    root.appendChild(verdictSection());
    root.appendChild(gatesSection());
    root.appendChild(limitsSection());
    var timeline = timelineSection();
    root.appendChild(timeline);
    root.appendChild(stepsSection());
    root.appendChild(treeSection());
    root.appendChild(claimsSection());
    root.appendChild(objectiveSection());
    root.appendChild(tokensSection());
    root.appendChild(filesSection());
    var others = spansSection();
    if (others) root.appendChild(others);
    root.appendChild(environmentSection());
    root.appendChild(el("footer", null, DATA.generator + " · one self-contained file: no network, the run's data in #run-data."));
    timeline.draw();
    if (location.hash.indexOf("#span-") === 0) reveal(decodeURIComponent(location.hash.slice(6)));
    document.body.dataset.ready = "true";
  } catch (error) {
    root.appendChild(el("p", { "class": "warning" }, "This report could not be drawn: " + error));
    document.body.dataset.ready = "error";
    throw error;
  }
})();
