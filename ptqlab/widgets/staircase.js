// AffineStaircase view: x -> fake_quantize(x) as a staircase over the integer grid; drag the range ends.

function render({ model, el }) {
  const frame = rangeFrame(model, el, {
    cls: "ptq-staircase",
    width: 680,
    height: 344,
    margin: { left: 58, right: 60, top: 54, bottom: 46 },
    title: "x̂ = fake_quantize(x): drag the range ends lo and hi",
    layers: ["back", "plot"],
  });
  const { back, plot } = frame.layers;
  const { top, bottom, panel, send, W, M } = frame;
  const symBox = checkbox(frame.controls, "symmetric", "ptq-input-symmetric", (checked) => send({ symmetric: checked }));
  const qrow = htmlEl("div", { class: "ptq-row ptq-qparams" }, panel);
  const errorBox = htmlEl("div", { class: "ptq-error", role: "alert" }, panel);

  function draw() {
    const xsv = model.get("xs");
    const ysv = model.get("ys");
    const grid = model.get("grid");
    const st = model.get("stats");
    const d0 = xsv[0];
    const d1 = xsv[xsv.length - 1];
    frame.setDomain(d0, d1);
    const sx = frame.x;
    const sy = linear(d0, d1, bottom, top);
    clear(back);
    clear(plot);
    const clampY = (v) => Math.max(d0, Math.min(d1, v));
    const g0 = sy(clampY(st.grid_lo));
    const g1 = sy(clampY(st.grid_hi));
    svgEl("rect", { class: "ptq-grid-zone", x: M.left, y: g1, width: W - M.right - M.left, height: g0 - g1 }, back);
    // integer grid: a line per level (when they are far enough apart), codes on the right axis
    const spacing = grid.length > 1 ? Math.abs(sy(grid[1]) - sy(grid[0])) : 0;
    const every = spacing > 0 ? Math.max(1, Math.ceil(14 / spacing)) : 1;
    grid.forEach((v, i) => {
      if (v < d0 || v > d1) return;
      const code = st.qmin + i;
      const isZero = code === st.zero_point;
      if (spacing >= 3 || isZero) {
        svgEl("line", { class: isZero ? "ptq-gridline ptq-zero" : "ptq-gridline", x1: M.left, x2: W - M.right, y1: sy(v), y2: sy(v) }, back);
      }
      if ((i % every === 0 || isZero) && spacing > 0) {
        svgEl("text", { class: "ptq-code", x: W - M.right + 6, y: sy(v) + 4 }, back).textContent = String(code);
      }
    });
    svgEl("text", { class: "ptq-axis-title", x: 0, y: 0, "text-anchor": "middle", transform: `translate(${W - 8},${(top + bottom) / 2}) rotate(90)` }, back).textContent =
      grid.length ? "integer code q" : "integer codes (too dense to draw)";
    // identity, then the staircase from Python's samples
    svgEl("line", { class: "ptq-identity", x1: sx(d0), y1: sy(d0), x2: sx(d1), y2: sy(d1) }, plot);
    let d = `M${sx(xsv[0])},${sy(ysv[0])}`;
    for (let i = 1; i < xsv.length; i++) {
      if (ysv[i] !== ysv[i - 1]) {
        const mid = sx(0.5 * (xsv[i - 1] + xsv[i]));
        d += ` H${mid} V${sy(ysv[i])}`;
      }
    }
    d += ` H${sx(xsv[xsv.length - 1])}`;
    svgEl("path", { class: "ptq-stairs", d }, plot);
    xAxis(plot, sx, d0, d1, bottom, "input x");
    const tv = ticks(d0, d1, 6);
    yAxis(plot, sy, tv, tv.map((t) => fmt(t, 3)), M.left, top, bottom, "fake_quantize(x)");
    qrow.textContent = qparamsText(st, st.levels);
    qrow.dataset.scale = String(st.scale);
    qrow.dataset.zeroPoint = String(st.zero_point);
  }

  function placeHandles() {
    frame.placeHandles();
    symBox.checked = model.get("symmetric");
  }

  function showError() {
    errorBox.textContent = errorText(model);
  }

  draw();
  placeHandles();
  showError();
  return listen(model, [
    ["change:ys", draw],
    ["change:grid", draw],
    ["change:stats", draw],
    ["change:xs", draw],
    ["change:lo", placeHandles],
    ["change:hi", placeHandles],
    ["change:bits", placeHandles],
    ["change:symmetric", placeHandles],
    ["change:error", showError],
  ]);
}

export default { render };
