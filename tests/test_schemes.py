"""Schemes on real tensors (granularity, BN factors, activation symmetry) and the figure builders."""

import json

import pytest
import torch
from matplotlib.figure import Figure

from ptqlab.lessons.schemes import figures as schemes_charts
from ptqlab.lessons.schemes import folding_figure as plots_schemes
from ptqlab.lessons.schemes import numbers as schemes
from ptqlab.lessons.sensitivity import figures as plots_sensitivity
from ptqlab.models import digits_mlp
from ptqlab.models.data import digits_split
from ptqlab.ptq.calibrate import capture
from ptqlab.ptq.folding import bn_scale_factors, fold_batchnorm
from ptqlab.ptq.sensitivity import greedy_mixed_precision, layer_sensitivity
from ptqlab.ptq.simulate import evaluate_accuracy


def test_fitting_group_size():
    assert schemes.fitting_group_size(1536, 32) == 32
    assert schemes.fitting_group_size(9, 32) == 9
    assert schemes.fitting_group_size(144, 32) == 24
    with pytest.raises(ValueError):
        schemes.fitting_group_size(64, 0)


def test_finer_granularity_never_loses_on_an_outlier_channel():
    torch.manual_seed(0)
    w = torch.randn(64, 128) * 0.02
    w[7] *= 40  # one outlier channel, as in MiniLM's output.dense layers
    r = schemes.compare_granularities(w, bits=4, group_size=32)
    assert r["per-tensor"].scales.shape == (64, 1) and r["per-group"].scales.shape == (64, 4)
    assert r["per-tensor"].sqnr_db < r["per-channel"].sqnr_db < r["per-group"].sqnr_db
    # per-tensor: every ordinary channel rounds to (almost) nothing; its own channel is fine
    others = torch.cat([r["per-tensor"].channel_sqnr_db[:7], r["per-tensor"].channel_sqnr_db[8:]])
    assert float(others.max()) < 3.0 and float(r["per-tensor"].channel_sqnr_db[7]) > 15
    assert r["per-channel"].bits_per_element == pytest.approx(4 + 16 / 128)  # one fp16 scale per row
    assert r["per-group"].bits_per_element == pytest.approx(4 + 16 / 32)


def test_bn_factors_are_what_folding_multiplies_by():
    mlp = digits_mlp()
    factors = bn_scale_factors(mlp)
    assert list(factors) == ["bn1", "bn2", "bn3"]
    folded = fold_batchnorm(mlp)
    ratio = folded.fc1.weight / mlp.fc1.weight
    assert torch.allclose(ratio[:, 0], factors["bn1"], rtol=1e-4)


def test_asymmetric_uses_twice_the_codes_on_post_relu_data():
    mlp, data = digits_mlp(), digits_split()
    act = capture(mlp, data.x_test, "fc2")
    assert float(act.min()) == 0.0
    r = schemes.activation_symmetry(act, bits=4)
    sym, asym = r["symmetric int (zero point 0)"], r["asymmetric uint (zero point from min)"]
    assert sym.codes_used <= 9 and asym.codes_used > sym.codes_used
    assert asym.sqnr_db > sym.sqnr_db + 3  # about one bit (6 dB) better; measured 19.6 vs 13.6 dB
    assert schemes.effective_bits(16) == 4.0


def test_bn_folding_study_reports_every_combination():
    mlp, data = digits_mlp(), digits_split()
    points = schemes.bn_folding_study(mlp, data.x_test, data.y_test, bits=(2, 8))
    assert len(points) == 2 * 2 * 2
    at = {(p.bits, p.granularity, p.folded): p.accuracy for p in points}
    # measured: per-tensor W2 60.6 % kept / 38.3 % folded; per-channel on folded weights 97.5 %
    assert at[(2, "per-channel", True)] > at[(2, "per-tensor", True)] + 0.3
    assert at[(8, "per-channel", True)] > 0.99


def test_figure_builders_label_their_axes():
    mlp, data = digits_mlp(), digits_split()
    acc = lambda m: evaluate_accuracy(m, data.x_test, data.y_test)  # noqa: E731
    figures = [
        plots_schemes.folding_figure(
            schemes.bn_folding_study(mlp, data.x_test, data.y_test, bits=(2, 4)),
            0.99,
            bn_scale_factors(mlp),
            "t",
        ),
        plots_sensitivity.sensitivity_figure(layer_sensitivity(mlp, acc, (2,)), "t"),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_mixed_precision_chart_plots_the_measured_configurations():
    mlp, data = digits_mlp(), digits_split()
    result = greedy_mixed_precision(mlp, lambda m: evaluate_accuracy(m, data.x_test, data.y_test), (8, 2))
    chosen = result.path[1]
    spec = _chart(plots_sensitivity.mixed_precision_chart(result, chosen, chosen.size_bytes, "t"))
    by_series = {layer["encoding"]["color"]["datum"]: layer for layer in spec["layer"]}
    explored = by_series["configurations measured"]["data"]["values"]
    assert [(r["kib"], r["pct"]) for r in explored] == [
        (pytest.approx(p.size_bytes / 1024, rel=1e-6), pytest.approx(100 * p.metric, rel=1e-6))
        for p in result.explored
    ]
    star = by_series["chosen"]["data"]["values"][0]
    assert star["kib"] == pytest.approx(chosen.size_bytes / 1024, rel=1e-6)
    assert by_series["size budget"]["data"]["values"] == [
        {"kib": pytest.approx(chosen.size_bytes / 1024, rel=1e-6)}
    ]
    assert by_series["fp32 accuracy"]["data"]["values"][0]["pct"] == pytest.approx(
        100 * result.float_metric, rel=1e-6
    )
    pareto = by_series["Pareto front"]["data"]["values"]
    assert (
        len(pareto) == len(result.pareto())
        and by_series["Pareto front"]["mark"]["interpolate"] == "step-after"
    )
    first = spec["layer"][0]["encoding"]
    assert (
        first["x"]["title"] == "model size (KiB, all parameters)"
        and first["y"]["title"] == "test accuracy (%)"
    )
    no_pick = _chart(plots_sensitivity.mixed_precision_chart(result, None, 1.0, "t"))
    assert "chosen" not in {layer["encoding"]["color"]["datum"] for layer in no_pick["layer"]}


def _chart(chart):
    return json.loads(chart.to_json())  # strict JSON: no NaN or infinity reaches the browser


def test_granularity_chart_plots_what_the_schemes_computed():
    mlp = digits_mlp()
    w = schemes.as_matrix(mlp.fc2.weight)
    results = schemes.compare_granularities(w, 3, 16)
    spec = _chart(schemes_charts.granularity_chart(w, results, "fc2"))
    ranges, scales, errors, hist = spec["concat"]
    assert [p["title"] for p in spec["concat"]] == [
        "Weight range of every output channel",
        "Scale chosen (one integer step)",
        "Error per channel",
        "Widest vs typical channel",
    ]
    bars = ranges["layer"][0]["data"]["values"]
    assert len(bars) == w.shape[0]
    assert [b["hi"] for b in bars] == pytest.approx(w.amax(1).tolist(), rel=1e-3)  # 4 digits: drawn only
    per_channel = next(layer for layer in scales["layer"] if layer["mark"]["type"] == "point")
    want = results["per-channel"].scales[:, 0].tolist()
    assert [r["s"] for r in per_channel["data"]["values"]] == pytest.approx(want, rel=1e-3)
    legend = [layer["encoding"]["color"]["datum"] for layer in errors["layer"]]
    assert legend == [f"{name}: {r.sqnr_db:.1f} dB overall" for name, r in results.items()]
    counts = [r["count"] for layer in hist["layer"][:2] for r in layer["data"]["values"]]
    assert sum(counts) == 2 * w.shape[1]  # two channels' histograms, every weight counted once
    for panel in spec["concat"]:
        for layer in panel["layer"]:
            scale = layer["encoding"]["color"]["scale"]
            assert layer["encoding"]["color"]["datum"] in scale["domain"]  # every series is in the legend


def test_activation_chart_marks_each_schemes_grid():
    mlp, data = digits_mlp(), digits_split()
    act = capture(mlp, data.x_test[:50], "fc2")
    results = schemes.activation_symmetry(act, 3)
    spec = _chart(schemes_charts.activation_chart(act, results, "t"))
    bars, *grids = spec["layer"]
    assert sum(r["count"] for r in bars["data"]["values"]) == act.numel()
    for layer, (name, r) in zip(grids, results.items(), strict=True):
        assert len(layer["data"]["values"]) == r.spec.levels
        assert layer["encoding"]["color"]["datum"].startswith(f"{name}: {r.codes_used} codes used")
    assert (
        bars["encoding"]["x"]["title"] == "activation value"
        and bars["encoding"]["y"]["title"] == "count (log)"
    )


@pytest.mark.parametrize("bits,symmetric", [(2, True), (4, False), (8, True)])
def test_granularity_sqnrs_match_the_metrics_module(bits, symmetric):
    """One float64 pass gives each row's SQNR and the whole matrix's: the same as core.metrics.sqnr_db."""
    from ptqlab.core.metrics import sqnr_db

    w = schemes.as_matrix(digits_mlp().fc2.weight)
    for r in schemes.compare_granularities(w, bits, 16, symmetric).values():
        assert r.sqnr_db == pytest.approx(sqnr_db(w, r.w_hat), rel=1e-9, abs=1e-9)
        rows = [sqnr_db(w[i], r.w_hat[i]) for i in (0, 7, w.shape[0] - 1)]
        assert r.channel_sqnr_db[[0, 7, w.shape[0] - 1]].tolist() == pytest.approx(rows, rel=1e-6)
