"""What the browser tests share: a headless Chromium, servers on free ports, dragging, screenshots.

Needs Debian's chromium at /usr/bin/chromium and Playwright for Python; without them a test skips, unless
the environment variable CI is set, where a missing browser is a failure (``require_browser``).
Screenshots go to the test's tmp dir and are copied to /tmp/ptqlab-shots/ for a human to look at.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path("/tmp/ptqlab-shots")
SERVER_START_S = 90


def need(condition: bool, reason: str) -> None:
    """Skip the test when ``condition`` fails; fail it instead when CI is set."""
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
        pytest.skip(reason)


def require_browser() -> None:
    need(CHROMIUM.exists(), f"{CHROMIUM} is missing: install it (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need(False, "playwright is not installed (pip install playwright)")


@contextlib.contextmanager
def chromium():
    """A headless Chromium (Playwright ``Browser``), closed afterwards; skips as ``require_browser`` says."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**extra) -> dict:
    """This checkout's ptqlab first on PYTHONPATH, torch's threads passive, matplotlib headless."""
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@contextlib.contextmanager
def serve(cmd: list[str], ready_url: str, env: dict, log: Path):
    """Run ``cmd`` until ``ready_url`` answers 200 (bounded by SERVER_START_S), yield, then stop it."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(ready_url, timeout=2).status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"server not up after {SERVER_START_S}s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def serve_lab(lab: str, tmp_path: Path):
    """``marimo run labs/<lab>`` headless on 127.0.0.1 at a free port; yields its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "marimo", "run", str(ROOT / "labs" / lab)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--headless", "--no-token"]
    url = f"http://127.0.0.1:{port}"
    with serve(cmd, url, base_env(), tmp_path / "marimo.log"):
        yield url


def screenshot(page, tmp_path: Path, name: str, **kwargs) -> Path:
    """Full-page screenshot (or ``clip=...``) into tmp_path, copied to SHOTS."""
    path = tmp_path / name
    page.screenshot(path=str(path), **({"full_page": True} | kwargs))
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / name)
    return path


def drag_handle(page, handle, dx: float, steps: int = 12) -> None:
    """Press on a handle, move it by dx pixels in small steps (like a hand would), release."""
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    assert box is not None, "handle is not visible"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(x + dx * i / steps, y)
        page.wait_for_timeout(25)
    page.mouse.up()


def wait_until(condition, timeout_s: float = 20.0, what: str = "condition"):
    """Poll ``condition()`` (Playwright locators pierce marimo's shadow DOM; document.querySelector doesn't)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.1)


def page_defects(page) -> list[str]:
    """What a teacher would stop the class for on a loaded page: KaTeX that failed to parse (shown as raw red
    LaTeX) and progress bars left behind after their work finished."""
    defects = []
    errors = page.locator(".katex-error")
    for i in range(errors.count()):
        defects.append(f"raw LaTeX: {errors.nth(i).get_attribute('title')}")
    bars = page.get_by_role("progressbar").count()
    if bars:
        defects.append(f"{bars} progress bar(s) left on the page")
    return defects
