"""Lab 09's coding exercise: the student writes the requantization step; the lab checks it.

The student's source runs through ``ptqlab.labkit.runner`` on freshly drawn cases: random int32 accumulators and multipliers, exact
ties, both clamps. It is compared with the reference (``ptqlab.core.fixed_point``); the first mismatch is
reported with its inputs, the exact value before rounding, and a hint. This is *not* a sandbox: the code
can do anything the server's user can (see the README).
"""

from __future__ import annotations

import random
from fractions import Fraction

from ptqlab.core.fixed_point import exact_requantize_reference, quantize_multiplier
from ptqlab.labkit.exercise import Exercise, Verdict, not_ok
from ptqlab.labkit.runner import TIME_LIMIT_S, run_student_code

STARTER = '''def requantize(acc, m0, shift, zero_point):
    """acc: int32 accumulator; M = m0 · 2**-shift (2**30 <= m0 < 2**31, shift >= 1).
    Return the uint8 output code: clamp(zero_point + round(acc · m0 / 2**shift), 0, 255),
    rounding to nearest with ties toward +infinity, using integers only."""
    scaled = (acc * m0) >> shift  # TODO: this truncates toward -infinity; round to nearest instead
    return max(0, min(255, zero_point + scaled))
'''

REFERENCE = """def requantize(acc, m0, shift, zero_point):
    rounded = (acc * m0 + (1 << (shift - 1))) >> shift  # add one half, then floor: ties go up
    return max(0, min(255, zero_point + rounded))
"""


def reference(acc: int, m0: int, shift: int, zero_point: int) -> int:
    return max(0, min(255, zero_point + exact_requantize_reference(acc, m0, shift)))


def fresh_cases(n: int = 300, seed: int | None = None) -> list[tuple[int, int, int, int]]:
    """Random cases plus hard ones: exact ties (positive and negative) and values past both clamps."""
    rng = random.Random(seed)
    cases = [(5, 2**30, 31, 0), (-5, 2**30, 31, 100), (3, 2**30, 31, 7), (-3, 2**30, 31, 7)]  # ±2.5, ±1.5
    for _ in range(n):
        m0, shift = (int(v) for v in quantize_multiplier(rng.uniform(1e-4, 0.9)))
        zero_point = rng.randint(0, 255)
        target = rng.uniform(-300, 300)  # the output before clamping, in codes
        acc = max(-(2**31), min(2**31 - 1, round(target * 2**shift / m0)))
        cases.append((acc, m0, shift, zero_point))
        if acc * m0 % 2 == 0:  # also a neighbour that lands exactly on a tie, when one exists nearby
            cases.append((acc | 1, 2**30, 31, zero_point))
    return cases


def mismatch_hint(acc: int, m0: int, shift: int, expected: int, got) -> str:
    exact = Fraction(acc * m0, 2**shift)
    if not isinstance(got, int):
        return f"return a Python int; got {got}"
    if exact.denominator == 2:
        return (
            "this is an exact tie (…​.5): round half toward +infinity, e.g. add 2**(shift-1) before the shift"
        )
    if got == expected - 1 or got == expected + 1:
        return "off by one: round to nearest (add half of 2**shift before shifting), don't truncate"
    return "check the zero point and the clamp to [0, 255]"


def check(source: str, seed: int | None = None, time_limit_s: float = TIME_LIMIT_S) -> Verdict:
    """The verdict on the student's ``requantize``: passed, or the first mismatch, its exact value and a hint."""
    if not isinstance(source, str) or not source.strip():
        return Verdict(None, "**Write your `requantize` above, then press the button.**")
    cases = fresh_cases(seed=seed)
    status, payload = run_student_code(source, [("requantize", case) for case in cases], time_limit_s)
    if (bad := not_ok(status, payload)) is not None:
        return bad
    for i, (case, returned) in enumerate(zip(cases, payload, strict=True)):
        got = returned if type(returned) is int else repr(returned)  # 3.0 is not an integer code
        expected = reference(*case)
        if got != expected:
            acc, m0, shift, zp = case
            return Verdict(
                False,
                f"**Mismatch at case {i} of {len(cases)}:** `requantize({acc}, {m0}, {shift}, {zp})` returned "
                f"`{got}`, expected **{expected}** (exact acc·m0/2^shift = {float(Fraction(acc * m0, 2**shift)):.4f}, "
                f"then + z = {zp}). Hint: {mismatch_hint(acc, m0, shift, expected, got)}.",
            )
    return Verdict(
        True, f"**Correct** on all {len(cases)} fresh cases (random accumulators, exact ties, both clamps)."
    )


SOLUTION = REFERENCE + "# Ties: (acc·m0 + 2^(shift−1)) >> shift is ⌊x + ½⌋, so 2.5 → 3 and −2.5 → −2.\n"

EXERCISES = (
    Exercise(
        "Coding exercise: write the requantization step",
        "Complete `requantize` with integers only: multiply, add one half of $2^{n}$, shift right, add the "
        "zero point, clamp. **Check my code** runs your function in a separate process ({time_limit} limit) "
        "on hundreds of fresh cases — random accumulators, exact ties, both clamps — and tells you the first "
        "case it gets wrong.",
        STARTER,
        SOLUTION,
        check,
        editor_height=160,
    ),
)
