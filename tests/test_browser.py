"""End to end in a real headless Chromium: serve lab 01 with ``marimo run``, move the bits slider, and check
that the page shows the scale ptqlab computes for the new settings. Saves screenshots under the test's
tmp dir and copies them to /tmp/ptqlab-shots/ for a human to look at.

Needs Debian's chromium at /usr/bin/chromium and Playwright for Python; without them the test skips, unless
the environment variable CI is set, where a missing browser is a failure.
"""

import pytest
from browser_support import chromium, page_defects, screenshot, serve_lab, wait_until

from ptqlab import choose_qparams
from ptqlab.lessons.affine_map import numbers as la

pytestmark = pytest.mark.browser

# lab 01's default widget values
DEFAULT_BITS, DEFAULT_LO, DEFAULT_HI, DEFAULT_SIGNED, DEFAULT_SYMMETRIC = 4, -1.0, 2.5, True, False


def _expected_scale(bits: int) -> str:
    spec = la.per_tensor_spec(bits, DEFAULT_SIGNED, DEFAULT_SYMMETRIC)
    return la.fmt(float(choose_qparams(DEFAULT_LO, DEFAULT_HI, spec).scale))


def test_bits_slider_updates_the_scale_in_a_real_browser(tmp_path):
    before, after = _expected_scale(DEFAULT_BITS), _expected_scale(DEFAULT_BITS + 1)
    assert before != after
    with chromium() as browser, serve_lab("01_affine_map.py", tmp_path) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 4000})
        page.goto(url)
        # the stat card shows the scale exactly as la.fmt prints it
        page.get_by_text(before, exact=True).first.wait_for(timeout=90_000)
        chart = page.locator(".vega-embed canvas").first  # the staircase chart, drawn by the browser
        chart.wait_for(timeout=30_000)
        drawn_before = chart.evaluate("c => c.toDataURL()")
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
        # the chart was redrawn for the new bit width (its pixels changed)
        page.wait_for_function(
            "before => { const c = document.querySelector('.vega-embed canvas');"
            " return c && c.width > 0 && c.toDataURL() !== before; }",
            arg=drawn_before,
            timeout=30_000,
        )
        page.wait_for_timeout(1000)
        assert page_defects(page) == []
        shots = [screenshot(page, tmp_path, "lab01_after_bits_slider.png")]
        for i, top in enumerate((0, 1100, 2200)):
            clip = {"x": 0, "y": top, "width": 1280, "height": 1100}
            shots.append(screenshot(page, tmp_path, f"lab01_part{i}.png", full_page=False, clip=clip))

    assert all(p.stat().st_size > 10_000 for p in shots)


def test_lab07_keeps_a_finished_run_until_its_inputs_change(tmp_path):
    """Lab 07 opens with no finished progress bar and no empty panel; a finished run survives a move of a
    control it does not depend on and comes back when its inputs are set back; a changed input shows the
    quick default instead of a stale result."""
    with chromium() as browser, serve_lab("07_beyond_rtn.py", tmp_path) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 6000})
        page.goto(url)
        quick = page.get_by_text("Measured: the quick default")
        quick.first.wait_for(timeout=120_000)
        page.get_by_text("Not drawn: AdaRound was not run").first.wait_for(timeout=60_000)
        assert page.get_by_text("AdaRound not run", exact=True).count() == 0  # no empty panel
        wait_until(lambda: page_defects(page) == [], 30, "no raw LaTeX and no progress bar left")
        page.get_by_role("button", name="Run RTN and the chosen algorithms").click()
        mine = page.get_by_text("Measured: your settings")
        mine.first.wait_for(timeout=120_000)
        wait_until(lambda: page.get_by_role("progressbar").count() == 0, 30, "the run's bars removed")
        layer = page.locator("select").filter(has_text="conv1").first
        layer.select_option("fc1")  # a control downstream of the run
        wait_until(lambda: layer.input_value() == "fc1", 10, "the layer picked")
        page.wait_for_timeout(1000)
        assert mine.first.is_visible() and quick.count() == 0
        bits = page.get_by_role("slider").first  # weight bits: an input of the run
        bits.focus()
        page.keyboard.press("ArrowRight")
        quick.first.wait_for(timeout=60_000)
        page.keyboard.press("ArrowLeft")
        page.get_by_text("Measured: your settings, run earlier in this session").first.wait_for(
            timeout=60_000
        )
        screenshot(page, tmp_path, "lab07_kept_run.png")
