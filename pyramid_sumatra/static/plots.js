/* Sumatra Server: scatter and parallel-coordinate plots of a project's records.
 *
 * Reads @@plotdata (the records the page's filter selects) when the "Plots" section is
 * opened and draws on one canvas (10,000 records stay fast: one path per colour).
 * Colours: the Okabe-Ito palette for categories, a viridis ramp for numbers (both
 * readable with colour-blindness). No library, nothing from the network.
 */
(function () {
  "use strict";
  var PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];
  var OTHER = "#8a8a8a";  // categories past the palette, and missing values
  var RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  var INK = "#1f2933", MUTED = "#52606d", GRID = "#e1e6ec", FOCUS = "#1a56db";
  var MAX_COMPARE = 12, MAX_TAG_COLUMNS = 20;

  var $ = function (sel) { return document.querySelector(sel); };
  var section, canvas, ctx, data = null, columns = [], byKey = {};
  var state = {kind: "scatter", x: null, y: null, colour: "", axes: [], brushes: {},
               selected: {}, focus: -1};
  var narrow = false;  // a phone-width plot: shorter tick labels
  var layout = null;  // what the last draw put where: for hits, brushes and the keyboard

  /* -- columns: every field and parameter as a typed array ---------------------------- */

  function column(key, name, group, kind, values) {
    var n = values.length, col = {key: key, name: name, group: group, kind: kind};
    if (kind === "categorical") {
      var counts = {};
      values.forEach(function (v) { if (v !== null && v !== undefined) { v = String(v); counts[v] = (counts[v] || 0) + 1; } });
      // Most frequent first: they get the palette's distinct colours.
      col.categories = Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a] || (a < b ? -1 : 1); });
      var code = {};
      col.categories.forEach(function (c, i) { code[c] = i; });
      col.codes = new Int32Array(n);
      for (var i = 0; i < n; i++) { var v = values[i]; col.codes[i] = (v === null || v === undefined) ? -1 : code[String(v)]; }
      col.count = values.filter(function (v) { return v !== null && v !== undefined; }).length;
      // Axis order: natural (numbers as numbers), not by frequency.
      col.order = col.categories.slice().sort(new Intl.Collator(undefined, {numeric: true}).compare)
        .map(function (c) { return code[c]; });
      col.rank = new Int32Array(col.categories.length);
      col.order.forEach(function (c, r) { col.rank[c] = r; });
    } else {
      col.values = new Float64Array(n);
      var min = Infinity, max = -Infinity, count = 0;
      for (var j = 0; j < n; j++) {
        var x = values[j];
        if (kind === "time" && typeof x === "string") { x = Date.parse(x.replace(" ", "T") + "Z"); }
        if (typeof x !== "number" || !isFinite(x)) { x = NaN; } else { count++; if (x < min) { min = x; } if (x > max) { max = x; } }
        col.values[j] = x;
      }
      if (!count) { min = 0; max = 1; } else if (min === max) { var pad = Math.abs(min) * 0.1 || 1; min -= pad; max += pad; }
      col.min = min; col.max = max; col.count = count;
    }
    col.varying = kind === "categorical" ? col.categories.length > 1 : col.count > 0 && col.min !== col.max && col.count > 1;
    return col;
  }

  function buildColumns() {
    var records = data.records, tagCounts = {};
    columns = []; byKey = {};
    var add = function (col) { if (col.count > 0) { columns.push(col); byKey[col.key] = col; } };
    Object.keys(data.parameters).forEach(function (name) {
      add(column("p:" + name, name, "Parameters", data.parameters[name],
                 records.map(function (r) { var v = r.parameters[name]; return v === undefined ? null : v; })));
    });
    Object.keys(data.fields).forEach(function (name) {
      add(column("f:" + name, name, "Fields", data.fields[name], records.map(function (r) { return r[name]; })));
    });
    records.forEach(function (r) { r.tags.forEach(function (t) { tagCounts[t] = (tagCounts[t] || 0) + 1; }); });
    Object.keys(tagCounts).sort(function (a, b) { return tagCounts[b] - tagCounts[a]; }).slice(0, MAX_TAG_COLUMNS)
      .forEach(function (t) {
        add(column("t:" + t, "tag " + t, "Tags", "categorical",
                   records.map(function (r) { return r.tags.indexOf(t) >= 0 ? "with " + t : "without"; })));
      });
  }

  /* Position of record i on a column, 0 (bottom/left) to 1, or NaN when it has no value. */
  function position(col, i, jitter) {
    if (col.kind === "categorical") {
      var c = col.codes[i];
      if (c < 0) { return NaN; }
      var n = col.categories.length, spread = jitter ? (((i * 2654435761) % 1000) / 1000 - 0.5) * 0.6 : 0;
      return (col.rank[c] + 0.5 + spread) / n;
    }
    var v = col.values[i];
    return (v - col.min) / (col.max - col.min);
  }

  function valueText(col, i) {
    if (col.kind === "categorical") { return col.codes[i] < 0 ? "—" : col.categories[col.codes[i]]; }
    var v = col.values[i];
    if (isNaN(v)) { return "—"; }
    return col.kind === "time" ? new Date(v).toISOString().slice(0, 19).replace("T", " ") : format(v);
  }

  function format(v) {
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) { return v.toExponential(2); }
    return String(Math.round(v * 1e4) / 1e4);
  }

  /* -- colours ----------------------------------------------------------------------- */

  function ramp(t) {
    t = Math.max(0, Math.min(1, t)) * (RAMP.length - 1);
    var k = Math.min(Math.floor(t), RAMP.length - 2), f = t - k, a = RAMP[k], b = RAMP[k + 1];
    return "rgb(" + [0, 1, 2].map(function (j) { return Math.round(a[j] + (b[j] - a[j]) * f); }).join(",") + ")";
  }

  function colourOf(i) {
    var col = byKey[state.colour];
    if (!col) { return PALETTE[0]; }
    if (col.kind === "categorical") { var c = col.codes[i]; return c < 0 || c >= PALETTE.length ? OTHER : PALETTE[c]; }
    var v = col.values[i];
    if (isNaN(v)) { return OTHER; }
    return ramp((v - col.min) / (col.max - col.min));  // binned below: few distinct strings
  }

  function binnedColour(i) {
    var col = byKey[state.colour];
    if (col && col.kind !== "categorical" && !isNaN(col.values[i])) {
      var t = (col.values[i] - col.min) / (col.max - col.min);
      return ramp(Math.round(t * 24) / 24);
    }
    return colourOf(i);
  }

  function legend() {
    var list = $("#plot-legend"), col = byKey[state.colour];
    list.textContent = "";
    var item = function (colour, text) {
      var li = document.createElement("li"), swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour;  // CSSOM, allowed by the style-src policy
      li.appendChild(swatch);
      li.appendChild(document.createTextNode(text));
      list.appendChild(li);
    };
    if (!col) { list.hidden = true; return; }
    list.hidden = false;
    if (col.kind === "categorical") {
      col.categories.slice(0, PALETTE.length).forEach(function (c, k) { item(PALETTE[k], c); });
      if (col.categories.length > PALETTE.length) { item(OTHER, (col.categories.length - PALETTE.length) + " other values"); }
    } else {
      [0, 0.25, 0.5, 0.75, 1].forEach(function (t) {
        var v = col.min + t * (col.max - col.min);
        item(ramp(t), col.kind === "time" ? new Date(v).toISOString().slice(0, 10) : format(v));
      });
    }
    if (col.count < data.records.length) { item(OTHER, "no value"); }
  }

  /* -- axes -------------------------------------------------------------------------- */

  function niceTicks(min, max, count) {
    var span = max - min, step = Math.pow(10, Math.floor(Math.log10(span / count)));
    var err = span / count / step;
    step *= err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1;
    var ticks = [];
    for (var v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) { ticks.push(v); }
    return ticks;
  }

  /* Ticks of a column as [position 0..1, text], at most about `room` of them. */
  function ticks(col, room) {
    room = Math.max(2, Math.floor(room));
    if (col.kind === "categorical") {
      var n = col.categories.length, every = Math.ceil(n / room), out = [];
      for (var r = 0; r < n; r += every) { out.push([(r + 0.5) / n, col.categories[col.order[r]]]); }
      return out;
    }
    var days = (col.max - col.min) / 864e5;
    return niceTicks(col.min, col.max, Math.min(room, 6)).map(function (v) {
      var from = days > 2 ? (narrow && days < 300 ? 5 : 0) : 5, to = days > 2 ? 10 : 16;
      var text = col.kind !== "time" ? format(v) : new Date(v).toISOString().slice(from, to).replace("T", " ");
      return [(v - col.min) / (col.max - col.min), text];
    });
  }

  /* Text with a white halo: readable over the lines it crosses. */
  function halo(text, x, y, colour) {
    ctx.save(); ctx.lineWidth = 3; ctx.strokeStyle = "#fff"; ctx.lineJoin = "round";
    ctx.strokeText(text, x, y); ctx.fillStyle = colour; ctx.fillText(text, x, y); ctx.restore();
  }

  function clip(text, px) {
    var max = Math.max(3, Math.floor(px / 6.2));
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  /* -- drawing ----------------------------------------------------------------------- */

  function size() {
    var width = Math.max(240, $("#plot-wrap").clientWidth), phone = width < 560;
    var height = Math.round(Math.max(280, Math.min(520, width * (phone ? 0.95 : 0.5))));
    var ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio); canvas.height = Math.round(height * ratio);
    canvas.style.width = width + "px"; canvas.style.height = height + "px";
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return {width: width, height: height, phone: phone};
  }

  function draw() {
    if (!data) { return; }
    var started = performance.now(), box = size();
    narrow = box.phone;
    ctx.clearRect(0, 0, box.width, box.height);
    ctx.font = (box.phone ? 10 : 11) + "px system-ui, sans-serif";
    var drawn = state.kind === "scatter" ? drawScatter(box) : drawParallel(box);
    canvas.setAttribute("data-draw-ms", (performance.now() - started).toFixed(1));
    canvas.setAttribute("data-points", String(drawn));
    canvas.setAttribute("data-kind", state.kind);
    describe(drawn);
  }

  function groups(indices) {
    var by = {};
    indices.forEach(function (i) { var c = binnedColour(i); (by[c] = by[c] || []).push(i); });
    return by;
  }

  function anySelected() { for (var k in state.selected) { if (state.selected[k]) { return true; } } return false; }

  function drawScatter(box) {
    var cx = byKey[state.x], cy = byKey[state.y];
    if (!cx || !cy) { return 0; }
    var m = {left: box.phone ? 46 : 66, right: 12, top: 12, bottom: box.phone ? 40 : 44};
    var w = box.width - m.left - m.right, h = box.height - m.top - m.bottom;
    var n = data.records.length, px = new Float32Array(n), py = new Float32Array(n), shown = [];
    for (var i = 0; i < n; i++) {
      var fx = position(cx, i, true), fy = position(cy, i, true);
      if (isNaN(fx) || isNaN(fy)) { px[i] = py[i] = NaN; continue; }
      px[i] = m.left + fx * w; py[i] = m.top + (1 - fy) * h; shown.push(i);
    }
    // Grid and ticks.
    ctx.strokeStyle = GRID; ctx.fillStyle = MUTED; ctx.lineWidth = 1;
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    ticks(cx, w / 70).forEach(function (t) {
      var x = m.left + t[0] * w;
      ctx.beginPath(); ctx.moveTo(x, m.top); ctx.lineTo(x, m.top + h); ctx.stroke();
      ctx.fillText(clip(t[1], 80), x, m.top + h + 4);
    });
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    ticks(cy, h / 28).forEach(function (t) {
      var y = m.top + (1 - t[0]) * h;
      ctx.beginPath(); ctx.moveTo(m.left, y); ctx.lineTo(m.left + w, y); ctx.stroke();
      ctx.fillText(clip(t[1], m.left - 8), m.left - 5, y);
    });
    ctx.strokeStyle = INK; ctx.strokeRect(m.left, m.top, w, h);
    ctx.fillStyle = INK; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    ctx.fillText(clip(cx.name, w), m.left + w / 2, box.height - 2);
    // Points: one path per colour.
    var r = box.phone ? 2.5 : 3, by = groups(shown);
    ctx.globalAlpha = shown.length > 2000 ? 0.75 : 0.9;
    Object.keys(by).forEach(function (colour) {
      ctx.fillStyle = colour; ctx.beginPath();
      by[colour].forEach(function (i) { ctx.moveTo(px[i] + r, py[i]); ctx.arc(px[i], py[i], r, 0, 6.2832); });
      ctx.fill();
    });
    ctx.globalAlpha = 1;
    ctx.strokeStyle = INK; ctx.lineWidth = 2; ctx.beginPath();
    shown.forEach(function (i) { if (state.selected[i]) { ctx.moveTo(px[i] + r + 2, py[i]); ctx.arc(px[i], py[i], r + 2, 0, 6.2832); } });
    ctx.stroke();
    layout = {kind: "scatter", m: m, w: w, h: h, px: px, py: py, shown: shown,
              order: shown.slice().sort(function (a, b) { return px[a] - px[b] || py[b] - py[a]; })};
    drawFocus();
    // The y title last, rotated, over the tick labels' margin.
    ctx.save(); ctx.translate(11, m.top + h / 2); ctx.rotate(-Math.PI / 2);
    ctx.fillStyle = INK; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    ctx.fillText(clip(cy.name, h), 0, 0); ctx.restore();
    return shown.length;
  }

  function drawParallel(box) {
    var axes = state.axes.map(function (k) { return byKey[k]; }).filter(Boolean);
    if (axes.length < 2) { layout = null; return 0; }
    var m = {left: box.phone ? 34 : 56, right: box.phone ? 40 : 84, top: 40, bottom: 14};
    var w = box.width - m.left - m.right, h = box.height - m.top - m.bottom;
    var gap = w / (axes.length - 1), ax = axes.map(function (a, j) { return m.left + j * gap; });
    var n = data.records.length, ys = axes.map(function () { return new Float32Array(n); });
    var shown = [];
    for (var i = 0; i < n; i++) {
      var any = 0;
      for (var j = 0; j < axes.length; j++) {
        var f = position(axes[j], i, false);
        ys[j][i] = isNaN(f) ? NaN : m.top + (1 - f) * h;
        if (!isNaN(f)) { any++; }
      }
      if (any >= 2) { shown.push(i); }
    }
    var selecting = anySelected();
    var polyline = function (i) {
      var open = false;
      for (var j = 0; j < axes.length; j++) {
        var y = ys[j][i];
        if (isNaN(y)) { open = false; continue; }
        if (open) { ctx.lineTo(ax[j], y); } else { ctx.moveTo(ax[j], y); open = true; }
      }
    };
    ctx.lineWidth = 1;
    ctx.globalAlpha = shown.length > 2000 ? 0.3 : 0.75;
    var background = selecting ? shown.filter(function (i) { return !state.selected[i]; }) : [];
    if (background.length) {
      ctx.strokeStyle = "#c3cad3"; ctx.beginPath(); background.forEach(polyline); ctx.stroke();
    }
    var front = selecting ? shown.filter(function (i) { return state.selected[i]; }) : shown, by = groups(front);
    if (selecting) { ctx.globalAlpha = 0.9; ctx.lineWidth = 1.6; }
    Object.keys(by).forEach(function (colour) {
      ctx.strokeStyle = colour; ctx.beginPath(); by[colour].forEach(polyline); ctx.stroke();
    });
    ctx.globalAlpha = 1;
    // Axes, their ticks and names (names on two rows so neighbours do not overlap).
    axes.forEach(function (col, j) {
      var x = ax[j], brush = state.brushes[col.key];
      if (brush) {
        ctx.fillStyle = "rgba(26,86,219,0.18)"; ctx.strokeStyle = FOCUS; ctx.lineWidth = 1.5;
        var top = m.top + (1 - brush[1]) * h, bottom = m.top + (1 - brush[0]) * h;
        ctx.fillRect(x - 9, top, 18, bottom - top); ctx.strokeRect(x - 9, top, 18, bottom - top);
      }
      ctx.strokeStyle = INK; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(x, m.top); ctx.lineTo(x, m.top + h); ctx.stroke();
      ctx.fillStyle = MUTED; ctx.textBaseline = "middle";
      var right = j === axes.length - 1;
      ctx.textAlign = right ? "left" : "right";
      ticks(col, h / 26).forEach(function (t) {
        var y = m.top + (1 - t[0]) * h;
        ctx.beginPath(); ctx.moveTo(x - 3, y); ctx.lineTo(x + 3, y); ctx.stroke();
        halo(clip(t[1], right ? m.right - 8 : Math.min(gap - 12, m.left + 20)), right ? x + 5 : x - 5, y, MUTED);
      });
      ctx.fillStyle = INK; ctx.textAlign = j === 0 ? "left" : right ? "right" : "center";
      ctx.textBaseline = "bottom";
      halo(clip(col.name, Math.max(gap * 1.8, 40)), j === 0 ? x - 8 : right ? x + 8 : x, j % 2 ? 34 : 18, INK);
    });
    layout = {kind: "parallel", m: m, w: w, h: h, ax: ax, ys: ys, axes: axes, shown: shown,
              order: shown.slice().sort(function (a, b) { return (ys[0][a] || 0) - (ys[0][b] || 0); })};
    drawFocus();
    return shown.length;
  }

  function drawFocus() {
    var i = state.focus;
    if (!layout || i < 0 || layout.order.indexOf(i) < 0) { return; }
    ctx.strokeStyle = FOCUS; ctx.lineWidth = 3;
    ctx.beginPath();
    if (layout.kind === "scatter") {
      ctx.arc(layout.px[i], layout.py[i], 8, 0, 6.2832);
    } else {
      var open = false;
      layout.ax.forEach(function (x, j) {
        var y = layout.ys[j][i];
        if (isNaN(y)) { open = false; return; }
        if (open) { ctx.lineTo(x, y); } else { ctx.moveTo(x, y); open = true; }
      });
    }
    ctx.stroke();
  }

  function describe(drawn) {
    var total = data.total === null ? data.count : data.total, status = $("#plot-status");
    var what = state.kind === "scatter"
      ? "Scatter plot of " + (byKey[state.y] || {}).name + " against " + (byKey[state.x] || {}).name
      : "Parallel coordinates over " + state.axes.map(function (k) { return (byKey[k] || {}).name; }).join(", ");
    if (byKey[state.colour]) { what += ", coloured by " + byKey[state.colour].name; }
    canvas.setAttribute("aria-label", what + ": " + drawn + " records.");
    status.textContent = drawn + " of " + data.count + " records plotted" +
      (drawn < data.count ? " (the others lack a value)" : "") +
      (data.next ? "; only the first " + data.count + " of " + total + " records are plotted (narrow the filter)." : ".");
    if (state.kind === "parallel" && state.axes.length < 2) { status.textContent = "Choose two or more axes."; }
  }

  /* -- selection, hits, keyboard ------------------------------------------------------ */

  function selectedLabels() {
    return data.records.filter(function (r, i) { return state.selected[i]; }).map(function (r) { return r.label; });
  }

  function selectionChanged() {
    var labels = selectedLabels(), link = $("#plot-compare");
    $("#plot-selected-count").textContent = labels.length;
    link.hidden = labels.length < 2;
    link.href = section.getAttribute("data-compare") + "?labels=" +
      encodeURIComponent(labels.slice(0, MAX_COMPARE).join(","));
    link.textContent = labels.length > MAX_COMPARE ? "Compare the first " + MAX_COMPARE : "Compare selected";
    draw();
  }

  function recordUrl(i) {
    return section.getAttribute("data-records") + encodeURIComponent(data.records[i].label) + "/";
  }

  function hit(x, y) {
    if (!layout) { return -1; }
    var best = -1, bestD = 64;  // within 8 px
    if (layout.kind === "scatter") {
      layout.shown.forEach(function (i) {
        var dx = layout.px[i] - x, dy = layout.py[i] - y, d = dx * dx + dy * dy;
        if (d < bestD) { best = i; bestD = d; }
      });
      return best;
    }
    var ax = layout.ax, j = 0;
    while (j < ax.length - 2 && x > ax[j + 1]) { j++; }
    if (x < ax[0] - 8 || x > ax[ax.length - 1] + 8) { return -1; }
    var t = Math.max(0, Math.min(1, (x - ax[j]) / (ax[j + 1] - ax[j])));
    layout.shown.forEach(function (i) {
      var y0 = layout.ys[j][i], y1 = layout.ys[j + 1][i];
      if (isNaN(y0) || isNaN(y1)) { return; }
      var d = Math.pow(y0 + t * (y1 - y0) - y, 2);
      if (d < bestD) { best = i; bestD = d; }
    });
    return best;
  }

  function point(event) {
    var rect = canvas.getBoundingClientRect();
    return {x: event.clientX - rect.left, y: event.clientY - rect.top};
  }

  function nearAxis(p) {
    if (!layout || layout.kind !== "parallel") { return -1; }
    for (var j = 0; j < layout.ax.length; j++) { if (Math.abs(p.x - layout.ax[j]) < 14) { return j; } }
    return -1;
  }

  function pointer() {
    var start = null, moved = false;
    canvas.addEventListener("pointerdown", function (e) {
      if (e.button !== 0) { return; }
      start = point(e); start.shift = e.shiftKey; start.axis = nearAxis(start); moved = false;
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener("pointermove", function (e) {
      if (!start) { return; }
      var p = point(e);
      if (!moved && Math.abs(p.x - start.x) + Math.abs(p.y - start.y) < 5) { return; }
      moved = true;
      draw();
      if (layout && layout.kind === "scatter") {
        ctx.strokeStyle = FOCUS; ctx.fillStyle = "rgba(26,86,219,0.12)"; ctx.lineWidth = 1.5;
        ctx.fillRect(start.x, start.y, p.x - start.x, p.y - start.y);
        ctx.strokeRect(start.x, start.y, p.x - start.x, p.y - start.y);
      } else if (start.axis >= 0) {
        var x = layout.ax[start.axis];
        ctx.fillStyle = "rgba(26,86,219,0.18)";
        ctx.fillRect(x - 9, Math.min(start.y, p.y), 18, Math.abs(p.y - start.y));
      }
    });
    canvas.addEventListener("pointerup", function (e) {
      if (!start) { return; }
      var p = point(e), s = start;
      start = null;
      if (!moved) { return click(p, s.shift); }
      if (layout.kind === "scatter") { brushBox(s, p, s.shift); } else if (s.axis >= 0) { brushAxis(s.axis, s.y, p.y); }
    });
  }

  function click(p, shift) {
    var i = hit(p.x, p.y);
    if (i < 0) {
      var j = nearAxis(p);
      if (j >= 0 && state.brushes[layout.axes[j].key]) { delete state.brushes[layout.axes[j].key]; applyBrushes(); }
      return;
    }
    if (shift) { state.selected[i] = !state.selected[i]; state.focus = i; selectionChanged(); return; }
    window.location.href = recordUrl(i);
  }

  function brushBox(a, b, add) {
    var x0 = Math.min(a.x, b.x), x1 = Math.max(a.x, b.x), y0 = Math.min(a.y, b.y), y1 = Math.max(a.y, b.y);
    if (!add) { state.selected = {}; }
    layout.shown.forEach(function (i) {
      var x = layout.px[i], y = layout.py[i];
      if (x >= x0 && x <= x1 && y >= y0 && y <= y1) { state.selected[i] = true; }
    });
    selectionChanged();
  }

  function brushAxis(j, ya, yb) {
    var m = layout.m, h = layout.h, f = function (y) { return Math.max(0, Math.min(1, 1 - (y - m.top) / h)); };
    state.brushes[layout.axes[j].key] = [Math.min(f(ya), f(yb)), Math.max(f(ya), f(yb))];
    applyBrushes();
  }

  /* Parallel coordinates: the selection is the records inside every axis's brush. */
  function applyBrushes() {
    var keys = Object.keys(state.brushes).filter(function (k) { return byKey[k] && state.axes.indexOf(k) >= 0; });
    state.selected = {};
    if (keys.length) {
      data.records.forEach(function (r, i) {
        var inside = keys.every(function (k) {
          var f = position(byKey[k], i, false), b = state.brushes[k];
          return !isNaN(f) && f >= b[0] - 1e-9 && f <= b[1] + 1e-9;
        });
        if (inside) { state.selected[i] = true; }
      });
    }
    selectionChanged();
  }

  function keyboard() {
    canvas.addEventListener("keydown", function (e) {
      if (!layout || !layout.order.length) { return; }
      var order = layout.order, k = order.indexOf(state.focus);
      var moves = {ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, PageDown: 10, PageUp: -10};
      if (e.key in moves) {
        k = k < 0 ? 0 : Math.max(0, Math.min(order.length - 1, k + moves[e.key]));
      } else if (e.key === "Home" || e.key === "End") {
        k = e.key === "Home" ? 0 : order.length - 1;
      } else if (e.key === "Enter" && state.focus >= 0) {
        window.location.href = recordUrl(state.focus); return;
      } else if (e.key === " " && state.focus >= 0) {
        state.selected[state.focus] = !state.selected[state.focus];
        e.preventDefault(); selectionChanged(); announce(); return;
      } else if (e.key === "Escape") {
        state.selected = {}; state.brushes = {}; selectionChanged(); return;
      } else { return; }
      e.preventDefault();
      state.focus = order[k];
      draw(); announce();
    });
  }

  function announce() {
    var i = state.focus;
    if (i < 0) { return; }
    var keys = state.kind === "scatter" ? [state.x, state.y] : state.axes.slice();
    if (state.colour) { keys.push(state.colour); }
    $("#plot-focus").textContent = data.records[i].label + (state.selected[i] ? " (selected)" : "") + ": " +
      keys.filter(function (k) { return byKey[k]; }).map(function (k) { return byKey[k].name + " = " + valueText(byKey[k], i); }).join(", ");
  }

  /* -- controls ---------------------------------------------------------------------- */

  function fillSelect(select, allowNone) {
    select.textContent = "";
    if (allowNone) { select.appendChild(new Option("(one colour)", "")); }
    ["Parameters", "Fields", "Tags"].forEach(function (group) {
      var cols = columns.filter(function (c) { return c.group === group; });
      if (!cols.length || (group === "Tags" && !allowNone)) { return; }
      var g = document.createElement("optgroup");
      g.label = group;
      cols.forEach(function (c) { g.appendChild(new Option(c.name, c.key)); });
      select.appendChild(g);
    });
  }

  function defaults() {
    var varying = columns.filter(function (c) { return c.varying && c.group !== "Tags"; });
    var numeric = varying.filter(function (c) { return c.kind !== "categorical" && c.group === "Parameters"; });
    var has = function (k) { return byKey[k] ? k : null; };
    state.x = (numeric[0] || byKey["f:timestamp"] || columns[0] || {}).key;
    state.y = has("f:duration") && state.x !== "f:duration" ? "f:duration"
      : ((numeric[1] || varying.filter(function (c) { return c.key !== state.x; })[0] || columns[0] || {}).key);
    var colour = varying.filter(function (c) { return c.kind === "categorical" && c.categories.length <= PALETTE.length && c.group === "Parameters"; })[0];
    state.colour = colour ? colour.key : "";
    var params = varying.filter(function (c) { return c.group === "Parameters" && (c.kind !== "categorical" || c.categories.length <= 30); });
    state.axes = params.slice(0, 5).map(function (c) { return c.key; });
    ["f:duration", "f:timestamp"].forEach(function (k) { if (state.axes.length < 6 && has(k) && byKey[k].varying) { state.axes.push(k); } });
  }

  function controls() {
    var kind = $("#plot-kind"), x = $("#plot-x"), y = $("#plot-y"), colour = $("#plot-colour");
    fillSelect(x, false); fillSelect(y, false); fillSelect(colour, true);
    x.value = state.x || ""; y.value = state.y || ""; colour.value = state.colour;
    var axes = $("#plot-axes");
    Array.prototype.slice.call(axes.querySelectorAll("label")).forEach(function (l) { l.remove(); });
    columns.filter(function (c) { return c.group !== "Tags"; }).forEach(function (c) {
      var label = document.createElement("label"), box = document.createElement("input");
      box.type = "checkbox"; box.value = c.key; box.checked = state.axes.indexOf(c.key) >= 0;
      box.addEventListener("change", function () {
        state.axes = Array.prototype.slice.call(axes.querySelectorAll("input:checked")).map(function (b) { return b.value; });
        applyBrushes();
      });
      label.appendChild(box); label.appendChild(document.createTextNode(" " + c.name));
      axes.appendChild(label);
    });
    var changed = function () {
      state.kind = kind.value; state.x = x.value; state.y = y.value; state.colour = colour.value;
      section.classList.toggle("is-parallel", state.kind === "parallel");
      legend(); draw(); announce();
    };
    if (!controls.bound) {
      [kind, x, y, colour].forEach(function (s) { s.addEventListener("change", changed); });
      $("#plot-clear").addEventListener("click", function () { state.selected = {}; state.brushes = {}; selectionChanged(); });
      controls.bound = true;
    }
    changed();
  }

  /* -- loading ----------------------------------------------------------------------- */

  function load() {
    if (section.getAttribute("data-state")) { return; }
    section.setAttribute("data-state", "loading");
    $("#plot-status").textContent = "Loading the plot data…";
    var started = performance.now();
    fetch(section.getAttribute("data-plotdata"), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) { throw new Error(body.detail || response.statusText); }
          return body;
        });
      })
      .then(function (body) {
        data = body;
        buildColumns(); defaults(); controls(); selectionChanged();
        canvas.setAttribute("data-load-ms", (performance.now() - started).toFixed(1));
        section.setAttribute("data-state", "ready");
      })
      .catch(function (error) {
        section.setAttribute("data-state", "error");
        $("#plot-status").textContent = "Could not load the plot data: " + error.message;
      });
  }

  /* For tests and scripts: where a record's point is (CSS pixels from the canvas's corner). */
  window.SumatraPlot = {
    pointOf: function (label) {
      if (!data || !layout || layout.kind !== "scatter") { return null; }
      for (var i = 0; i < data.records.length; i++) {
        if (data.records[i].label === label && !isNaN(layout.px[i])) { return {x: layout.px[i], y: layout.py[i]}; }
      }
      return null;
    },
    redraw: function () { draw(); return Number(canvas.getAttribute("data-draw-ms")); }
  };

  document.addEventListener("DOMContentLoaded", function () {
    section = $("#plots");
    if (!section) { return; }
    canvas = $("#plot-canvas"); ctx = canvas.getContext("2d");
    pointer(); keyboard();
    section.addEventListener("toggle", function () { if (section.open) { if (data) { draw(); } else { load(); } } });
    if (section.open || window.location.hash === "#plots") { section.open = true; load(); }
    var timer = null;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { if (data && section.open) { draw(); } }, 100);
    });
  });
}());
