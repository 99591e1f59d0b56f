"""Lab 01's sentences and tables, built from the current quantization parameters."""

from __future__ import annotations

import torch

from ptqlab.core.affine import (
    QParams,
)
from ptqlab.core.spec import QuantSpec
from ptqlab.lessons.affine_map.numbers import (
    AffineCurve,
    ExampleRow,
    affine_curve,
    fmt,
    grid_rows,
    per_tensor_spec,
    symmetric_conventions,
)


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


def worked_example_markdown(rows: list[ExampleRow]) -> str:
    lines = [
        "| x | x_q = clamp(round(x/scale) + zp) | x̂ = (x_q − zp)·scale | error x̂ − x | |",
        "|---:|---:|---:|---:|:--|",
    ]
    for r in rows:
        kind = "clipped" if r.clipped else "rounded"
        lines.append(f"| {fmt(r.x)} | {r.x_q} | {fmt(r.x_hat)} | {fmt(r.error)} | {kind} |")
    return "\n".join(lines)
