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
from ptqlab.ptq.calibrate import SUPPORTED_LAYERS, ObserverFactory, calibrate, run_batch, select_layers
from ptqlab.ptq.folding import fold_batchnorm, foldable_pairs


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
) -> dict[str, LayerSpec]:
    """Layer name -> LayerSpec for every layer that gets quantized (``skip``ped layers are absent).

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
    plan = {}
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

    The copy carries ``ptq_plan``: layer name -> LayerSpec actually applied.
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
        module = modules[name]
        if spec.weight is not None:
            module.weight = nn.Parameter(quantize_weight(module.weight, spec.weight), requires_grad=False)
        if spec.act is not None:
            observed = stats[name].input.observer
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
    quantized.ptq_plan = plan
    return quantized


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy as a fraction in [0, 1] (eval mode, no grad)."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("x and y must be tensors")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must be non-empty and aligned, got {len(x)} and {len(y)} rows")
    was_training = model.training
    model.eval()
    try:
        predictions = torch.cat([run_batch(model, b).argmax(-1) for b in x.split(batch_size)])
    finally:
        model.train(was_training)
    return float((predictions == y).float().mean())


class EmbeddingAgreement(NamedTuple):
    """mean/min cosine between matching rows, and the share of rows whose nearest neighbour is unchanged."""

    mean_cosine: float
    min_cosine: float
    neighbour_agreement: float


def embedding_agreement(reference: torch.Tensor, test: torch.Tensor) -> EmbeddingAgreement:
    """cos_i = <r_i, t_i> / (‖r_i‖‖t_i‖); neighbour of i = argmax_{j≠i} cos(e_i, e_j), in each embedding set."""
    if not (isinstance(reference, torch.Tensor) and isinstance(test, torch.Tensor)):
        raise TypeError("reference and test must be tensors of embeddings (N, D)")
    if reference.shape != test.shape or reference.dim() != 2 or reference.shape[0] < 2:
        raise ValueError(
            f"need two (N, D) tensors with N >= 2, got {tuple(reference.shape)} and {tuple(test.shape)}"
        )
    r = torch.nn.functional.normalize(reference.to(torch.float64), dim=1)
    t = torch.nn.functional.normalize(test.to(torch.float64), dim=1)
    cos = (r * t).sum(1)
    eye = torch.eye(len(r), dtype=torch.bool)
    nn_r = (r @ r.T).masked_fill(eye, -2).argmax(1)
    nn_t = (t @ t.T).masked_fill(eye, -2).argmax(1)
    return EmbeddingAgreement(float(cos.mean()), float(cos.min()), float((nn_r == nn_t).double().mean()))


__all__ = [
    "ActFakeQuant",
    "EmbeddingAgreement",
    "LayerSpec",
    "embedding_agreement",
    "evaluate_accuracy",
    "fold_batchnorm",
    "foldable_pairs",
    "quantization_plan",
    "quantize_weight",
    "simulate",
]
