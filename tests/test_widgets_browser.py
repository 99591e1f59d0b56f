"""The widgets in a real browser: drag a handle in a served marimo lab and in a headless JupyterLab.

Both tests start a server on a free port, drive headless Chromium with Playwright, and save screenshots
under tmp_path (copied to /tmp/ptqlab-shots/). Without /usr/bin/chromium they skip, unless CI is set.
"""

from __future__ import annotations

import os
import re
import shutil
import sys

import pytest
from browser_support import (
    ROOT,
    base_env,
    chromium,
    drag_handle,
    free_port,
    screenshot,
    serve,
    serve_lab,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def wait_for_text_change(page, selector: str, old: str, timeout_s: float = 20.0) -> str:
    wait_until(lambda: page.inner_text(selector) != old, timeout_s, f"{selector} to change from {old!r}")
    return page.inner_text(selector)


def open_page(browser, url: str, width: int, height: int, ready: str, timeout_ms: int):
    """A new page at ``url`` once ``ready`` (a selector) shows; also the list its JS errors are collected in."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector(ready, timeout=timeout_ms)
    return page, errors


def number(text: str) -> float:
    return float(re.search(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text).group())


def test_marimo_lab_reacts_to_dragged_thresholds(browser, tmp_path):
    with serve_lab("06_direct_manipulation.py", tmp_path) as url:
        page, errors = open_page(browser, url, 1100, 1600, ready="#ptq-sqnr", timeout_ms=60_000)
        hi = page.locator(".ptq-clipping .ptq-handle-hi .ptq-hit")
        hi.wait_for(timeout=30_000)
        thresholds = page.inner_text("#ptq-thresholds")
        sqnr = page.inner_text("#ptq-sqnr")
        screenshot(page, tmp_path, "marimo_before_drag.png")

        drag_handle(page, hi, dx=-180)  # pull hi in from the far outlier
        # throttled updates arrive while dragging: wait for the cell to show where the handle was dropped
        dropped_hi = float(page.locator(".ptq-clipping .ptq-input-hi").input_value())
        assert dropped_hi < number(thresholds.split("hi =")[1])
        wait_until(
            lambda: abs(number(page.inner_text("#ptq-thresholds").split("hi =")[1]) - dropped_hi) < 1e-3,
            what=f"the cell to show hi = {dropped_hi}",
        )
        new_thresholds = page.inner_text("#ptq-thresholds")
        new_sqnr = page.inner_text("#ptq-sqnr")
        assert new_sqnr != sqnr
        # the widget's own readout and the reacting cell show the same SQNR (both from ptqlab)
        sqnr_stat = page.locator(".ptq-clipping .ptq-stat-sqnr_db")  # inside marimo's shadow DOM
        wait_until(lambda: abs(float(sqnr_stat.get_attribute("data-value")) - number(new_sqnr)) < 0.006)
        assert "clipped" in page.inner_text(".ptq-clipping .ptq-stats")

        # an invalid typed value is refused with a message and the last valid state stays
        lo_box = page.locator(".ptq-clipping .ptq-input-lo")
        lo_box.fill("1000")
        lo_box.press("Enter")
        wait_until(lambda: "lo must be below hi" in page.inner_text(".ptq-clipping .ptq-error"))
        kept_lo = number(new_thresholds.split("lo =")[1])
        wait_until(lambda: abs(float(lo_box.input_value()) - kept_lo) < 1e-3, what="the lo box to be reset")
        assert page.inner_text("#ptq-thresholds") == new_thresholds
        screenshot(page, tmp_path, "marimo_after_drag.png")

        # the staircase: drag its hi end, the cell printing the scale follows
        scale = page.inner_text("#ptq-scale")
        drag_handle(page, page.locator(".ptq-staircase .ptq-handle-hi .ptq-hit"), dx=60)
        assert number(wait_for_text_change(page, "#ptq-scale", scale)) > number(scale)  # wider range
        page.locator(".ptq-staircase").scroll_into_view_if_needed()
        screenshot(page, tmp_path, "marimo_staircase.png")
        assert not errors, errors


def test_lab02_explorer_scores_the_dragged_range_against_the_best_calibrator(browser, tmp_path):
    with serve_lab("02_calibration.py", tmp_path) as url:
        page, errors = open_page(browser, url, 1100, 1400, ready="#ptq-lab02-sqnr", timeout_ms=90_000)
        widget = page.locator(".ptq-clipping")
        hi = widget.locator(".ptq-handle-hi .ptq-hit")
        heading = page.get_by_role("heading", name="Your turn: pick the range by hand")

        def explorer_drawn() -> (
            bool
        ):  # drawn once in view (mo.lazy); the vendors' table above may push it down
            heading.scroll_into_view_if_needed()
            return hi.count() > 0

        wait_until(explorer_drawn, timeout_s=30, what="the explorer, drawn once scrolled into view")
        hi.wait_for(timeout=30_000)
        # every calibrator of the table is a marker button
        buttons = widget.locator(".ptq-marker-button")
        wait_until(lambda: buttons.count() == 6, what="six marker buttons")
        assert [b.split(":")[0] for b in buttons.all_inner_texts()] == [
            "minmax",
            "moving_average",
            "percentile",
            "entropy",
            "mse",
            "l2",
        ]
        sqnr = page.inner_text("#ptq-lab02-sqnr")
        drag_handle(page, hi, dx=-300)  # pull hi in from the far outlier
        new_sqnr = wait_for_text_change(page, "#ptq-lab02-sqnr", sqnr, timeout_s=30)
        sqnr_stat = widget.locator(".ptq-stat-sqnr_db")  # the widget's own readout, also from ptqlab
        wait_until(lambda: abs(float(sqnr_stat.get_attribute("data-value")) - number(new_sqnr)) < 0.006)
        assert "best calibrator here, mse" in page.inner_text("body")
        widget.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        box = widget.bounding_box()
        clip = {"x": 0, "y": max(0, box["y"] - 220), "width": 1100, "height": box["height"] + 420}
        screenshot(page, tmp_path, "lab02_explorer.png", full_page=False, clip=clip)
        assert not errors, errors


# text of the innermost output that a notebook's live ipywidgets.Output prints into (marker: a phrase in it)
LIVE_OUTPUT = """(marker) => {
    const hits = [...document.querySelectorAll('.jp-OutputArea-output')]
        .filter(n => n.textContent.includes(marker));
    return hits.length ? hits[hits.length - 1].textContent : '';
}"""

# notebook, the widget's root, a number in it computed by Python, the live output's marker, drag (px)
JUPYTER_CASES = [
    ("clipping_explorer.ipynb", ".ptq-clipping", ".ptq-clipping .ptq-stat-sqnr_db", "your range [", -180),
    ("affine_staircase.ipynb", ".ptq-staircase", ".ptq-staircase .ptq-qparams", "bits: scale =", 60),
]


def test_jupyterlab_notebooks_render_and_react(browser, tmp_path):
    port = free_port()
    home = tmp_path / "home"
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "labs" / "jupyter", notebooks)  # the run writes outputs: keep the repo clean
    env = base_env(
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
    )
    settings = home / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1", "--port", str(port)]
    cmd += [
        "--IdentityProvider.token=",  # (ServerApp.token is the deprecated spelling)
        "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={notebooks}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI runners often run as root
    url = f"http://127.0.0.1:{port}"
    with serve(cmd, f"{url}/api/status", env, tmp_path / "jupyter.log"):
        for case in JUPYTER_CASES:
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            try:
                run_notebook_and_drag(page, url, tmp_path, *case)
            finally:
                page.close()


def run_notebook_and_drag(page, url, tmp_path, notebook, widget, number_sel, marker, dx):
    """Open a notebook, run all cells, drag the widget's hi handle; the kernel's numbers must follow."""
    stem = notebook.removesuffix(".ipynb")
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/lab/workspaces/{stem}/tree/{notebook}?reset")  # a fresh workspace: only this tab
    page.wait_for_function(
        "(path) => window.jupyterapp?.shell.currentWidget?.context?.path === path",
        arg=notebook,
        timeout=60_000,
    )
    page.evaluate(
        """async () => {
            const app = window.jupyterapp;
            await app.restored;
            const panel = app.shell.currentWidget;
            await panel.context.ready;
            await panel.sessionContext.ready;
            await app.commands.execute('notebook:run-all-cells');
        }"""
    )
    hi = page.locator(f"{widget} .ptq-handle-hi .ptq-hit")
    hi.wait_for(timeout=90_000)
    wait_until(lambda: page.inner_text(number_sel) != "", 30, "the widget's numbers")
    page.wait_for_selector(f"text={marker}", timeout=60_000)  # the live Output below the widget
    value = page.inner_text(number_sel)
    live = page.evaluate(LIVE_OUTPUT, marker)
    screenshot(page, tmp_path, f"jupyter_{stem}_before_drag.png")

    drag_handle(page, hi, dx=dx)
    wait_for_text_change(page, number_sel, value, timeout_s=30)  # a round trip through the kernel
    page.wait_for_function(
        f"([marker, old]) => ({LIVE_OUTPUT})(marker) !== old", arg=[marker, live], timeout=30_000
    )
    assert marker in page.evaluate(LIVE_OUTPUT, marker)
    screenshot(page, tmp_path, f"jupyter_{stem}_after_drag.png")
    page.locator(".jp-OutputArea-output", has_text=marker).last.scroll_into_view_if_needed()
    screenshot(page, tmp_path, f"jupyter_{stem}_live_output.png")
    assert not errors, errors
