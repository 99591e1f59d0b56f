"""``ptqlab bench labs``: how fast each lab answers every kind of control, measured in a real headless Chromium.

For every lab: serve it with ``marimo run`` on 127.0.0.1, open it in Chromium (Playwright, Debian's
``/usr/bin/chromium``), wait until the page is quiet, then move every control ``--repeats`` times:

    slider     one step with the keyboard (right, or left at the maximum)
    dropdown   the next option of the <select>, then back (alternating)
    switch     one click (alternating on/off)
    drag       a widget handle (``.ptq-hit``) dragged 60 px and back, timed from the release

In the page a MutationObserver timestamps, from the move:

    figure   the first output image replaced (a new matplotlib PNG), or the first repaint of a
             browser-drawn chart (Vega draws on a <canvas>: its 2-D context's clear/fill calls are hooked)
    number   the first output text replaced (markdown, stat cards)
    settled  the last change before the page stays quiet for ``QUIET_MS``

Each lab's opening time is printed too: from ``page.goto`` until its outputs stop changing. The table
gives the median and the 90th percentile (nearest rank) of each per control, and the verdict: a
control misses when its median figure time exceeds ``FIGURE_MS`` (250) or its median number time
``NUMBER_MS`` (150). Run buttons and the self-checks' answers are not moved (a button starts heavy work
on purpose; an answer changes no figure). A benchmark, not a test: numbers depend on the machine and its
load; run it on an idle one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ptqlab.cli.lab_controls import (
    CANVAS_HOOK_JS,
    KINDS,
    OBSERVER_JS,
    controls,
    move,
    wait_quiet,
)
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
FIGURE_MS, NUMBER_MS = 250.0, 150.0  # the project's bar: a move re-renders a figure / a number within these
LAST_OUTPUT = "Write your code above"  # rendered near the end of every lab with an ``exercise_view``
LOAD_QUIET_MS = 4000  # the first run of a lab trains/loads models: wait for it to finish
LOAD_TIMEOUT_S = 300
STEP_TIMEOUT_S = 30


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


def measure_lab(
    browser, lab: Path, repeats: int, kinds=KINDS
) -> tuple[list[tuple[str, str, list[dict]]], float]:
    """((kind, control label, one {figure, number, settled} dict of milliseconds per move) for each control,
    seconds from opening the page until it went quiet — every cell run, the recap shown)."""
    with serve(lab) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 2400})
        page.add_init_script(CANVAS_HOOK_JS)
        start = time.monotonic()
        page.goto(url)
        page.locator(".output-area").first.wait_for(timeout=LOAD_TIMEOUT_S * 1000)
        page.evaluate(OBSERVER_JS)
        # every lab ends with a recap (in labs 07-09 filled from the measurements, so it comes last), and the
        # exercise's callout comes from one of the last cells
        last = [page.get_by_role("heading", name="Recap")]
        if any(s in lab.read_text() for s in ("exercise_view", "Checks(")):
            last.append(page.get_by_text(LAST_OUTPUT))
        for locator in last:
            with contextlib.suppress(Exception):
                locator.first.wait_for(timeout=LOAD_TIMEOUT_S * 1000)
        wait_quiet(page, LOAD_TIMEOUT_S, quiet_ms=LOAD_QUIET_MS)
        opened_s = time.monotonic() - start - LOAD_QUIET_MS / 1000  # the quiet wait is not the lab's time
        results = []
        for kind, label, control in controls(page):
            if kind not in kinds:
                continue
            moves = []
            for k in range(repeats):
                try:
                    move(page, kind, control, k)
                except Exception as e:  # a control that cannot be moved is reported, not a crash
                    moves.append({"figure": None, "number": None, "settled": None, "error": str(e)[:80]})
                    continue
                quiet = wait_quiet(page, STEP_TIMEOUT_S)
                b = page.evaluate("() => window.__bench")
                settled = (b["last"] - b["t0"]) if quiet and b["last"] > b["t0"] else None
                moves.append({"figure": b["figure"], "number": b["number"], "settled": settled})
            results.append((kind, label, moves))
        page.close()
    return results, opened_s


def verdict(moves: list[dict]) -> str:
    """'ok', or which budget the median misses ('figure 312 > 250 ms'); 'no change' when nothing re-rendered."""
    med = {}
    for key in ("figure", "number"):
        got = [m[key] for m in moves if m.get(key) is not None]
        med[key] = statistics.median(got) if got else None
    if med["figure"] is None and med["number"] is None:
        return "no change seen"
    misses = [
        f"{key} {med[key]:.0f} > {limit:.0f} ms"
        for key, limit in (("figure", FIGURE_MS), ("number", NUMBER_MS))
        if med[key] is not None and med[key] > limit
    ]
    return "**misses:** " + ", ".join(misses) if misses else "ok"


def summary(values: list[float | None]) -> str:
    """'median / p90' in ms over the moves that changed something; '—' when none did."""
    got = sorted(v for v in values if v is not None)
    if not got:
        return "—"
    p90 = got[min(len(got) - 1, max(0, -(-9 * len(got) // 10) - 1))]
    return f"{statistics.median(got):.0f} / {p90:.0f}"


def table(rows: list[tuple]) -> str:
    """Rows of (lab, label, moves) or (lab, kind, label, moves) as a markdown table with the verdict."""
    lines = [
        f"| lab | kind | control | figure ms (median / p90) | number ms | settled ms | ≤ {FIGURE_MS:.0f} / {NUMBER_MS:.0f} ms |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        lab, kind, label, moves = row if len(row) == 4 else (row[0], "slider", *row[1:])
        cells = [summary([m[k] for m in moves]) for k in ("figure", "number", "settled")]
        lines.append(f"| {lab} | {kind} | {label} | " + " | ".join(cells) + f" | {verdict(moves)} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ptqlab bench labs", description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*", default=list(DEFAULT_LABS), help="parts of lab names")
    parser.add_argument("--repeats", type=int, default=5, help="moves per slider (default 5)")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"browser executable (default {CHROMIUM})")
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help=f"controls to move, comma-separated (default {','.join(KINDS)})",
    )
    parser.add_argument("--json", dest="json_path", help="also write the raw moves to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        print("--repeats must be >= 1", file=sys.stderr)
        return 2
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if not kinds or any(k not in KINDS for k in kinds):
        print(f"--kinds must name some of {', '.join(KINDS)}, got {args.kinds!r}", file=sys.stderr)
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
    rows, opened = [], {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        try:
            for lab in labs:
                found, opened[lab.stem] = measure_lab(browser, lab, args.repeats, kinds)
                rows += [(lab.stem, kind, label, moves) for kind, label, moves in found]
        finally:
            browser.close()
    print(table(rows))
    for name, seconds in opened.items():
        print(
            f"{name}: opened in {seconds:.1f} s (from page.goto until its outputs stopped changing: every cell run; "
            "a cold cache computes what the lab shows first)"
        )
    if args.json_path:
        keys = ("lab", "kind", "control", "moves")
        Path(args.json_path).write_text(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=1))
    return 0
