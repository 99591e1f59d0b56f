"""How wrong is a quantized tensor? Error metrics and the split into rounding and clipping error.

    MSE        = mean((x - x̂)²)
    SQNR (dB)  = 10 · log10( Σ x² / Σ (x - x̂)² )            (+inf when x̂ == x)
    cosine     = <x, x̂> / (‖x‖ · ‖x̂‖)

Rounding vs clipping. The grid covers the real interval [lo, hi] = [(qmin - zp)·s, (qmax - zp)·s].
Every x inside it lands on the nearest grid point, |x - x̂| ≤ s/2 (rounding error); every x outside is
clamped to the nearest end, |x - x̂| = distance to [lo, hi] (clipping error). The two sets are disjoint, so

    MSE = rounding_mse + clipping_mse,     rounding_mse = Σ_inside (x - x̂)² / N,  clipping_mse = Σ_outside (x - x̂)² / N

Sums are accumulated in float64 so that the metrics themselves add no error of their own; SQNR and cosine
are scale-free, so both tensors are first divided by their common largest magnitude (a power of two
would do as well): float64 extremes (1e200, 1e-200) then neither overflow nor underflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ptqlab.core import checks
from ptqlab.core.affine import QParams, blocked_view, expand_blocks, fake_quantize, representable_range
from ptqlab.core.spec import QuantSpec


def _pair(x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    checks.float_tensor(x, "x")
    checks.float_tensor(x_hat, "x_hat")
    checks.same_shape(x, x_hat, "x", "x_hat")
    return x.detach().to(torch.float64).flatten(), x_hat.detach().to(torch.float64).flatten()


def mse(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """mean((x - x̂)²)."""
    a, b = _pair(x, x_hat)
    return float(((a - b) ** 2).mean())


def max_abs_error(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """max |x - x̂|."""
    a, b = _pair(x, x_hat)
    return float((a - b).abs().max())


def _common_scale(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """a and b divided by max(|a|, |b|) (unchanged when both are all zeros): ratios stay the same."""
    m = float(torch.maximum(a.abs().max(), b.abs().max()))
    return (a / m, b / m) if m > 0 else (a, b)


def sqnr_db(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """10·log10(Σx² / Σ(x - x̂)²) in dB; +inf for an exact copy, -inf if x is all zeros but x̂ is not."""
    return _sqnr_db(*_pair(x, x_hat))


def _sqnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    if bool(torch.equal(a, b)):
        return math.inf
    a, b = _common_scale(a, b)
    signal, noise = float((a**2).sum()), float(((a - b) ** 2).sum())
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def cosine_similarity(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """<x, x̂> / (‖x‖·‖x̂‖); 1.0 when both are all zeros, 0.0 when exactly one is."""
    return _cosine(*_pair(x, x_hat))


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a / max(float(a.abs().max()), 1e-300), b / max(float(b.abs().max()), 1e-300)
    aa, bb = float((a * a).sum()), float((b * b).sum())
    if aa == 0.0 and bb == 0.0:
        return 1.0
    if aa == 0.0 or bb == 0.0:
        return 0.0
    return max(-1.0, min(1.0, float((a * b).sum()) / math.sqrt(aa * bb)))  # exactly 1 for x̂ = x


@dataclass(frozen=True)
class ErrorSplit:
    """The quantization error of one tensor, split by where each value fell."""

    rounding_mse: float  # Σ over values inside [lo, hi] of (x - x̂)², divided by N
    clipping_mse: float  # Σ over values outside [lo, hi] of (x - x̂)², divided by N
    clipped_fraction: float  # share of values outside [lo, hi]
    max_rounding_error: float  # ≤ scale/2, up to float32 rounding: ε·(|x| + |x̂|)
    max_clipping_error: float
    sqnr_db: float
    cosine: float

    @property
    def total_mse(self) -> float:
        return self.rounding_mse + self.clipping_mse


def error_split(x: torch.Tensor, qparams: QParams, spec: QuantSpec) -> ErrorSplit:
    """Quantize ``x`` with ``qparams`` and split the squared error into rounding and clipping parts."""
    x_hat = fake_quantize(x, qparams, spec)
    lo, hi = representable_range(qparams, spec)
    blocks, _ = blocked_view(x.detach().to(torch.float32), spec)
    lo = expand_blocks(lo, x.shape, spec, "scale")
    hi = expand_blocks(hi, x.shape, spec, "scale")
    outside = ((blocks < lo) | (blocks > hi)).reshape(-1)
    a, b = _pair(x, x_hat)
    sq = (a - b) ** 2
    err = (a - b).abs()
    n = a.numel()
    inside = ~outside
    return ErrorSplit(
        rounding_mse=float(sq[inside].sum()) / n,
        clipping_mse=float(sq[outside].sum()) / n,
        clipped_fraction=float(outside.sum()) / n,
        max_rounding_error=float(err[inside].max()) if bool(inside.any()) else 0.0,
        max_clipping_error=float(err[outside].max()) if bool(outside.any()) else 0.0,
        sqnr_db=_sqnr_db(a, b),  # the same pair: x and x̂ are checked and converted once
        cosine=_cosine(a, b),
    )
