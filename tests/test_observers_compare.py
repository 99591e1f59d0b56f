"""Lab 02's computations (compare_observers, error_curve, the mixture), its charts, and the benchmark."""

import math

import numpy as np
import pytest
import torch

from ptqlab.bench import observers as bench
from ptqlab.cli.main import BENCHMARKS, main
from ptqlab.core.affine import choose_qparams
from ptqlab.core.metrics import error_split
from ptqlab.core.spec import QuantSpec
from ptqlab.lessons.calibration import figures as pc
from ptqlab.lessons.calibration import numbers as oc
from ptqlab.observers import PER_TENSOR


def test_mixture_batches():
    xs = oc.mixture_batches(3, 1000, outlier_size=50.0, outlier_fraction=0.01, seed=4)
    assert [x.shape for x in xs] == [(1000,)] * 3
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            xs, oc.mixture_batches(3, 1000, outlier_size=50.0, outlier_fraction=0.01, seed=4), strict=True
        )
    )
    big = torch.cat(xs).abs() >= 12.5
    assert 10 <= int(big.sum()) <= 60  # ~1 % outliers of magnitude [12.5, 50]
    assert float(torch.cat(xs).abs().max()) <= 50.0
    clean = torch.cat(oc.mixture_batches(2, 5000, outlier_size=50.0, outlier_fraction=0.0))
    assert float(clean.abs().max()) < 6
    relu = torch.cat(oc.mixture_batches(2, 5000, outlier_size=50.0, outlier_fraction=0.01, body="relu"))
    assert float(relu.min()) == 0.0 and float(relu.max()) > 12
    uniform = torch.cat(oc.mixture_batches(1, 5000, outlier_size=0.0, outlier_fraction=0.0, body="uniform"))
    assert float(uniform.abs().max()) <= math.sqrt(3)
    with pytest.raises(ValueError, match="body"):
        oc.mixture_batches(body="cauchy")
    with pytest.raises(ValueError, match="outlier_fraction"):
        oc.mixture_batches(outlier_fraction=2.0)


def test_compare_observers_ranks_calibrators_as_the_lab_claims():
    stats, x_eval = oc.synthetic_calibration("gaussian", 20.0, 0.0001, 8)
    low = {r.name: r for r in oc.compare_observers(stats, x_eval, QuantSpec(bits=4))}
    high = {r.name: r for r in oc.compare_observers(stats, x_eval, QuantSpec(bits=8))}
    assert list(low) == list(PER_TENSOR)
    assert low["mse"].sqnr_db > low["minmax"].sqnr_db + 6  # rare outliers, 4 bits: clipping wins
    assert high["minmax"].sqnr_db > high["entropy"].sqnr_db + 3  # 8 bits: keeping them wins
    for r in low.values():
        assert r.mse == pytest.approx(r.rounding_mse + r.clipping_mse)
        assert r.lo <= 0 <= r.hi or r.name == "moving_average"
    clean_stats, clean_eval = oc.synthetic_calibration("uniform", 20.0, 0.0, 4)
    clean = {r.name: r.sqnr_db for r in oc.compare_observers(clean_stats, clean_eval, QuantSpec(bits=4))}
    assert clean["minmax"] >= max(clean.values()) - 0.05  # no tail: min/max is (near) best


def test_score_range_is_error_split_of_the_range_and_best_picks_the_top_sqnr():
    from ptqlab.core.affine import choose_qparams
    from ptqlab.core.metrics import error_split

    stats, x_eval = oc.synthetic_calibration("gaussian", 20.0, 0.0001, 8)
    spec = QuantSpec(bits=4, signed=False, symmetric=False)
    mine = oc.score_range("by hand", -3.0, 3.5, x_eval, spec)
    split = error_split(x_eval, choose_qparams(-3.0, 3.5, spec), spec)
    assert (mine.name, mine.lo, mine.hi) == ("by hand", -3.0, 3.5)
    assert (mine.sqnr_db, mine.mse, mine.clipped_fraction) == (
        split.sqnr_db,
        split.total_mse,
        split.clipped_fraction,
    )
    results = oc.compare_observers(stats, x_eval, spec)
    assert [r.name for r in results] == list(PER_TENSOR)
    top = oc.best(results)
    assert top.name == "mse" and all(top.sqnr_db >= r.sqnr_db for r in results)


@pytest.mark.parametrize(
    "bits,symmetric,p", [(2, True, 100.0), (16, False, 99.0), (2, False, 99.999), (16, True, 100.0)]
)
@pytest.mark.parametrize(
    "setting", [("gaussian", 0.0, 0.0, 1), ("relu", 100.0, 0.05, 3), ("uniform", 20.0, 0.05, 2)]
)
def test_slider_extremes_are_finite(bits, symmetric, p, setting):
    body, size, fraction, n_batches = setting
    stats, x_eval = oc.synthetic_calibration(body, size, fraction, n_batches)
    spec = QuantSpec(bits=bits, signed=symmetric, symmetric=symmetric)
    results = oc.compare_observers(stats, x_eval, spec, p=p)
    for r in results:
        assert math.isfinite(r.lo) and math.isfinite(r.hi) and r.lo <= r.hi
        assert r.mse >= 0 and not math.isnan(r.sqnr_db)
    curve = oc.error_curve(stats, spec)
    assert torch.isfinite(curve.total).all()
    if p == 100.0 and symmetric:
        by_name = {r.name: r for r in results}
        assert by_name["percentile"].hi == pytest.approx(max(-by_name["minmax"].lo, by_name["minmax"].hi))
    pc.ranges_chart(stats, results).to_json()  # strict JSON: no NaN/inf slips into the chart's data
    pc.error_curve_chart(curve, results, symmetric).to_json()
    assert "|" in pc.calibrators_markdown(results)


def _calibration_data(body: str, n_batches: int) -> torch.Tensor:
    """The batches ``synthetic_calibration`` observed (same seed): what the histogram summarises."""
    return torch.cat(
        oc.mixture_batches(n_batches, 4096, outlier_size=20.0, outlier_fraction=0.001, body=body)
    )


def _measured(x: torch.Tensor, lo: float, hi: float, spec: QuantSpec) -> float:
    return error_split(x, choose_qparams(lo, hi, spec), spec).total_mse


@pytest.mark.parametrize("symmetric", [True, False])
def test_error_curve_minimum_is_the_mse_choice(symmetric):
    stats, x_eval = oc.synthetic_calibration("gaussian", 20.0, 0.001, 4)
    spec = QuantSpec(bits=4, signed=symmetric, symmetric=symmetric)
    curve = oc.error_curve(stats, spec)
    mse = {r.name: r for r in oc.compare_observers(stats, x_eval, spec)}["mse"]
    step = float(curve.thresholds[1] - curve.thresholds[0])
    assert float(curve.thresholds[curve.best()]) == pytest.approx(mse.hi, abs=2 * step)
    x = _calibration_data("gaussian", 4)
    assert _measured(x, mse.lo, mse.hi, spec) <= 1.03 * float(curve.total.min())


@pytest.mark.parametrize(
    "body, bits, symmetric", [("relu", 2, False), ("gaussian", 4, True), ("relu", 3, True)]
)
def test_error_curve_reads_the_measured_error(body, bits, symmetric):
    """Issue 14: at 2 bits on ReLU data the Δ²/12 curve read ~6.2 at min/max's threshold where the table
    measured 0.45. The curve now scores the actual grid: at each calibrator's threshold it reads the error
    measured on the calibration data (for the asymmetric slice, of the calibrators with the slice's lo)."""
    stats, x_eval = oc.synthetic_calibration(body, 20.0, 0.001, 8)
    x = _calibration_data(body, 8)
    spec = oc.lab_grid(bits, symmetric)
    curve = oc.error_curve(stats, spec)
    lo_slice = float(stats.histogram.range_for(spec)[0])
    t, total = curve.thresholds.numpy(), curve.total.numpy()
    checked = 0
    for r in oc.compare_observers(stats, x_eval, spec):
        if not symmetric and r.lo != pytest.approx(lo_slice, abs=1e-6):
            continue
        at = max(-r.lo, r.hi) if symmetric else r.hi
        lo = -at if symmetric else r.lo
        if at > t[0]:
            assert float(np.interp(at, t, total)) == pytest.approx(_measured(x, lo, at, spec), rel=0.05), (
                r.name
            )
            checked += 1
    assert checked >= 2


def test_charts_are_labelled():
    stats, x_eval = oc.synthetic_calibration("gaussian", 20.0, 0.0001, 8)
    results = oc.compare_observers(stats, x_eval, QuantSpec(bits=4))
    hist, strip = pc.ranges_chart(stats, results).spec["vconcat"]
    assert (
        hist["title"]
        and hist["layer"][0]["encoding"]["y"]["title"]
        and strip["layer"][0]["encoding"]["x"]["title"]
    )
    labels = strip["layer"][0]["encoding"]["y"]["sort"]
    assert any(lbl.startswith("mse · ") and lbl.endswith("dB") for lbl in labels)
    curve = pc.error_curve_chart(oc.error_curve(stats, QuantSpec(bits=4)), results, True).spec
    assert (
        "threshold" in curve["layer"][0]["encoding"]["x"]["title"]
        and curve["layer"][0]["encoding"]["y"]["title"]
    )
    domain = curve["layer"][0]["encoding"]["color"]["scale"]["domain"]
    assert {"rounding (inside the grid)", "clipping (outside)", "total", "mse"} <= set(domain)


def test_bench_runs_and_prints_a_table(capsys):
    assert "observers" in BENCHMARKS
    rows = bench.time_observers(numel=20_000, repeats=2, warmup=1)
    names = [r.name for r in rows]
    assert {"minmax", "entropy", "l2", "torch.ao Histogram", "torch.ao MinMax"} <= set(names)
    assert all(r.observe.n == 2 and r.observe.median_s > 0 and r.range.median_s >= 0 for r in rows)
    assert main(["bench", "observers", "--numel", "10000", "--repeats", "1", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert "vs torch.ao Hist" in out and "percentile" in out
