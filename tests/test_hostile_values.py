"""Issue 14 §2 and §6: every reproducer of a silently wrong answer or an unnamed error, as a test."""

import math

import pytest
import torch
from torch import nn

from ptqlab import QuantSpec
from ptqlab.core.affine import (
    QParams,
    choose_qparams,
    integer_grid,
    qparams_for,
    quantize,
    representable_range,
)
from ptqlab.core.metrics import cosine_similarity, mse, sqnr_db
from ptqlab.models import digits_mlp
from ptqlab.models.data import digits_split
from ptqlab.observers import MinMaxObserver, StreamingHistogram, make_observer
from ptqlab.ptq.calibrate import calibrate, select_calibration
from ptqlab.ptq.folding import fold_batchnorm, foldable_pairs
from ptqlab.ptq.sensitivity import greedy_mixed_precision, layer_sensitivity
from ptqlab.ptq.simulate import embedding_agreement, evaluate_accuracy, simulate

F32_MAX = torch.finfo(torch.float32).max
ASYM = QuantSpec(symmetric=False)


@pytest.fixture(scope="module")
def data():
    return digits_split()


@pytest.fixture(scope="module")
def mlp():
    return digits_mlp(progress=False)


# ---- §2 labels -------------------------------------------------------------------------------------------
def test_evaluate_accuracy_squeezes_column_labels_and_refuses_one_hot(mlp, data):
    acc = evaluate_accuracy(mlp, data.x_test, data.y_test)
    assert acc > 0.9
    assert evaluate_accuracy(mlp, data.x_test, data.y_test[:, None]) == acc
    one_hot = nn.functional.one_hot(data.y_test, 10)
    with pytest.raises(ValueError, match=r"y must hold one class index per sample.*one-hot"):
        evaluate_accuracy(mlp, data.x_test, one_hot)
    with pytest.raises(TypeError, match="y must hold integer class indices"):
        evaluate_accuracy(mlp, data.x_test, data.y_test.float())
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_accuracy(mlp, data.x_test, data.y_test, batch_size=0)
    with pytest.raises(ValueError, match="x is a meta tensor"):
        evaluate_accuracy(mlp, data.x_test.to("meta"), data.y_test)


def test_stratified_selection_with_column_labels_is_the_same_and_distinct(data):
    flat = select_calibration(data.x_train, data.y_train, 20, "stratified", seed=0)
    column = select_calibration(data.x_train, data.y_train[:, None], 20, "stratified", seed=0)
    assert torch.equal(flat, column) and len(set(column.tolist())) == 20
    with pytest.raises(ValueError, match="one-hot"):
        select_calibration(data.x_train, nn.functional.one_hot(data.y_train), 20, "stratified")
    with pytest.raises(TypeError, match="seed must be an int, got NoneType"):
        select_calibration(data.x_train, data.y_train, 20, seed=None)


# ---- §2 histogram observers above 1.7e38 -------------------------------------------------------------------
def test_percentile_100_gives_the_exact_min_and_max_at_float32_extremes():
    x = torch.tensor([2e38, -2e38, 1.0, 0.0])
    lo, hi = make_observer("percentile", p=100).observe(x).range()
    assert (float(lo), float(hi)) == (float(x.min()), float(x.max()))
    lo, hi = make_observer("percentile", p=100, symmetric=False).observe(torch.tensor([3e38, -1e38])).range()
    assert (float(lo), float(hi)) == (float(torch.tensor(-1e38)), float(torch.tensor(3e38)))


@pytest.mark.parametrize("name", ["percentile", "entropy", "mse"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_histogram_observers_are_scale_free_up_to_float32_max(name, symmetric):
    """Multiplying the data by 2^k (exact) multiplies every searched range by 2^k, also when the span
    max − min overflows float32 (the ±3e38 case that used to collapse into one bin)."""
    g = torch.Generator().manual_seed(0)
    base = torch.cat([torch.randn(20000, generator=g), torch.tensor([-16.0, 16.0])]) / 16 * 1.5  # |x| ≤ 1.5
    k = 127  # 1.5 · 2^127 ≈ 2.55e38: the span is 5.1e38 > float32 max
    small = make_observer(name, symmetric=symmetric).observe(base).range()
    big = make_observer(name, symmetric=symmetric).observe(base * 2.0**k).range()
    for a, b in zip(small, big, strict=True):
        assert math.isfinite(float(b)) and float(b) == float(a) * 2.0**k


def test_l2_refuses_a_span_beyond_float32_and_keeps_its_state():
    obs = make_observer("l2").observe(torch.randn(100))
    before = obs.range()
    with pytest.raises(
        ValueError, match=r"x: the l2 observer's range max − min = 6e\+38 would exceed float32"
    ):
        obs.observe(torch.tensor([-3e38, 3e38]))
    assert obs.batches == 1 and all(torch.equal(a, b) for a, b in zip(obs.range(), before, strict=True))


# ---- §2 scales from finite inputs ------------------------------------------------------------------------
def test_finite_range_gives_a_finite_scale_that_covers_it():
    qp = choose_qparams(-3e38, 3e38, ASYM)
    assert math.isfinite(float(qp.scale))
    exact = (float(torch.tensor(3e38)) * 2) / 255  # float64 reference
    assert float(qp.scale) == float(torch.tensor(exact, dtype=torch.float32))
    lo, hi = representable_range(qp, ASYM)
    assert math.isfinite(float(lo)) and math.isfinite(float(hi))
    assert float(MinMaxObserver().observe(torch.tensor([-3e38, 3e38])).qparams(ASYM).scale) == float(qp.scale)
    # inside float32's range nothing changed: bit for bit torch.ao's float32 formula
    lo32, hi32 = torch.tensor(-1.5e38), torch.tensor(1.5e38)
    assert float(choose_qparams(lo32, hi32, ASYM).scale) == float((hi32 - lo32) / 255.0)


def test_moving_average_stays_finite_after_opposite_extremes():
    obs = make_observer("moving_average").observe(torch.tensor([3e38])).observe(torch.tensor([-3e38]))
    lo, hi = obs.range()
    expected = 3e38 + 0.01 * (-3e38 - 3e38)  # float64 reference: 2.94e38
    assert float(lo) == float(hi) == pytest.approx(expected, rel=1e-6)
    # ordinary values: still torch.ao's float32 update, term for term
    ao = torch.ao.quantization.MovingAverageMinMaxObserver(averaging_constant=0.01)
    ours = make_observer("moving_average")
    for b in (torch.randn(50), torch.randn(50) * 3):
        ao(b)
        ours.observe(b)
    assert torch.equal(ours.range()[0], ao.min_val) and torch.equal(ours.range()[1], ao.max_val)


def test_subnormal_eps_and_scale_are_refused():
    with pytest.raises(ValueError, match="eps must be a positive finite number.*smallest normal"):
        qparams_for(torch.randn(8), QuantSpec(), eps=1e-45)
    spec = QuantSpec(signed=False, symmetric=True)
    with pytest.raises(ValueError, match="scale must be >= float32's smallest normal"):
        quantize(torch.tensor([0.0]), QParams(torch.tensor(1e-39), torch.tensor(128)), spec)
    tiny = torch.finfo(torch.float32).tiny
    code = quantize(torch.tensor([0.0]), QParams(torch.tensor(tiny), torch.tensor(128)), spec)
    assert int(code) == 128


def test_float64_beyond_float32_is_refused_without_claiming_inf():
    x = torch.tensor([1e300, -1.0], dtype=torch.float64)
    for call in (lambda: qparams_for(x, QuantSpec()), lambda: make_observer("minmax").observe(x)):
        with pytest.raises(ValueError, match=r"x has finite values up to 1e\+300, beyond float32's range"):
            call()


# ---- §2 float64 metric extremes ------------------------------------------------------------------------------
def test_metrics_at_float64_extremes():
    x = torch.tensor([1e200, 2e200], dtype=torch.float64)
    assert cosine_similarity(x, x) == 1.0
    t = torch.tensor([1e-200, 3e-200, -2e-200], dtype=torch.float64)
    assert sqnr_db(t, 2 * t) == pytest.approx(0.0, abs=1e-12)
    assert sqnr_db(t, t) == math.inf
    assert cosine_similarity(t, -t) == -1.0
    big = torch.tensor([1e300, -1e300], dtype=torch.float64)
    assert mse(big, big) == 0.0 and cosine_similarity(big, big * 0.5) == 1.0


def test_embedding_agreement_of_zero_rows_matches_cosine_similarity():
    z = torch.zeros(4, 8)
    result = embedding_agreement(z, z.clone())
    assert result.mean_cosine == result.min_cosine == cosine_similarity(z[0], z[0]) == 1.0
    e = torch.randn(4, 8)
    e[1] = 0
    assert embedding_agreement(e, e.clone()).min_cosine == pytest.approx(1.0, abs=1e-15)
    f = e.clone()
    f[1, 0] = 1.0
    assert embedding_agreement(e, f).min_cosine == cosine_similarity(e[1], f[1]) == 0.0
    huge = torch.randn(4, 8, dtype=torch.float64) * 1e200
    assert embedding_agreement(huge, huge.clone()).min_cosine == pytest.approx(1.0, abs=1e-15)


# ---- §2 simulate and sensitivity -----------------------------------------------------------------------------
def test_simulate_reports_skipped_layers_and_refuses_nothing_to_quantize():
    model = nn.Sequential(
        nn.Linear(4, 4), nn.Embedding(10, 4), nn.LSTM(4, 4), nn.Conv3d(1, 1, 1), nn.ConvTranspose2d(1, 1, 1)
    )
    q = simulate(model, QuantSpec())
    assert set(q.ptq_plan) == {"0"}
    assert set(q.ptq_plan.skipped) == {"1", "2", "3", "4"}
    assert "Embedding is not simulated" in q.ptq_plan.skipped["1"]
    assert "LSTM" in q.ptq_plan.skipped["2"] and "Conv3d" in q.ptq_plan.skipped["3"]
    assert "ConvTranspose2d" in q.ptq_plan.skipped["4"]
    assert simulate(model, QuantSpec(), skip={"0"}).ptq_plan.skipped["0"] == "skip= names it"
    with pytest.raises(ValueError, match=r"model has nothing to quantize.*Embedding is not simulated"):
        simulate(nn.Sequential(nn.Embedding(10, 4), nn.Conv3d(1, 1, 1)), QuantSpec())


def test_sensitivity_and_mixed_precision_refuse_nan_metrics():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"metric must return a finite number; it returned nan"):
        layer_sensitivity(model, lambda m: float("nan"), bits=(8, 4))
    calls = []

    def nan_after_two(m):
        calls.append(1)
        return 1.0 if len(calls) <= 2 else float("nan")

    with pytest.raises(ValueError, match="metric must return a finite number"):
        greedy_mixed_precision(model, nan_after_two, choices=(8, 4))
    assert layer_sensitivity(model, lambda m: torch.tensor(0.5), bits=(8,)).baseline == 0.5


# ---- §6 clear errors that name the argument ----------------------------------------------------------------
def test_core_errors_name_the_argument():
    spec, meta = QuantSpec(), torch.randn(4, device="meta")
    with pytest.raises(ValueError, match="x is a meta tensor"):
        qparams_for(meta, spec)
    with pytest.raises(ValueError, match="x is a meta tensor"):
        make_observer("percentile").observe(meta)
    with pytest.raises(ValueError, match="x is a meta tensor"):
        cosine_similarity(meta, meta)
    with pytest.raises(TypeError, match="spec must be a QuantSpec, got NoneType"):
        qparams_for(torch.randn(4), None)
    qp = qparams_for(torch.randn(4), spec)
    with pytest.raises(TypeError, match="spec must be a QuantSpec, got NoneType"):
        representable_range(qp, None)
    grid = integer_grid((0.1, 0), spec)  # plain numbers are accepted: the grid is exact
    assert torch.equal(grid, (torch.arange(-128, 128, dtype=torch.float32)) * torch.tensor(0.1))
    with pytest.raises(ValueError, match="x is empty"):
        StreamingHistogram.of(torch.zeros(0))


def _small():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()


def test_calibration_errors_name_the_batch_and_layer():
    model = _small()
    with pytest.raises(ValueError, match=r"calibration batch 1 \(shape \(3, 5\).*in layer '0'"):
        calibrate(model, [torch.randn(3, 4), torch.randn(3, 5)])
    with pytest.raises(ValueError, match=r"calibration batch 0 \(shape \(3, 4\), torch.float64\).*layer '0'"):
        calibrate(model, [torch.randn(3, 4, dtype=torch.float64)])
    with pytest.raises(TypeError, match="calibration batch 0 is a tuple without a tensor first"):
        calibrate(model, [()])
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        calibrate(model, torch.randn(8, 4), batch_size=0)
    with pytest.raises(TypeError, match="observer factory .* returned a int, not an Observer"):
        calibrate(model, torch.randn(8, 4), lambda: 3)
    bad = torch.randn(6, 4)
    bad[2, 1] = float("nan")
    with pytest.raises(
        ValueError,
        match=r"calibration batch 0 .*in layer '0'.*the input of layer '0' contains non-finite values \(1 NaN",
    ):
        calibrate(model, bad)


def test_nan_weights_and_data_name_the_layer():
    model = _small()
    with torch.no_grad():
        model[2].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"layer '2': weight: x contains non-finite values \(1 NaN"):
        simulate(model, QuantSpec())
    data = torch.randn(6, 4)
    data[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"in layer '0'.*1 Inf"):
        simulate(_small(), None, QuantSpec(), calibration=data)


def test_folding_errors():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        foldable_pairs("x")
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2, eps=0.0)).eval()
    model[1].running_var.zero_()
    with pytest.raises(ValueError, match=r"cannot fold BatchNorm '1' into '0'.*channels \[0, 1\]"):
        fold_batchnorm(model)
