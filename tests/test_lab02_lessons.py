"""Lab 02's sentences, self-checks and percentile exercise against independent oracles: torch's fake-quant
op, torch.quantile, and ptqlab's compare_observers recomputed here."""

import pytest
import torch

from ptqlab.core.affine import choose_qparams
from ptqlab.lessons.calibration import exercise as ec
from ptqlab.lessons.calibration import numbers as oc
from ptqlab.lessons.calibration import questions as calibration_questions
from ptqlab.lessons.calibration import text as calibration_text


def _results(body, share, bits, symmetric):
    stats, x_eval = oc.synthetic_calibration(body, 20.0, share / 100, 8)
    return oc.compare_observers(stats, x_eval, oc.lab_grid(bits, symmetric), p=99.99), x_eval


def test_relu_bullet_states_the_measured_sqnr():
    text = calibration_text.relu_bullet()
    for share in (0.01, 0.0):
        results, _ = _results("relu", share, 8, False)
        entropy = next(r.sqnr_db for r in results if r.name == "entropy")
        others = [r.sqnr_db for r in results if r.name != "entropy"]
        assert f"{entropy:.1f} dB against {min(others):.1f}–{max(others):.1f} dB" in text
        assert entropy < min(others) - 5  # "clips far too much" holds
    assert "17 dB against 47 dB" not in text


def test_minmax_clip_note_gives_the_grid_top_torch_computes():
    results, _ = _results("gaussian", 0.01, 4, True)
    mm = next(r for r in results if r.name == "minmax")
    t = max(-mm.lo, mm.hi)
    q = choose_qparams(-t, t, oc.lab_grid(4, True))
    top = torch.fake_quantize_per_tensor_affine(torch.tensor([t]), float(q.scale), int(q.zero_point), -8, 7)
    note = calibration_text.minmax_clip_note(results, oc.lab_grid(4, True))
    assert f"observed max|x| = {t:.3f}" in note and f"tops out at {float(top):.3f}" in note
    assert float(top) < t
    asym, _ = _results("gaussian", 0.01, 4, False)
    assert (
        calibration_text.minmax_clip_note(asym, oc.lab_grid(4, False)) == ""
    )  # the uint grid reaches its max


def test_ceiling_note_only_when_clipping_dominates_and_with_the_counted_share():
    results, x_eval = _results("gaussian", 0.01, 16, True)
    mm = next(r for r in results if r.name == "minmax")
    outside = ((x_eval < mm.grid_lo) | (x_eval > mm.grid_hi)).double().mean().item()
    note = calibration_text.ceiling_note(results, oc.lab_grid(16, True))
    assert f"{100 * outside:.3g} % of the fresh evaluation values" in note
    assert f"near {oc.best(results).sqnr_db:.1f} dB" in note
    low, _ = _results("gaussian", 0.01, 4, True)
    assert calibration_text.ceiling_note(low, oc.lab_grid(4, True)) == ""


def test_verdict_prints_the_clipped_share_with_three_significant_digits():
    results, x_eval = _results("gaussian", 0.01, 4, True)
    mm = next(r for r in results if r.name == "minmax")
    text = oc.verdict_markdown(mm, results, oc.lab_grid(4, True))
    assert f"{100 * mm.clipped_fraction:.3g} % of the values clipped" in text
    assert "0.00 %" not in text


def test_lab02_questions_expect_what_ptqlab_measures():
    q = calibration_questions.lab02_questions()
    assert 3 <= len(q) <= 5
    at4, _ = _results("gaussian", 0.01, 4, True)
    assert q[0].expected == max(at4, key=lambda r: r.sqnr_db).name
    mm = next(r for r in at4 if r.name == "minmax")
    t = max(-mm.lo, mm.hi)
    assert q[1].expected == pytest.approx(7 * t / 7.5, rel=1e-6)
    at8, _ = _results("gaussian", 0.01, 8, True)
    mm8 = next(r.sqnr_db for r in at8 if r.name == "minmax")
    assert (q[2].expected == calibration_questions.MINMAX_WINS) == (max(r.sqnr_db for r in at8) - mm8 < 0.5)
    relu, _ = _results("relu", 0.01, 8, False)
    assert q[3].expected == min(relu, key=lambda r: r.sqnr_db).name == "entropy"
    for question in q:
        assert question.options is None or question.expected in question.options


def test_percentile_reference_passes_and_matches_the_observer():
    assert ec.check_percentile(ec.PERCENTILE_SOLUTION, seed=1).ok is True
    x = ec.random_activations(torch.Generator().manual_seed(5))
    t, width = ec.reference_threshold(x, 95.0)  # a dense quantile: the histogram is within one bin
    assert t == pytest.approx(torch.quantile(x.abs().double(), 0.95).item(), abs=width)


PERCENTILE_MISTAKES = [
    ("torch.quantile(x.double(), p / 100)", "not of |x|"),
    ("torch.quantile(x.abs().double(), p / 10000)", "divide it by 100 once"),
    ("torch.quantile(x.abs().double(), 1 - p / 100)", "the share clipped"),
    ("x.abs().max()", "p = 100, min/max"),
    ("x.abs().sort().values[int(len(x) * p / 100)]", "between indices"),
]


@pytest.mark.parametrize("body,message", PERCENTILE_MISTAKES)
def test_percentile_mistakes_are_named(body, message):
    verdict = ec.check_percentile(f"def percentile_threshold(x, p):\n    return {body}\n", seed=2)
    assert verdict.ok is False and message in verdict.message, verdict.message


def test_percentile_as_percent_in_quantile_gets_the_hint():
    verdict = ec.check_percentile(
        "def percentile_threshold(x, p):\n    return torch.quantile(x.abs(), p)\n", seed=0
    )
    assert verdict.ok is False and "use p / 100" in verdict.message


def _gain(results, name):
    by = {r.name: r.sqnr_db for r in results}
    return by[name] - by["minmax"]


def test_rules_bullets_and_bits_hint_state_the_measured_margins():
    text, hint = calibration_text.rules_bullets(), calibration_text.bits_hint()
    g4 = max(_gain(_results("gaussian", 0.0, 4, True)[0], n) for n in ("mse", "entropy", "l2", "percentile"))
    assert f"{g4:.1f} dB at 4 bits" in text
    at4, _ = _results("gaussian", 0.01, 4, True)
    wins = [_gain(at4, n) for n in ("mse", "entropy", "moving_average")]
    assert f"win by {min(wins):.1f}–{max(wins):.1f} dB" in text and min(wins) > 0
    assert f"clipping the tail wins by {max(_gain(at4, r.name) for r in at4):.1f} dB" in hint
    at8, _ = _results("gaussian", 0.01, 8, True)
    losses = [-_gain(at8, n) for n in ("entropy", "moving_average")]
    assert f"lose {min(losses):.1f}–{max(losses):.1f} dB" in text and min(losses) > 0
    assert ("min/max wins" in hint) == (oc.best(at8).name == "minmax")
    uniform = [_results("uniform", 0.0, b, True)[0] for b in (4, 8)]
    if "min/max is best at 4 and 8 bits" in text:
        assert all(_gain(u, r.name) < calibration_text.TIE for u in uniform for r in u)
