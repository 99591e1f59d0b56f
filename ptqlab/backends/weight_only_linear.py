"""A quantized Linear you can read: int8 or packed int4 weights, float activations, dequantize on the fly.

    W8A16Linear / W4A16Linear:  y = x · (s ⊙ (W_q − z))ᵀ + b,   W_q stored in 8 or 4 bits, dequantized per call

Weights are quantized symmetrically (ptqlab's affine quantizer, ``QuantSpec(bits, PerChannel(0))`` or
``PerGroup(group_size, axis=1)``: one fp16 scale per output row or per run of ``group_size`` inputs). Int4 codes
are packed two per byte, low nibble first (``ptqlab.core.packing``). Activations keep their float dtype
(the "A16": bf16/fp16 on real hardware; here whatever dtype x has).

Why this is slow on a CPU (and what the engines do instead): every forward unpacks and dequantizes the whole
weight matrix into a fresh float tensor — reading 1 (or ½) byte per weight and writing 4 — and only then calls
the ordinary float GEMM. The float GEMM then reads that float matrix back. Memory traffic is *higher* than
fp32's, plus several Python/ATen dispatches per layer. A real weight-only kernel (torchao's int4 tinygemm,
fbgemm's int8 GEMM) dequantizes tiles inside the GEMM's inner loop, in registers, so the weights cross the
memory bus once, at 8 or 4 bits. What you save here is storage, not time.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ptqlab.core import checks
from ptqlab.core.affine import qparams_for, quantize
from ptqlab.core.spec import PerChannel, PerGroup, QuantSpec


class WeightOnlyLinear(nn.Module):
    """nn.Linear with symmetric ``bits``-bit weights (8 or 4), per output channel or per group of inputs."""

    bits = 8

    def __init__(self, in_features: int, out_features: int, bias: bool = True, group_size: int | None = None):
        super().__init__()
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        granularity = PerChannel(0) if group_size is None else PerGroup(group_size, axis=1)
        self.spec = QuantSpec(self.bits, signed=True, symmetric=True, granularity=granularity)
        groups = self.spec.qparams_shape((out_features, in_features))
        width = in_features if self.bits == 8 else (in_features + 1) // 2
        self.register_buffer("packed", torch.zeros(out_features, width, dtype=torch.uint8))
        self.register_buffer("scale", torch.ones(groups, dtype=torch.float16))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int | None = None) -> WeightOnlyLinear:
        """Quantize an nn.Linear's weight (raises ValueError naming group_size if it does not divide in_features)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        if group_size is not None and (
            isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1
        ):
            raise ValueError(f"group_size must be a positive int or None, got {group_size!r}")
        w = checks.fits_float32(linear.weight, "linear.weight")
        if linear.bias is not None:
            checks.float_tensor(linear.bias, "linear.bias")
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, group_size)
        if group_size is not None and w.shape[1] % group_size:
            raise ValueError(f"group_size={group_size} does not divide in_features={w.shape[1]}")
        qp = qparams_for(w, layer.spec)
        scale16 = qp.scale.to(torch.float16)
        if not bool(torch.isfinite(scale16).all()):
            raise ValueError(
                f"linear.weight reaches {float(w.abs().max()):.3g}: its scale {float(qp.scale.max()):.3g} overflows "
                f"the fp16 scales this layer stores (max 65504)"
            )
        qp = qp._replace(scale=scale16.float())  # quantize with the scale actually stored
        codes = quantize(w, qp, layer.spec).to(torch.int64)
        layer.packed.copy_(layer.pack_codes(codes))
        layer.scale.copy_(scale16)
        if linear.bias is not None:
            layer.bias.copy_(linear.bias.detach())
        return layer.to(linear.weight.device)

    def pack_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Signed codes (out, in) → stored bytes: int8 as its two's-complement byte, int4 two per byte
        (code + 8, low nibble first: the layout of ``ptqlab.core.packing.pack`` row by row)."""
        if self.bits == 8:
            return codes.to(torch.int8).view(torch.uint8)
        unsigned = codes + 8
        if unsigned.shape[1] % 2:
            unsigned = torch.cat([unsigned, unsigned.new_zeros(unsigned.shape[0], 1)], dim=1)
        return (unsigned[:, 0::2] | (unsigned[:, 1::2] << 4)).to(torch.uint8)

    def weight_codes(self) -> torch.Tensor:
        """The signed integer codes (out, in), unpacked."""
        if self.bits == 8:
            return self.packed.view(torch.int8)
        low, high = self.packed & 0x0F, self.packed >> 4
        both = torch.stack([low, high], dim=-1).reshape(self.out_features, -1)[:, : self.in_features]
        return both.to(torch.int8) - 8

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """s ⊙ W_q in ``dtype`` (the zero point of a symmetric signed grid is 0)."""
        scale = self.scale.to(dtype).reshape(self.out_features, -1, 1)  # (out, groups, 1); one group per row
        codes = self.weight_codes().to(dtype).reshape(self.out_features, scale.shape[1], -1)
        return (codes * scale).reshape(self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(
                f"x must be a floating-point tensor (the A16 activations), got {getattr(x, 'dtype', type(x).__name__)}"
            )
        checks.not_meta(x, "x")
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must end in in_features={self.in_features}, got shape {tuple(x.shape)}")
        w = self.dequantized_weight(x.dtype)
        return nn.functional.linear(x, w, None if self.bias is None else self.bias.to(x.dtype))

    def storage_bytes(self) -> int:
        """Bytes of the packed weights + fp16 scales (+ the float bias)."""
        return sum(
            b.numel() * b.element_size() for b in (self.packed, self.scale, self.bias) if b is not None
        )

    def extra_repr(self) -> str:
        grain = "per-channel" if self.group_size is None else f"group {self.group_size}"
        return f"in_features={self.in_features}, out_features={self.out_features}, int{self.bits} {grain}"


class W8A16Linear(WeightOnlyLinear):
    bits = 8


class W4A16Linear(WeightOnlyLinear):
    bits = 4


def replace_linear(
    model: nn.Module, bits: int = 8, group_size: int | None = None, skip: tuple[str, ...] = ()
) -> nn.Module:
    """A deep copy of ``model`` with every nn.Linear (except those named in ``skip``) swapped for a
    W8A16Linear (bits=8) or W4A16Linear (bits=4). ``skip`` holds exact module names (a str or an unknown
    name is refused). The original model is untouched."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if isinstance(bits, bool) or bits not in (4, 8):
        raise ValueError(f"bits must be 4 or 8, got {bits!r}")
    if isinstance(skip, str) or not all(isinstance(n, str) for n in skip):
        raise TypeError(f"skip must be a collection of exact layer names, not {skip!r}")
    unknown = sorted(set(skip) - {n for n, _ in model.named_modules()})
    if unknown:
        raise ValueError(f"skip names no layer of the model: {unknown}")
    kind = W8A16Linear if bits == 8 else W4A16Linear
    swapped = copy.deepcopy(model).eval()
    for name, module in list(swapped.named_modules()):
        if isinstance(module, nn.Linear) and name not in skip:
            parent_name, _, child = name.rpartition(".")
            parent = swapped.get_submodule(parent_name) if parent_name else swapped
            setattr(parent, child, kind.from_linear(module, group_size))
    if isinstance(swapped, nn.Linear) and "" not in skip:
        return kind.from_linear(swapped, group_size)
    return swapped
