"""Lab 10 in a real headless Chromium: the page opens (on a cold cache the server first loads SmolLM2 and
scores the reference and the default setting), the default scores are the cached ones, and moving the α
slider of the outlier section changes the numbers ptqlab computes for the new α. Screenshots go to
/tmp/ptqlab-shots/ for a human to look at."""

import pytest
from browser_support import chromium, screenshot, serve_lab

from ptqlab.lessons.llm import outliers, text

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COLD_OPEN_MS = 420_000  # a cold cache: the GGUF read (~60 s), the reference, the default setting, the facts


def _sentence(alpha: float) -> str:
    layer = list(outliers.LAYERS)[6]  # the lab's default Linear input
    stats = outliers.smoothed(layer, alpha)
    return f"**{stats['ratio_after']:.1f}×**, about **{stats['levels_after']:.0f}** levels".replace("**", "")


def test_alpha_slider_changes_the_smoothing_numbers(tmp_path):
    with chromium() as browser, serve_lab("10_llm.py", tmp_path) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 9000})
        page.goto(url)
        page.get_by_text("After smoothing with α = 0.5:").first.wait_for(timeout=COLD_OPEN_MS)
        before, after = _sentence(0.5), _sentence(0.55)
        assert before != after
        page.get_by_text(before).first.wait_for(timeout=30_000)
        page.get_by_text("ΔPPL").first.wait_for(timeout=30_000)  # the default setting, scored on opening
        alpha = page.get_by_role("slider").nth(1)
        assert alpha.get_attribute("aria-valuenow") == "0.5"
        alpha.focus()
        page.keyboard.press("ArrowRight")
        page.get_by_text("After smoothing with α = 0.55:").first.wait_for(timeout=30_000)
        page.get_by_text(after).first.wait_for(timeout=30_000)
        assert page.get_by_text(before).count() == 0
        page.wait_for_timeout(1000)
        shots = [screenshot(page, tmp_path, "lab10_full.png")]
    assert all(p.stat().st_size > 10_000 for p in shots)
    assert text.fmt_ppl(float("inf")) == "∞"
