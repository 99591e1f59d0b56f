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


# ---- issue 23: each sentence fed the case that would contradict it --------------------------------------

LABS = __import__("pathlib").Path(__file__).resolve().parent.parent / "labs"


def _row(variant, *, bits=8, family="torch.ao (x86/fbgemm)", speedup=1.0, median=1.0, **kw):
    from ptqlab.bench.run import BenchRow

    return BenchRow(
        "minilm", 1, variant, variant, variant, family, bits, False, True,
        median_ms=median, p10_ms=median * 0.9, p90_ms=median * 1.1, repeats=5, speedup=speedup, **kw,
    )  # fmt: skip


def test_c1_lab09_relu_clause_only_when_the_clamp_fires():
    from types import SimpleNamespace

    from ptqlab.core.fixed_point import quantize_multiplier
    from ptqlab.lessons.real_integers.text import output_code_sentence

    m0, n = (int(v) for v in quantize_multiplier(0.01))
    relu = SimpleNamespace(output_zero_point=59, relu=True)
    above = output_code_sentence(relu, 800, m0, n, 67)  # 59 + 8 = 67: above z_y, nothing clamped
    assert "59 + 8 = 67" in above and "does not fire" in above and "clamps" not in above
    below = output_code_sentence(relu, -800, m0, n, 59)  # 59 − 8 = 51 < z_y: the ReLU clamps
    assert "59 + -8 = 51" in below and "fused ReLU clamps it to **59**" in below
    plain = SimpleNamespace(output_zero_point=250, relu=False)
    assert "saturates to **255**" in output_code_sentence(plain, 800, m0, n, 255)
    assert "ReLU" not in output_code_sentence(plain, 100, m0, n, 251)


def test_c1_lab09_walkthrough_sentence_matches_the_integer_layer():
    import torch

    from ptqlab.core.fixed_point import multiply_by_quantized_multiplier
    from ptqlab.lessons.real_integers import numbers as ri
    from ptqlab.lessons.real_integers import text as rt

    walk = ri.layer_walkthrough("fc1", 0)  # fc1 carries the fused ReLU
    layer, acc = walk["layer"], walk["terms"].total()[0]
    assert layer.relu
    raw = layer.output_zero_point + multiply_by_quantized_multiplier(acc, layer.m0, layer.shift)
    seen = set()
    for c in range(len(raw)):
        fired = bool(raw[c] < layer.output_zero_point)
        if fired in seen:
            continue
        seen.add(fired)
        text = rt.walkthrough_markdown(walk, c)
        assert ("fused ReLU clamps" in text) == fired and ("does not fire" in text) == (not fired)
        assert f"= **{int(walk['codes'][c])}**" in text or f"to **{int(walk['codes'][c])}**" in text
    assert seen == {True, False} and torch.equal(raw.clamp(layer.output_zero_point, 255), walk["codes"])


def test_c2_lab04_ort_column_exists_where_the_page_promises_it():
    from types import SimpleNamespace

    from ptqlab.lessons.full_model.numbers import measurement_markdown

    assert (
        "speedup against ORT\n    fp32 (the table's *vs ORT fp32* column)"
        in (LABS / "04_full_model_ptq.py").read_text()
    )
    rows = [
        _row("fp32", bits=32, family="baseline"),
        _row("ort-int8-dynamic", speedup=2.0, speedup_vs_ort_fp32=1.25),
    ]
    for r in rows:
        r.size_bytes = 1_000_000
    table = measurement_markdown(SimpleNamespace(rows=rows, llc_bytes=None))
    assert "| vs ORT fp32 |" in table.splitlines()[0] and "| 1.25× |" in table


def test_c3_c4_lab04_int4_size_names_what_stays_in_float():
    from ptqlab.lessons.full_model.text import size_sentence

    fp32 = _row("fp32", bits=32, family="baseline", size_bytes=90_900_000, weight_bytes=42_600_000)
    note = "30 MatMul -> MatMulNBits (int4 symmetric, block 128, accuracy_level 4); 6 MatMul left in fp32; " \
           "the Q/K/V weights inside 6 fused Attention ops stay fp32"  # fmt: skip
    ort4 = _row("ort-int4-weight-only", bits=4, family="onnxruntime (CPU EP)", size_bytes=62_681_000,
                weight_bytes=15_000_000, notes=[note])  # fmt: skip
    text = size_sentence([fp32, ort4])
    assert "ort-int4-weight-only** takes 62.681 MB, 1.5× smaller than fp32's 90.900 MB" in text
    assert "47.681 MB is not streamed" in text and "embedding tables" in text
    assert "the Q/K/V weights inside 6 fused Attention ops stay fp32" in text
    assert "5.325 MB; the other 9.675 MB" in text  # 42.6 / 8 = 5.325 of the 15 MB streamed
    small = _row("torchao-int4-weight-only", bits=4, family="torchao", size_bytes=60_000, weight_bytes=59_000)
    tiny = size_sentence([_row("fp32", bits=32, size_bytes=240_000, weight_bytes=240_000), small])
    assert "embedding" not in tiny and "engine reports" not in tiny
    assert "4 bits per fp32 weight would be 0.030 MB; the other 0.029 MB" in tiny


def test_c5_roofline_counts_each_engine_without_its_tables():
    from types import SimpleNamespace

    from ptqlab.bench.run import _fill_size
    from ptqlab.lessons.full_model.numbers import _roofline_text

    class Session(__import__("torch").nn.Module):  # an ORT-like engine: a 90 MB file, 42 MB of MatMul weights
        def serialized_nbytes(self, exclude_embeddings=False):
            return 42_000_000 if exclude_embeddings else 90_000_000

    row = _row("ort-fp32", family="onnxruntime (CPU EP)", median=10.0)
    _fill_size(row, Session(), bandwidth=10e9)
    assert (row.size_bytes, row.weight_bytes) == (90_000_000, 42_000_000)
    assert row.floor_ms == pytest.approx(4.2) and row.attained == pytest.approx(0.42)
    fp32 = _row("fp32", bits=32, family="baseline", median=20.0, weight_bytes=42_600_000, floor_ms=4.26)
    fp32.attained = 0.213
    m = SimpleNamespace(bandwidth=10e9, llc_bytes=1 << 20, batch=1)
    text = _roofline_text(m, fp32, [row])
    assert "ort-fp32, 42.00 MB per forward, floor 4.200 ms" in text


def test_c6_c8_no_fixed_duration_and_a_clock_that_counts():
    from types import SimpleNamespace

    from ptqlab.core.progress import StepClock
    from ptqlab.lessons.full_model.numbers import run_time_sentence
    from ptqlab.lessons.ptq_vs_qat.text import not_measured_markdown

    for lab in ("04_full_model_ptq.py", "07_beyond_rtn.py", "08_ptq_vs_qat.py"):
        assert "a minute" not in (LABS / lab).read_text()
    assert "minute" not in not_measured_markdown("cnn")
    t = iter([0.0, 2.0, 10.0])
    clock = StepClock(4, clock=lambda: next(t))
    assert clock.tick("fp32") == "fp32 (2.0 s) · 1/4 · 2 s elapsed · about 6 s left"
    assert clock.tick("ort-fp32") == "ort-fp32 (8.0 s) · 2/4 · 10 s elapsed · about 10 s left"
    with pytest.raises(ValueError, match="total"):
        StepClock(0)
    rows = [_row("fp32", setup_s=0.1), _row("ort-int4-weight-only", setup_s=95.0)]
    m = SimpleNamespace(rows=rows, elapsed_s=136.4)
    assert (
        "This run took **136 s** on this machine; the slowest set-ups: ort-int4-weight-only 95.0 s"
        in run_time_sentence(m)
    )
    assert run_time_sentence(SimpleNamespace(rows=rows, elapsed_s=None)) == ""


def test_c7_speedup_chart_reads_right_and_names_onnxruntime():
    from ptqlab.bench.charts import legend_families, speedup_figure

    text = (LABS / "04_full_model_ptq.py").read_text()
    assert "above the dashed line" not in text and "right of the dashed line" in text
    rows = [
        _row("fp32", bits=32, family="baseline"),
        _row("ort-fp32", family="onnxruntime (CPU EP)", speedup=3.0, median=1 / 3),
    ]
    assert legend_families(rows) == ["baseline", "onnxruntime (CPU EP)"]
    fig = speedup_figure(rows, "minilm")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["baseline", "onnxruntime (CPU EP)"]


def test_c9_c10_lab09_weight_only_verdict_follows_the_measurement():
    from ptqlab.backends import RECIPES
    from ptqlab.bench.weight_only import ENGINE_RECIPES, WeightOnlyRow
    from ptqlab.lessons.real_integers.text import weight_only_verdict

    assert ("ort-int4-weight-only" in ENGINE_RECIPES) == ("ort-int4-weight-only" in RECIPES)

    def row(name, speedup, spread=0.05, size=1_000_000):  # fp32 takes 1 ms; p10/p90 = median ∓ spread
        median = 1.0 / speedup
        return WeightOnlyRow(name, size, 0.99, median, median - spread, median + spread, speedup)

    avx2 = {"avx2": True, "avx512_vnni": False, "avx_vnni": False, "amx_int8": False}
    slow = [row("fp32", 1.0), row("W8A16Linear (ptqlab, Python)", 0.7), row("torchao-int8-weight-only", 0.37),
            row("torchao-int4-weight-only", 0.8), row("ort-fp32", 2.0, 0.01), row("ort-int4-weight-only", 5.8, 0.01),
            row("ao-dynamic-int8", 1.02)]  # fmt: skip
    text = weight_only_verdict(slow, 64, avx2, 32 << 20)
    assert (
        "**Slower than fp32 here:** torchao-int8-weight-only (0.37×), torchao-int4-weight-only (0.80×)"
        in text
    )
    assert "**Faster than fp32 here:** ort-int4-weight-only (5.80×)" in text
    assert "torchao-int8-weight-only is even slower than ptqlab's Python layer W8A16Linear" in text
    assert "AVX2 and none of avx512_vnni" in text and "at batch 64 each weight feeds 128 FLOPs" in text
    assert "MatMulNBits runs at 2.90× ORT fp32" in text and "add 2.90× on top" in text
    noisy = [row("fp32", 1.0, 0.5), row("torchao-int4-weight-only", 1.12, 0.5)]  # p10–p90 ranges overlap
    text = weight_only_verdict(noisy, 64, avx2, None)
    assert "**Within the noise:** torchao-int4-weight-only (1.12×)" in text and "Faster" not in text
    fast = [row("fp32", 1.0), row("torchao-int8-weight-only", 1.3)]
    text = weight_only_verdict(fast, 1, {"avx512_vnni": True}, None)
    assert "Slower" not in text and "**Faster than fp32 here:** torchao-int8-weight-only (1.30×)" in text
    assert "No engine weight-only kernel ran" in weight_only_verdict([row("fp32", 1.0)], 1, avx2, None)


def test_c11_readme_accuracy_is_what_the_models_record():
    import re

    from ptqlab.models import training_info

    readme = (LABS.parent / "README.md").read_text()
    bullet = readme[readme.index("**Two trained classifiers**") :].split("\n- ")[0]
    assert "99.7 %" not in bullet and "about 99 % test accuracy" in bullet
    assert re.findall(r"\d+\.\d+ %", bullet) == []  # no fixed accuracy: it depends on the build
    for name in ("mlp", "cnn"):
        assert abs(training_info(name)["test_accuracy"] - 0.99) <= 0.01
