"""The affine map between real numbers and integers, for every granularity through one block rule.

    quantize:     x_q = clamp(round(x / scale) + zero_point, qmin, qmax)
    dequantize:   x   ≈ (x_q - zero_point) * scale
    fake_quantize(x) = dequantize(quantize(x))

``round`` is round-half-to-even (``torch.round``, C's ``nearbyint``). Like every real kernel (ATen's
``quantize_per_tensor``, ``fake_quantize_per_*_affine``, torchao's ``quantize_affine``) the division is
computed as ``x * (1 / scale)`` in float32: the two can differ by one ulp, which can flip a tie. We follow
the kernels so that ptqlab is bit-exact against them.

Choosing (scale, zero_point) from a range [min, max] (torch.ao's and torchao's convention):

    min' = min(min, 0),  max' = max(max, 0)                       (0.0 must be exactly representable)
    symmetric:   scale = max(-min', max') / ((qmax - qmin) / 2),   zero_point = (qmin + qmax + 1) // 2
    asymmetric:  scale = (max' - min') / (qmax - qmin),            zero_point = clamp(qmin - round(min' / scale))
    scale = max(scale, eps)                                       (a constant 0 tensor still gets a valid scale)

The arithmetic is float32, as in the kernels, except where the float32 span max' − min' overflows
(|min| + |max| > 3.4e38): there the scale is computed in float64 and rounded to float32, so finite ranges
always give a finite scale. ``eps`` and every scale must be at least float32's smallest normal (1.18e-38):
1/scale of a subnormal scale is inf, and 0 · inf would give a NaN code.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ptqlab.core import checks
from ptqlab.core.spec import QuantSpec

FLOAT32_EPS = float(torch.finfo(torch.float32).eps)


class QParams(NamedTuple):
    """Scale (float32) and zero point (int32), one entry per block of the tensor."""

    scale: torch.Tensor
    zero_point: torch.Tensor


# ---------------------------------------------------------------------------------------------------------
# The block rule: view a tensor as (g0, b0, g1, b1, ...) where g is the grid of blocks and b the block shape.
# ---------------------------------------------------------------------------------------------------------


def blocked_view(x: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, tuple[int, ...]]:
    """x viewed as (g0, b0, g1, b1, …): block index and position inside the block interleaved per dim."""
    block = spec.block_shape(x.shape)
    grid = tuple(n // b for n, b in zip(x.shape, block, strict=True))
    interleaved = [d for pair in zip(grid, block, strict=True) for d in pair]
    return x.reshape(interleaved), grid


def expand_blocks(param: torch.Tensor, x_shape: torch.Size, spec: QuantSpec, name: str) -> torch.Tensor:
    """Reshape a per-block ``param`` so that it broadcasts against x viewed as blocks."""
    grid = spec.qparams_shape(x_shape)
    if param.numel() != math.prod(grid):
        raise ValueError(
            f"{name} has {param.numel()} entries but {spec.granularity} on a tensor of shape "
            f"{tuple(x_shape)} needs {math.prod(grid)} (shape {grid})"
        )
    if param.dim() > 1 and tuple(param.shape) != grid and param.numel() > 1:
        raise ValueError(f"{name} has shape {tuple(param.shape)}, expected {grid}")
    shape = [d for g in grid for d in (g, 1)]
    return param.reshape(shape)


def _unblock(y: torch.Tensor, x_shape: torch.Size) -> torch.Tensor:
    return y.reshape(x_shape)


# ---------------------------------------------------------------------------------------------------------
# Range -> qparams
# ---------------------------------------------------------------------------------------------------------


def _check_spec(spec) -> QuantSpec:
    if not isinstance(spec, QuantSpec):
        raise TypeError(f"spec must be a QuantSpec, got {type(spec).__name__}")
    return spec


def min_max(x: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-block minimum and maximum of ``x`` (shape ``spec.qparams_shape(x.shape)``)."""
    x32 = checks.fits_float32(x, "x")
    blocks, grid = blocked_view(x32, _check_spec(spec))
    reduce_dims = tuple(range(1, blocks.dim(), 2))
    lo = blocks.amin(dim=reduce_dims).reshape(grid)
    hi = blocks.amax(dim=reduce_dims).reshape(grid)
    return lo, hi


def choose_qparams(min_val, max_val, spec: QuantSpec, eps: float = FLOAT32_EPS) -> QParams:
    """(scale, zero_point) for the range [min_val, max_val]; see the module docstring for the formulas.

    ``min_val`` and ``max_val`` are numbers or tensors of the same shape (one entry per block).
    ``eps`` floors the scale; the default, float32 machine epsilon, is torch.ao's observers' choice
    (torchao's ``choose_qparams_affine`` uses the smallest normal float instead).
    """
    _check_spec(spec)
    lo = checks.as_float_tensor(min_val, "min_val")
    hi = checks.as_float_tensor(max_val, "max_val")
    checks.same_shape(lo, hi, "min_val", "max_val")
    ok = not isinstance(eps, bool) and isinstance(eps, int | float) and math.isfinite(eps)
    if not (ok and checks.FLOAT32_TINY <= eps <= checks.FLOAT32_MAX):
        raise ValueError(
            f"eps must be a positive finite number in [{checks.FLOAT32_TINY:.4g}, {checks.FLOAT32_MAX:.4g}] "
            f"(float32's smallest normal to its largest: a subnormal scale has 1/scale = inf), got {eps!r}"
        )
    if bool((lo > hi).any()):
        bad = int((lo > hi).sum())
        raise ValueError(f"min_val > max_val in {bad} of {lo.numel()} entries")

    lo_neg = torch.minimum(lo, torch.zeros_like(lo))
    hi_pos = torch.maximum(hi, torch.zeros_like(hi))
    eps_t = torch.tensor(eps, dtype=torch.float32)
    if spec.symmetric:
        amax = torch.maximum(-lo_neg, hi_pos)
        scale = torch.maximum(amax / (float(spec.qmax - spec.qmin) / 2), eps_t)
        zero_point = torch.full_like(scale, spec.symmetric_zero_point, dtype=torch.int32)
    else:
        span, steps = hi_pos - lo_neg, float(spec.qmax - spec.qmin)  # float32, as the kernels compute it
        wide = ((hi_pos.double() - lo_neg.double()) / steps).float()  # where the float32 span overflows
        scale = torch.maximum(torch.where(torch.isfinite(span), span / steps, wide), eps_t)
        zero_point = spec.qmin - torch.round(lo_neg / scale).to(torch.int32)
        zero_point = zero_point.clamp(spec.qmin, spec.qmax).to(torch.int32)
    return QParams(scale.to(torch.float32), zero_point)


def qparams_for(x: torch.Tensor, spec: QuantSpec, eps: float = FLOAT32_EPS) -> QParams:
    """Min/max calibration of ``x`` itself: ``choose_qparams(*min_max(x, spec), spec)``."""
    return choose_qparams(*min_max(x, spec), spec, eps=eps)


def representable_range(qparams: QParams, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The real interval the grid covers: [(qmin - zp) * scale, (qmax - zp) * scale] per block."""
    scale, zp = qparams_tensors(qparams, spec)
    zp = zp.to(torch.float32)
    return (spec.qmin - zp) * scale, (spec.qmax - zp) * scale


# ---------------------------------------------------------------------------------------------------------
# The map itself
# ---------------------------------------------------------------------------------------------------------


def qparams_tensors(qparams, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated (scale float32, zero_point int32) tensors from ``qparams``, raising naming the argument."""
    _check_spec(spec)
    if not (isinstance(qparams, tuple) and len(qparams) == 2):
        raise TypeError("qparams must be a QParams(scale, zero_point) pair")
    scale = checks.as_float_tensor(qparams[0], "scale")
    zp = qparams[1]
    if isinstance(zp, int) and not isinstance(zp, bool):
        zp = torch.tensor(zp)
    if not isinstance(zp, torch.Tensor) or zp.is_floating_point() or zp.dtype == torch.bool:
        raise TypeError(
            "zero_point must be an integer tensor (a float zero point would put 0.0 off the grid)"
        )
    checks.not_meta(zp, "zero_point")
    if bool((scale <= 0).any()):
        raise ValueError("scale must be > 0 everywhere")
    if bool((scale < checks.FLOAT32_TINY).any()):
        raise ValueError(
            f"scale must be >= float32's smallest normal {checks.FLOAT32_TINY:.4g} (a subnormal scale has "
            f"1/scale = inf), got {float(scale.min()):.4g}"
        )
    if bool(((zp < spec.qmin) | (zp > spec.qmax)).any()):
        raise ValueError(f"zero_point must lie in [{spec.qmin}, {spec.qmax}]")
    return scale, zp.to(torch.int32)


def _check_qparams(qparams, x_shape, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    scale, zp = qparams_tensors(qparams, spec)
    return expand_blocks(scale, x_shape, spec, "scale"), expand_blocks(zp, x_shape, spec, "zero_point")


def quantize(x: torch.Tensor, qparams: QParams, spec: QuantSpec) -> torch.Tensor:
    """x_q = clamp(round(x * (1/scale)) + zero_point, qmin, qmax), stored in ``spec.storage_dtype``."""
    x32 = checks.fits_float32(x, "x")
    scale, zp = _check_qparams(qparams, x.shape, spec)
    blocks, _ = blocked_view(x32, spec)
    q = torch.round(blocks * (1.0 / scale)) + zp
    q = q.clamp(spec.qmin, spec.qmax)
    return _unblock(q, x.shape).to(spec.storage_dtype)


def dequantize(x_q: torch.Tensor, qparams: QParams, spec: QuantSpec) -> torch.Tensor:
    """x ≈ (x_q - zero_point) * scale, in float32."""
    if not isinstance(x_q, torch.Tensor):
        raise TypeError(f"x_q must be a torch.Tensor, got {type(x_q).__name__}")
    if x_q.is_floating_point() or x_q.dtype == torch.bool:
        raise TypeError(f"x_q must be an integer tensor, got dtype {x_q.dtype}")
    checks.not_meta(x_q, "x_q")
    if x_q.numel() == 0:
        raise ValueError("x_q is empty")
    scale, zp = _check_qparams(qparams, x_q.shape, spec)
    blocks, _ = blocked_view(x_q.to(torch.float32), spec)
    if bool(((blocks < spec.qmin) | (blocks > spec.qmax)).any()):
        raise ValueError(f"x_q has codes outside [{spec.qmin}, {spec.qmax}]")
    return _unblock((blocks - zp.to(torch.float32)) * scale, x_q.shape)


def fake_quantize(x: torch.Tensor, qparams: QParams, spec: QuantSpec) -> torch.Tensor:
    """dequantize(quantize(x)): the value the network actually sees after quantization."""
    return dequantize(quantize(x, qparams, spec), qparams, spec)


def integer_grid(qparams: QParams, spec: QuantSpec) -> torch.Tensor:
    """Every representable real value (q - zp) * scale for q in [qmin, qmax] (per-tensor qparams only)."""
    scale, zp = qparams_tensors(qparams, spec)
    if scale.numel() != 1 or zp.numel() != 1:
        raise ValueError("integer_grid needs per-tensor qparams (one scale and one zero point)")
    codes = torch.arange(spec.qmin, spec.qmax + 1, dtype=torch.float32)
    return (codes - zp.to(torch.float32).reshape(())) * scale.reshape(())
