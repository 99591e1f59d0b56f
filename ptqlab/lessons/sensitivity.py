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
from ptqlab.lessons.controls import marimo_progress
from ptqlab.lessons.models import digits_test_accuracy, lab_model
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


def sensitivity_note(report: SensitivityReport, name: str) -> str:
    """fp32 accuracy, the three layers that lose the most at 2 bits, the first layer's facts for this model,
    and what a negative drop means when one is measured."""
    top = report.ranking(2)[:3]
    sizes = layer_sizes(name)
    first = report.layers[0]
    weights, fan_in = sizes[first]
    smallest = min(report.layers, key=lambda n: sizes[n][0])
    place = (
        "tops the list"
        if top[0] == first
        else f"ranks {report.ranking(2).index(first) + 1} of {len(report.layers)}"
    )
    cheap = (
        "the fewest of any layer, so keeping it wide is cheap"
        if smallest == first
        else f"so keeping it wide costs more than keeping {smallest} ({sizes[smallest][0]:,} weights)"
    )
    text = (
        f"fp32 accuracy {100 * report.baseline:.2f} %. Most sensitive at 2 bits: "
        + ", ".join(f"**{n}** ({100 * report.drop(n, 2):.1f} points)" for n in top)
        + f". The first layer, **{first}**, {place} at W2: each output sums {fan_in} inputs, and it has "
        f"{weights:,} weights, {cheap}."
    )
    negative = [(n, b) for n in report.layers for b in report.bits if report.drop(n, b) < 0]
    if negative:
        n, b = min(negative, key=lambda nb: report.drop(*nb))
        images = round(-report.drop(n, b) * test_images())
        text += (
            f" A negative drop ({n} at W{b}: {100 * report.drop(n, b):+.2f} points, {images} more test "
            f"image{'s' if images != 1 else ''} right) is not a better model: rounding noise happened to "
            f"flip borderline images the right way; one image is {100 / test_images():.2f} points."
        )
    return text


def measured_table(report: SensitivityReport, bits: int = 2) -> tuple[list[str], dict[str, float], float]:
    """(layers, accuracy with only that layer at ``bits``, baseline): the lab's real table for the exercise."""
    return (
        list(report.layers),
        {n: report.baseline - report.drop(n, bits) for n in report.layers},
        report.baseline,
    )


def budget_slider_range(result: MixedPrecisionResult) -> tuple[float, float, float]:
    """(start, stop, value) in KiB, one decimal, for the size-budget slider: all-narrowest … all-widest."""
    lo, hi = result.path[-1].size_bytes / 1024, result.path[0].size_bytes / 1024
    # rounded outwards to 0.1 KiB, so that the minimum fits all-narrowest and the maximum all-widest
    return math.ceil(lo * 10) / 10, math.ceil(hi * 10) / 10 + 0.1, round(0.5 * (lo + hi), 1)


def budget_markdown(result: MixedPrecisionResult, budget_kib: float) -> str:
    """The configuration chosen for a budget (KiB), its size and accuracy, and the uniform widths."""
    chosen = result.for_budget(budget_kib * 1024)
    if chosen is None:
        return "No configuration on the greedy path fits this budget."
    bits = " | ".join(f"{n}: **W{b}**" for n, b in chosen.bits.items())
    uniform = ", ".join(
        f"all W{b}: {p.size_bytes / 1024:.1f} KiB, {100 * p.metric:.1f} %"
        for b, p in zip(result.choices, result.uniform, strict=True)
    )
    images = round((chosen.metric - result.float_metric) * test_images())
    noise = (
        f" That is {images:+d} test image{'s' if abs(images) != 1 else ''} against fp32, within the noise of a "
        f"{test_images()}-image test set (one image = {100 / test_images():.2f} points): quantization did not improve the model."
        if images > 0
        else ""
    )
    return (
        f"**Chosen:** {bits}\n\n"
        f"Size **{chosen.size_bytes / 1024:.1f} KiB** ({result.float_size_bytes / chosen.size_bytes:.1f}× "
        f"smaller than fp32's {result.float_size_bytes / 1024:.1f} KiB), test accuracy "
        f"**{100 * chosen.metric:.2f} %** (fp32 {100 * result.float_metric:.2f} %).{noise}\n\n"
        f"Uniform widths for comparison: {uniform}."
    )


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


def calibration_note(points: Sequence[CalibrationPoint]) -> str:
    """The spread of all runs, read as a negative control: on digits the selection method cannot matter."""
    worst, best = min(p.accuracy for p in points), max(p.accuracy for p in points)
    images = round((best - worst) * test_images())
    return (
        f"**A negative control.** All {len(points)} runs lie between {100 * worst:.1f} % and {100 * best:.1f} % "
        f"({images} test images apart). On 8×8 digits every image spans nearly the same pixel range, so "
        "min/max ranges settle within a few images, and here no selection method does better than random: this "
        "flat result is what the study must show when nothing is at stake. Selection matters when "
        "activations have rare large values (language models, detection heads) that a small random set can "
        "miss; lab 02's outlier slider shows what a missed outlier does to the range."
    )
