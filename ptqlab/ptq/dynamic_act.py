"""Dynamic activation fake-quantization: qparams computed from each input as it arrives, not calibrated.

Static activations (``simulate``) fix one (scale, zero_point) per layer from calibration batches; a single
outlier token or channel seen there widens the grid for every later input. Most W8A8 LLM engines instead
quantize activations *dynamically*, from the input itself at run time (SmoothQuant's O1/O2 settings,
torchao's ``Int8DynamicActivationInt8WeightConfig``, ONNX Runtime's dynamic quantization):

    "per-tensor": one (scale, zp) from min/max of the whole input,  x̂ = fq(x; min/max(x))
    "per-token":  one (scale, zp) per token (row of the flattened (tokens, features) view):
                  x̂_t = fq(x_t; min_j x_tj, max_j x_tj)

with the min/max rule of ``core.affine.choose_qparams`` (0 kept representable, the spec's grid). Per token is
the finest granularity an int8 GEMM can still apply (its scale factors out of the row's dot products).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ptqlab.core.affine import fake_quantize, qparams_for
from ptqlab.core.spec import PerChannel, PerTensor, QuantSpec

ACT_MODES = ("static", "per-tensor", "per-token")


def check_act_mode(act_mode) -> str:
    """``act_mode`` if it is one of ACT_MODES, else a ValueError naming the argument."""
    if not isinstance(act_mode, str) or act_mode not in ACT_MODES:
        raise ValueError(f"act_mode must be one of {ACT_MODES}, got {act_mode!r}")
    return act_mode


def dynamic_fake_quantize(x: torch.Tensor, spec: QuantSpec, per_token: bool) -> torch.Tensor:
    """x fake-quantized with qparams from its own min/max: one pair per row of x.reshape(-1, x.shape[-1])
    (``per_token``) or one for all of x; same shape and dtype as x."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.numel() == 0:
        raise ValueError("x is empty")
    rows = x.reshape(-1, x.shape[-1]).float()
    grid = spec.with_(granularity=PerChannel(0) if per_token else PerTensor())
    return fake_quantize(rows, qparams_for(rows, grid), grid).reshape(x.shape).to(x.dtype)


class DynamicActFakeQuant(nn.Module):
    """x -> dynamic_fake_quantize(x, spec, per_token): the input quantizer of a dynamically quantized layer."""

    def __init__(self, spec: QuantSpec, per_token: bool) -> None:
        super().__init__()
        if not isinstance(spec, QuantSpec) or not isinstance(spec.granularity, PerTensor):
            raise ValueError(
                f"act_spec: a dynamic activation spec sets bits/signed/symmetric and granularity PerTensor() "
                f"(per token is act_mode='per-token'), got {spec}"
            )
        self.spec, self.per_token = spec, per_token

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dynamic_fake_quantize(x, self.spec, self.per_token)

    def extra_repr(self) -> str:
        return f"{self.spec}, {'per token' if self.per_token else 'per tensor'}, dynamic"


def _quantize_input(module: nn.Module, args: tuple) -> tuple:
    return (module.input_quantizer(args[0]), *args[1:])


def attach_dynamic_inputs(model: nn.Module, names: Iterable[str], spec: QuantSpec, act_mode: str) -> None:
    """Give every named layer of ``model`` (in place) a dynamic input quantizer (act_mode per-tensor/per-token).

    A layer wrapped by SmoothQuant/AWQ (``SmoothedInput``) gets it on the inner layer: it sees x / s."""
    if check_act_mode(act_mode) == "static":
        raise ValueError("act_mode='static' is calibrated: use simulate(..., act_spec, calibration=...)")
    quantizer = DynamicActFakeQuant(spec, act_mode == "per-token")
    modules = dict(model.named_modules())
    for name in names:
        layer = modules[name]
        layer = getattr(layer, "inner", layer)
        layer.input_quantizer = quantizer
        layer.register_forward_pre_hook(_quantize_input)


__all__ = [
    "ACT_MODES",
    "DynamicActFakeQuant",
    "attach_dynamic_inputs",
    "check_act_mode",
    "dynamic_fake_quantize",
]
