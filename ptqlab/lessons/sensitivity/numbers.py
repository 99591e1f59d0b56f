"""How many calibration samples, chosen how? Accuracy of a statically quantized model vs calibration set.

For every selection method, set size n and seed: pick n samples from the pool (``select_calibration``),
calibrate and fake-quantize the model with them (``simulate``), and measure test accuracy.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from ptqlab.core.progress import Progress, track
from ptqlab.core.spec import PerChannel, PerTensor, QuantSpec
from ptqlab.labkit.layout import marimo_progress
from ptqlab.labkit.models import digits_test_accuracy, lab_model
from ptqlab.models import digits_split
from ptqlab.ptq.calibrate import ObserverFactory, penultimate_features, select_calibration
from ptqlab.ptq.sensitivity import (
    MixedPrecisionResult,
    SensitivityReport,
    greedy_mixed_precision,
    layer_sensitivity,
)
from ptqlab.ptq.simulate import evaluate_accuracy, simulate


class CalibrationPoint(NamedTuple):
    method: str
    size: int
    seed: int
    accuracy: float
    indices: tuple[int, ...] = ()  # the pool samples it was calibrated with


def accuracy_vs_calibration(
    model: nn.Module,
    x_pool: torch.Tensor,
    y_pool: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    sizes: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128),
    methods: Sequence[str] = ("random", "stratified", "kmeans"),
    seeds: Sequence[int] = (0, 1, 2),
    weight_spec: QuantSpec | None = QuantSpec(bits=8, granularity=PerChannel(0)),
    act_spec: QuantSpec = QuantSpec(bits=4, signed=False, symmetric=False),
    observer: ObserverFactory = "minmax",
    observer_kwargs: dict | None = None,
    fold_bn: bool = True,
    progress: Progress = None,
    same_sets_as: Sequence[CalibrationPoint] = (),
) -> list[CalibrationPoint]:
    """One accuracy per (method, size, seed). k-means runs on the model's penultimate features.

    ``same_sets_as``: points of an earlier run on the same pool (another observer, say); each job reuses the
    samples recorded there for its (method, size, seed) instead of selecting them again."""
    if not sizes or not methods or not seeds:
        raise ValueError("sizes, methods and seeds must each be non-empty")
    jobs = [(m, n, s) for m in methods for n in sizes for s in seeds]
    known = {(p.method, p.size, p.seed): p.indices for p in same_sets_as if p.indices}
    needs_features = any(m == "kmeans" and (m, n, s) not in known for m, n, s in jobs)
    features = penultimate_features(model, x_pool) if needs_features else None
    points = []
    for method, n, seed in track(jobs, progress, desc="calibration sets"):
        if (method, n, seed) in known:
            idx = torch.tensor(known[(method, n, seed)])
        else:
            idx = select_calibration(x_pool, y_pool, n, method, features=features, seed=seed)
        quantized = simulate(
            model,
            weight_spec,
            act_spec,
            calibration=x_pool[idx],
            observer=observer,
            observer_kwargs=observer_kwargs,
            fold_bn=fold_bn,
        )
        accuracy = evaluate_accuracy(quantized, x_test, y_test)
        points.append(CalibrationPoint(method, n, seed, accuracy, tuple(idx.tolist())))
    return points


def calibration_spread(
    points: Sequence[CalibrationPoint],
) -> dict[str, dict[int, tuple[float, float, float]]]:
    """method -> size -> (mean, min, max) accuracy over seeds."""
    table: dict[str, dict[int, list[float]]] = {}
    for p in points:
        table.setdefault(p.method, {}).setdefault(p.size, []).append(p.accuracy)
    return {
        m: {n: (sum(v) / len(v), min(v), max(v)) for n, v in sorted(by_size.items())}
        for m, by_size in table.items()
    }


# ---- what lab 05 shows, cached per setting -------------------------------------------------------------

MIXED_CHOICES = (8, 6, 4, 3, 2)
SENSITIVITY_BITS = (4, 3, 2)
GRANULARITIES = {"per-channel": PerChannel(0), "per-tensor": PerTensor()}


def test_images() -> int:
    """How many images the digits test set holds: one is 100 / n accuracy points."""
    return len(digits_split().y_test)


def weight_spec(granularity: str) -> QuantSpec:
    """8-bit symmetric weights at ``granularity`` ("per-channel" or "per-tensor")."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {sorted(GRANULARITIES)}, got {granularity!r}")
    return QuantSpec(bits=8, granularity=GRANULARITIES[granularity])


@functools.cache
def lab_sensitivity(name: str, granularity: str) -> SensitivityReport:
    """Per-layer accuracy drop at W4/W3/W2 (one layer at a time, BatchNorm folded)."""
    spec = weight_spec(granularity)
    return layer_sensitivity(lab_model(name), digits_test_accuracy, SENSITIVITY_BITS, spec=spec, fold_bn=True)


@functools.cache
def lab_mixed_precision(name: str, granularity: str) -> MixedPrecisionResult:
    """The greedy mixed-precision path over {8, 6, 4, 3, 2} bits (BatchNorm folded)."""
    spec = weight_spec(granularity)
    return greedy_mixed_precision(
        lab_model(name), digits_test_accuracy, MIXED_CHOICES, spec=spec, fold_bn=True
    )


def layer_sizes(name: str) -> dict[str, tuple[int, int]]:
    """layer -> (weights, inputs per output) of the lab model with BatchNorm folded, as sensitivity sees it."""
    model = lab_model(name, True)
    return {
        n: (m.weight.numel(), m.weight[0].numel())
        for n, m in model.named_modules()
        if hasattr(m, "weight") and m.weight is not None and m.weight.dim() > 1
    }


def budget_slider_range(result: MixedPrecisionResult) -> tuple[float, float, float]:
    """(start, stop, value) in KiB, one decimal, for the size-budget slider: all-narrowest … all-widest."""
    lo, hi = result.path[-1].size_bytes / 1024, result.path[0].size_bytes / 1024
    # rounded outwards to 0.1 KiB, so that the minimum fits all-narrowest and the maximum all-widest
    return math.ceil(lo * 10) / 10, math.ceil(hi * 10) / 10 + 0.1, round(0.5 * (lo + hi), 1)


@functools.cache
def lab_calibration_points() -> list[CalibrationPoint]:
    """The digits CNN at W8 per-channel + A4 asymmetric: 3 methods × sizes 1, 4, 16, 64 × seeds 0, 1, 2."""
    data = digits_split()
    return accuracy_vs_calibration(
        lab_model("cnn"),
        data.x_train,
        data.y_train,
        data.x_test,
        data.y_test,
        sizes=(1, 4, 16, 64),
        seeds=(0, 1, 2),
        act_spec=QuantSpec(bits=4, signed=False, symmetric=False),
        progress=marimo_progress("Calibrating 36 quantized CNNs"),
    )
