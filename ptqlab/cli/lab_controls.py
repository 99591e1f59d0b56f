"""The page side of ``ptqlab bench labs``: the scripts a served lab gets (timestamps of each move and of the
outputs it changes), the controls a lab offers (sliders, dropdowns, switches, widget handles) and one move of
each. Locators are Playwright's; they pierce marimo's shadow DOM."""

from __future__ import annotations

import contextlib
import json
import re
import time

QUIET_MS = 300
DRAG_PX = 60
KINDS = ("slider", "dropdown", "switch", "drag")

# Installed once per page: timestamps (performance.now) of the keydown and of the output mutations after it.
OBSERVER_JS = """() => {
  const b = window.__bench = {t0: null, figure: null, number: null, last: performance.now()};
  // closest() that climbs out of shadow roots: marimo renders some outputs (callouts, …) inside them
  const closestDeep = (n, sel) => { let e = n.nodeType === 1 ? n : n.parentElement;
    while (e) { const c = e.closest(sel); if (c) return c; const r = e.getRootNode(); e = r && r.host; } return null; };
  // a control's own rendering (a slider's value label, in its shadow root) is not an output it changed
  const ownControl = 'marimo-slider, marimo-dropdown, marimo-switch, marimo-checkbox, marimo-number, ' +
    'marimo-range-slider, marimo-radio, marimo-button, marimo-text, marimo-multiselect';
  const inOutput = n => closestDeep(n, '.output-area') && !closestDeep(n, ownControl);
  const hasImg = n => n.nodeType === 1 && (n.tagName === 'IMG' || n.querySelector('img'));
  const inChart = n => closestDeep(n, '.vega-embed');
  const options = {subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['src']};
  const watched = new WeakSet();
  const observer = new MutationObserver(records => {
    const now = performance.now();
    for (const r of records) {
      for (const n of r.addedNodes) watchShadows(n);
      if (!inOutput(r.target)) continue;
      b.last = now;
      if (b.t0 === null) continue;
      const img = (r.type === 'attributes' && r.target.tagName === 'IMG') || [...r.addedNodes].some(hasImg) || inChart(r.target);
      if (img && b.figure === null) b.figure = now - b.t0;
      if (!img && r.type !== 'attributes' && b.number === null) b.number = now - b.t0;
    }
  });
  // a MutationObserver on the document does not see inside shadow roots: observe each one found as well
  const watchShadows = n => {
    if (n.nodeType !== 1) return;
    for (const e of [n, ...n.querySelectorAll('*')]) {
      if (e.shadowRoot && !watched.has(e.shadowRoot)) {
        watched.add(e.shadowRoot); observer.observe(e.shadowRoot, options); watchShadows(e.shadowRoot);
      }
    }
  };
  observer.observe(document.body, options);
  watchShadows(document.body);
  b.onDraw = () => { const now = performance.now(); b.last = now; if (b.t0 !== null && b.figure === null) b.figure = now - b.t0; };
  b.start = () => { b.t0 = performance.now(); b.figure = b.number = null; };
  document.addEventListener('keydown', b.start, true);  // a key press starts a move too (bench classroom, the hub test)
}"""

# Installed before the page loads: a browser-drawn chart (Vega on a <canvas>) repaints in place, with no DOM
# mutation to observe, so the 2-D context's clear/fill calls report each repaint to the bench.
CANVAS_HOOK_JS = """(() => {
  const proto = CanvasRenderingContext2D.prototype;
  for (const name of ['clearRect', 'fillRect']) {
    const original = proto[name];
    proto[name] = function (...args) {
      if (window.__bench && this.canvas.closest && this.canvas.closest('.vega-embed')) window.__bench.onDraw();
      return original.apply(this, args);
    };
  }
})();"""


QUIET_JS = """quiet => {
  const b = window.__bench, now = performance.now();
  const running = document.querySelector('.marimo-output-stale, .marimo-output-loading') !== null;
  const changed = b.t0 === null || b.last > b.t0;
  return changed && !running && now - b.last > quiet;
}"""


def wait_quiet(page, timeout_s: float, quiet_ms: float = QUIET_MS) -> bool:
    """Wait until something changed since the keydown, no cell is running and no output changed for
    ``quiet_ms`` (True), or the timeout passed (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.evaluate(QUIET_JS, quiet_ms):
            return True
        time.sleep(0.05)
    return False


def control_label(control) -> str:
    """A marimo control's label (its host element's data-label, tags stripped)."""
    raw = control.evaluate(
        "e => { let n = e; while (n && !(n.host && n.host.dataset && n.host.dataset.label)) n = n.parentNode;"
        " return n && n.host ? n.host.dataset.label : (e.getAttribute('aria-label') || ''); }"
    )
    with contextlib.suppress(ValueError):
        raw = json.loads(raw)
    return re.sub(r"<[^>]+>", "", str(raw)).strip()


slider_label = control_label  # the name the first version used


def _top(locator) -> float | None:
    box = locator.bounding_box()
    return None if box is None else box["y"]


def controls(page) -> list[tuple[str, str, object]]:
    """(kind, label, locator) of every control the bench moves, in page order within each kind; the ones
    below the "Self-check" heading (the answers) are left out."""
    found = []
    sliders = page.get_by_role("slider")
    found += [("slider", sliders.nth(i)) for i in range(sliders.count())]
    selects = page.locator("select")
    found += [("dropdown", selects.nth(i)) for i in range(selects.count())]
    switches = page.get_by_role("switch")
    found += [("switch", switches.nth(i)) for i in range(switches.count())]
    handles = page.locator(".ptq-hit")
    found += [("drag", handles.nth(i)) for i in range(handles.count())]
    heading = page.get_by_role("heading", name="Self-check")
    tail = _top(heading.first) if heading.count() else None  # the self-checks' answers are not moved
    out = []
    for kind, loc in found:
        top = _top(loc) if kind != "dropdown" else _top(loc.locator(".."))
        if tail is not None and top is not None and top > tail:
            continue
        label = control_label(loc) if kind != "drag" else _handle_label(loc)
        out.append((kind, label or kind, loc))
    return out


def _handle_label(handle) -> str:
    """'clipping hi', 'staircase lo': the widget's and the handle's own class names."""
    return handle.evaluate(
        "e => { const w = e.closest('.ptq-clipping, .ptq-staircase'), h = e.closest('[class*=ptq-handle-]');"
        " const pick = (c, re) => { const m = c && [...c.classList].map(x => x.match(re)).find(Boolean);"
        " return m ? m[1] : ''; };"
        " return (pick(w, /^ptq-(clipping|staircase)$/) + ' ' + pick(h, /^ptq-handle-(\\w+)$/)).trim(); }"
    )


def move(page, kind: str, control, k: int) -> None:
    """The k-th move of a control (alternating directions so it never runs off its range), timer started."""
    if kind == "slider":
        at_max = control.get_attribute("aria-valuenow") == control.get_attribute("aria-valuemax")
        control.focus()
        page.evaluate("() => window.__bench.start()")
        page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
    elif kind == "dropdown":
        options = control.evaluate("e => [...e.options].map(o => o.value)")
        index = control.evaluate("e => e.selectedIndex")
        target = options[(index + 1) % len(options)] if k % 2 == 0 else options[(index - 1) % len(options)]
        page.evaluate("() => window.__bench.start()")
        control.select_option(target)
    elif kind == "switch":
        page.evaluate("() => window.__bench.start()")
        control.click()
    elif kind == "drag":
        control.scroll_into_view_if_needed()
        box = control.bounding_box()
        if box is None:
            raise RuntimeError("handle is not visible")
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        dx = -DRAG_PX if k % 2 == 0 else DRAG_PX
        page.mouse.move(x, y)
        page.mouse.down()
        for i in range(1, 7):
            page.mouse.move(x + dx * i / 6, y)
        page.evaluate("() => window.__bench.start()")
        page.mouse.up()
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
