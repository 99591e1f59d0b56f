"""Whole-model simulated quantization (fake-quant): what accuracy would an integer model have?

    q = simulate(model, QuantSpec(bits=4, granularity=PerChannel(0)),          # weights W4 per channel
                 QuantSpec(bits=8, signed=False, symmetric=False),            # activations A8 asymmetric
                 calibration=x_calib, skip={"fc4"}, fold_bn=True)

returns a deep copy of ``model`` where every Linear/Conv (minus ``skip``)
  * has its weight replaced by fake_quantize(W) (min/max qparams per block of the weight spec; per-group
    blocks run along the flattened input dimension, in·kh·kw for a conv), and
  * fake-quantizes its input with the qparams its observer chose on the calibration batches
    (an ``input_quantizer`` submodule, applied by a forward pre-hook).
Calibration runs on the float (optionally BN-folded) copy before its weights are quantized.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import NamedTuple

import torch
from torch import nn

from ptqlab.core.affine import QParams, fake_quantize, qparams_for
from ptqlab.core.progress import Progress
from ptqlab.core.spec import PerChannel, PerGroup, PerTensor, QuantSpec
from ptqlab.ptq.calibrate import SUPPORTED_LAYERS, ObserverFactory, calibrate, select_layers
from ptqlab.ptq.folding import fold_batchnorm, foldable_pairs
from ptqlab.ptq.quality import EmbeddingAgreement, embedding_agreement, evaluate_accuracy


class LayerSpec(NamedTuple):
    """How one layer is quantized: its weight spec and its input-activation spec (None = keep float)."""

    weight: QuantSpec | None
    act: QuantSpec | None = None


class ActFakeQuant(nn.Module):
    """x -> fake_quantize(x) with fixed, calibrated (scale, zero_point)."""

    def __init__(self, qparams: QParams, spec: QuantSpec) -> None:
        super().__init__()
        self.spec = spec
        self.register_buffer("scale", qparams.scale.clone())
        self.register_buffer("zero_point", qparams.zero_point.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quantize(x, QParams(self.scale, self.zero_point), self.spec)

    def extra_repr(self) -> str:
        return str(self.spec)


def _quantize_input(module: nn.Module, args: tuple) -> tuple:
    return (module.input_quantizer(args[0]), *args[1:])


def _check_spec(spec, name: str) -> None:
    if spec is not None and not isinstance(spec, QuantSpec):
        raise TypeError(f"{name} must be a QuantSpec or None, got {type(spec).__name__}")


@torch.no_grad()
def quantize_weight(weight: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """fake_quantize(W) with min/max qparams per block; per-group runs over W.flatten(1) for conv weights."""
    w = weight.detach()
    if isinstance(spec.granularity, PerGroup) and w.dim() > 2:
        flat = w.flatten(1)
        return fake_quantize(flat, qparams_for(flat, spec), spec).reshape(w.shape)
    return fake_quantize(w, qparams_for(w, spec), spec)


def quantization_plan(
    model: nn.Module,
    weight_spec: QuantSpec | None,
    act_spec: QuantSpec | None = None,
    *,
    per_layer: dict[str, QuantSpec | LayerSpec] | None = None,
    skip: Iterable[str] = (),
    layer_types: Iterable[type] = SUPPORTED_LAYERS,
) -> QuantizationPlan:
    """Layer name -> LayerSpec for every layer that gets quantized; ``.skipped`` names every other layer
    with weights (``skip``ped, unsupported like Conv3d/Embedding/LSTM, normalisation) and why.

    ``per_layer`` values override the defaults: a QuantSpec replaces the weight spec only, a LayerSpec both.
    """
    _check_spec(weight_spec, "weight_spec")
    _check_spec(act_spec, "act_spec")
    if isinstance(skip, str):
        raise TypeError("skip must be a collection of layer names, not a single str")
    per_layer = dict(per_layer or {})
    skip = set(skip)
    select_layers(
        model, skip | set(per_layer), layer_types
    )  # unknown -> ValueError, unsupported -> TypeError
    layer_types = tuple(layer_types)
    if not select_layers(model, None, layer_types):
        unsupported = skipped_layers(model, {}, set(), layer_types)
        raise ValueError(
            f"model has nothing to quantize: no layer of {[t.__name__ for t in layer_types]}"
            + (f"; unsupported layers: {unsupported}" if unsupported else "")
        )
    plan = QuantizationPlan()
    for name in select_layers(model, None, layer_types):
        if name in skip:
            continue
        override = per_layer.get(name)
        if isinstance(override, QuantSpec):
            spec = LayerSpec(override, act_spec)
        elif isinstance(override, LayerSpec):
            _check_spec(override.weight, f"per_layer[{name!r}].weight")
            _check_spec(override.act, f"per_layer[{name!r}].act")
            spec = override
        elif override is None:
            spec = LayerSpec(weight_spec, act_spec)
        else:
            raise TypeError(
                f"per_layer[{name!r}] must be a QuantSpec or LayerSpec, got {type(override).__name__}"
            )
        if spec.act is not None and isinstance(spec.act.granularity, PerGroup):
            raise ValueError(
                f"layer {name!r}: activations support per-tensor or per-channel specs, not per-group"
            )
        if spec.weight is not None or spec.act is not None:
            plan[name] = spec
    plan.skipped = skipped_layers(model, plan, skip, layer_types)
    return plan


def simulate(
    model: nn.Module,
    weight_spec: QuantSpec | None,
    act_spec: QuantSpec | None = None,
    *,
    calibration=None,
    observer: ObserverFactory = "minmax",
    observer_kwargs: dict | None = None,
    per_layer: dict[str, QuantSpec | LayerSpec] | None = None,
    skip: Iterable[str] = (),
    fold_bn: bool = False,
    layer_types: Iterable[type] = SUPPORTED_LAYERS,
    progress: Progress = None,
) -> nn.Module:
    """A fake-quantized deep copy of ``model`` (see the module docstring); ``model`` itself is untouched.

    The copy carries ``ptq_plan``: layer name -> LayerSpec actually applied, and ``ptq_plan.skipped``:
    layer name -> why it stays in float. A model without any layer of ``layer_types`` is a ValueError.
    """
    plan = quantization_plan(
        model, weight_spec, act_spec, per_layer=per_layer, skip=skip, layer_types=layer_types
    )
    quantized = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()
    modules = dict(quantized.named_modules())
    act_layers = [n for n, s in plan.items() if s.act is not None]
    if act_layers:
        if calibration is None:
            raise ValueError("activation quantization needs calibration data: pass calibration=batches")
        stats = calibrate(
            quantized,
            calibration,
            observer,
            observer_kwargs=observer_kwargs,
            layers=act_layers,
            progress=progress,
        )
    for name, spec in plan.items():
        _apply_layer(modules[name], name, spec, stats[name].input.observer if spec.act is not None else None)
    quantized.ptq_plan = plan
    return quantized


def _apply_layer(module: nn.Module, name: str, spec: LayerSpec, observed) -> None:
    """Fake-quantize ``module``'s weight and attach its input quantizer (qparams from ``observed``)."""
    if spec.weight is not None:
        try:
            weight = quantize_weight(module.weight, spec.weight)
        except (TypeError, ValueError) as error:
            raise type(error)(f"layer {name!r}: weight: {error}") from error
        module.weight = nn.Parameter(weight, requires_grad=False)
    if spec.act is None:
        return
    lo, hi = observed.range()
    if lo.dim() > 0 and not isinstance(spec.act.granularity, PerChannel):
        raise ValueError(
            f"layer {name!r}: the observer gave per-channel ranges but the activation spec is {spec.act.granularity}"
        )
    if lo.dim() == 0 and not isinstance(spec.act.granularity, PerTensor):
        raise ValueError(
            f"layer {name!r}: a per-channel activation spec needs a per-channel observer; "
            f"{type(observed).__name__} gave one range"
        )
    module.input_quantizer = ActFakeQuant(observed.qparams(spec.act), spec.act)
    module.register_forward_pre_hook(_quantize_input)


class QuantizationPlan(dict):
    """Layer name -> LayerSpec applied, plus ``skipped``: layer name -> why that layer stays in float."""

    def __init__(self, *args, skipped: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.skipped = dict(skipped or {})


NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)


def skipped_layers(model: nn.Module, plan: dict, skip: set, layer_types: tuple) -> dict[str, str]:
    """Every module with weights of its own that ``plan`` leaves in float, and why."""
    reasons = {}
    for name, m in model.named_modules():
        if not name or name in plan or next(m.parameters(recurse=False), None) is None:
            continue
        if name in skip:
            reasons[name] = "skip= names it"
        elif isinstance(m, layer_types):
            reasons[name] = "no weight or activation spec for it"
        elif isinstance(m, SUPPORTED_LAYERS):
            reasons[name] = f"{type(m).__name__} is not in layer_types"
        elif isinstance(m, NORMS):
            reasons[name] = "normalisation layer: kept in float (fold_bn=True folds a BatchNorm)"
        else:
            reasons[name] = (
                f"{type(m).__name__} is not simulated (only {', '.join(t.__name__ for t in SUPPORTED_LAYERS)})"
            )
    return reasons


__all__ = [
    "ActFakeQuant",
    "EmbeddingAgreement",
    "LayerSpec",
    "QuantizationPlan",
    "embedding_agreement",
    "evaluate_accuracy",
    "fold_batchnorm",
    "foldable_pairs",
    "quantization_plan",
    "quantize_weight",
    "simulate",
]
