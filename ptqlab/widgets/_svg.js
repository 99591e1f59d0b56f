// Shared drawing helpers for ptqlab's widgets (prepended to each widget's module by Python; no imports).
// The JS draws and reports dragged values; every number shown comes from Python (ptqlab).

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

function htmlEl(tag, attrs = {}, parent = null, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

// Linear map from data [d0, d1] to pixels [r0, r1], with .invert.
function linear(d0, d1, r0, r1) {
  const k = (r1 - r0) / (d1 - d0 || 1);
  const f = (v) => r0 + (v - d0) * k;
  f.invert = (p) => d0 + (p - r0) / k;
  return f;
}

// About n round-number ticks covering [lo, hi].
function ticks(lo, hi, n = 6) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) {
    out.push(Math.abs(v) < 1e-12 * span ? 0 : v);
  }
  return out;
}

// A number for people: 4 significant digits, ∞ for the null Python sends for ±inf.
function fmt(v, digits = 4) {
  if (v === null || v === undefined) return "∞";
  if (typeof v !== "number" || !Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(digits - 1);
  return String(Number(v.toPrecision(digits)));
}

// The pointer position in the SVG's own coordinates (works whatever size the SVG is drawn at).
function svgPoint(svg, evt) {
  const pt = svg.createSVGPoint();
  pt.x = evt.clientX;
  pt.y = evt.clientY;
  return pt.matrixTransform(svg.getScreenCTM().inverse());
}

// Call fn at most every `ms` milliseconds; the last call always goes through.
function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return (...args) => {
    const now = Date.now();
    clearTimeout(timer);
    if (now - last >= ms) {
      last = now;
      fn(...args);
    } else {
      timer = setTimeout(() => {
        last = Date.now();
        fn(...args);
      }, ms - (now - last));
    }
  };
}

// Make `target` draggable along x: onMove(xInSvgUnits) while dragging, onEnd() when released.
function dragX(target, svg, onMove, onEnd) {
  target.addEventListener("pointerdown", (evt) => {
    evt.preventDefault();
    target.setPointerCapture(evt.pointerId);
    target.classList.add("ptq-dragging");
    const move = (e) => onMove(svgPoint(svg, e).x);
    const up = () => {
      target.removeEventListener("pointermove", move);
      target.removeEventListener("pointerup", up);
      target.removeEventListener("pointercancel", up);
      target.classList.remove("ptq-dragging");
      onEnd();
    };
    target.addEventListener("pointermove", move);
    target.addEventListener("pointerup", up);
    target.addEventListener("pointercancel", up);
  });
}

// A vertical threshold handle: line + grab tab + a wide invisible hit area. Returns {group, place(px)}.
function makeHandle(parent, name, top, bottom, label) {
  const g = svgEl("g", { class: `ptq-handle ptq-handle-${name}`, "data-handle": name }, parent);
  svgEl("line", { class: "ptq-handle-line", x1: 0, x2: 0, y1: top, y2: bottom }, g);
  svgEl("path", { class: "ptq-handle-tab", d: `M-7,${top - 14} h14 v9 l-7,6 l-7,-6 z` }, g);
  const text = svgEl("text", { class: "ptq-handle-label", x: 0, y: top - 18, "text-anchor": "middle" }, g);
  text.textContent = label;
  svgEl("rect", { class: "ptq-hit", x: -9, y: top - 16, width: 18, height: bottom - top + 16 }, g);
  return { group: g, place: (px) => g.setAttribute("transform", `translate(${px},0)`) };
}

// x axis with ticks and a title, drawn along y = yPix from xPix0 to xPix1.
function xAxis(parent, scale, d0, d1, yPix, title) {
  const g = svgEl("g", { class: "ptq-axis" }, parent);
  svgEl("line", { x1: scale(d0), x2: scale(d1), y1: yPix, y2: yPix }, g);
  for (const t of ticks(d0, d1)) {
    svgEl("line", { x1: scale(t), x2: scale(t), y1: yPix, y2: yPix + 4 }, g);
    svgEl("text", { x: scale(t), y: yPix + 15, "text-anchor": "middle" }, g).textContent = fmt(t, 3);
  }
  const mid = (scale(d0) + scale(d1)) / 2;
  svgEl("text", { class: "ptq-axis-title", x: mid, y: yPix + 32, "text-anchor": "middle" }, g).textContent =
    title;
  return g;
}

// y axis with given tick values/labels along x = xPix.
function yAxis(parent, scale, tickValues, labels, xPix, y0, y1, title) {
  const g = svgEl("g", { class: "ptq-axis" }, parent);
  svgEl("line", { x1: xPix, x2: xPix, y1: y0, y2: y1 }, g);
  tickValues.forEach((t, i) => {
    svgEl("line", { x1: xPix - 4, x2: xPix, y1: scale(t), y2: scale(t) }, g);
    svgEl("text", { x: xPix - 6, y: scale(t) + 4, "text-anchor": "end" }, g).textContent = labels[i];
  });
  const mid = (y0 + y1) / 2;
  svgEl(
    "text",
    { class: "ptq-axis-title", x: 0, y: 0, "text-anchor": "middle", transform: `translate(12,${mid}) rotate(-90)` },
    g,
  ).textContent = title;
  return g;
}

// A labelled number input; onCommit(value) on Enter/blur. Returns the <input>.
function numberInput(parent, label, cls, step, onCommit) {
  const wrap = htmlEl("label", { class: "ptq-field" }, parent);
  htmlEl("span", {}, wrap, label);
  const input = htmlEl("input", { type: "number", step, class: cls }, wrap);
  input.addEventListener("change", () => onCommit(input.value === "" ? null : Number(input.value)));
  return input;
}

function setInput(input, value) {
  if (document.activeElement !== input) input.value = String(Number(value.toPrecision(6)));
}

// A labelled checkbox; onChange(checked). Returns the <input>.
function checkbox(parent, label, cls, onChange) {
  const wrap = htmlEl("label", { class: "ptq-field" }, parent);
  const box = htmlEl("input", { type: "checkbox", class: cls }, wrap);
  htmlEl("span", {}, wrap, label);
  box.addEventListener("change", () => onChange(box.checked));
  return box;
}

// "scale s = … · zero point z = … · codes [qmin, qmax] (levels) · grid covers […]" from Python's stats.
function qparamsText(st, levels = null) {
  const count = levels === null ? "" : ` (${levels} levels)`;
  return (
    `scale s = ${fmt(st.scale)}   ·   zero point z = ${st.zero_point}   ·   codes [${st.qmin}, ${st.qmax}]` +
    `${count}   ·   grid covers [${fmt(st.grid_lo)}, ${fmt(st.grid_hi)}]`
  );
}

// The message for the `error` trait: why a value was refused.
function errorText(model) {
  const err = model.get("error");
  return err ? `Rejected: ${err}. The widget kept its last valid state.` : "";
}

// Subscribe cb to each [event, cb]; returns the function that unsubscribes them (render's cleanup).
function listen(model, events) {
  for (const [ev, cb] of events) model.on(ev, cb);
  return () => {
    for (const [ev, cb] of events) model.off(ev, cb);
  };
}

// What both widgets are: a titled SVG plot over an x domain, with the range ends lo/hi as draggable
// handles, and a panel whose first row holds the lo / hi / bits inputs. `layers` names the SVG groups
// drawn below the handles, bottom first. The caller sets the x domain with frame.setDomain(d0, d1).
function rangeFrame(model, el, { cls, width: W, height: H, margin: M, title, layers }) {
  const root = htmlEl("div", { class: `ptq-widget ${cls}` }, el);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "ptq-plot", role: "img" }, root);
  svgEl("text", { class: "ptq-title", x: W / 2, y: 14, "text-anchor": "middle" }, svg).textContent = title;
  const groups = Object.fromEntries(layers.map((name) => [name, svgEl("g", {}, svg)]));
  const handleLayer = svgEl("g", {}, svg);
  const top = M.top;
  const bottom = H - M.bottom;
  const handles = {
    lo: makeHandle(handleLayer, "lo", top, bottom, "lo"),
    hi: makeHandle(handleLayer, "hi", top, bottom, "hi"),
  };

  const panel = htmlEl("div", { class: "ptq-panel" }, root);
  const controls = htmlEl("div", { class: "ptq-row" }, panel);
  const send = (changes) => {
    for (const [k, v] of Object.entries(changes)) model.set(k, v);
    model.save_changes();
  };
  const inputs = {
    lo: numberInput(controls, "lo", "ptq-input-lo", "any", (v) => send({ lo: v })),
    hi: numberInput(controls, "hi", "ptq-input-hi", "any", (v) => send({ hi: v })),
    bits: numberInput(controls, "bits", "ptq-input-bits", "1", (v) => send({ bits: v })),
  };

  const frame = { root, svg, layers: groups, panel, controls, send, top, bottom, W, H, M, d0: 0, d1: 1 };
  frame.setDomain = (d0, d1) => {
    frame.d0 = d0;
    frame.d1 = d1;
    frame.x = linear(d0, d1, M.left, W - M.right);
  };
  frame.setDomain(0, 1);

  const dragging = { lo: null, hi: null };
  // Handles at the model's lo/hi (or where they are being dragged), inputs showing the model's values.
  frame.placeHandles = () => {
    const clamp = (v) => Math.max(frame.d0, Math.min(frame.d1, v));
    for (const name of ["lo", "hi"]) {
      handles[name].place(frame.x(clamp(dragging[name] ?? model.get(name))));
      setInput(inputs[name], model.get(name));
    }
    if (document.activeElement !== inputs.bits) inputs.bits.value = String(model.get("bits"));
  };

  // Dragging sets lo/hi (kept apart by 1/500 of the domain), synced at most every 60 ms and on release.
  const flush = throttle(() => model.save_changes(), 60);
  for (const name of ["lo", "hi"]) {
    dragX(
      handles[name].group,
      svg,
      (px) => {
        const { d0, d1 } = frame;
        const gap = (d1 - d0) / 500;
        let v = Math.max(d0, Math.min(d1, frame.x.invert(px)));
        if (name === "lo") v = Math.min(v, model.get("hi") - gap);
        else v = Math.max(v, model.get("lo") + gap);
        dragging[name] = v;
        model.set(name, v);
        frame.placeHandles();
        flush();
      },
      () => {
        dragging[name] = null;
        model.save_changes();
      },
    );
  }
  return frame;
}
