"use strict";
(function () {
  // Every value from the data goes in with textContent or as an attribute the page
  // controls: never as markup.
  var data = JSON.parse(document.getElementById("data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var PAGE = 100;
  var COLORS = { create: "#2da44e", update: "#d4a72c", deactivate: "#cf222e",
    reactivate: "#218bff", held: "#8250df", skip: "#8c959f", failed: "#82071e",
    unchanged: "#d0d7de", created: "#2da44e", updated: "#d4a72c", deactivated: "#cf222e",
    reactivated: "#218bff", skipped: "#8c959f", seconds: "#0969da",
    graph: "#1f6feb", target: "#bf8700" };

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function bdi(text) { return el("bdi", text); }
  function show(id) { $(id).hidden = false; }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }

  function facts(target, pairs) {
    pairs.forEach(function (p) {
      if (p[1] === undefined || p[1] === null || p[1] === "") return;
      target.appendChild(el("dt", p[0]));
      var dd = el("dd");
      dd.appendChild(bdi(p[1]));
      if (p[2]) dd.className = p[2];
      target.appendChild(dd);
    });
  }

  function header() {
    var h = data.head || {};
    var seconds = typeof h.seconds === "number" ? h.seconds.toFixed(1) + " s" : null;
    var good = h.exit_code === 0 ? "ok" : "bad";
    facts($("facts"), [["Config", h.config], ["Target", h.target], ["Mode", h.mode],
      ["Started", h.started], ["Finished", h.finished], ["Duration", seconds],
      ["Outcome", h.status, good],
      ["Exit code", h.exit_code === undefined ? null : h.exit_code, good],
      ["State file", h.state], ["Users owned", h.owned]]);
    if (h.message) { $("message").textContent = h.message; show("message"); }
  }

  // Horizontal bars, one per [name, value] pair, scaled to the largest.
  function bars(target, id, pairs) {
    var max = 1, width = 640, row = 22, label = 110;
    pairs.forEach(function (p) { if (p[1] > max) max = p[1]; });
    var s = svg("svg", { id: id, width: width, height: row * pairs.length + 4,
      role: "img", "aria-label": "counts" });
    pairs.forEach(function (p, i) {
      var y = i * row + 2;
      var t = svg("text", { x: 0, y: y + 14 }); t.textContent = p[0]; s.appendChild(t);
      var w = Math.max(p[1] > 0 ? 2 : 0, Math.round((width - label - 80) * p[1] / max));
      s.appendChild(svg("rect", { x: label, y: y + 3, width: w, height: row - 8,
        fill: COLORS[p[0]] || "#57606a", "class": "bar" }));
      var v = svg("text", { x: label + w + 6, y: y + 14 }); v.textContent = String(p[1]);
      s.appendChild(v);
    });
    target.appendChild(s);
  }

  // One column per run, stacked by `keys` of each run's counts.
  function columns(target, id, title, runs, keys, value) {
    var width = 640, height = 160, pad = 30;
    var max = 1;
    runs.forEach(function (r) {
      var sum = 0; keys.forEach(function (k) { sum += value(r, k) || 0; });
      if (sum > max) max = sum;
    });
    var wrap = el("div", null, "chart");
    wrap.appendChild(el("h3", title));
    var s = svg("svg", { id: id, width: width, height: height + pad, role: "img",
      "aria-label": title });
    var step = runs.length ? (width - 40) / runs.length : 0;
    var bw = Math.max(2, Math.min(40, step - 4));
    runs.forEach(function (r, i) {
      var x = 40 + i * step, y = height;
      keys.forEach(function (k) {
        var v = value(r, k) || 0;
        var h = Math.round((height - 10) * v / max);
        if (h > 0) {
          var rect = svg("rect", { x: x, y: y - h, width: bw, height: h,
            fill: COLORS[k] || "#57606a", "class": "bar" });
          var tip = svg("title", {}); tip.textContent = "run " + r.id + ": " + k + " " + v;
          rect.appendChild(tip); s.appendChild(rect);
          y -= h;
        }
      });
      var t = svg("text", { x: x, y: height + 16 }); t.textContent = String(r.id);
      s.appendChild(t);
    });
    var top = svg("text", { x: 0, y: 12 }); top.textContent = String(max); s.appendChild(top);
    s.appendChild(svg("line", { x1: 38, y1: height, x2: width, y2: height, stroke: "#8c959f" }));
    wrap.appendChild(s);
    if (keys.length > 1) {
      var legend = el("div", null, "legend");
      keys.forEach(function (k) {
        var span = el("span", k); span.style.setProperty("--c", COLORS[k] || "#57606a");
        legend.appendChild(span);
      });
      wrap.appendChild(legend);
    }
    target.appendChild(wrap);
  }

  // A field's value: text as it is, anything else as JSON, nothing as (none).
  function value(v, cls) {
    if (v === null || v === undefined) return el("span", "(none)", "none v");
    return el("span", typeof v === "string" ? v : JSON.stringify(v), cls + " v");
  }

  function details(r) {
    var td = el("td");
    if (r.c && r.c.length) {
      var t = el("table", null, "changes");
      r.c.forEach(function (c) {
        var tr = el("tr");
        tr.appendChild(el("td", c[0]));
        var o = el("td"); o.appendChild(value(c[1], "old")); tr.appendChild(o);
        tr.appendChild(el("td", "→"));
        var n = el("td"); n.appendChild(value(c[2], "new")); tr.appendChild(n);
        t.appendChild(tr);
      });
      td.appendChild(t);
    }
    if (r.r) td.appendChild(el("div", r.r, "reason"));
    if (r.h && r.h.length) {
      var ul = el("ul", null, "holds");
      r.h.forEach(function (h) { ul.appendChild(el("li", h)); });
      td.appendChild(el("div", "Still holds:"));
      td.appendChild(ul);
    }
    if (r.e) td.appendChild(el("div", r.e, "bad error"));
    return td;
  }

  function options(select, all, values) {
    select.appendChild(el("option", all)).value = "";
    values.forEach(function (v) { select.appendChild(el("option", v)).value = v; });
  }

  function users() {
    var rows = data.rows || [];
    show("users-section");
    var state = new URLSearchParams(location.hash.slice(1));
    var action = $("action"), field = $("field"), q = $("q");
    var actions = [];
    rows.forEach(function (r) { if (actions.indexOf(r.a) < 0) actions.push(r.a); });
    if (rows.some(function (r) { return r.s === "failed"; })) actions.push("failed");
    options(action, "all", actions);
    options(field, "any", data.fields || []);
    action.value = state.get("action") || "";
    field.value = state.get("field") || "";
    q.value = state.get("q") || "";
    var sort = state.get("sort") || "user";
    var page = Math.max(0, (parseInt(state.get("page"), 10) || 1) - 1);
    var keys = rows.map(function (r) { return String(r.u).toLowerCase(); });
    var shown = [];

    function matches(i) {
      var r = rows[i];
      var a = action.value;
      if (a === "failed" ? r.s !== "failed" : a && r.a !== a) return false;
      if (field.value && !(r.c && r.c.some(function (c) { return c[0] === field.value; })))
        return false;
      var needle = q.value.trim().toLowerCase();
      return !needle || keys[i].indexOf(needle) >= 0;
    }
    function compare(a, b) {
      var by = sort.replace(/^-/, ""), down = sort.charAt(0) === "-";
      var x, y;
      if (by === "action") { x = rows[a].a; y = rows[b].a; }
      else if (by === "result") { x = rows[a].s; y = rows[b].s; }
      else { x = keys[a]; y = keys[b]; }
      var c = x < y ? -1 : x > y ? 1 : keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : 0;
      return down ? -c : c;
    }
    function remember() {
      var s = new URLSearchParams();
      if (action.value) s.set("action", action.value);
      if (field.value) s.set("field", field.value);
      if (q.value) s.set("q", q.value);
      if (sort !== "user") s.set("sort", sort);
      if (page > 0) s.set("page", page + 1);
      var text = s.toString();
      if (history.replaceState) history.replaceState(null, "", text ? "#" + text : location.pathname);
    }
    function filter() {
      shown = [];
      for (var i = 0; i < rows.length; i++) if (matches(i)) shown.push(i);
      shown.sort(compare);
      var pages = Math.max(1, Math.ceil(shown.length / PAGE));
      if (page >= pages) page = pages - 1;
      draw();
    }
    function draw() {
      var body = $("rows");
      var fresh = document.createDocumentFragment();
      shown.slice(page * PAGE, page * PAGE + PAGE).forEach(function (i) {
        var r = rows[i];
        var tr = el("tr");
        var user = el("td"); user.appendChild(bdi(r.u));
        if (r.id) { user.appendChild(el("br")); user.appendChild(el("small", r.id, "none")); }
        tr.appendChild(user);
        var a = el("td"); a.appendChild(el("span", r.a, "a a-" + r.a)); tr.appendChild(a);
        tr.appendChild(el("td", r.s, r.s === "failed" ? "bad" : ""));
        tr.appendChild(details(r));
        fresh.appendChild(tr);
      });
      body.replaceChildren(fresh);
      var pages = Math.max(1, Math.ceil(shown.length / PAGE));
      $("shown").textContent = shown.length + " of " + rows.length + " users shown";
      $("shown").setAttribute("data-count", String(shown.length));
      $("page").textContent = "page " + (page + 1) + " of " + pages;
      $("prev").disabled = page === 0;
      $("next").disabled = page + 1 >= pages;
      Array.prototype.forEach.call(document.querySelectorAll("th button"), function (b) {
        var by = b.getAttribute("data-sort");
        b.setAttribute("aria-sort", sort === by ? "ascending" : sort === "-" + by ? "descending" : "none");
      });
      remember();
    }
    var timer = null;
    function later() { clearTimeout(timer); timer = setTimeout(function () { page = 0; filter(); }, 150); }
    action.addEventListener("change", function () { page = 0; filter(); });
    field.addEventListener("change", function () { page = 0; filter(); });
    q.addEventListener("input", later);
    $("filters").addEventListener("submit", function (e) { e.preventDefault(); });
    $("prev").addEventListener("click", function () { page--; draw(); });
    $("next").addEventListener("click", function () { page++; draw(); });
    Array.prototype.forEach.call(document.querySelectorAll("th button"), function (b) {
      b.addEventListener("click", function () {
        var by = b.getAttribute("data-sort");
        sort = sort === by ? "-" + by : by;
        filter();
      });
    });
    filter();
  }

  function small(id, items, cells) {
    if (!items || !items.length) return;
    show(id + "-section");
    var body = $(id);
    items.forEach(function (item) {
      var tr = el("tr");
      cells(item).forEach(function (c) { var td = el("td"); td.appendChild(bdi(c)); tr.appendChild(td); });
      body.appendChild(tr);
    });
  }

  function runs() {
    var list = (data.runs || []).slice().reverse();
    if (!list.length) return;
    show("history-section");
    var target = $("history");
    columns(target, "chart-actions", "Users by action", list,
      ["created", "updated", "deactivated", "reactivated", "skipped", "failed"],
      function (r, k) { return r.counts ? r.counts[k] : 0; });
    columns(target, "chart-seconds", "Duration (seconds)", list, ["seconds"],
      function (r) { return r.seconds; });
    columns(target, "chart-failures", "Failed writes", list, ["failed"],
      function (r) { return r.counts ? r.counts.failed : 0; });
    columns(target, "chart-history-requests", "Requests", list, ["graph", "target"],
      function (r, k) { return r.requests ? r.requests[k] : 0; });
  }

  function report() {
    var r = data.report;
    if (!r) return;
    show("report-section");
    var c = r.counts || {};
    facts($("report"), [["File", r.file], ["Started", r.started], ["Outcome", r.status],
      ["Exit code", r.exit_code], ["Message", r.message],
      ["Counts", Object.keys(c).map(function (k) { return k + " " + c[k]; }).join(", ")],
      ["Requests", r.requests ? "Graph " + r.requests.graph + ", target " + r.requests.target : null],
      ["Failures", (r.failures || []).length || null]]);
    var q = r.requests;
    if (q) bars($("report-chart"), "chart-requests", [["graph", q.graph || 0],
      ["target", q.target || 0], ["target writes", q.target_writes || 0],
      ["retries", (q.graph_retries || 0) + (q.target_retries || 0)]]);
  }

  header();
  if (data.counts) {
    show("counts-section");
    bars($("counts"), "chart-counts", data.counts);
  }
  if (data.rows) users();
  small("entities", data.entities, function (e) {
    return [e.kind, e.name, e.error ? "failed: " + e.error : e.id ? "created, id " + e.id : "to create"];
  });
  small("unresolved", data.unresolved, function (u) { return [u.user, u.field, u.names, u.reason]; });
  if (data.notes && data.notes.length) {
    show("notes-section");
    data.notes.forEach(function (n) { $("notes").appendChild(el("li", n)); });
  }
  runs();
  report();
  document.body.setAttribute("data-ready", "1");
})();
