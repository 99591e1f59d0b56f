"""Every number-bearing sentence of labs 01, 03, 05 and 06 agrees with what the lab measures: each test
calls the lessons function that writes the sentence and checks it against ptqlab's own values."""

import pytest

from ptqlab import choose_qparams, representable_range
from ptqlab.core.spec import QuantSpec
from ptqlab.lessons.affine_map import numbers as affine_map_numbers
from ptqlab.lessons.affine_map import questions as affine_map_questions
from ptqlab.lessons.affine_map import text as affine_map_text
from ptqlab.lessons.direct_manipulation import questions as direct_manipulation_questions
from ptqlab.lessons.schemes import questions as schemes_questions
from ptqlab.lessons.sensitivity import questions as sensitivity_questions


def test_lab01_symmetric_hint_states_the_grid_ptqlab_builds():
    spec = affine_map_numbers.per_tensor_spec(4, True, True)
    g_lo, g_hi = (float(v) for v in representable_range(choose_qparams(-1.0, 2.5, spec), spec))
    hint = affine_map_text.symmetric_hint(4, -1.0, 2.5)
    assert (
        f"covers [{affine_map_numbers.fmt(g_lo)}, {affine_map_numbers.fmt(g_hi)}]" in hint
    )  # [-2.66667, 2.33333]
    assert "the codes below -1 are never used" in hint and "below -2.5" not in hint
    assert f"max = 2.5 is clipped to {affine_map_numbers.fmt(g_hi)}" in hint
    asym = choose_qparams(-1.0, 2.5, affine_map_numbers.per_tensor_spec(4, True, False)).scale
    assert f"grows from {affine_map_numbers.fmt(float(asym))} to {affine_map_numbers.fmt(2.5 / 7.5)}" in hint


def test_lab01_hint_drops_clauses_that_do_not_hold():
    hint = affine_map_text.symmetric_hint(
        4, -3.0, 2.0
    )  # max|x| is the min: the grid [-3.2, 2.8] clips nothing
    assert "is clipped" not in hint and "covers [-3.2, 2.8]" in hint


@pytest.mark.parametrize("bits", [2, 4, 8, 16])
def test_lab01_clip_note_only_when_the_max_is_really_clipped(bits):
    curve = affine_map_numbers.affine_curve(
        affine_map_numbers.per_tensor_spec(bits, True, True), -1.0, 2.5, n=2
    )
    note = affine_map_text.symmetric_clip_note(curve)
    assert curve.grid_hi < 2.5 and f"clipped to {affine_map_numbers.fmt(curve.grid_hi)}" in note
    assert f"top code stands for {2 ** (bits - 1) - 1}·scale" in note
    flipped = affine_map_numbers.affine_curve(
        affine_map_numbers.per_tensor_spec(bits, True, True), -2.5, 1.0, n=2
    )
    assert affine_map_text.symmetric_clip_note(flipped) == ""  # the negative end fits, max 1 is well inside


def test_lab01_conventions_table_uses_both_divisors():
    rows = affine_map_numbers.symmetric_conventions(
        affine_map_numbers.per_tensor_spec(8, True, True), -1.0, 2.5
    )
    (full, d_full, s_full, top_full, n_full), (narrow, d_narrow, s_narrow, top_narrow, n_narrow) = rows
    assert (d_full, d_narrow, n_full, n_narrow) == (127.5, 127, 256, 255)
    assert s_full == pytest.approx(2.5 / 127.5) and s_narrow == pytest.approx(2.5 / 127)
    assert top_full == pytest.approx(127 * 2.5 / 127.5) and top_narrow == pytest.approx(2.5)
    text = affine_map_text.symmetric_conventions_markdown(QuantSpec(bits=8), -1.0, 2.5)
    assert f"clipped by {affine_map_numbers.fmt(2.5 - top_full)}" in text and "exactly on the grid" in text
    assert f"{127.5 / 127:.4f}× as large" in text


def test_lab01_questions_answers_are_ptqlabs():
    predict, numeric, where = affine_map_questions.lab01_questions()
    assert (
        predict.expected == affine_map_questions.GROWS and "0.233333 → symmetric 0.333333" in predict.answer
    )
    assert numeric.expected == pytest.approx(6 / 255) and "0.0235294" in numeric.answer
    assert where.expected in where.options


# ---- lab 03 ------------------------------------------------------------------------------------------------


def test_lab03_bits_per_weight_count_the_metadata_engines_store():
    from ptqlab.core.spec import PerChannel, PerGroup
    from ptqlab.lessons.schemes.text import bits_per_weight

    sym_g32 = QuantSpec(bits=4, granularity=PerGroup(32, axis=1))
    assert bits_per_weight(sym_g32, (64, 256), "fp16") == 4.5  # no zero point for a symmetric block
    assert bits_per_weight(sym_g32.with_(symmetric=False), (64, 256), "bf16") == 5.0  # scale + zero point
    assert bits_per_weight(sym_g32, (64, 256), "fp32") == 5.0
    assert bits_per_weight(QuantSpec(bits=8, granularity=PerChannel(0)), (64, 256), "fp16") == 8 + 16 / 256
    with pytest.raises(ValueError, match="metadata"):
        bits_per_weight(sym_g32, (64, 256), "fp8")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_lab03_folding_sentence_matches_the_study(name):
    import re

    from ptqlab.lessons.schemes.numbers import lab_folding
    from ptqlab.lessons.schemes.text import folding_summary

    points, fp32, factors = lab_folding(name)
    text = folding_summary(name)
    ratios = [float(s.max() / s.min()) for s in factors.values()]
    assert f"differ by {min(ratios):.1f}–{max(ratios):.1f}×" in text
    at = {(p.bits, p.granularity, p.folded): 100 * p.accuracy for p in points}
    for b in (2, 3):
        kept, folded, pc = (
            at[(b, "per-tensor", False)],
            at[(b, "per-tensor", True)],
            at[(b, "per-channel", True)],
        )
        sentence = re.search(rf"W{b}: [^.]*\.\d %[^.]*\.\d %[^.]*\.\d %: ([^.]*)\.", text)
        assert f"W{b}: per-tensor {kept:.1f} % with BN kept → {folded:.1f} % folded" in text
        verdict = sentence.group(1)
        if folded >= kept - 0.3:
            assert verdict == "folding costs per-tensor nothing here"
        elif pc >= kept - 0.3:
            assert verdict == "per-channel scales win it back"
        else:
            assert "do **not** win it back" in verdict


@pytest.mark.slow
def test_lab03_outlier_sentence_and_questions_match_the_measurement():
    from ptqlab.lessons.schemes.numbers import default_layer, lab_granularities, lab_weight_matrices
    from ptqlab.lessons.schemes.text import activation_gap, outlier_sentence

    layer = default_layer("minilm")
    amax = lab_weight_matrices("minilm", False)[layer].abs().amax(1)
    r = lab_granularities("minilm", False, layer, bits=4, group_size=32, symmetric=True)
    text = outlier_sentence()
    assert f"max|w| {float(amax.max() / amax.median()):.0f}× the median" in text
    assert f"SQNR of {r['per-tensor'].sqnr_db:.1f} dB against {r['per-channel'].sqnr_db:.1f} dB" in text
    choose, per_group, scale, predict = schemes_questions.lab03_questions()
    assert (
        choose.expected == schemes_questions.PER_CHANNEL
        and r["per-channel"].sqnr_db > r["per-tensor"].sqnr_db + 6
    )
    assert per_group.expected == 4.5 and scale.expected == pytest.approx(0.5 / 127.5)
    assert predict.expected == ("under 1 point" if abs(activation_gap(6)) < 1 else "more than 1 point")
    assert activation_gap(2) > 10  # the default A2 shows the effect


# ---- lab 05 ------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_lab05_sentences_match_the_measurement(name):
    from ptqlab.lessons.sensitivity import numbers as sensitivity_numbers
    from ptqlab.lessons.sensitivity import text as sensitivity_text

    report = sensitivity_numbers.lab_sensitivity(name, "per-channel")
    note = sensitivity_text.sensitivity_note(report, name)
    sizes = sensitivity_numbers.layer_sizes(name)
    first = report.layers[0]
    assert f"each output sums {sizes[first][1]} inputs, and it has {sizes[first][0]:,} weights" in note
    if name == "mlp":  # fc1 has 32,768 weights: the "fewest weights" claim must not appear
        assert sizes[first][0] == 32_768 and "the fewest" not in note
    if any(report.drop(n, b) < 0 for n in report.layers for b in report.bits):
        assert "A negative drop" in note and "is not a better model" in note
    assert ("tops the list" in note) == (report.ranking(2)[0] == first)

    result = sensitivity_numbers.lab_mixed_precision(name, "per-channel")
    start, stop, _ = sensitivity_numbers.budget_slider_range(result)
    assert result.for_budget(start * 1024) is not None  # the slider's minimum fits all-W2
    assert result.for_budget(stop * 1024) is not None  # and the maximum fits all-W8
    assert "No configuration" not in sensitivity_text.budget_markdown(result, start)
    for kib in (start, stop):
        chosen, text = result.for_budget(kib * 1024), sensitivity_text.budget_markdown(result, kib)
        assert ("within the noise" in text) == (chosen.metric > result.float_metric)
        assert "quantization did not improve" not in text or chosen.metric > result.float_metric

    predict = sensitivity_questions.lab05_questions(name, "per-channel")[2]
    assert predict.expected == sensitivity_questions.FITS


def test_lab05_one_image_in_points():
    from ptqlab.lessons.sensitivity import numbers as sensitivity_numbers

    assert sensitivity_numbers.test_images() == 360


# ---- lab 06 ------------------------------------------------------------------------------------------------


def test_lab06_questions_match_the_measurement():
    from ptqlab import error_split, qparams_for
    from ptqlab.lessons.direct_manipulation import numbers as direct_manipulation_numbers
    from ptqlab.models.data import heavy_tailed_activations

    x = heavy_tailed_activations()
    predict, staircase, calibrator = direct_manipulation_questions.lab06_questions()
    hi, pulled, minmax = direct_manipulation_numbers.pulled_in_sqnr(
        x, direct_manipulation_numbers.EXPLORER_SPEC
    )
    assert minmax == pytest.approx(
        error_split(
            x,
            qparams_for(x, direct_manipulation_numbers.EXPLORER_SPEC),
            direct_manipulation_numbers.EXPLORER_SPEC,
        ).sqnr_db
    )
    assert predict.expected == (
        direct_manipulation_questions.RISES if pulled > minmax else direct_manipulation_questions.FALLS
    )
    assert f"{minmax:.2f} dB → {pulled:.2f} dB" in predict.answer and f"down to {hi:.2f}" in predict.prompt
    assert staircase.expected == pytest.approx(2 / 7)
    sqnr = direct_manipulation_numbers.calibrator_sqnr(x, direct_manipulation_numbers.EXPLORER_SPEC)
    assert calibrator.expected == max(sqnr, key=sqnr.get) and sqnr["mse"] >= sqnr["minmax"]


def test_lab06_clipped_share_is_not_rounded_to_zero():
    from ptqlab import choose_qparams, error_split
    from ptqlab.lessons.direct_manipulation import numbers as direct_manipulation_numbers
    from ptqlab.lessons.direct_manipulation import text as direct_manipulation_text
    from ptqlab.models.data import heavy_tailed_activations

    x = heavy_tailed_activations()
    lo, hi = float(x.min()), float(x.max()) - 1.0  # clips the single largest value: 0.005 %
    split = error_split(
        x,
        choose_qparams(lo, hi, direct_manipulation_numbers.EXPLORER_SPEC),
        direct_manipulation_numbers.EXPLORER_SPEC,
    )
    text = direct_manipulation_text.thresholds_markdown(x, lo, hi, direct_manipulation_numbers.EXPLORER_SPEC)
    assert 0 < split.clipped_fraction < 1e-4
    assert f"{100 * split.clipped_fraction:.3g} % of the values are clipped" in text and "0.00 %" not in text
