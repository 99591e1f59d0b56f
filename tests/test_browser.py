"""End to end in a real headless Chromium: serve lab 01 with ``marimo run``, move the bits slider, and check
that the page shows the scale ptqlab computes for the new settings. Saves screenshots under the test's
tmp dir and copies them to /tmp/ptqlab-shots/ for a human to look at.

Needs Debian's chromium at /usr/bin/chromium and Playwright for Python; without them the test skips, unless
the environment variable CI is set, where a missing browser is a failure.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ptqlab import choose_qparams
from ptqlab import lesson_affine as la

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "labs" / "01_affine_map.py"
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
# lab 01's default widget values
DEFAULT_BITS, DEFAULT_LO, DEFAULT_HI, DEFAULT_SIGNED, DEFAULT_SYMMETRIC = 4, -1.0, 2.5, True, False


def _need(condition: bool, reason: str) -> None:
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _expected_scale(bits: int) -> str:
    spec = la.per_tensor_spec(bits, DEFAULT_SIGNED, DEFAULT_SYMMETRIC)
    return la.fmt(float(choose_qparams(DEFAULT_LO, DEFAULT_HI, spec).scale))


@pytest.fixture
def served_lab():
    """``marimo run`` on 127.0.0.1 at a free port; yields the URL, stops the server afterwards."""
    port = _free_port()
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "marimo", "run", str(LAB), "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [*cmd, "--headless"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"marimo run exited early:\n{server.stdout.read()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("marimo run did not answer within 60 s")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_bits_slider_updates_the_scale_in_a_real_browser(served_lab, tmp_path):
    _need(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "playwright is not installed (pip install playwright)")

    before, after = _expected_scale(DEFAULT_BITS), _expected_scale(DEFAULT_BITS + 1)
    assert before != after
    shots = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 4000})
            page.goto(served_lab)
            # the stat card shows the scale exactly as la.fmt prints it
            page.get_by_text(before, exact=True).first.wait_for(timeout=90_000)
            sliders = page.get_by_role("slider")
            assert sliders.count() == 3  # bits, min, max
            bits = sliders.first
            assert bits.get_attribute("aria-valuenow") == str(DEFAULT_BITS)
            bits.focus()
            page.keyboard.press("ArrowRight")
            page.get_by_text(after, exact=True).first.wait_for(timeout=30_000)
            assert bits.get_attribute("aria-valuenow") == str(DEFAULT_BITS + 1)
            # wait for the last cell (self-check) to re-run with the new scale, then for the figure
            page.get_by_text(f"scale = {after}, zero point").first.wait_for(timeout=30_000)
            assert page.get_by_text(before, exact=True).count() == 0  # the old scale is gone everywhere
            figure = page.locator("img").first  # marimo shows the matplotlib figure as a PNG <img>
            figure.wait_for(timeout=30_000)
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=figure.element_handle())
            page.wait_for_timeout(1000)
            full = tmp_path / "lab01_after_bits_slider.png"
            page.screenshot(path=str(full), full_page=True)
            shots.append(full)
            for i, top in enumerate((0, 1100, 2200)):
                part = tmp_path / f"lab01_part{i}.png"
                page.screenshot(path=str(part), clip={"x": 0, "y": top, "width": 1280, "height": 1100})
                shots.append(part)
        finally:
            browser.close()

    assert all(p.stat().st_size > 10_000 for p in shots)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for p in shots:
        shutil.copy(p, SHOTS / p.name)
