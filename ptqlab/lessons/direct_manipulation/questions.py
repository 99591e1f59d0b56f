"""Lab 06's self-checks: every expected answer computed by ptqlab."""

from __future__ import annotations

from ptqlab.core.affine import choose_qparams
from ptqlab.core.spec import QuantSpec
from ptqlab.labkit.questions import Question
from ptqlab.lessons.direct_manipulation.numbers import (
    EXPLORER_SPEC,
    STAIRCASE_DEFAULT,
    calibrator_sqnr,
    pulled_in_sqnr,
)
from ptqlab.models.data import heavy_tailed_activations

RISES, FALLS = "the SQNR rises", "the SQNR falls"


def lab06_questions() -> list[Question]:
    """Predict-then-drag (pull hi in), the staircase's scale, choose the calibrator for a heavy tail."""
    x = heavy_tailed_activations()
    spec = EXPLORER_SPEC
    hi, pulled, minmax = pulled_in_sqnr(x, spec)
    lo0, hi0, bits0 = STAIRCASE_DEFAULT
    staircase = float(choose_qparams(lo0, hi0, QuantSpec(bits=bits0, symmetric=False)).scale)
    sqnr = calibrator_sqnr(x, spec)
    best = max(sqnr, key=sqnr.get)
    measured = ", ".join(f"{n} {v:.1f} dB" for n, v in sqnr.items())
    return [
        Question(
            f"*Predict, then drag.* In the explorer, pull **hi** from the max ({float(x.max()):.1f}) down to "
            f"{hi:.2f} (the 99.9th percentile; 0.1 % of the values are clipped). What happens to the SQNR?",
            RISES if pulled > minmax else FALLS,
            f"min/max {minmax:.2f} dB → {pulled:.2f} dB: "
            + (
                "the finer step for the 99.9 % in range outweighs the clipping error of the few beyond it."
                if pulled > minmax
                else "the clipping error of the few beyond it outweighs the finer step."
            ),
            options={RISES: "Drag it and read the SQNR line.", FALLS: "Drag it and read the SQNR line."},
        ),
        Question(
            f"The staircase opens with lo = {lo0:g}, hi = {hi0:g}, {bits0} bits (asymmetric). What is its scale?",
            staircase,
            f"({hi0:g} − ({lo0:g})) / (2^{bits0} − 1) = **{staircase:.6g}**.",
            rel_tol=0.001,
        ),
        Question(
            f"Choose the calibrator: which range gives this heavy-tailed tensor the best SQNR at {spec.bits} bits?",
            best,
            f"Measured: {measured}. Min/max spends the grid on a handful of huge values.",
            options={n: f"{n}: {v:.1f} dB." for n, v in sqnr.items()},
        ),
    ]
