"""Calibration hooks (no residue, clear errors) and calibration-set selection."""

import pytest
import torch
from torch import nn

from ptqlab.lessons.sensitivity.numbers import accuracy_vs_calibration, calibration_spread
from ptqlab.models import digits_cnn, digits_mlp
from ptqlab.models.data import digits_split
from ptqlab.observers import MinMaxObserver
from ptqlab.ptq.calibrate import (
    SUPPORTED_LAYERS,
    calibrate,
    capture,
    penultimate_features,
    select_calibration,
)


@pytest.fixture(scope="module")
def data():
    return digits_split()


@pytest.fixture(scope="module")
def mlp():
    return digits_mlp()


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_input_ranges_and_moments_match_the_data(mlp, data):
    x = data.x_train[:300]
    stats = calibrate(mlp, x, "minmax", where="both", batch_size=64)
    assert list(stats) == ["fc1", "fc2", "fc3", "fc4"]
    fc1 = stats["fc1"]
    assert fc1.kind == "Linear" and fc1.batches == 5
    assert float(fc1.input.lo) == float(x.min()) and float(fc1.input.hi) == float(x.max())
    assert fc1.input.mean == pytest.approx(float(x.double().mean()), rel=1e-9)
    assert fc1.input.std == pytest.approx(float(x.double().std(unbiased=False)), rel=1e-6)
    hidden = capture(mlp, x, "fc2")  # post-ReLU: the range starts at exactly 0
    assert float(stats["fc2"].input.lo) == 0.0 == float(hidden.min())
    assert float(stats["fc2"].input.hi) == float(hidden.max())
    with torch.no_grad():
        logits = mlp(x)
    assert float(stats["fc4"].output.hi) == pytest.approx(float(logits.max()), rel=1e-6)


def test_observer_factory_and_progress_callable(mlp, data):
    seen = []

    def progress(items):
        seen.append(len(items))
        return items

    stats = calibrate(
        mlp,
        [data.x_train[:10], (data.x_train[10:20], data.y_train[10:20])],
        MinMaxObserver,
        progress=progress,
    )
    assert seen == [2] and stats["fc3"].batches == 2
    assert isinstance(stats["fc3"].input.observer, MinMaxObserver)


def test_hooks_leave_no_residue_even_on_error(data):
    model = digits_cnn()
    model.train()
    before = _hook_count(model)
    calibrate(model, data.x_train[:32], where="both")
    assert _hook_count(model) == before == 0
    assert model.training  # mode restored
    with pytest.raises(ValueError, match=r"calibration batch 0 \(shape \(4, 3, 8, 8\).*in layer 'conv1'"):
        calibrate(model, torch.zeros(4, 3, 8, 8))  # wrong channel count fails inside the forward
    assert _hook_count(model) == 0 and model.training


def test_unsupported_layers_and_bad_arguments_are_named(mlp, data):
    with pytest.raises(TypeError, match="bn1.*BatchNorm1d"):
        calibrate(mlp, data.x_train[:8], layers=["bn1"])
    with pytest.raises(TypeError, match="unsupported layer type"):
        calibrate(mlp, data.x_train[:8], layer_types=[nn.BatchNorm1d])
    with pytest.raises(ValueError, match="no layer named"):
        calibrate(mlp, data.x_train[:8], layers=["fc9"])
    with pytest.raises(ValueError, match="where"):
        calibrate(mlp, data.x_train[:8], where="weights")
    with pytest.raises(ValueError, match="unknown observer"):
        calibrate(mlp, data.x_train[:8], "nonsense")
    with pytest.raises(ValueError, match="no layer of the supported types"):
        calibrate(nn.Sequential(nn.ReLU()), data.x_train[:8])
    assert nn.Linear in SUPPORTED_LAYERS and nn.Conv2d in SUPPORTED_LAYERS


@pytest.mark.parametrize("empty", [torch.zeros(0, 1, 8, 8), [], iter([])])
def test_empty_calibration_set_is_a_clear_error(mlp, empty):
    with pytest.raises(ValueError, match="calibration set is empty"):
        calibrate(mlp, empty)
    assert _hook_count(mlp) == 0


def test_random_and_stratified_selection(data):
    x, y = data.x_train, data.y_train
    idx = select_calibration(x, y, 50, "random", seed=1)
    assert len(idx) == 50 and len(set(idx.tolist())) == 50
    assert torch.equal(idx, select_calibration(x, y, 50, "random", seed=1))
    assert not torch.equal(idx, select_calibration(x, y, 50, "random", seed=2))
    strat = select_calibration(x, y, 20, "stratified", seed=0)
    assert torch.equal(y[strat].bincount(minlength=10), torch.full((10,), 2))
    assert len(select_calibration(x, y, 7, "stratified")) == 7
    with pytest.raises(ValueError, match="labels"):
        select_calibration(x, None, 10, "stratified")
    with pytest.raises(ValueError, match="method"):
        select_calibration(x, y, 10, "best")
    with pytest.raises(ValueError, match=r"n must be an int in \[1, 1437\]"):
        select_calibration(x, y, 0)


def test_kmeans_picks_one_distinct_sample_per_cluster(mlp, data):
    feats = penultimate_features(mlp, data.x_train)
    assert feats.shape == (1437, 128)
    idx = select_calibration(data.x_train, data.y_train, 10, "kmeans", features=feats, seed=0)
    assert len(set(idx.tolist())) == 10
    assert torch.equal(
        idx, select_calibration(data.x_train, data.y_train, 10, "kmeans", features=feats, seed=0)
    )
    # cluster representatives on a well-trained model's features cover most digit classes
    assert len(set(data.y_train[idx].tolist())) >= 8


def test_accuracy_vs_calibration_reports_every_combination(mlp, data):
    points = accuracy_vs_calibration(
        mlp, data.x_train, data.y_train, data.x_test, data.y_test, sizes=(1, 16), seeds=(0, 1)
    )
    assert len(points) == 3 * 2 * 2
    table = calibration_spread(points)
    assert set(table) == {"random", "stratified", "kmeans"} and set(table["random"]) == {1, 16}
    # W8 per-channel, A4 asymmetric: every calibration set keeps the digits MLP above 97 %
    assert min(p.accuracy for p in points) > 0.97


def test_progress_true_uses_tqdm(mlp, data):
    stats = calibrate(mlp, data.x_train[:8], progress=True)
    assert stats["fc1"].batches == 1
    with pytest.raises(TypeError, match="progress"):
        calibrate(mlp, data.x_train[:8], progress=3)
