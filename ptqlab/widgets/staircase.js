// AffineStaircase view: x -> fake_quantize(x) as a staircase over the integer grid; drag the range ends.

const W = 680;
const H = 344;
const M = { left: 58, right: 60, top: 54, bottom: 46 };

function render({ model, el }) {
  const root = htmlEl("div", { class: "ptq-widget ptq-staircase" }, el);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "ptq-plot", role: "img" }, root);
  svgEl("text", { class: "ptq-title", x: W / 2, y: 14, "text-anchor": "middle" }, svg).textContent =
    "x̂ = fake_quantize(x): drag the range ends lo and hi";
  const back = svgEl("g", {}, svg);
  const plot = svgEl("g", {}, svg);
  const handles = svgEl("g", {}, svg);
  const top = M.top;
  const bottom = H - M.bottom;
  const lo = makeHandle(handles, "lo", top, bottom, "lo");
  const hi = makeHandle(handles, "hi", top, bottom, "hi");

  const panel = htmlEl("div", { class: "ptq-panel" }, root);
  const controls = htmlEl("div", { class: "ptq-row" }, panel);
  const send = (changes) => {
    for (const [k, v] of Object.entries(changes)) model.set(k, v);
    model.save_changes();
  };
  const loIn = numberInput(controls, "lo", "ptq-input-lo", "any", (v) => send({ lo: v }));
  const hiIn = numberInput(controls, "hi", "ptq-input-hi", "any", (v) => send({ hi: v }));
  const bitsIn = numberInput(controls, "bits", "ptq-input-bits", "1", (v) => send({ bits: v }));
  const symWrap = htmlEl("label", { class: "ptq-field" }, controls);
  const symBox = htmlEl("input", { type: "checkbox", class: "ptq-input-symmetric" }, symWrap);
  htmlEl("span", {}, symWrap, "symmetric");
  symBox.addEventListener("change", () => send({ symmetric: symBox.checked }));
  const qrow = htmlEl("div", { class: "ptq-row ptq-qparams" }, panel);
  const errorBox = htmlEl("div", { class: "ptq-error", role: "alert" }, panel);

  const xsData = () => model.get("xs");
  let d0 = 0;
  let d1 = 1;
  let sx = linear(0, 1, M.left, W - M.right);
  let sy = linear(0, 1, bottom, top);
  const dragging = { lo: null, hi: null };

  function draw() {
    const xsv = xsData();
    const ysv = model.get("ys");
    const grid = model.get("grid");
    const st = model.get("stats");
    d0 = xsv[0];
    d1 = xsv[xsv.length - 1];
    sx = linear(d0, d1, M.left, W - M.right);
    sy = linear(d0, d1, bottom, top);
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
    qrow.textContent =
      `scale s = ${fmt(st.scale)}   ·   zero point z = ${st.zero_point}   ·   codes [${st.qmin}, ${st.qmax}]` +
      ` (${st.levels} levels)   ·   grid covers [${fmt(st.grid_lo)}, ${fmt(st.grid_hi)}]`;
    qrow.dataset.scale = String(st.scale);
    qrow.dataset.zeroPoint = String(st.zero_point);
  }

  function placeHandles() {
    const clamp = (v) => Math.max(d0, Math.min(d1, v));
    lo.place(sx(clamp(dragging.lo ?? model.get("lo"))));
    hi.place(sx(clamp(dragging.hi ?? model.get("hi"))));
    setInput(loIn, model.get("lo"));
    setInput(hiIn, model.get("hi"));
    if (document.activeElement !== bitsIn) bitsIn.value = String(model.get("bits"));
    symBox.checked = model.get("symmetric");
  }

  function showError() {
    const err = model.get("error");
    errorBox.textContent = err ? `Rejected: ${err}. The widget kept its last valid state.` : "";
  }

  const flush = throttle(() => model.save_changes(), 60);
  for (const [name, handle] of [
    ["lo", lo],
    ["hi", hi],
  ]) {
    dragX(
      handle.group,
      svg,
      (px) => {
        const gap = (d1 - d0) / 500;
        let v = Math.max(d0, Math.min(d1, sx.invert(px)));
        if (name === "lo") v = Math.min(v, model.get("hi") - gap);
        else v = Math.max(v, model.get("lo") + gap);
        dragging[name] = v;
        model.set(name, v);
        placeHandles();
        flush();
      },
      () => {
        dragging[name] = null;
        model.save_changes();
      },
    );
  }

  draw();
  placeHandles();
  showError();
  const events = [
    ["change:ys", draw],
    ["change:grid", draw],
    ["change:stats", draw],
    ["change:xs", draw],
    ["change:lo", placeHandles],
    ["change:hi", placeHandles],
    ["change:bits", placeHandles],
    ["change:symmetric", placeHandles],
    ["change:error", showError],
  ];
  for (const [ev, cb] of events) model.on(ev, cb);
  return () => {
    for (const [ev, cb] of events) model.off(ev, cb);
  };
}

export default { render };
