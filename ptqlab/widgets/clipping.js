// ClippingExplorer view: histogram + two draggable thresholds; numbers from Python's `stats` trait.

const MARKER_COLORS = ["#7b3294", "#1b9e77", "#d95f02", "#e7298a", "#66a61e", "#a6761d"];

function render({ model, el }) {
  const frame = rangeFrame(model, el, {
    cls: "ptq-clipping",
    width: 680,
    height: 304,
    margin: { left: 58, right: 18, top: 54, bottom: 46 },
    title: "Histogram of x: drag the clipping thresholds lo and hi",
    layers: ["back", "bars", "axes", "marks"],
  });
  const { back, bars, axes, marks } = frame.layers;
  const { top, bottom, panel, send } = frame;

  // --- readout ---------------------------------------------------------------------------------
  const logBox = checkbox(frame.controls, "log counts", "ptq-input-log", (checked) => send({ log_counts: checked }));
  const qrow = htmlEl("div", { class: "ptq-row ptq-qparams" }, panel);
  const table = htmlEl("div", { class: "ptq-stats" }, panel);
  const cells = {};
  for (const [key, label] of [
    ["rounding_mse", "rounding MSE"],
    ["clipping_mse", "clipping MSE"],
    ["total_mse", "total MSE"],
    ["sqnr_db", "SQNR (dB)"],
    ["clipped_fraction", "clipped"],
  ]) {
    const cell = htmlEl("div", { class: "ptq-stat" }, table);
    htmlEl("div", { class: "ptq-stat-label" }, cell, label);
    cells[key] = htmlEl("div", { class: `ptq-stat-value ptq-stat-${key}` }, cell);
  }
  const split = htmlEl("div", { class: "ptq-split", title: "share of the total MSE" }, panel);
  const splitRound = htmlEl("div", { class: "ptq-split-rounding" }, split);
  const splitClip = htmlEl("div", { class: "ptq-split-clipping" }, split);
  const markerRow = htmlEl("div", { class: "ptq-row ptq-markers" }, panel);
  const errorBox = htmlEl("div", { class: "ptq-error", role: "alert" }, panel);

  // The x domain covers the data, 0 and every marker, padded by 4 %.
  function domain() {
    const edges = model.get("edges");
    const values = [edges[0], edges[edges.length - 1], 0];
    for (const m of model.get("markers")) values.push(m.lo, m.hi);
    const a = Math.min(...values);
    const b = Math.max(...values);
    const pad = 0.04 * (b - a || 1);
    return [a - pad, b + pad];
  }

  function drawHistogram() {
    frame.setDomain(...domain());
    const { d0, d1, x: xs } = frame;
    const edges = model.get("edges");
    const counts = model.get("counts");
    const log = model.get("log_counts");
    const h = (c) => (log ? Math.log10(1 + c) : c);
    const cmax = Math.max(1, ...counts.map(h));
    const ys = linear(0, cmax, bottom, top);
    const st = model.get("stats");
    clear(back);
    clear(bars);
    clear(axes);
    const gl = Math.max(d0, Math.min(d1, st.grid_lo));
    const gh = Math.max(d0, Math.min(d1, st.grid_hi));
    svgEl("rect", { class: "ptq-clip-zone", x: xs(d0), y: top, width: xs(gl) - xs(d0), height: bottom - top }, back);
    svgEl("rect", { class: "ptq-clip-zone", x: xs(gh), y: top, width: xs(d1) - xs(gh), height: bottom - top }, back);
    svgEl("rect", { class: "ptq-grid-zone", x: xs(gl), y: top, width: xs(gh) - xs(gl), height: bottom - top }, back);
    counts.forEach((c, i) => {
      if (c <= 0) return;
      const mid = 0.5 * (edges[i] + edges[i + 1]);
      const clipped = mid < st.grid_lo || mid > st.grid_hi;
      const x0 = xs(edges[i]);
      const width = Math.max(0.8, xs(edges[i + 1]) - x0 - 0.3);
      svgEl(
        "rect",
        { class: clipped ? "ptq-bar ptq-bar-clipped" : "ptq-bar", x: x0, y: ys(h(c)), width, height: bottom - ys(h(c)) },
        bars,
      );
    });
    xAxis(axes, xs, d0, d1, bottom, "value x (blue: kept on the grid, red: clipped)");
    let tv;
    let labels;
    if (log) {
      tv = [0];
      labels = ["0"];
      for (let p = 0; p <= cmax; p++) {
        tv.push(Math.log10(1 + Math.pow(10, p)));
        labels.push(p < 4 ? String(Math.pow(10, p)) : `1e${p}`);
      }
    } else {
      tv = ticks(0, cmax, 4);
      labels = tv.map((t) => fmt(t, 3));
    }
    yAxis(axes, ys, tv, labels, frame.M.left, top, bottom, log ? "count (log scale)" : "count");
  }

  function drawMarkers() {
    const xs = frame.x;
    clear(marks);
    clear(markerRow);
    const list = model.get("markers");
    if (list.length) htmlEl("span", { class: "ptq-muted" }, markerRow, "observers (click to use):");
    list.forEach((m, i) => {
      const color = MARKER_COLORS[i % MARKER_COLORS.length];
      for (const v of [m.lo, m.hi]) {
        const x = xs(v);
        svgEl("line", { class: "ptq-marker", x1: x, x2: x, y1: top, y2: bottom, stroke: color }, marks);
        svgEl("path", { d: `M${x},${bottom} l-5,8 h10 z`, fill: color }, marks);
      }
      const label = svgEl("text", { class: "ptq-marker-label", x: xs(m.hi) - 3, y: top + 12 + 12 * i, fill: color }, marks);
      label.setAttribute("text-anchor", "end");
      label.textContent = m.name;
      const button = htmlEl("button", { class: "ptq-marker-button", style: `border-color:${color};color:${color}` }, markerRow);
      button.textContent = `${m.name}: [${fmt(m.lo)}, ${fmt(m.hi)}]`;
      button.addEventListener("click", () => send({ lo: m.lo, hi: m.hi }));
    });
  }

  function placeHandles() {
    frame.placeHandles();
    logBox.checked = model.get("log_counts");
  }

  function updateReadout() {
    const st = model.get("stats");
    qrow.textContent = qparamsText(st);
    for (const [key, node] of Object.entries(cells)) {
      const v = st[key];
      node.dataset.value = v === null ? "inf" : String(v);
      const approx = st.exact === false ? "≈ " : ""; // large tensors: estimates from a fine histogram
      node.textContent = approx + (key === "clipped_fraction" ? `${fmt(100 * v, 3)} %` : fmt(v));
      node.title = st.exact === false ? "estimated from a 65536-bin histogram of x (large tensor)" : "exact";
    }
    const total = st.total_mse > 0 ? st.total_mse : 1;
    splitRound.style.width = `${(100 * st.rounding_mse) / total}%`;
    splitClip.style.width = `${(100 * st.clipping_mse) / total}%`;
    splitRound.textContent = st.rounding_mse / total > 0.12 ? "rounding" : "";
    splitClip.textContent = st.clipping_mse / total > 0.12 ? "clipping" : "";
    errorBox.textContent = errorText(model);
  }

  function redrawAll() {
    drawHistogram();
    drawMarkers();
    placeHandles();
    updateReadout();
  }
  redrawAll();
  const onStats = () => {
    drawHistogram();
    updateReadout();
  };
  return listen(model, [
    ["change:edges", redrawAll],
    ["change:counts", redrawAll],
    ["change:markers", redrawAll],
    ["change:log_counts", redrawAll],
    ["change:stats", onStats],
    ["change:lo", placeHandles],
    ["change:hi", placeHandles],
    ["change:bits", placeHandles],
    ["change:error", updateReadout],
  ]);
}

export default { render };
