"""The self-check questions of labs 01, 03, 05 and 06: every expected answer and every number in a prompt or
an explanation is computed by ptqlab here (or measured by the lab's lesson module), never typed in.
"""

from __future__ import annotations

from ptqlab.core.affine import choose_qparams
from ptqlab.labkit.questions import Question
from ptqlab.lessons.affine_map.numbers import AffineCurve, affine_curve, code_of, fmt, per_tensor_spec

GROWS, SHRINKS, SAME = "the scale grows", "the scale shrinks", "the scale stays the same"


def lab01_questions(bits: int = 4, lo: float = -1.0, hi: float = 2.5) -> list[Question]:
    """Predict-then-move (symmetric switch), a numeric scale, choose where the error can exceed scale/2."""
    asym = affine_curve(per_tensor_spec(bits, True, False), lo, hi, n=2).scale
    sym = affine_curve(per_tensor_spec(bits, True, True), lo, hi, n=2).scale
    moved = GROWS if sym > asym else SHRINKS if sym < asym else SAME
    because = (
        f"asymmetric {fmt(asym)} → symmetric {fmt(sym)}: the symmetric grid must reach −max|x| = "
        f"−{fmt(max(-lo, hi))} as well, so the same {2**bits} codes cover a wider span."
    )
    uint8 = float(choose_qparams(0.0, 6.0, per_tensor_spec(8, False, False)).scale)
    where = {
        "anywhere inside the grid's range": "Inside the grid every x has a grid point within half a step.",
        "only outside the grid's range": "Only clipping can: an x beyond the last grid point is pushed to it.",
        "only near x = 0": "0.0 is exactly on the grid: its error is 0.",
    }
    return [
        Question(
            f"*Predict, then move.* Set **{bits} bits, min = {fmt(lo)}, max = {fmt(hi)}**, symmetric off. "
            "What happens to the scale when you switch symmetric **on**? Answer, then flip the switch.",
            moved,
            because,
            options={GROWS: because, SHRINKS: because, SAME: because},
        ),
        Question(
            "An **8-bit unsigned** asymmetric grid is calibrated on the range **[0, 6]** (a ReLU6 output). "
            "What is its scale? Work it out by hand (the formula is above).",
            uint8,
            f"scale = (6 − 0) / (255 − 0) = **{fmt(uint8)}**; the zero point is 0.",
            rel_tol=0.001,
            hint="scale = (max′ − min′) / (qmax − qmin).",
        ),
        Question(
            "Where can the error |x̂ − x| be **larger than scale/2**? Look at the error plot to check.",
            "only outside the grid's range",
            "Rounding moves x by at most half a step; clipping has no bound (the red ramps).",
            options=where,
        ),
    ]


CODE_PROBE = 1.3


def code_question(curve: AffineCurve) -> Question:
    """Which integer code does x = CODE_PROBE get under the current settings? (answered exactly)"""
    spec, qparams = curve.spec, curve.qparams
    code = code_of(CODE_PROBE, spec, qparams)
    return Question(
        f"## Self-check on these settings\n\nWith the current settings (scale = {fmt(curve.scale)}, zero point = "
        f"{curve.zero_point}, codes {spec.qmin} … {spec.qmax}), which integer code does **x = {CODE_PROBE}** "
        "get? Work it out by hand, then type it. Change the settings and try again.",
        float(code),
        f"round({CODE_PROBE} / {fmt(curve.scale)}) + {curve.zero_point}, clamped to [{spec.qmin}, {spec.qmax}], "
        f"is **{code}**.",
        rel_tol=0.0,
        hint="Divide by the scale, round half to even, add the zero point, then clamp to [qmin, qmax].",
    )
