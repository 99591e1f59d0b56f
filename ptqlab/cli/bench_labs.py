"""``ptqlab bench labs``: how fast each lab answers its sliders, measured in a real headless Chromium.

For every lab: serve it with ``marimo run`` on 127.0.0.1, open it in Chromium (Playwright, Debian's
``/usr/bin/chromium``), wait until the page is quiet, then move every slider one step with the keyboard,
``--repeats`` times. In the page a MutationObserver timestamps, from the keydown:

    figure   the first output image replaced (a new matplotlib PNG), or the first repaint of a
             browser-drawn chart (Vega draws on a <canvas>: its 2-D context's clear/fill calls are hooked)
    number   the first output text replaced (markdown, stat cards)
    settled  the last change before the page stays quiet for ``QUIET_MS``

and the table gives the median and the 90th percentile (nearest rank) of each per slider. A benchmark,
not a test: numbers depend on the machine and its load; run it on an idle one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ptqlab.cli.main import labs_dir

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
DEFAULT_LABS = (
    "01_affine_map",
    "02_calibration",
    "03_schemes",
    "05_sensitivity",
    "06_direct_manipulation",
    "09_real_integers",
)
QUIET_MS = 300
LAST_OUTPUT = "Write your code above"  # rendered near the end of every lab with an ``exercise_view``
LOAD_QUIET_MS = 4000  # the first run of a lab trains/loads models: wait for it to finish
LOAD_TIMEOUT_S = 300
STEP_TIMEOUT_S = 30

# Installed once per page: timestamps (performance.now) of the keydown and of the output mutations after it.
OBSERVER_JS = """() => {
  const b = window.__bench = {t0: null, figure: null, number: null, last: performance.now()};
  const inOutput = n => { const e = n.nodeType === 1 ? n : n.parentElement; return e && e.closest('.output-area'); };
  const hasImg = n => n.nodeType === 1 && (n.tagName === 'IMG' || n.querySelector('img'));
  const inChart = n => { const e = n.nodeType === 1 ? n : n.parentElement; return e && e.closest('.vega-embed'); };
  new MutationObserver(records => {
    const now = performance.now();
    for (const r of records) {
      if (!inOutput(r.target)) continue;
      b.last = now;
      if (b.t0 === null) continue;
      const img = (r.type === 'attributes' && r.target.tagName === 'IMG') || [...r.addedNodes].some(hasImg) || inChart(r.target);
      if (img && b.figure === null) b.figure = now - b.t0;
      if (!img && r.type !== 'attributes' && b.number === null) b.number = now - b.t0;
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['src']});
  b.onDraw = () => { const now = performance.now(); b.last = now; if (b.t0 !== null && b.figure === null) b.figure = now - b.t0; };
  document.addEventListener('keydown', () => { b.t0 = performance.now(); b.figure = b.number = null; }, true);
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(lab: Path):
    """``marimo run`` this lab on 127.0.0.1 at a free port until it answers; yields its URL."""
    with serving(lab) as (url, _proc):
        yield url


@contextlib.contextmanager
def serving(lab: Path):
    """``marimo run`` this lab on 127.0.0.1 at a free port (through ``ptqlab.cli.serve``, as ``ptqlab labs``
    serves it) until it answers; yields (its URL, the server process)."""
    port = _free_port()
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", MPLBACKEND="Agg")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    cmd = [
        sys.executable,
        "-m",
        "ptqlab.cli.serve",
        "run",
        str(lab),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(
        cmd + ["--headless", "--no-token"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(url, timeout=2).status == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"marimo did not serve {lab.name}")
            time.sleep(0.3)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


QUIET_JS = """quiet => {
  const b = window.__bench, now = performance.now();
  const running = document.querySelector('.marimo-output-stale, .marimo-output-loading') !== null;
  const changed = b.t0 === null || b.last > b.t0;
  return changed && !running && now - b.last > quiet;
}"""


def _wait_quiet(page, timeout_s: float, quiet_ms: float = QUIET_MS) -> bool:
    """Wait until something changed since the keydown, no cell is running and no output changed for
    ``quiet_ms`` (True), or the timeout passed (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.evaluate(QUIET_JS, quiet_ms):
            return True
        time.sleep(0.05)
    return False


def slider_label(slider) -> str:
    """The marimo slider's label (its host element's data-label, tags stripped)."""
    raw = slider.evaluate(
        "e => { let n = e; while (n && !(n.host && n.host.dataset && n.host.dataset.label)) n = n.parentNode;"
        " return n && n.host ? n.host.dataset.label : (e.getAttribute('aria-label') || ''); }"
    )
    with contextlib.suppress(ValueError):
        raw = json.loads(raw)
    return re.sub(r"<[^>]+>", "", str(raw)).strip() or "slider"


def measure_lab(browser, lab: Path, repeats: int) -> list[tuple[str, list[dict]]]:
    """(slider label, one {figure, number, settled} dict of milliseconds per move) for each slider of a lab."""
    with serve(lab) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 2400})
        page.add_init_script(CANVAS_HOOK_JS)
        page.goto(url)
        page.locator(".output-area").first.wait_for(timeout=LOAD_TIMEOUT_S * 1000)
        page.evaluate(OBSERVER_JS)
        # every lab ends with a recap (in labs 07-09 filled from the measurements, so it comes last), and the
        # exercise's callout comes from one of the last cells
        last = [page.get_by_role("heading", name="Recap")]
        if "exercise_view" in lab.read_text():
            last.append(page.get_by_text(LAST_OUTPUT))
        for locator in last:
            with contextlib.suppress(Exception):
                locator.first.wait_for(timeout=LOAD_TIMEOUT_S * 1000)
        _wait_quiet(page, LOAD_TIMEOUT_S, quiet_ms=LOAD_QUIET_MS)
        results = []
        sliders = page.get_by_role("slider")
        for i in range(sliders.count()):
            slider, moves = sliders.nth(i), []
            for _ in range(repeats):
                at_max = slider.get_attribute("aria-valuenow") == slider.get_attribute("aria-valuemax")
                slider.focus()
                page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
                quiet = _wait_quiet(page, STEP_TIMEOUT_S)
                b = page.evaluate("() => window.__bench")
                settled = (b["last"] - b["t0"]) if quiet and b["last"] > b["t0"] else None
                moves.append({"figure": b["figure"], "number": b["number"], "settled": settled})
            results.append((slider_label(slider), moves))
        page.close()
    return results


def summary(values: list[float | None]) -> str:
    """'median / p90' in ms over the moves that changed something; '—' when none did."""
    got = sorted(v for v in values if v is not None)
    if not got:
        return "—"
    p90 = got[min(len(got) - 1, max(0, -(-9 * len(got) // 10) - 1))]
    return f"{statistics.median(got):.0f} / {p90:.0f}"


def table(rows: list[tuple[str, str, list[dict]]]) -> str:
    lines = [
        "| lab | slider | figure ms (median / p90) | number ms | settled ms |",
        "|---|---|---:|---:|---:|",
    ]
    for lab, label, moves in rows:
        cells = [summary([m[k] for m in moves]) for k in ("figure", "number", "settled")]
        lines.append(f"| {lab} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ptqlab bench labs", description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*", default=list(DEFAULT_LABS), help="parts of lab names")
    parser.add_argument("--repeats", type=int, default=5, help="moves per slider (default 5)")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"browser executable (default {CHROMIUM})")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        print("--repeats must be >= 1", file=sys.stderr)
        return 2
    labs = []
    for name in args.labs:
        found = sorted(p for p in labs_dir().glob("[0-9]*.py") if name in p.stem)
        if not found:
            print(f"no lab matches {name!r}", file=sys.stderr)
            return 2
        labs.append(found[0])
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("ptqlab bench labs needs Playwright: pip install playwright", file=sys.stderr)
        return 2
    if not Path(args.chromium).exists():
        print(f"no browser at {args.chromium}: install chromium or pass --chromium PATH", file=sys.stderr)
        return 2
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        try:
            for lab in labs:
                rows += [(lab.stem, label, moves) for label, moves in measure_lab(browser, lab, args.repeats)]
        finally:
            browser.close()
    print(table(rows))
    return 0
