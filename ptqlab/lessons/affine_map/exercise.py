"""Lab 01's coding exercise (met again in lab 06): choose_qparams (asymmetric min/max), quantize and
dequantize from the formulas, checked against ptqlab's core on fresh random ranges and tensors (see
``ptqlab.labkit.exercise``).

No case holds a rounding tie: the page teaches round(x / scale) without saying how a tie (x / scale = k + ½)
rounds, and ptqlab computes round(x · (1/scale)), which can differ from x / scale in the last bit. So every x
is drawn at least 0.05 of a step away from a tie, and every range's min′ / scale at least 0.01 away, where
x / scale, x · (1/scale), float32 and float64, half-to-even and half-up all give the same code.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ptqlab.core.affine import QParams, choose_qparams, dequantize, quantize
from ptqlab.core.spec import QuantSpec
from ptqlab.labkit.exercise import (
    Exercise,
    Verdict,
    as_tensor,
    first_mismatch,
    judges,
    not_ok,
    seeded,
)

# ---- lab 01: choose_qparams, quantize, dequantize --------------------------------------------------------

AFFINE_STARTER = '''\
def choose_qparams(lo, hi, bits, signed):
    """Asymmetric min/max: return (scale, zero_point) for the range [lo, hi]."""
    qmin, qmax = ..., ...
    lo, hi = min(lo, 0.0), max(hi, 0.0)   # 0.0 must be on the grid
    scale = ...
    zero_point = ...
    return scale, zero_point


def quantize(x, scale, zero_point, bits, signed):
    """x is a float tensor; return the integer codes x_q (any integer dtype)."""
    ...


def dequantize(x_q, scale, zero_point):
    """Return the real values the codes stand for."""
    ...
'''

AFFINE_SOLUTION = """\
def choose_qparams(lo, hi, bits, signed):
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / (qmax - qmin), 1.1920928955078125e-07)
    zero_point = min(max(qmin - round(lo / scale), qmin), qmax)
    return scale, zero_point


def quantize(x, scale, zero_point, bits, signed):
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax).to(torch.int32)


def dequantize(x_q, scale, zero_point):
    return (x_q.float() - zero_point) * scale
"""


class AffineCase(NamedTuple):
    """One random test: a range, a grid, ptqlab's qparams for it, an input x and ptqlab's codes for x."""

    lo: float
    hi: float
    spec: QuantSpec
    qparams: QParams
    x: torch.Tensor
    codes: torch.Tensor
    dequantized: torch.Tensor  # ptqlab's dequantize of ``codes``


TIE_MARGIN = 0.05  # of a step: how far every x / scale stays from a tie k + ½
ZERO_MARGIN = 0.01  # how far min′ / scale stays from a tie (float32 and float64 scales differ by ~1e-7)


def _far_from_tie(t: float, margin: float) -> bool:
    return abs(t - math.floor(t) - 0.5) > margin


def _range(generator: torch.Generator, last: bool, spec: QuantSpec) -> tuple[float, float, QParams]:
    """A range that straddles 0 (a fractional zero point), or above 0 when ``last`` (min′ = 0), whose
    min′ / scale is not near a tie (else zero points computed in float32 and float64 could differ)."""
    while True:
        r1, r2 = (float(v) for v in torch.rand(2, generator=generator))
        lo, hi = (-0.2 - 3 * r1, 0.2 + 4 * r2) if not last else (0.5 + r1, 1.5 + r1 + 2 * r2)
        qp = choose_qparams(lo, hi, spec)
        if last or _far_from_tie(min(lo, 0.0) / float(qp.scale), ZERO_MARGIN):
            return lo, hi, qp


def affine_cases(generator: torch.Generator, n_cases: int = 4, n_values: int = 400) -> list[AffineCase]:
    """Random ranges (signed and unsigned, 2-8 bits) with x spread 60 % past both ends, so clipping happens;
    each x is moved to within ±0.45 of a step of its nearest code (no ties, see the module docstring)."""
    cases = []
    for i in range(n_cases):
        bits = int(torch.randint(2, 9, (), generator=generator))
        spec = QuantSpec(bits=bits, signed=i % 2 == 0, symmetric=False)
        lo, hi, qp = _range(generator, i == n_cases - 1, spec)
        x = lo - 0.6 * (hi - lo) + torch.rand(n_values, generator=generator) * 2.2 * (hi - lo)
        scale = float(qp.scale)
        t = x.double() / scale
        x = ((t.round() + (t - t.round()).clamp(-0.5 + TIE_MARGIN, 0.5 - TIE_MARGIN)) * scale).float()
        codes = quantize(x, qp, spec).to(torch.int32)
        cases.append(AffineCase(lo, hi, spec, qp, x, codes, dequantize(codes, qp, spec)))
    return cases


@seeded
def seeded_cases(generator: torch.Generator) -> tuple[list[AffineCase], list]:
    """A check's cases and the calls that ask for the student's results, by seed (see ``seeded``)."""
    cases = affine_cases(generator)
    return cases, affine_calls(cases)


def affine_calls(cases: list[AffineCase]) -> list:
    """choose_qparams and quantize per case, then dequantize per case (of ptqlab's codes, so errors don't cascade)."""
    calls = []
    for c in cases:
        scale, zp, bits, signed = (
            float(c.qparams.scale),
            int(c.qparams.zero_point),
            c.spec.bits,
            c.spec.signed,
        )
        calls += [
            ("choose_qparams", (c.lo, c.hi, bits, signed)),
            ("quantize", (c.x, scale, zp, bits, signed)),
        ]
    return calls + [
        ("dequantize", (c.codes, float(c.qparams.scale), int(c.qparams.zero_point))) for c in cases
    ]


def _qparams_problem(given, case: AffineCase) -> str | None:
    lo, hi, spec = case.lo, case.hi, case.spec
    scale, zp = float(case.qparams.scale), int(case.qparams.zero_point)
    where = f"For lo = {lo:.4g}, hi = {hi:.4g}, {spec.bits} bits {'signed' if spec.signed else 'unsigned'}"
    if not (isinstance(given, tuple | list) and len(given) == 2):
        return "`choose_qparams` must return the pair (scale, zero_point)."
    try:
        g_scale, g_zp = (float(torch.as_tensor(v).reshape(())) for v in given)
    except (TypeError, ValueError, RuntimeError):
        return f"`choose_qparams` must return two numbers, got {given!r}: fill in every `...`."
    if not (math.isfinite(g_scale) and math.isfinite(g_zp)):
        return f"{where}: your (scale, zero_point) is ({g_scale:g}, {g_zp:g}): both must be finite numbers."
    if abs(g_scale - scale) > 1e-6 * scale:
        steps = spec.qmax - spec.qmin
        if abs(g_scale * (steps + 1) - scale * steps) < 1e-6 * scale * steps:
            why = f"you divided by 2^bits = {steps + 1}; {steps + 1} codes have qmax − qmin = {steps} steps between them."
        else:
            why = f"scale = (max′ − min′) / (qmax − qmin) with min′ = min(lo, 0), max′ = max(hi, 0) and [qmin, qmax] = [{spec.qmin}, {spec.qmax}]."
        return f"{where}: your scale is {g_scale:.6g}, expected {scale:.6g}: {why}"
    if g_zp != round(g_zp):
        return (
            f"{where}: your zero point is {g_zp:.6g}, a float. The zero point is the *code* of 0.0, an integer: "
            "round qmin − min′/scale (a float zero point puts 0.0 between two codes, so it is no longer exact)."
        )
    if int(g_zp) != zp:
        return f"{where}: your zero point is {int(g_zp)}, expected {zp} = clamp(qmin − round(min′ / scale), qmin, qmax)."
    return None


def _codes_problem(
    x: torch.Tensor, got: torch.Tensor, expected: torch.Tensor, spec: QuantSpec, scale
) -> str | None:
    if got.shape != expected.shape:
        return f"`quantize` returned shape {tuple(got.shape)} for an input of shape {tuple(x.shape)}."
    if got.is_floating_point() and not bool(torch.isfinite(got).all()):
        i = int((~torch.isfinite(got)).flatten().nonzero()[0])
        return f"`quantize` returned {float(got.flatten()[i])} at index {i}: codes are finite integers."
    if got.numel() == 0:
        return "`quantize` returned an empty tensor."
    if got.is_floating_point() and not bool((got == got.round()).all()):
        i = int((got != got.round()).flatten().nonzero()[0])
        return f"`quantize` returned {float(got.flatten()[i]):.6g} at index {i}: codes are integers, round x/scale."
    top, bottom = int(got.max()), int(got.min())
    for code, limit, name in ((top, spec.qmax, "qmax"), (bottom, spec.qmin, "qmin")):
        if (
            code in (limit + 1, limit - 1)
            and int(expected.max() if name == "qmax" else expected.min()) == limit
        ):
            return (
                f"{name} is off by one: your codes stop at {code}, but {spec.bits}-bit "
                f"{'signed' if spec.signed else 'unsigned'} integers run from {spec.qmin} to {spec.qmax}."
            )
    if top > spec.qmax or bottom < spec.qmin:
        return f"codes outside [{spec.qmin}, {spec.qmax}] (you gave {bottom} … {top}): clamp after adding the zero point."
    i = first_mismatch(expected, got)
    if i is None:
        return None
    value, e, g = float(x.flatten()[i]), int(expected.flatten()[i]), int(got.flatten()[i])
    hint = ""  # no case holds a tie (x / scale is >= 0.05 from k + ½), so off by one is never a tie rule
    if g == e - 1 or g == e + 1:
        hint = " Off by one code: round (not int() or floor) x/scale, then add the zero point."
    return f"first mismatching element, index {i}: x = {value:.6g} should get code {e}, yours is {g}.{hint}"


def _dequantize_problem(case: AffineCase, result) -> str | None:
    got, problem = as_tensor(result, "dequantize")
    expected = case.dequantized
    scale, zp = float(case.qparams.scale), int(case.qparams.zero_point)
    if problem is None and got.shape != expected.shape:
        problem = f"returned shape {tuple(got.shape)} for codes of shape {tuple(case.codes.shape)}"
    tol = 1e-5 * scale * (case.spec.qmax - case.spec.qmin)  # float32 rounding of any order of operations
    if problem is None and (i := first_mismatch(expected, got.float(), tol)) is not None:
        problem = (
            f"first mismatching element, index {i}: code {int(case.codes[i])} with scale {scale:.6g} and "
            f"zero point {zp} is {float(expected[i]):.6g}, yours is {float(got.flatten()[i]):.6g}. "
            "x̂ = (x_q − zero_point) · scale."
        )
    return problem


def judge_affine(run, seed: int | None = None) -> Verdict:
    """Lab 01's exercise against ptqlab's choose_qparams / quantize / dequantize on fresh random tensors."""
    cases, calls = seeded_cases(seed)
    status, results = run(calls)
    if (bad := not_ok(status, results)) is not None:
        return bad
    for k, c in enumerate(cases):
        if (problem := _qparams_problem(results[2 * k], c)) is not None:
            return Verdict(False, f"**choose_qparams:** {problem}")
        got, problem = as_tensor(results[2 * k + 1], "quantize")
        if problem is None:
            problem = _codes_problem(c.x, got, c.codes, c.spec, c.qparams.scale)
        if problem is not None:
            return Verdict(False, f"**quantize:** {problem}")
    for c, result in zip(cases, results[2 * len(cases) :], strict=True):
        if (problem := _dequantize_problem(c, result)) is not None:
            return Verdict(False, f"**dequantize:** {problem}")
    n = sum(len(c.x) for c in cases)
    return Verdict(True, f"**All correct** on {len(cases)} fresh random ranges and {n} values.")


check_affine, compare_affine = judges(judge_affine)

EXERCISES = (
    Exercise(
        "Coding exercise: the affine map from the formulas",
        "Write `choose_qparams` (asymmetric min/max), `quantize` and `dequantize` with `torch` (already "
        "imported). **Check my code** runs them in a separate process ({time_limit} limit) on fresh random "
        "ranges and tensors and compares every value with ptqlab; it names the first thing that differs.",
        AFFINE_STARTER,
        AFFINE_SOLUTION,
        check_affine,
        editor_height=320,
    ),
)
