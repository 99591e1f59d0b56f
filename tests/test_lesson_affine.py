"""Lab 01's numbers (ptqlab.lessons.affine_map) and figures (ptqlab.plots.affine_map)."""

import json
import math

import pytest
import torch

from ptqlab import PerChannel, QuantSpec, choose_qparams, fake_quantize, quantize, representable_range
from ptqlab.labkit.questions import feedback
from ptqlab.lessons.affine_map import figures as plots
from ptqlab.lessons.affine_map import numbers as affine_map_numbers
from ptqlab.lessons.affine_map import questions as affine_map_questions
from ptqlab.lessons.affine_map import text as affine_map_text

SPEC4 = QuantSpec(bits=4, symmetric=False)


def test_affine_curve_numbers_come_from_the_core():
    curve = affine_map_numbers.affine_curve(SPEC4, -1.0, 2.5)
    qp = choose_qparams(-1.0, 2.5, SPEC4)
    assert curve.scale == float(qp.scale) == pytest.approx(3.5 / 15)
    assert curve.zero_point == int(qp.zero_point) == -8 - round(-1.0 / (3.5 / 15)) == -4
    lo, hi = representable_range(qp, SPEC4)
    assert (curve.grid_lo, curve.grid_hi) == (float(lo), float(hi))
    assert torch.equal(curve.x_hat, fake_quantize(curve.x, qp, SPEC4))
    # the axis runs past the grid on both sides, so both clipping regions are on the plot
    assert float(curve.x[0]) < curve.grid_lo and float(curve.x[-1]) > curve.grid_hi
    assert bool(curve.clipped[0]) and bool(curve.clipped[-1]) and not bool(curve.clipped[len(curve.x) // 2])


def test_rounding_and_clipping_parts_partition_the_error():
    curve = affine_map_numbers.affine_curve(QuantSpec(bits=3), -2.0, 1.0)
    r, c = curve.rounding_error, curve.clipping_error
    assert bool((torch.isnan(r) ^ torch.isnan(c)).all())  # each x is in exactly one part
    assert torch.equal(torch.where(torch.isnan(r), c, r), curve.error)
    assert float(r[~torch.isnan(r)].abs().max()) <= curve.scale / 2 * (1 + 1e-6)
    assert curve.split.total_mse == pytest.approx(float((curve.error.double() ** 2).mean()), rel=1e-9)


@pytest.mark.parametrize("lo,hi", [(0.0, 0.0), (-10.0, -10.0), (10.0, 10.0), (-10.0, 10.0), (3.0, 3.0)])
@pytest.mark.parametrize("bits", [2, 16])
@pytest.mark.parametrize("signed,symmetric", [(True, True), (False, False), (False, True)])
def test_every_slider_extreme_gives_a_finite_curve(lo, hi, bits, signed, symmetric):
    spec = affine_map_numbers.per_tensor_spec(bits, signed, symmetric)
    curve = affine_map_numbers.affine_curve(spec, lo, hi)
    assert bool(torch.isfinite(curve.x_hat).all()) and curve.scale > 0
    assert float(curve.x[-1]) > float(curve.x[0])
    assert math.isfinite(curve.split.total_mse)
    assert fake_quantize(torch.zeros(1), curve.qparams, spec).item() == 0.0
    assert "scale" in affine_map_text.qparams_markdown(curve)


def test_min_above_max_is_explained_not_raised_in_the_lab():
    assert (
        affine_map_numbers.range_problem(-1.0, 1.0) is None
        and affine_map_numbers.range_problem(2.0, 2.0) is None
    )
    message = affine_map_numbers.range_problem(3.0, 1.0)
    assert message.startswith("min (3) is above max (1)")
    with pytest.raises(ValueError, match=r"^min \(3\) is above max \(1\)"):
        affine_map_numbers.affine_curve(SPEC4, 3.0, 1.0)
    assert "finite" in affine_map_numbers.range_problem(math.nan, 1.0)


def test_affine_curve_rejects_bad_arguments():
    with pytest.raises(ValueError, match="^affine_curve needs a per-tensor spec"):
        affine_map_numbers.affine_curve(QuantSpec(granularity=PerChannel(0)), -1.0, 1.0)
    with pytest.raises(ValueError, match="^n must be an int >= 2"):
        affine_map_numbers.affine_curve(SPEC4, -1.0, 1.0, n=1)


def test_qparams_markdown_shows_the_formula_with_numbers():
    text = affine_map_text.qparams_markdown(affine_map_numbers.affine_curve(SPEC4, -1.0, 2.5))
    assert "(2.5 − (-1)) / 15 = **0.233333**" in text
    assert "= **-4**" in text
    sym = affine_map_text.qparams_markdown(affine_map_numbers.affine_curve(QuantSpec(bits=8), -3.0, 1.0))
    assert "3 / (255/2) = **0.0235294**" in sym and "**0** (the middle code)" in sym
    empty = affine_map_text.qparams_markdown(affine_map_numbers.affine_curve(QuantSpec(bits=8), 0.0, 0.0))
    assert "float32 eps" in empty


def test_grid_rows_small_grids_are_listed_whole():
    qp = choose_qparams(-1.0, 2.5, SPEC4)
    rows = affine_map_numbers.grid_rows(qp, SPEC4)
    assert [r[0] for r in rows] == list(range(-8, 8))
    assert rows[4] == (-4, 0.0)  # the zero point is the code of 0.0
    assert rows[0][1] == pytest.approx(-4 * 3.5 / 15)


@pytest.mark.parametrize("signed", [True, False])
def test_grid_rows_16_bits_are_summarised(signed):
    spec = QuantSpec(bits=16, signed=signed, symmetric=False)
    qp = choose_qparams(-1.0, 2.5, spec)
    rows = affine_map_numbers.grid_rows(qp, spec)
    assert len(rows) == 3 + 1 + 1 + 1 + 3  # head, …, zero point, …, tail
    codes = [r[0] for r in rows if r is not None]
    zp = int(qp.zero_point)
    assert codes == [spec.qmin, spec.qmin + 1, spec.qmin + 2, zp, spec.qmax - 2, spec.qmax - 1, spec.qmax]
    assert rows[3] is None and rows[5] is None and rows[4] == (zp, 0.0)
    text = affine_map_text.grid_markdown(qp, spec)
    assert text.startswith(f"65,536 codes from {spec.qmin} to {spec.qmax}") and text.count("| … | … |") == 2


def test_worked_example_rows_match_quantize():
    qp = choose_qparams(-1.0, 2.5, SPEC4)
    x = torch.tensor([-1.2, -0.5, 0.0, 0.33, 2.6])
    rows = affine_map_numbers.worked_example(x, SPEC4, qp)
    assert [r.x_q for r in rows] == quantize(x, qp, SPEC4).tolist()
    assert [r.clipped for r in rows] == [True, False, False, False, True]
    assert rows[2].x_hat == 0.0 and rows[2].error == 0.0
    assert rows[0].x_q == -8 and rows[0].error == pytest.approx(-8 * 3.5 / 15 + 4 * 3.5 / 15 + 1.2, rel=1e-6)
    table = affine_map_text.worked_example_markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "| -1.2 | -8 |" in table and "clipped" in table


def test_self_check_answers():
    qp = choose_qparams(-1.0, 2.5, SPEC4)
    expected = affine_map_numbers.code_of(1.3, SPEC4, qp)
    assert expected == round(1.3 / (3.5 / 15)) - 4 == 2
    question = affine_map_questions.code_question(affine_map_numbers.affine_curve(SPEC4, -1.0, 2.5))
    assert question.expected == expected
    assert feedback(question, " 2 ") == (True, "Correct: 2.")
    ok, message = feedback(question, "3")
    assert ok is False and "too high" in message
    assert feedback(question, "")[0] is None
    assert feedback(question, "two")[0] is None
    assert affine_map_numbers.code_of(99.0, SPEC4, qp) == SPEC4.qmax  # clamped


def test_fmt_is_six_significant_digits():
    assert (
        affine_map_numbers.fmt(0.23333334) == "0.233333"
        and affine_map_numbers.fmt(1.1920929e-07) == "1.19209e-07"
        and affine_map_numbers.fmt(-4.0) == "-4"
    )


def _panels(chart):
    spec = json.loads(chart.to_json())  # strict JSON: a NaN or an infinity in the data would raise
    return spec["vconcat"]


@pytest.mark.parametrize("bits,lo,hi", [(2, -1.0, 2.5), (4, -1.0, 2.5), (16, -10.0, 10.0), (8, 0.0, 0.0)])
def test_chart_is_labelled_and_strict_json(bits, lo, hi):
    top, bottom = _panels(
        plots.affine_map_chart(affine_map_numbers.affine_curve(QuantSpec(bits=bits, symmetric=False), lo, hi))
    )
    assert top["title"].startswith("The staircase") and bottom["title"].startswith("The error")
    assert top["layer"][1]["encoding"]["y"]["title"] == "output x̂ (real value)"
    x_titles = {layer["encoding"]["x"]["title"] for layer in bottom["layer"] if "x" in layer["encoding"]}
    assert "input x (real value)" in x_titles


def _flat_value_at(xs, ys, x):
    """The staircase's value at x, from its vertices: flats are (xs[2i], xs[2i+1]) at height ys[2i]."""
    for a, b, y in zip(xs[0::2], xs[1::2], ys[0::2], strict=True):
        if a <= x <= b:
            return y
    raise AssertionError(f"{x} is on no flat")


@pytest.mark.parametrize(
    "bits,signed,symmetric,lo,hi",
    [
        (2, True, False, -1.0, 2.5),
        (3, True, True, -1.0, 2.5),
        (4, False, False, 0.0, 6.0),
        (8, True, False, -0.3, 7.1),
    ],
)
def test_staircase_vertices_are_torchs_fake_quant(bits, signed, symmetric, lo, hi):
    """Between decision thresholds the drawn staircase is exactly torch's fake_quantize_per_tensor_affine."""
    spec = affine_map_numbers.per_tensor_spec(bits, signed, symmetric)
    curve = affine_map_numbers.affine_curve(spec, lo, hi)
    xs, ys = plots.staircase_vertices(curve)
    assert len(xs) == 2 * spec.levels
    thresholds, _ = plots.thresholds(curve)
    probe = torch.linspace(xs[0], xs[-1], 997)
    away = torch.stack([(probe - t).abs() for t in thresholds]).amin(0) > 1e-4 * curve.scale
    probe = probe[away]
    oracle = torch.fake_quantize_per_tensor_affine(probe, curve.scale, curve.zero_point, spec.qmin, spec.qmax)
    drawn = torch.tensor([_flat_value_at(xs, ys, float(x)) for x in probe])
    torch.testing.assert_close(drawn, oracle, rtol=0, atol=1e-6 * max(1.0, abs(hi)))


def test_error_series_is_the_saw_tooth_and_the_ramps():
    curve = affine_map_numbers.affine_curve(QuantSpec(bits=3, symmetric=False), -1.0, 2.5)
    data = plots.error_series(curve)
    half = curve.scale / 2
    teeth = [r for r in data if r["series"].startswith("rounding")]
    assert max(abs(r["error"]) for r in teeth) == pytest.approx(half, rel=1e-6)
    assert len(teeth) == 2 * (curve.spec.levels - 1) + 2  # two vertices per threshold, plus both ends
    ramps = [r for r in data if r["series"].startswith("clipping")]
    assert {round(r["x"], 5) for r in ramps if r["error"] != 0} == {
        round(float(curve.x[0]), 5),
        round(float(curve.x[-1]), 5),
    }
    left = next(r for r in ramps if r["x"] == min(r["x"] for r in ramps))
    assert left["error"] == pytest.approx(curve.grid_lo - float(curve.x[0]), rel=1e-6)  # x̂ − x = grid_lo − x
    assert f"MSE {curve.split.rounding_mse:.3g}" in teeth[0]["series"]


def test_sixteen_bits_draws_the_saw_tooth_as_its_band_not_aliased_samples():
    curve = affine_map_numbers.affine_curve(QuantSpec(bits=16, symmetric=False), -1.0, 2.5)
    band = [r for r in plots.error_series(curve) if r["lower"] is not None]
    assert [(r["lower"], r["error"]) for r in band] == [
        (pytest.approx(-curve.scale / 2, rel=1e-6), pytest.approx(curve.scale / 2, rel=1e-6))
    ] * 2
    assert "65,535 teeth" in band[0]["series"]
    xs, ys = plots.staircase_vertices(curve)
    assert len(xs) == 4 and ys[1] == curve.grid_lo and ys[2] == curve.grid_hi


def test_error_axis_ticks_are_labelled_in_scale_steps():
    axis = plots.error_axis(0.05, 3.0)
    assert axis["values"][:1] == [-1.0] and 0.0 in axis["values"]
    assert "s/2" in axis["labelExpr"] and "−s/2" in axis["labelExpr"]
