"""The MobileNetV2 failure and its data-free fix, measured: per-tensor vs per-channel int8 weights, then
cross-layer equalization + bias correction (Nagel et al. 2019, "Data-Free Quantization Through Weight
Equalization and Bias Correction").

Folding BatchNorm multiplies output channel c of a conv by s_c = γ_c / sqrt(σ_c² + ε) (``ptqlab.ptq.folding``);
in a depthwise conv every channel is its own 3×3 filter, so after folding the channels' ranges r_c = max|W_c|
can differ by orders of magnitude, and ONE per-tensor scale Δ = max_c r_c / 127 rounds the small channels
to a handful of levels (or to zero). Per-channel scales fix it in the engine; CLE fixes it in the weights
(``ptqlab.ptq.cle``: r_c ← sqrt(r1_c r2_c) across each pair) so a per-tensor grid fits again; bias correction
removes the mean output shift the remaining rounding error leaves: b ← b − (E[ỹ] − E[y]) per output channel,
layer by layer in model order, ỹ measured in the quantized model (earlier corrections included).

``dfq_study(model, calibration, x_test, y_test)`` measures all of it on one model; every variant is a
fake-quantized copy made by ``ptqlab.ptq.simulate`` (BN folded, every Conv2d incl. depthwise and Linear).

Whether per-tensor collapses is decided by the folded depthwise channels' range spread max_c r_c / min_c r_c
(``channel_ranges``): the smallest channel keeps about 127 · r_c / max r levels. ``unequalize(model, factor)``
is CLE run backwards — W1 ← S W1, b1 ← S b1, W2 ← W2 S⁻¹ on every expand → depthwise pair, with
log s_c uniform in [−½, ½]·log(factor) — so a model computes the same float function (ReLU is positively
homogeneous) with a spread about ``factor`` times wider: a measured "what if this model's ranges were as
uneven as ImageNet MobileNetV2's" (Nagel et al. 2019, Fig. 2), not a claim about the trained model.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ptqlab.core.spec import PerChannel, PerTensor, QuantSpec
from ptqlab.ptq.cle import equalizable_pairs, equalize, is_depthwise, replace_relu6
from ptqlab.ptq.folding import fold_batchnorm
from ptqlab.ptq.simulate import simulate

WEIGHT_PER_TENSOR = QuantSpec(bits=8, granularity=PerTensor())
WEIGHT_PER_CHANNEL = QuantSpec(bits=8, granularity=PerChannel(0))
ACT_UINT8 = QuantSpec(bits=8, signed=False, symmetric=False)
LAYERS = (nn.Conv2d, nn.Linear)


@dataclass
class DFQStudy:
    """Top-1 accuracies (fraction of the test set) of each variant, and the weights' channel spread."""

    fp32: float
    fp32_relu: float  # after ReLU6 → ReLU (the float model CLE actually equalizes)
    accuracy: dict[str, float] = field(default_factory=dict)  # variant -> accuracy (W8A8 and W8 only)
    spread_before: dict[str, float] = field(
        default_factory=dict
    )  # depthwise layer -> max_c r_c / median_c r_c
    spread_after: dict[str, float] = field(default_factory=dict)  # the same after CLE
    pairs: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def channel_spread(model: nn.Module, depthwise_only: bool = True) -> dict[str, float]:
    """Layer -> max_c r_c / median_c r_c with r_c = max|W_c| (output channel c): how badly one per-tensor
    scale fits the layer's channels (1 = all channels alike)."""
    spread = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and (is_depthwise(m) or not depthwise_only):
            r = m.weight.detach().abs().flatten(1).amax(1)
            spread[name] = float(r.max() / r.median().clamp(min=1e-12))
    return spread


def channel_ranges(model: nn.Module) -> dict[str, torch.Tensor]:
    """Depthwise layer -> r_c = max|W_c| per output channel (what one per-tensor scale must cover)."""
    return {
        name: m.weight.detach().abs().flatten(1).amax(1).float()
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and is_depthwise(m)
    }


@torch.no_grad()
def unequalize(model: nn.Module, factor: float, *, seed: int = 0) -> nn.Module:
    """A copy of ``model`` (BatchNorm folded, ReLU6 → ReLU) whose expand → depthwise pairs are rescaled by
    s_c = factor^(u_c), u_c ~ U[−½, ½] (seeded): W_expand ← S W_expand, b ← S b, W_dw ← S⁻¹ W_dw. The float
    function is unchanged; the depthwise channels' range spread grows by up to ``factor``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 1 <= factor <= 1e6:
        raise ValueError(f"factor must be a number in [1, 1e6], got {factor!r}")
    work = fold_batchnorm(model)
    replace_relu6(work)
    modules = dict(work.named_modules())
    generator = torch.Generator().manual_seed(seed)
    for first, second in equalizable_pairs(work):
        a, b = modules[first], modules[second]
        if not is_depthwise(b) or is_depthwise(a):
            continue
        u = torch.rand(a.weight.shape[0], generator=generator, dtype=torch.float64) - 0.5
        s = torch.exp(u * math.log(factor))
        a.weight.mul_(s.reshape(-1, *[1] * (a.weight.dim() - 1)).to(a.weight.dtype))
        if a.bias is not None:
            a.bias.mul_(s.to(a.bias.dtype))
        b.weight.div_(s.reshape(-1, *[1] * (b.weight.dim() - 1)).to(b.weight.dtype))
    return work


class _Reached(Exception):
    """Raised by a hook to stop a forward pass once the last layer of interest has run."""


@torch.no_grad()
def _layer_output_means(model: nn.Module, batches: list, names: list[str]) -> dict[str, torch.Tensor]:
    """Mean output per channel (dim 1; last dim for a Linear) of every named layer over all batches; each
    forward stops right after the last of ``names`` in execution order (the rest of the model is not run)."""
    modules, sums, counts, hooks = dict(model.named_modules()), {}, {}, []
    pending = set(names)

    def hook(name):
        def record(module, args, out):
            dims = [d for d in range(out.dim()) if d != 1] if out.dim() > 2 else [0]
            sums[name] = sums.get(name, 0) + out.float().sum(dims)
            counts[name] = counts.get(name, 0) + out.numel() // out.shape[1]
            seen.add(name)
            if seen >= pending:
                raise _Reached

        return record

    hooks = [modules[n].register_forward_hook(hook(n)) for n in names]
    try:
        for b in batches:
            seen: set[str] = set()
            try:
                model(b)
            except _Reached:
                pass
    finally:
        for h in hooks:
            h.remove()
    return {n: sums[n] / counts[n] for n in names}


@torch.no_grad()
def empirical_bias_correction(quantized: nn.Module, reference: nn.Module, batches: list) -> int:
    """In place on ``quantized``: for every Conv2d/Linear in model order, b ← b − (E[ỹ] − E[y]) where ỹ is
    the layer's output in ``quantized`` (earlier layers already corrected) and y in the float ``reference``
    (same architecture, same layer names). Works for depthwise convs too; returns the layers corrected."""
    if not isinstance(quantized, nn.Module) or not isinstance(reference, nn.Module):
        raise TypeError("quantized and reference must be torch.nn.Module")
    names = [n for n, m in quantized.named_modules() if isinstance(m, LAYERS)]
    float_means = _layer_output_means(reference, batches, names)
    modules = dict(quantized.named_modules())
    for name in names:
        layer = modules[name]
        shift = _layer_output_means(quantized, batches, [name])[name] - float_means[name]
        if layer.bias is None:
            layer.bias = nn.Parameter(torch.zeros_like(shift), requires_grad=False)
        layer.bias.sub_(shift.to(layer.bias.dtype))
    return len(names)


@torch.no_grad()
def accuracy_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on (x, y)."""
    return float((model.eval()(x).argmax(-1) == y).float().mean())


def _quantized(model: nn.Module, weight: QuantSpec, act: bool, batches: list) -> nn.Module:
    return simulate(model, weight, ACT_UINT8 if act else None, calibration=batches if act else None)


def _weight_specs(bits: int) -> tuple[QuantSpec, QuantSpec]:
    return QuantSpec(bits=bits, granularity=PerTensor()), QuantSpec(bits=bits, granularity=PerChannel(0))


def dfq_study(
    model: nn.Module,
    calibration: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    bits: int = 8,
    with_activations: bool = True,
) -> DFQStudy:
    """Accuracy of ``model`` (a MobileNetV2-style net) under int8 weights per tensor, per channel, and per
    tensor after CLE and after CLE + bias correction; each with float (W8) and uint8 min/max activations
    (W8A8; ``with_activations=False``: W8 only, half the work), BatchNorm folded; ``bits`` sets the weight
    width (activations stay uint8). ``calibration``: a tensor of inputs, used in batches of 64."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(calibration, torch.Tensor) or calibration.dim() < 2 or len(calibration) == 0:
        raise ValueError("calibration must be a non-empty tensor of input images")
    per_tensor, per_channel = _weight_specs(bits)
    batches = list(calibration.split(64))
    folded = fold_batchnorm(model)
    relu = copy.deepcopy(folded)
    swapped = replace_relu6(relu)
    equalized = copy.deepcopy(relu)
    pairs, sweeps = equalize(equalized)
    study = DFQStudy(accuracy_of(model, x_test, y_test), accuracy_of(relu, x_test, y_test))
    study.pairs, study.spread_before, study.spread_after = (
        len(pairs),
        channel_spread(folded),
        channel_spread(equalized),
    )
    for act in (False, True) if with_activations else (False,):
        tag = f"W{bits}A8" if act else f"W{bits}"
        study.accuracy[f"per-tensor {tag}"] = accuracy_of(
            _quantized(folded, per_tensor, act, batches), x_test, y_test
        )
        study.accuracy[f"per-channel {tag}"] = accuracy_of(
            _quantized(folded, per_channel, act, batches), x_test, y_test
        )
        cle = _quantized(equalized, per_tensor, act, batches)
        study.accuracy[f"CLE + per-tensor {tag}"] = accuracy_of(cle, x_test, y_test)
        empirical_bias_correction(cle, equalized, batches)
        study.accuracy[f"CLE + bias correction + per-tensor {tag}"] = accuracy_of(cle, x_test, y_test)
    study.notes = [
        f"BatchNorm folded; {swapped} ReLU6 replaced by ReLU before CLE (Nagel et al. 2019 §5); "
        f"{len(pairs)} pairs equalized in {sweeps} sweeps",
        f"weights: symmetric int{bits} min/max; activations (W8A8): uint8 asymmetric min/max on every Conv/Linear input",
        f"calibration: {len(calibration)} training images; accuracy on {len(y_test)} test images",
    ]
    return study


__all__ = [
    "DFQStudy",
    "accuracy_of",
    "channel_ranges",
    "channel_spread",
    "dfq_study",
    "empirical_bias_correction",
    "unequalize",
]
