"""``ptqlab bench classroom``: one lab server and N students at once, in headless Chromium on loopback.

For each N (``--students 1 4 8``): serve the lab on 127.0.0.1 as ``ptqlab labs`` does (a fresh server, so a
class opens it cold), open it in N browser contexts at the same moment, then each student moves the first
slider ``--moves`` times (a short random pause between moves) and presses "Check my code" once. Printed per N:
the time to open the lab, the slider→figure latency (median / p90, ms, as ``ptqlab bench labs`` measures it),
the time for a check's verdict, the server's resident memory (total and per extra session), its CPU
seconds (its own and its runner children's), errors and dropped sessions; then the largest N whose median
stays under 250 ms. Each N is bounded by ``--budget`` seconds. ``--hub`` serves the same lab through
``ptqlab hub`` instead (JupyterHub, one single-user server per student, marimo through marimo-jupyter-extension):
each student logs in, so "open" includes their server's start, and memory and CPU are the whole tree's (hub,
proxy, every student's server and marimo). The browser runs on the same machine and
takes its share of the CPU: the numbers are an upper bound for students on their own computers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ptqlab.cli.bench_labs import (
    CANVAS_HOOK_JS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LAST_OUTPUT,
    OBSERVER_JS,
    serving,
    summary,
)
from ptqlab.cli.main import labs_dir
from ptqlab.labkit.sandbox import descendants

TARGET_MS = 250.0
OPEN_TIMEOUT_S = 600
MOVE_TIMEOUT_S = 30
CHECK_LABEL = "Check my code"


def server_usage(pid: int) -> tuple[float, float]:
    """(resident MB, CPU seconds of the process and of its children it has reaped) of the server."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0, 0.0
    rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    fields = text[text.rindex(")") + 2 :].split()
    cpu = sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return rss / 1024, cpu


def tree_usage(pid: int) -> tuple[float, float]:
    """``server_usage`` summed over ``pid`` and every process below it."""
    usages = [server_usage(p) for p in descendants(pid)]
    return sum(u[0] for u in usages), sum(u[1] for u in usages)


@contextlib.contextmanager
def hub_serving(n: int):
    """``ptqlab hub`` for ``n`` students in a fresh folder on 127.0.0.1; yields (URL, hub process, passwords)."""
    from ptqlab.cli.hub import hub_command, prepare

    state = Path(tempfile.mkdtemp(prefix="ptqlab-hub-bench-", dir="/tmp"))
    with socket_port() as port:
        pass
    config, passwords = prepare(state, n, port, "127.0.0.1", 62000)
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")])
    )
    proc = subprocess.Popen(
        hub_command(config), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{url}/hub/login", timeout=2).status == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the hub did not start")
            time.sleep(0.3)
        yield url, proc, passwords
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(state, ignore_errors=True)


@contextlib.contextmanager
def socket_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


async def _login(page, url: str, name: str, password: str, lab: str) -> str:
    """Log ``name`` in to the hub, wait for their server; the URL of ``lab`` on it."""
    await page.goto(f"{url}/hub/login", timeout=OPEN_TIMEOUT_S * 1000)
    await page.fill("#username_input", name)
    await page.fill("#password_input", password)
    await page.click("#login_submit")
    await page.wait_for_url(f"**/user/{name}/**", timeout=OPEN_TIMEOUT_S * 1000)
    return f"{url}/user/{name}/marimo/?file={lab}"


async def _figure(page) -> float | None:
    deadline = time.monotonic() + MOVE_TIMEOUT_S
    while time.monotonic() < deadline:
        if (ms := await page.evaluate("() => window.__bench.figure")) is not None:
            return ms
        await asyncio.sleep(0.05)
    return None


async def _check(page) -> float | None:
    """Seconds from pressing "Check my code" to a verdict replacing the exercise's prompt."""
    started = time.monotonic()
    await page.get_by_role("button", name=CHECK_LABEL).first.click()
    await page.get_by_text(LAST_OUTPUT).first.wait_for(state="detached", timeout=MOVE_TIMEOUT_S * 4000)
    return time.monotonic() - started


async def student(browser, url: str, moves: int, record: dict) -> None:
    """One student: open the lab, move the first slider ``moves`` times, check the exercise once."""
    context = await browser.new_context(viewport={"width": 1280, "height": 2400})
    page = await context.new_page()
    await page.add_init_script(CANVAS_HOOK_JS)
    started, rng = time.monotonic(), random.Random(record["seed"])
    try:
        if "login" in record:
            url = await _login(page, url, *record["login"])
        await page.goto(url, timeout=OPEN_TIMEOUT_S * 1000)
        await page.get_by_text(LAST_OUTPUT).first.wait_for(timeout=OPEN_TIMEOUT_S * 1000)
        slider = page.get_by_role("slider").first
        record["opened"] = time.monotonic() - started
        await page.evaluate(OBSERVER_JS)
        for _ in range(moves):
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            at_max = await slider.get_attribute("aria-valuenow") == await slider.get_attribute(
                "aria-valuemax"
            )
            await slider.focus()
            await page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
            record["figures"].append(await _figure(page))
        record["check"] = await _check(page)
    except Exception as exc:  # a benchmark reports what failed and goes on
        record["errors"].append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}")
    finally:
        await context.close()


async def classroom(lab: Path, n: int, moves: int, budget_s: float, chromium: str, hub: bool = False) -> dict:
    """One fresh server (or hub), ``n`` students at once; the row of the table."""
    from playwright.async_api import async_playwright

    records = [{"seed": k, "opened": None, "figures": [], "check": None, "errors": []} for k in range(n)]
    with hub_serving(n) if hub else serving(lab) as (url, proc, *logins):
        usage = tree_usage if hub else server_usage
        for record, (name, password) in zip(records, logins[0].items() if logins else [], strict=False):
            record["login"] = (name, password, lab.name)
        rss_before, cpu_before = usage(proc.pid)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            tasks = [asyncio.ensure_future(student(browser, url, moves, r)) for r in records]
            done, pending = await asyncio.wait(tasks, timeout=budget_s)
            for task in pending:
                task.cancel()
            rss_after, cpu_after = usage(proc.pid)
            await browser.close()
    return {
        "n": n,
        "records": records,
        "unfinished": len(pending),
        "rss": rss_after,
        "per_session": (rss_after - rss_before) / n,
        "cpu": cpu_after - cpu_before,
    }


def row(result: dict) -> tuple[str, float | None]:
    """(the table row, the median slider→figure ms or None)."""
    records = result["records"]
    figures = [f for r in records for f in r["figures"]]
    got = [f for f in figures if f is not None]
    opened = sorted(r["opened"] for r in records if r["opened"] is not None)
    checks = [r["check"] for r in records if r["check"] is not None]
    errors = sum(len(r["errors"]) for r in records) + figures.count(None)
    dropped = sum(1 for r in records if r["opened"] is None or r["errors"])
    median = statistics.median(got) if got else None
    cells = [
        str(result["n"]),
        f"{statistics.median(opened):.1f} / {opened[-1]:.1f}" if opened else "—",
        summary(figures),
        f"{statistics.median(checks):.1f}" if checks else "—",
        f"{result['rss']:.0f}",
        f"{result['per_session']:.1f}",
        f"{result['cpu']:.0f}",
        str(errors),
        str(dropped),
    ]
    return "| " + " | ".join(cells) + " |", median


HEADER = (
    "| students | open s (median / max) | slider→figure ms (median / p90) | check s (median) | server RSS MB "
    "| MB per session | server CPU s | errors | dropped |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ptqlab bench classroom", description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[1, 2, 4, 8], help="class sizes N")
    parser.add_argument("--lab", default="01", help="part of the lab's name (default 01)")
    parser.add_argument("--moves", type=int, default=5, help="slider moves per student (default 5)")
    parser.add_argument("--budget", type=float, default=600, help="seconds per class size (default 600)")
    parser.add_argument(
        "--hub", action="store_true", help="serve through `ptqlab hub` (a server per student)"
    )
    parser.add_argument("--chromium", default=CHROMIUM, help=f"browser executable (default {CHROMIUM})")
    args = parser.parse_args(argv)
    found = sorted(p for p in labs_dir().glob("[0-9]*.py") if args.lab in p.stem)
    if not found or min(args.students) < 1 or args.moves < 1:
        print("need a lab that exists, --students >= 1 and --moves >= 1", file=sys.stderr)
        return 2
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        print("ptqlab bench classroom needs Playwright: pip install playwright", file=sys.stderr)
        return 2
    if not Path(args.chromium).exists():
        print(f"no browser at {args.chromium}: install chromium or pass --chromium PATH", file=sys.stderr)
        return 2
    print(
        f"{found[0].stem}, {'`ptqlab hub` (JupyterHub, a server per student)' if args.hub else 'one `marimo run` server'}"
        f" on 127.0.0.1, {os.cpu_count()} CPUs\n\n{HEADER}",
        flush=True,
    )
    best = None
    for n in args.students:
        line, median = row(
            asyncio.run(classroom(found[0], n, args.moves, args.budget, args.chromium, args.hub))
        )
        print(line, flush=True)
        if median is not None and median < TARGET_MS:
            best = max(best or 0, n)
    print(f"\nlargest N with the median slider→figure under {TARGET_MS:.0f} ms: {best or 'none'}")
    return 0
