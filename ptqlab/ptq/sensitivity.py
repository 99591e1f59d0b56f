"""Per-layer sensitivity and greedy mixed precision under a model-size budget.

Sensitivity of layer l at b bits:   drop(l, b) = metric(float model) - metric(model with only l at b bits)

Greedy mixed precision: start with every layer at the widest choice; repeatedly lower by one step the layer
whose lowering costs the least metric per byte saved,

    pick argmin_l  (metric(current) - metric(current with l one step lower)) / bytes saved,

measuring each candidate for real (no additivity assumption), until every layer sits at the narrowest
choice. The visited configurations trace a size-vs-metric path; ``for_budget`` picks the best one that fits.

Model size counts every parameter: quantized weights at ``spec.bits_per_element`` (codes + one fp16 scale per
block, and an fp16 zero point if the grid is asymmetric), everything else (biases, BatchNorm, embeddings) as
fp32.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from ptqlab.core.pareto import pareto_front
from ptqlab.core.progress import Progress, track
from ptqlab.core.spec import PerChannel, QuantSpec
from ptqlab.ptq.calibrate import SUPPORTED_LAYERS, select_layers
from ptqlab.ptq.simulate import quantize_weight, simulate

Metric = Callable[[nn.Module], float]
DEFAULT_SPEC = QuantSpec(bits=8, granularity=PerChannel(0))


class _WeightSwapper:
    """One working copy of the model whose layers' weights are swapped between cached fake-quant versions."""

    def __init__(self, model, layers, spec, act_spec, calibration, fold_bn, layer_types) -> None:
        self.model = simulate(
            model, None, act_spec, calibration=calibration, fold_bn=fold_bn, layer_types=layer_types
        )
        self.layers = select_layers(self.model, layers, layer_types)
        if not self.layers:
            raise ValueError("no layer to quantize")
        self.spec = spec
        self.original = {n: m.weight.detach().clone() for n, m in self.layers.items()}
        self._cache: dict[tuple[str, int], torch.Tensor] = {}

    def weight(self, name: str, bits: int | None) -> torch.Tensor:
        if bits is None:
            return self.original[name]
        if (name, bits) not in self._cache:
            self._cache[(name, bits)] = quantize_weight(self.original[name], self.spec.with_(bits=bits))
        return self._cache[(name, bits)]

    def apply(self, bits: dict[str, int | None]) -> nn.Module:
        for name, module in self.layers.items():
            module.weight = nn.Parameter(self.weight(name, bits.get(name)), requires_grad=False)
        return self.model

    def size_bytes(self, bits: dict[str, int | None]) -> float:
        total = 0.0
        for name, p in self.model.named_parameters():
            layer = name.rpartition(".")[0]
            b = bits.get(layer) if name.endswith("weight") and layer in self.layers else None
            total += p.numel() * (
                4.0 if b is None else self.spec.with_(bits=b).bits_per_element(tuple(p.shape)) / 8
            )
        return total


def measured(metric: Metric, model: nn.Module, what: str) -> float:
    """float(metric(model)), refusing a metric that is not a finite real number (NaN would rank anywhere)."""
    value = metric(model)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"metric must return a finite number; it returned {value!r} for {what}")
    return float(value)


def _check_bits(bits: Iterable[int]) -> tuple[int, ...]:
    bits = tuple(sorted(set(bits), reverse=True))
    if not bits:
        raise ValueError("give at least one bit width")
    for b in bits:
        QuantSpec(bits=b)  # validates the range
    return bits


@dataclass
class SensitivityReport:
    """Metric with every layer in float (``baseline``) and with one layer at a time quantized."""

    baseline: float
    metric: dict[tuple[str, int], float]  # (layer, bits) -> metric
    layers: list[str]
    bits: tuple[int, ...]

    def drop(self, layer: str, bits: int) -> float:
        return self.baseline - self.metric[(layer, bits)]

    def ranking(self, bits: int) -> list[str]:
        """Layers from most to least sensitive at ``bits`` (ties keep model order)."""
        return sorted(self.layers, key=lambda n: -self.drop(n, bits))


def layer_sensitivity(
    model: nn.Module,
    metric: Metric,
    bits: Sequence[int] = (8, 6, 4, 3, 2),
    *,
    spec: QuantSpec = DEFAULT_SPEC,
    layers: Iterable[str] | None = None,
    act_spec: QuantSpec | None = None,
    calibration=None,
    fold_bn: bool = False,
    layer_types: Iterable[type] = SUPPORTED_LAYERS,
    progress: Progress = None,
) -> SensitivityReport:
    """Quantize one layer at a time (weights, ``spec`` at each of ``bits``), record ``metric`` (higher = better).

    With ``act_spec`` every layer's input is also fake-quantized (calibrated once) in every measurement,
    including the baseline.
    """
    bits = _check_bits(bits)
    swap = _WeightSwapper(model, layers, spec, act_spec, calibration, fold_bn, layer_types)
    baseline = measured(metric, swap.apply({}), "the float model")
    results = {}
    jobs = [(n, b) for n in swap.layers for b in bits]
    for name, b in track(jobs, progress, desc="sensitivity"):
        results[(name, b)] = measured(metric, swap.apply({name: b}), f"layer {name!r} at {b} bits")
    return SensitivityReport(baseline, results, list(swap.layers), bits)


class MixedPrecisionPoint(NamedTuple):
    bits: dict[str, int]
    size_bytes: float
    metric: float


@dataclass
class MixedPrecisionResult:
    """The greedy path (widest to narrowest), every configuration measured (path, candidates, and the
    uniform ones: every layer at the same width), and the float model's size and metric."""

    path: list[MixedPrecisionPoint]
    explored: list[MixedPrecisionPoint]
    float_size_bytes: float
    float_metric: float
    choices: tuple[int, ...] = ()
    uniform: list[MixedPrecisionPoint] = field(default_factory=list)

    def for_budget(self, max_bytes: float) -> MixedPrecisionPoint | None:
        """The best-metric configuration on the path whose size is at most ``max_bytes`` (None if none fits)."""
        fitting = [p for p in self.path if p.size_bytes <= max_bytes]
        return max(fitting, key=lambda p: (p.metric, -p.size_bytes)) if fitting else None

    def pareto(self) -> list[MixedPrecisionPoint]:
        return pareto_front(self.explored, cost=lambda p: p.size_bytes, value=lambda p: p.metric)


def greedy_mixed_precision(
    model: nn.Module,
    metric: Metric,
    choices: Sequence[int] = (8, 6, 4, 3, 2),
    *,
    spec: QuantSpec = DEFAULT_SPEC,
    layers: Iterable[str] | None = None,
    act_spec: QuantSpec | None = None,
    calibration=None,
    fold_bn: bool = False,
    layer_types: Iterable[type] = SUPPORTED_LAYERS,
    progress: Progress = None,
) -> MixedPrecisionResult:
    """Greedy bit allocation (module docstring); metric evaluations ≈ layers² · (len(choices) - 1)."""
    choices = _check_bits(choices)
    swap = _WeightSwapper(model, layers, spec, act_spec, calibration, fold_bn, layer_types)
    names = list(swap.layers)
    float_metric = measured(metric, swap.apply({}), "the float model")
    float_size = swap.size_bytes({})

    def measure(bits: dict[str, int]) -> MixedPrecisionPoint:
        value = measured(metric, swap.apply(bits), f"bits {bits}")
        return MixedPrecisionPoint(dict(bits), swap.size_bytes(bits), value)

    current = measure({n: choices[0] for n in names})
    path, explored = [current], [current]
    steps = range(len(names) * (len(choices) - 1))
    for _ in track(steps, progress, desc="mixed precision"):
        candidates = []
        for n in names:
            level = choices.index(current.bits[n])
            if level + 1 < len(choices):
                candidates.append(measure({**current.bits, n: choices[level + 1]}))
        explored.extend(candidates)
        current = min(
            candidates,
            key=lambda c: ((current.metric - c.metric) / (current.size_bytes - c.size_bytes), c.size_bytes),
        )
        path.append(current)
    uniform = [measure({n: b for n in names}) for b in choices]
    explored.extend(uniform[1:-1])  # the widest and narrowest are already the path's ends
    return MixedPrecisionResult(path, explored, float_size, float_metric, choices, uniform)
