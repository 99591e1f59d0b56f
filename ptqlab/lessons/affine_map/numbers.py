"""The numbers behind lab 01 (the affine map): every value the notebook shows is computed here, with ptqlab.

quantize:    x_q = clamp(round(x / scale) + zero_point, qmin, qmax)
dequantize:  x̂   = (x_q - zero_point) · scale
error:       x̂ - x  =  rounding error (x inside the grid's range, |·| ≤ scale/2)
                     or clipping error (x outside it, growing with the distance to the range)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from ptqlab.core.affine import (
    QParams,
    choose_qparams,
    dequantize,
    fake_quantize,
    quantize,
    representable_range,
)
from ptqlab.core.metrics import ErrorSplit, error_split
from ptqlab.core.spec import PerTensor, QuantSpec


def fmt(value: float) -> str:
    """How the lab prints a real number: 6 significant digits (the browser test reads this text)."""
    return f"{value:.6g}"


@dataclass(frozen=True)
class AffineCurve:
    """x → x̂ over an input axis that extends past the grid on both sides, so clipping shows."""

    spec: QuantSpec
    lo: float  # the requested clipping range [lo, hi]
    hi: float
    qparams: QParams
    grid_lo: float  # the range the grid really covers: [(qmin - zp)·scale, (qmax - zp)·scale]
    grid_hi: float
    x: torch.Tensor
    x_hat: torch.Tensor
    split: ErrorSplit  # of a uniform input along the whole axis

    @property
    def scale(self) -> float:
        return float(self.qparams.scale)

    @property
    def zero_point(self) -> int:
        return int(self.qparams.zero_point)

    @property
    def error(self) -> torch.Tensor:
        """x̂ - x."""
        return self.x_hat - self.x

    @property
    def clipped(self) -> torch.Tensor:
        """True where x lies outside [grid_lo, grid_hi]."""
        return (self.x < self.grid_lo) | (self.x > self.grid_hi)

    @property
    def rounding_error(self) -> torch.Tensor:
        """x̂ - x inside the grid's range, NaN outside (NaN breaks a plotted line)."""
        return torch.where(self.clipped, torch.nan, self.error)

    @property
    def clipping_error(self) -> torch.Tensor:
        """x̂ - x outside the grid's range, NaN inside."""
        return torch.where(self.clipped, self.error, torch.nan)


def per_tensor_spec(bits: int, signed: bool, symmetric: bool) -> QuantSpec:
    return QuantSpec(bits=int(bits), signed=bool(signed), symmetric=bool(symmetric), granularity=PerTensor())


def range_problem(lo: float, hi: float) -> str | None:
    """A sentence explaining why [lo, hi] is unusable (min above max), or None when it is fine."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"The clipping range must be finite, got min = {lo}, max = {hi}."
    if lo > hi:
        return (
            f"min ({fmt(lo)}) is above max ({fmt(hi)}): there is no range to quantize. "
            "Move min to the left or max to the right."
        )
    return None


def affine_curve(spec: QuantSpec, lo: float, hi: float, n: int = 4001, margin: float = 0.25) -> AffineCurve:
    """Quantize a uniform axis covering the requested range, the grid's range and 0, plus ``margin`` each side."""
    if not isinstance(spec.granularity, PerTensor):
        raise ValueError(f"affine_curve needs a per-tensor spec, got {spec.granularity}")
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    problem = range_problem(lo, hi)
    if problem:
        raise ValueError(problem)
    qparams = choose_qparams(float(lo), float(hi), spec)
    g_lo, g_hi = (float(v) for v in representable_range(qparams, spec))
    left, right = min(lo, g_lo, 0.0), max(hi, g_hi, 0.0)
    width = right - left
    if width < 1e-6:  # min = max = 0: the grid is eps-wide; show a unit window around it
        left, right, width = -1.0, 1.0, 2.0
    x = torch.linspace(left - margin * width, right + margin * width, n)
    x_hat = fake_quantize(x, qparams, spec)
    return AffineCurve(
        spec, float(lo), float(hi), qparams, g_lo, g_hi, x, x_hat, error_split(x, qparams, spec)
    )


def grid_rows(
    qparams: QParams, spec: QuantSpec, head: int = 3, tail: int = 3, whole_up_to: int = 16
) -> list[tuple[int, float] | None]:
    """(code, dequantized value (code - zp)·scale) rows of the integer grid; ``None`` marks codes left out.

    A grid of at most ``whole_up_to`` codes (4 bits) is listed whole; a larger one (65,536 codes at 16 bits)
    shows its first ``head`` codes, the zero point (the code of 0.0) and its last ``tail`` codes.
    """
    zp = int(qparams.zero_point)
    if spec.levels <= max(whole_up_to, head + tail + 1):
        codes = list(range(spec.qmin, spec.qmax + 1))
    else:
        shown = {*range(spec.qmin, spec.qmin + head), zp, *range(spec.qmax - tail + 1, spec.qmax + 1)}
        codes = sorted(shown)
    values = dequantize(torch.tensor(codes).to(spec.storage_dtype), qparams, spec)
    rows: list[tuple[int, float] | None] = []
    for i, (q, v) in enumerate(zip(codes, values.tolist(), strict=True)):
        if i and q - codes[i - 1] > 1:
            rows.append(None)
        rows.append((q, v))
    return rows


def symmetric_conventions(
    spec: QuantSpec, lo: float, hi: float
) -> list[tuple[str, float, float, float, int]]:
    """(convention, divisor, scale, top of the grid, codes a symmetric range uses) for the full range
    (ptqlab, torch.ao, torchao: max|x| / ((qmax − qmin)/2)) and the narrow one (max|x| / (2^(b−1) − 1))."""
    rows = []
    for name, narrow in (
        ("full range (ptqlab, torch.ao, torchao)", False),
        ("narrow range (the tutorial, TensorRT)", True),
    ):
        s = spec.with_(symmetric=True, narrow_range=narrow)
        curve = affine_curve(s, lo, hi, n=2)
        rows.append((name, (s.qmax - s.qmin) / 2, curve.scale, curve.grid_hi, s.levels))
    return rows


@dataclass(frozen=True)
class ExampleRow:
    x: float
    x_q: int
    x_hat: float
    error: float  # x̂ - x
    clipped: bool


EXAMPLE_VALUES = (-1.2, -0.5, 0.0, 0.33, 1.3, 2.2, 3.0)  # the lab's worked example


def worked_example(x: torch.Tensor, spec: QuantSpec, qparams: QParams) -> list[ExampleRow]:
    """One row per element of ``x``: its code, its reconstruction and the error."""
    codes = quantize(x, qparams, spec)
    x_hat = fake_quantize(x, qparams, spec)
    g_lo, g_hi = (float(v) for v in representable_range(qparams, spec))
    return [
        ExampleRow(float(a), int(q), float(b), float(b) - float(a), not g_lo <= float(a) <= g_hi)
        for a, q, b in zip(x.reshape(-1), codes.reshape(-1), x_hat.reshape(-1), strict=True)
    ]


def code_of(value: float, spec: QuantSpec, qparams: QParams) -> int:
    """The integer code ptqlab gives ``value``: the answer to the lab's self-check question."""
    return int(quantize(torch.tensor([float(value)]), qparams, spec)[0])


@functools.lru_cache(maxsize=256)
def lab_curve(spec: QuantSpec, lo: float, hi: float) -> AffineCurve:
    """The lab's curve for this setting (cached: moving a slider back to a setting costs nothing)."""
    return affine_curve(spec, lo, hi)
