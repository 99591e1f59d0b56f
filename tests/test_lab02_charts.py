"""Lab 02's fast path and charts: the cached slider path returns exactly what the plain functions return,
and every plotted number is ptqlab's (the ranges are the ObserverResults', the histogram holds every value,
the picks sit on the error curve)."""

import json

import numpy as np
import pytest
import torch

from ptqlab.labkit.vega import number
from ptqlab.lessons.calibration import cache as cc
from ptqlab.lessons.calibration import figures as pc
from ptqlab.lessons.calibration import numbers as oc
from ptqlab.lessons.calibration import vendors
from ptqlab.observers import PER_TENSOR
from ptqlab.widgets.clipping import observer_markers

SETTINGS = [("gaussian", 20.0, 0.01, 8), ("relu", 100.0, 5.0, 1), ("uniform", 0.0, 0.0, 2)]


@pytest.mark.parametrize("body, size, percent, batches", SETTINGS)
@pytest.mark.parametrize("bits, symmetric", [(2, True), (4, False), (16, True)])
def test_cached_path_is_the_plain_path(body, size, percent, batches, bits, symmetric):
    setting = cc.data_setting(body, size, percent, batches)
    stats, x_eval = oc.synthetic_calibration(body, size, percent / 100, batches)
    assert cc.data(setting)[1] is x_eval
    spec = oc.lab_grid(bits, symmetric)
    for p in (99.0, 99.99, 100.0):  # p moves: only the percentile's range is recomputed, the rest is reused
        assert cc.comparison(setting, spec, p) == oc.compare_observers(stats, x_eval, spec, p=p)
        assert cc.comparison(setting, spec, p) == oc.compare_observers(stats, x_eval, spec, p=p)  # from cache
    curve, plain = cc.curve_for(setting, spec), oc.error_curve(stats, spec)
    assert torch.equal(curve.thresholds, plain.thresholds) and torch.equal(curve.rounding, plain.rounding)
    assert torch.equal(curve.clipping, plain.clipping)
    assert cc.vendor_answers(setting, spec, 99.9) == vendors.vendor_answers(x_eval, spec, 99.9)
    cached = observer_markers(x_eval, cc.cached_observers(setting, 99.9), spec)
    assert cached == observer_markers(x_eval, oc.observers(stats, 99.9), spec)


def test_cached_observers_check_their_spec_and_keep_the_names():
    setting = cc.data_setting("gaussian", 20.0, 0.01, 8)
    obs = cc.cached_observers(setting, 99.99)
    assert list(obs) == list(PER_TENSOR) and all(o.batches == 8 for o in obs.values())
    with pytest.raises(TypeError, match="spec must be a QuantSpec"):
        obs["l2"].range_for(4)
    obs["l2"].reset()  # rebuilt from its own config: still the cached l2
    assert obs["l2"].name == "l2" and obs["l2"].batches == 8
    plain = oc.observers(cc.data(setting)[0], 99.99)
    assert [float(v) for v in obs["minmax"].range()] == [float(v) for v in plain["minmax"].range()]


def _default():
    stats, x_eval = oc.synthetic_calibration("gaussian", 20.0, 0.0001, 8)
    return stats, x_eval


@pytest.mark.parametrize("bits, symmetric", [(4, True), (8, False)])
def test_ranges_chart_plots_each_calibrators_grid_and_every_value(bits, symmetric):
    stats, x_eval = _default()
    spec = oc.lab_grid(bits, symmetric)
    results = oc.compare_observers(stats, x_eval, spec)
    chart = json.loads(pc.ranges_chart(stats, results).to_json())
    hist, strip = chart["vconcat"]
    bars, ends = hist["layer"][0]["data"]["values"], hist["layer"][1]["data"]["values"]
    total = float(stats.histogram.hist.total())
    assert sum(b["count"] for b in bars) == pytest.approx(total, rel=1e-6)
    assert round(total) == 8 * 4096 and f"{8 * 4096:,} values" in hist["title"]
    assert all(b["a"] < b["b"] and b["count"] > 0 for b in bars) and len(bars) <= pc.DISPLAY_BINS
    edges = stats.histogram.hist.edges()
    assert bars[0]["a"] >= number(edges[0]) and bars[-1]["b"] <= number(edges[-1])
    rows = strip["layer"][0]["data"]["values"]
    assert [r["series"] for r in rows] == [r.name for r in results]
    for row, r in zip(rows, results, strict=True):
        assert (row["lo"], row["hi"]) == (number(r.grid_lo), number(r.grid_hi))
        assert row["label"].startswith(r.name) and f"{r.sqnr_db:.1f} dB" in row["label"]
    assert [(e["series"], e["x"]) for e in ends] == [
        (r.name, number(v)) for r in results for v in (r.grid_lo, r.grid_hi)
    ]
    labels = strip["layer"][0]["encoding"]["y"]["sort"]
    assert len(set(labels)) == len(labels) == len(results)  # one row each: no label can overlap another


@pytest.mark.parametrize("symmetric", [True, False])
def test_error_curve_chart_draws_the_curve_and_the_picks_on_it(symmetric):
    stats, x_eval = _default()
    spec = oc.lab_grid(4, symmetric)
    results = oc.compare_observers(stats, x_eval, spec)
    curve = oc.error_curve(stats, spec)
    chart = json.loads(pc.error_curve_chart(curve, results, symmetric).to_json())
    data = chart["layer"][0]["data"]["values"]
    lines = [[r for r in data if r["series"] == name] for name in (pc.ROUNDING, pc.CLIPPING, pc.TOTAL)]
    picks = chart["layer"][1]["data"]["values"]
    total = (curve.rounding + curve.clipping).numpy()
    floor = max(float(total.min()) * 1e-3, 1e-30)
    assert sum(len(v) for v in lines) == len(data) <= 3 * pc.CURVE_POINTS
    assert [r["error"] for r in lines[2]] == [number(max(v, floor)) for v in total]
    assert [r["t"] for r in lines[0]] == [number(t) for t in curve.thresholds]
    t = curve.thresholds.numpy()
    for row, r in zip(picks, results, strict=True):
        at = max(-r.lo, r.hi) if symmetric else r.hi
        assert row["series"] == r.name and row["t"] == number(at)
        assert row["error"] == number(max(float(np.interp(at, t, total)), floor))
        assert row["label"] == f"{r.name}: {'T' if symmetric else 'hi'} = {at:.4g}"
    legend = chart["layer"][1]["encoding"]["color"]["legend"]["labelExpr"]
    assert all(row["label"] in legend for row in picks)


def test_curve_is_subsampled_to_the_chart_budget():
    stats, _ = _default()
    curve = oc.error_curve(stats, oc.lab_grid(4, True), points=2000)
    data, _ = pc.curve_rows(curve)
    assert len(data) <= 3 * pc.CURVE_POINTS and data[0]["t"] == number(curve.thresholds[0])


def test_vendors_view_shows_the_vendor_answers():
    setting = cc.data_setting("gaussian", 20.0, 0.01, 8)
    spec = oc.lab_grid(4, True)
    _, x_eval = cc.data(setting)
    answers = vendors.vendor_answers(x_eval, spec, 99.99)
    text = cc.vendors_view(setting, spec, 99.99).text
    assert (
        all(f"{a.result.sqnr_db:.2f}" in text for a in answers) and "Same name, different histogram" in text
    )
    assert cc.lazy_vendors_view(setting, spec, 99.99).text  # rendered once scrolled into view (mo.lazy)
