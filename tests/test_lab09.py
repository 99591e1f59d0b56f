"""Lab 09 survives its controls' extremes, checks the exercise (reference passes, starter fails with the
first mismatch), and its lesson numbers are the integer-only path's own."""

import pytest
import torch
from lab_support import checked_code, run_with_values

from ptqlab.core.fixed_point import INT32_MAX
from ptqlab.core.packed_file import save_packed
from ptqlab.labkit import questions as ex
from ptqlab.lessons.real_integers import exercise
from ptqlab.lessons.real_integers import numbers as real_integers
from ptqlab.lessons.real_integers import questions as real_integers_questions
from ptqlab.lessons.real_integers import text as real_integers_text

LAB = "09_real_integers"
EXTREMES = [
    # layer, sample, channel, pack bits, group, format, int bits, tensor, codebook bits
    ("fc1", 0, 0, 2, 16, "fp8_e5m2", 4, "activation", 2),
    ("fc4", 359, 511, 8, 128, "fp8_e4m3", 8, "weight", 4),
    ("fc2", 359, 0, 3, 32, "fp8_e4m3", 4, "activation", 3),
]


@pytest.mark.parametrize("layer,sample,channel,pack_bits,group,fmt,int_bits,kind,book_bits", EXTREMES)
def test_lab09_survives_extremes(layer, sample, channel, pack_bits, group, fmt, int_bits, kind, book_bits):
    values = {
        "layer": layer, "sample": sample, "channel": channel, "pack_bits": pack_bits, "group": group,
        "fmt": fmt, "int_bits": int_bits, "kind": kind, "book_bits": book_bits, "wo_run": False, "wo_model": "mlp", "wo_batch": 64,
        "check_controls": checked_code(exercise.REFERENCE),
    }  # fmt: skip
    text = run_with_values(LAB, values).text
    assert "fresh cases (random accumulators, exact ties, both clamps)" in text  # the verdict, in its callout
    assert "of headroom" in text and "the file on disk is" in text and "k-means centroids" in text
    assert "Recap" in text and "Reveal the answer" in text and "How many bytes?" in text


def test_lab09_reports_the_first_mismatch_of_the_starter():
    values = {
        "check_controls": checked_code(exercise.STARTER),
        "wo_run": False,
        "wo_model": "mlp",
        "wo_batch": 1,
    }
    assert "Mismatch at case 0" in run_with_values(LAB, values).text


@pytest.mark.slow
def test_lab09_weight_only_button_measures():
    values = {
        "wo_run": True,
        "wo_model": "mlp",
        "wo_batch": 1,
        "check_controls": checked_code("", pressed=False),
    }
    text = run_with_values(LAB, values).text
    assert "W4A16Linear g32 (ptqlab, Python)" in text and "speed vs fp32" in text


def test_walkthrough_terms_are_the_layer_accumulator():
    walk = real_integers.layer_walkthrough("fc2", 5)
    layer = walk["layer"]
    x_q = real_integers.layer_inputs(1)[5:6]
    assert torch.equal(walk["terms"].total(), layer.accumulate(x_q))
    assert torch.equal(walk["codes"], layer(x_q)[0])
    assert walk["worst_case"] == 512 * walk["top_x"] * 128
    with pytest.raises(ValueError, match=r"^name must be one of"):
        real_integers.layer_walkthrough("fc9", 0)


def test_whole_model_matches_engine_in_the_lesson():
    r = real_integers.whole_model()
    assert r["same_codes"] > 0.95 and r["max_diff"] <= 2
    assert abs(r["integer"] - r["engine"]) <= 1 / r["n"] + 1e-9


def test_exercise_checker_verdicts():
    correct = exercise.check(exercise.REFERENCE, seed=1)
    assert correct.ok is True and correct.message.startswith("**Correct** on all")
    banker = "def requantize(a, m, s, z):\n    return max(0, min(255, z + round(a * m / 2**s)))"
    assert "exact tie" in exercise.check(banker, seed=1).message
    slow = exercise.check("def requantize(a, m, s, z):\n    while True: pass", time_limit_s=1)
    assert slow.ok is False and slow.message.startswith("**Time limit")
    assert "ZeroDivisionError" in exercise.check("def requantize(a, m, s, z):\n    return 1 / 0").message
    assert "define a function named requantize" in exercise.check("x = 1").message
    assert "Write your" in exercise.check("  ").message


def test_exercise_cases_include_ties_and_clamps():
    cases = exercise.fresh_cases(seed=0)
    outputs = [exercise.reference(*c) for c in cases]
    assert 0 in outputs and 255 in outputs
    assert any((a * m) % 2**s == 2 ** (s - 1) for a, m, s, _ in cases)


def test_lab09_questions_expect_what_ptqlab_computes(tmp_path):
    questions = real_integers_questions.lab09_questions()
    assert len(questions) == 5
    for q in questions[:3]:  # the original three keep their wording and right answer
        assert q.options and q.expected in q.options and ex.feedback(q, q.expected)[0] is True
    assert 4096 * 255 * 128 < INT32_MAX
    packed, straddle = questions[3], questions[4]
    out, k = real_integers_questions.PACKED_SHAPE
    assert packed.expected == out * k // 2 + out * (k // 128) * 2  # codes + one fp16 scale per group
    w = torch.randn(real_integers_questions.PACKED_SHAPE)
    size = save_packed(tmp_path / "w.ptq", {"w": w}, real_integers_questions.PACKED_SPEC)
    assert size - packed.expected in range(16, 16 + 400)  # the rest is the magic, length and JSON header
    by_hand = next(i for i in range(8) if (3 * i) // 8 != (3 * i + 2) // 8)
    assert straddle.expected == by_hand == 2
    assert ex.feedback(straddle, "2")[0] is True and ex.feedback(straddle, "3")[0] is False


def test_lab09_recap_states_the_measured_numbers():
    text, r = real_integers_text.recap_markdown(), real_integers.whole_model()
    assert f"scores {r['integer']:.2%} against the x86 engine's {r['engine']:.2%}" in text
    assert f"{real_integers.layer_walkthrough('fc2', 0)['headroom_bits']:.1f} bits of headroom" in text
    book = real_integers.codebook_accuracy(2)
    assert f"{book['k-means']:.2%} with k-means centroids vs {book['linear']:.2%}" in text


def test_lab09_charts_plot_what_was_computed():
    """The accumulator histogram counts every accumulator once; the headroom bars are log₂ of the three bounds;
    the grid rugs hold each grid's points inside ±max|x|."""
    import json
    import math

    from ptqlab.core.fixed_point import INT32_MAX
    from ptqlab.lessons.real_integers import figures as plots
    from ptqlab.lessons.real_integers import numbers as real_integers

    walk = real_integers.layer_walkthrough("fc2", 0)
    spec = json.loads(plots.accumulator_chart(walk["acc"], walk["worst_case"], "t").to_json())
    histogram, headroom = spec["hconcat"]
    assert sum(r["count"] for r in histogram["layer"][0]["data"]["values"]) == walk["acc"].numel()
    bars = headroom["layer"][0]["data"]["values"]
    observed = float(walk["acc"].double().abs().max())
    want = [math.log2(observed), math.log2(walk["worst_case"]), math.log2(INT32_MAX)]
    assert [b["bits"] for b in bars] == pytest.approx(want, rel=1e-6)
    x, float_grid, int_grid = real_integers.grids("weight", "fp8_e4m3", 8)
    spec = json.loads(plots.grids_chart(x, float_grid, int_grid, ("fp8_e4m3", "int8"), "t").to_json())
    values, spacing = spec["hconcat"]
    amax = float(x.abs().max())
    rugs = {layer["encoding"]["color"]["datum"]: layer["data"]["values"] for layer in values["layer"][1:]}
    inside = int(((int_grid >= -amax) & (int_grid <= amax)).sum())
    assert len(rugs[f"int8 grid ({inside} pts)"]) == inside
    assert all(layer["mark"]["interpolate"] == "step-before" for layer in spacing["layer"])
