"""``ptqlab hub`` for real: JupyterHub on 127.0.0.1 with two students, both logged in through headless Chromium,
lab 01 opened in each through marimo-jupyter-extension's proxy (``/user/<name>/marimo/``), a slider moved in
each (a new figure follows), and one student's exercise trying to read and change the other's lab file —
contained — and their browser refused at the other's server.

Needs JupyterHub and marimo-jupyter-extension (the ``hub`` extra, in ``.[test]``), configurable-http-proxy
(installed here with npm into this Python's prefix on first run, if npm is on PATH), /usr/bin/chromium and Playwright; without one of them the test skips with
the reason (in CI, where ``CI`` is set, it fails instead).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from ptqlab.cli.bench_labs import CANVAS_HOOK_JS, LAST_OUTPUT, OBSERVER_JS
from ptqlab.cli.hub import find_proxy, hub_command, own_uids, prepare
from tests.browser_support import base_env, chromium, free_port, need, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

STUDENTS = ("student01", "student02")
OPEN_TIMEOUT_MS = 150_000
SLIDER_TIMEOUT_S, SLIDER_RETRY_S = (
    150,
    30,
)  # generous: a loaded 2-core machine runs hub, proxy, 2 servers, Chromium
PASSED = "All correct"


def _require_hub() -> None:
    for module in ("jupyterhub", "marimo_jupyter_extension"):
        need(importlib.util.find_spec(module) is not None, f"{module} is missing: pip install -e '.[test]'")
    if find_proxy() is None and shutil.which("npm"):  # the README's test command installs nothing else
        subprocess.run(
            ["npm", "install", "-g", "--silent", "--prefix", sys.prefix, "configurable-http-proxy@5.3.0"],
            check=False,
            capture_output=True,
            timeout=300,
        )
    need(
        find_proxy() is not None,
        "configurable-http-proxy is missing: npm install -g configurable-http-proxy@5.3.0",
    )


@contextlib.contextmanager
def running_hub(users: int):
    """``ptqlab hub``'s set-up in a fresh folder under /tmp, served until the login page answers."""
    state = Path(tempfile.mkdtemp(prefix="ptqlab-hub-test-", dir="/tmp"))
    port = free_port()
    config, passwords = prepare(state, users, port, "127.0.0.1", 62000)
    log = (state / "hub.log").open("w")
    proc = subprocess.Popen(hub_command(config), env=base_env(), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{url}/hub/login", timeout=2).status == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the hub did not start:\n{(state / 'hub.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield url, state, passwords
    finally:
        proc.terminate()  # the hub stops the students' servers it spawned
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(["rm", "-rf", str(state)], check=False)


def _login(browser, url: str, name: str, password: str):
    context = browser.new_context(viewport={"width": 1280, "height": 2400})
    page = context.new_page()
    page.add_init_script(CANVAS_HOOK_JS)
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")  # the hub starts this student's server; the caller waits for it
    return page


def _move_slider(page) -> float:
    """Press → on the first slider; the ms until a new figure appears."""
    page.evaluate(OBSERVER_JS)
    slider = page.get_by_role("slider").first
    before = slider.get_attribute("aria-valuenow")
    start = time.monotonic()
    pressed = start - SLIDER_RETRY_S
    while (ms := page.evaluate("() => window.__bench.figure")) is None:
        now = time.monotonic()
        assert now < start + SLIDER_TIMEOUT_S, f"no new figure within {SLIDER_TIMEOUT_S} s of the slider move"
        if now - pressed >= SLIDER_RETRY_S:  # a key press sent while the page is still wiring up can be lost
            slider.focus()
            page.keyboard.press("ArrowRight")
            pressed = now
        time.sleep(0.1)
    assert slider.get_attribute("aria-valuenow") != before
    return ms


def _prying_solution(target: Path) -> str:
    """Lab 01's reference solution that turns wrong if it can read or append to ``target``."""
    from ptqlab.lessons.affine_map.exercise import AFFINE_SOLUTION

    return (
        f"got = []\ntry:\n    open({str(target)!r}).read(1)\n    got.append('read')\nexcept OSError:\n    pass\n"
        f"try:\n    open({str(target)!r}, 'a').write('# changed by the other student')\n    got.append('write')\n"
        f"except OSError:\n    pass\n{AFFINE_SOLUTION}"
        "if got:\n    def dequantize(x_q, scale, zero_point):\n        return x_q.float() * 0\n"
    )


def test_two_students_each_their_own_lab_server(tmp_path):
    _require_hub()
    with running_hub(len(STUDENTS)) as (url, state, passwords), chromium() as browser:
        pages = {name: _login(browser, url, name, passwords[name]) for name in STUDENTS}
        for name, page in pages.items():  # both servers start at once
            page.wait_for_url(f"**/user/{name}/**", timeout=OPEN_TIMEOUT_MS)
            page.goto(f"{url}/user/{name}/marimo/?file=01_affine_map.py")
        for page in pages.values():
            page.get_by_text(LAST_OUTPUT).first.wait_for(timeout=OPEN_TIMEOUT_MS)
        for page in pages.values():  # each student's own server redraws for their own slider
            assert _move_slider(page) > 0

        # student01's exercise tries to read and change student02's copy of the lab: it cannot
        other_lab = state / "homes" / STUDENTS[1] / "01_affine_map.py"
        original = other_lab.read_bytes()
        page = pages[STUDENTS[0]]
        editor = page.locator(".output-area .cm-content").filter(has_text="def choose_qparams").first
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(_prying_solution(other_lab))
        page.get_by_role("button", name="Check my code").first.click()
        page.get_by_text(PASSED).first.wait_for(timeout=60_000)
        screenshot(page, tmp_path, "hub_student01.png")
        assert other_lab.read_bytes() == original

        # student02's browser is refused at student01's server (JupyterHub's per-user authorization)
        answer = pages[STUDENTS[1]].goto(f"{url}/user/{STUDENTS[0]}/marimo/?file=01_affine_map.py")
        assert answer.status == 403, (answer.status, pages[STUDENTS[1]].url)

        if own_uids(state):  # the hub ran as root with a Python others can run: one uid per student
            for name in STUDENTS:
                home = state / "homes" / name
                assert home.stat().st_mode & 0o077 == 0 and home.stat().st_uid != os.geteuid()
            assert len({(state / "homes" / name).stat().st_uid for name in STUDENTS}) == 2
