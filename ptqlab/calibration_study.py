"""How many calibration samples, chosen how? Accuracy of a statically quantized model vs calibration set.

For every selection method, set size n and seed: pick n samples from the pool (``select_calibration``),
calibrate and fake-quantize the model with them (``simulate``), and measure test accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from ptqlab.calibrate import ObserverFactory, penultimate_features, select_calibration
from ptqlab.progress import Progress, track
from ptqlab.simulate import evaluate_accuracy, simulate
from ptqlab.spec import PerChannel, QuantSpec


class CalibrationPoint(NamedTuple):
    method: str
    size: int
    seed: int
    accuracy: float


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
) -> list[CalibrationPoint]:
    """One accuracy per (method, size, seed). k-means runs on the model's penultimate features."""
    if not sizes or not methods or not seeds:
        raise ValueError("sizes, methods and seeds must each be non-empty")
    features = penultimate_features(model, x_pool) if "kmeans" in methods else None
    jobs = [(m, n, s) for m in methods for n in sizes for s in seeds]
    points = []
    for method, n, seed in track(jobs, progress, desc="calibration sets"):
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
        points.append(CalibrationPoint(method, n, seed, evaluate_accuracy(quantized, x_test, y_test)))
    return points


def summarize(points: Sequence[CalibrationPoint]) -> dict[str, dict[int, tuple[float, float, float]]]:
    """method -> size -> (mean, min, max) accuracy over seeds."""
    table: dict[str, dict[int, list[float]]] = {}
    for p in points:
        table.setdefault(p.method, {}).setdefault(p.size, []).append(p.accuracy)
    return {
        m: {n: (sum(v) / len(v), min(v), max(v)) for n, v in sorted(by_size.items())}
        for m, by_size in table.items()
    }
