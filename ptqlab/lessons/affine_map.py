"""The numbers behind lab 01 (the affine map): every value the notebook shows is computed here, with ptqlab.

quantize:    x_q = clamp(round(x / scale) + zero_point, qmin, qmax)
dequantize:  x̂   = (x_q - zero_point) · scale
error:       x̂ - x  =  rounding error (x inside the grid's range, |·| ≤ scale/2)
                     or clipping error (x outside it, growing with the distance to the range)
"""

from __future__ import annotations

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


def grid_markdown(qparams: QParams, spec: QuantSpec) -> str:
    """The integer grid as a markdown table (summarised beyond 16 codes)."""
    lines = ["| code x_q | real value (x_q − zp)·scale |", "|---:|---:|"]
    for r in grid_rows(qparams, spec):
        lines.append("| … | … |" if r is None else f"| {r[0]} | {fmt(r[1])} |")
    left = f"{spec.levels:,} codes from {spec.qmin} to {spec.qmax}"
    return f"{left}, spaced one scale apart:\n\n" + "\n".join(lines)


def qparams_markdown(curve: AffineCurve) -> str:
    """The formulas for scale and zero point with this range's numbers filled in."""
    spec, lo, hi = curve.spec, curve.lo, curve.hi
    lo0, hi0 = min(lo, 0.0), max(hi, 0.0)
    steps = spec.qmax - spec.qmin
    if spec.symmetric:
        amax = max(-lo0, hi0)
        scale_line = f"scale = max(−min′, max′) / ((qmax − qmin)/2) = {fmt(amax)} / ({steps}/2) = **{fmt(curve.scale)}**"
        zp_line = f"zero point = (qmin + qmax + 1) // 2 = **{curve.zero_point}** (the middle code)"
    else:
        scale_line = f"scale = (max′ − min′) / (qmax − qmin) = ({fmt(hi0)} − ({fmt(lo0)})) / {steps} = **{fmt(curve.scale)}**"
        zp_line = (
            f"zero point = clamp(qmin − round(min′ / scale)) = clamp({spec.qmin} − round({fmt(lo0)} / "
            f"{fmt(curve.scale)})) = **{curve.zero_point}**"
        )
    floor = (
        f"\n\nThe range is (almost) empty, so the scale sits at its floor, float32 eps = {fmt(curve.scale)}."
        if curve.scale <= torch.finfo(torch.float32).eps
        else ""
    )
    return (
        f"min′ = min(min, 0) = {fmt(lo0)}, max′ = max(max, 0) = {fmt(hi0)} (0.0 must be on the grid)\n\n"
        f"{scale_line}\n\n{zp_line}\n\n"
        f"The grid covers [{fmt(curve.grid_lo)}, {fmt(curve.grid_hi)}]; everything outside is clipped.{floor}"
        f"{symmetric_clip_note(curve)}"
    )


def symmetric_clip_note(curve: AffineCurve) -> str:
    """Why a symmetric grid clips the requested max (one code fewer above the zero point than below), or ''."""
    spec, hi0 = curve.spec, max(curve.hi, 0.0)
    if not spec.symmetric or hi0 <= curve.grid_hi:
        return ""
    above = spec.qmax - curve.zero_point
    return (
        f"\n\n**The requested max {fmt(hi0)} is clipped to {fmt(curve.grid_hi)}.** The grid has "
        f"{above + 1} codes below the zero point and {above} above it, and the scale divides by "
        f"(qmax − qmin)/2 = {(spec.qmax - spec.qmin) / 2:g}, so the top code stands for {above}·scale = "
        f"{fmt(curve.grid_hi)}, half a step short of max|x|. See *Two conventions for the symmetric scale*."
    )


def symmetric_hint(bits: int = 4, lo: float = -1.0, hi: float = 2.5) -> str:
    """The symmetric switch's "Try this", with the numbers ptqlab computes for this setting."""
    asym = affine_curve(per_tensor_spec(bits, True, False), lo, hi, n=2)
    sym = affine_curve(per_tensor_spec(bits, True, True), lo, hi, n=2)
    wasted = f"the codes below {fmt(lo)} are never used, " if sym.grid_lo < lo else ""
    clipped = f", and max = {fmt(hi)} is clipped to {fmt(sym.grid_hi)}" if hi > sym.grid_hi else ""
    return (
        f"with {bits} bits, min = {fmt(lo)}, max = {fmt(hi)}, switch symmetric **on**: the grid is centred on 0 "
        f"and covers [{fmt(sym.grid_lo)}, {fmt(sym.grid_hi)}]: {wasted}the scale grows from {fmt(asym.scale)} "
        f"to {fmt(sym.scale)}{clipped}."
    )


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


def symmetric_conventions_markdown(spec: QuantSpec, lo: float, hi: float) -> str:
    """The two symmetric conventions side by side for this range, and what each costs."""
    rows = symmetric_conventions(spec, lo, hi)
    amax = max(-min(lo, 0.0), max(hi, 0.0))
    lines = [
        f"| convention | scale = max\\|x\\| / … | scale | top of the grid | codes | max\\|x\\| = {fmt(amax)} |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, divisor, scale, top, levels in rows:
        fate = f"clipped by {fmt(amax - top)}" if amax > top * (1 + 1e-6) else "exactly on the grid"
        lines.append(f"| {name} | {divisor:g} | {fmt(scale)} | {fmt(top)} | {levels:,} | {fate} |")
    growth = rows[1][2] / rows[0][2] if rows[0][2] > 0 else 1.0
    return "\n".join(lines) + (
        f"\n\nThe full range keeps every code and the finer step; the narrow range drops the lowest code "
        f"so that −x gets exactly the code −x_q, at a step {growth:.4f}× as large (rounding MSE "
        f"{growth**2:.4f}×)."
    )


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


def worked_example_markdown(rows: list[ExampleRow]) -> str:
    lines = [
        "| x | x_q = clamp(round(x/scale) + zp) | x̂ = (x_q − zp)·scale | error x̂ − x | |",
        "|---:|---:|---:|---:|:--|",
    ]
    for r in rows:
        kind = "clipped" if r.clipped else "rounded"
        lines.append(f"| {fmt(r.x)} | {r.x_q} | {fmt(r.x_hat)} | {fmt(r.error)} | {kind} |")
    return "\n".join(lines)


def code_of(value: float, spec: QuantSpec, qparams: QParams) -> int:
    """The integer code ptqlab gives ``value``: the answer to the lab's self-check question."""
    return int(quantize(torch.tensor([float(value)]), qparams, spec)[0])


def check_code_answer(answer: str, expected: int) -> tuple[bool | None, str]:
    """(correct?, feedback) for a typed answer; (None, prompt) while nothing usable is typed."""
    text = answer.strip()
    if not text:
        return None, "Type an integer code above."
    try:
        given = int(text)
    except ValueError:
        return None, f"{text!r} is not an integer: codes are whole numbers like 7 or -3."
    if given == expected:
        return True, f"Correct: {expected}."
    return False, (
        f"Not quite: {given} is {'above' if given > expected else 'below'} the answer. "
        "Divide by the scale, round half to even, add the zero point, then clamp to [qmin, qmax]."
    )
