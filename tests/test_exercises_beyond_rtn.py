"""Lab 07's coding exercises and self-checks: the reference solutions pass (through the contained runner),
each typical mistake (a string replace on the solution) gets its own message on every one of 20 seeds (judged
in this process), the starters are told to fill in the blanks, the oracles agree with independent arithmetic
and with ptqlab's algorithms, and every expected answer is what ptqlab computes."""

import pytest
import torch

from ptqlab.labkit import questions as ex
from ptqlab.lessons.beyond_rtn import exercise as ebias
from ptqlab.lessons.beyond_rtn import questions as beyond_rtn_questions
from ptqlab.lessons.beyond_rtn import smoothquant_exercise as esmooth
from ptqlab.lessons.beyond_rtn import text as beyond_rtn_text
from ptqlab.lessons.beyond_rtn.numbers import compare

MISTAKE_SEEDS = range(20)


def named_on_every_seed(judge, source: str, message: str) -> None:
    for seed in MISTAKE_SEEDS:
        verdict = judge(source, seed)
        assert verdict.ok is False and message in verdict.message, (seed, verdict.message)


BIAS_MISTAKES = [
    ("bias - shift", "bias + shift", "the sign is flipped"),
    ("(w_q - w) @ x_mean", "w_q @ x_mean", "you subtracted W̃·E[x]"),
    ("(w_q - w) @ x_mean", "(w_q - w).T @ x_mean", "not its transpose"),
    ("(w_q - w) @ x_mean", "x_mean @ (w_q - w)", "not its transpose"),
    ("(w_q - w) @ x_mean", "((w_q - w) * x_mean).sum(0)", "summed over dim 1"),
    ("    if bias is None:\n        return -shift\n", "", "treat it as zeros"),
    ("return bias - shift", "return -shift", "you dropped the bias"),
]


def test_bias_reference_solution_passes():
    verdict = ebias.check_bias_correction(ebias.BIAS_SOLUTION, seed=1)
    assert verdict.ok is True and "All correct" in verdict.message, verdict.message


@pytest.mark.parametrize("old,new,message", BIAS_MISTAKES, ids=range(len(BIAS_MISTAKES)))
def test_bias_mistakes_are_named(old, new, message):
    assert old in ebias.BIAS_SOLUTION
    named_on_every_seed(ebias.compare_bias_correction, ebias.BIAS_SOLUTION.replace(old, new), message)


def test_bias_starter_is_told_to_fill_in_the_blanks():
    named_on_every_seed(ebias.compare_bias_correction, ebias.BIAS_STARTER, "fill in every `...`")


@pytest.mark.parametrize("seed", range(3))
def test_the_checkers_answer_is_ptqlabs_bias_correction(seed):
    """The checker compares with b − (W̃ − W)·E[x] in float64; ptqlab's run_bias_correction gives the same."""
    for case, expected in ebias.seeded_cases(seed):
        torch.testing.assert_close(ebias.reference_bias(case), expected, rtol=0, atol=1e-5)


def test_bias_transposed_product_on_a_square_layer_is_named():
    case = ebias.random_case(torch.Generator().manual_seed(0), 8, 8)
    wrong = case.bias - (case.w_q - case.w).T @ case.x_mean
    assert "transpose" in ebias._problem(case, wrong)
    wrong_element = ebias.reference_bias(case).clone()
    wrong_element[3] += 0.5
    assert "first mismatching element, output channel 3" in ebias._problem(case, wrong_element)


@pytest.mark.parametrize("with_bias", [True, False])
def test_bias_oracle_is_the_formula_and_restores_the_mean_output(with_bias):
    case = ebias.random_case(torch.Generator().manual_seed(3), 12, 20, with_bias=with_bias)
    b = case.bias if with_bias else torch.zeros(12)
    by_hand = b.double() - (case.w_q - case.w).double() @ case.x.double().mean(0)
    reference = ebias.reference_bias(case)
    torch.testing.assert_close(reference.double(), by_hand, rtol=0, atol=1e-5)
    assert ebias.mean_output_gap(case, reference).abs().max() < 1e-5
    assert ebias.mean_output_gap(case, b).abs().max() > 1e-3  # without the correction the mean moves


SMOOTH_MISTAKES = [
    ("x_max**alpha / w_max ** (1 - alpha)", "x_max ** (1 - alpha) / w_max**alpha", "wrong side"),
    ("w_max = w.abs().amax(dim=0)", "w_max = w.abs().amax(dim=1)", "per *input* channel"),
    ("x_max = x.abs().amax(dim=0)", "x_max = x.abs().amax(dim=1)", "per *input* channel"),
    ("x_max = x.abs().amax(dim=0)", "x_max = x.amax(dim=0)", "forgot the abs"),
    ("w_max = w.abs().amax(dim=0)", "w_max = w.amax(dim=0)", "forgot the abs"),
]


def test_smoothing_reference_solution_passes():
    verdict = esmooth.check_smoothing(esmooth.SMOOTH_SOLUTION, seed=2)
    assert verdict.ok is True and "All correct" in verdict.message, verdict.message


@pytest.mark.parametrize("old,new,message", SMOOTH_MISTAKES, ids=range(len(SMOOTH_MISTAKES)))
def test_smoothing_mistakes_are_named(old, new, message):
    assert old in esmooth.SMOOTH_SOLUTION
    named_on_every_seed(esmooth.compare_smoothing, esmooth.SMOOTH_SOLUTION.replace(old, new), message)


def test_smoothing_starter_is_told_to_fill_in_the_blanks():
    named_on_every_seed(esmooth.compare_smoothing, esmooth.SMOOTH_STARTER, "fill in every `...`")


def test_smoothing_oracle_is_the_formula_and_keeps_the_product():
    case = esmooth.random_case(torch.Generator().manual_seed(4), 8, 16, 0.75)
    s = esmooth.reference_factor(case)
    by_hand = case.x.abs().amax(0) ** 0.75 / case.w.abs().amax(0) ** 0.25
    torch.testing.assert_close(s, by_hand, rtol=1e-6, atol=0)
    torch.testing.assert_close((case.x / s) @ (case.w * s).T, case.x @ case.w.T, rtol=1e-4, atol=1e-4)
    per_row = case.x.abs().amax(0) ** 0.75 / case.w.abs().amax(1).mean() ** 0.25
    assert "first mismatching element" in esmooth._problem(case, per_row)


def test_lab07_questions_expect_what_ptqlab_computes():
    gptq, bias, cle, predict = beyond_rtn_questions.lab07_questions()
    assert gptq.expected == beyond_rtn_questions.GPTQ_RIGHT and gptq.expected in gptq.options
    # the numeric one: the tiny layer, by hand (0.30 → 0.25, −0.55 → −0.5 on a grid of 0.25)
    assert bias.expected == pytest.approx(0.10 - ((0.25 - 0.30) * 2.0 + (-0.5 + 0.55) * 1.0), abs=1e-6)
    assert ex.feedback(bias, "0.15")[0] is True and ex.feedback(bias, "0.05")[0] is False
    assert cle.expected == "CLE" and beyond_rtn_questions.cle_float_change() < 1e-4
    rtn, fp32 = beyond_rtn_questions.rtn_at_8_bits()
    comp = compare("cnn", 8, "per-channel", 128, ())  # the lab's own table at the bits slider's far end
    assert (rtn, fp32) == (comp.rows[0].score, comp.fp32_score)
    assert predict.expected == beyond_rtn_questions.gap_band(100 * (fp32 - rtn))
    assert f"{100 * rtn:.1f} %" in predict.answer
    for q in (gptq, cle, predict):
        assert ex.feedback(q, q.expected)[0] is True


def test_lab07_recap_states_the_measured_comparison():
    from ptqlab.lessons.beyond_rtn.numbers import quick_comparison

    comp = quick_comparison()
    text = beyond_rtn_text.recap_markdown(comp)
    best = max(comp.rows, key=lambda r: r.score)
    assert f"RTN's test accuracy is {100 * comp.rows[0].score:.1f} %" in text
    assert f"reaches {100 * best.score:.1f} %" in text
    assert f"plain RTN already gives {100 * beyond_rtn_questions.rtn_at_8_bits()[0]:.1f} %" in text
