"""Lab 09's coding exercise: the student writes the requantization step; the lab checks it.

The student's source runs in ``ptqlab.labkit.runner``'s contained process on freshly drawn cases: random
int32 accumulators and multipliers, exact ties, both clamps. It is compared with the reference
(``ptqlab.core.fixed_point``); the first mismatch is reported with its inputs, the exact value before
rounding, and a hint. The lesson teaches the tie rule (half toward +infinity), so ties are checked.
"""

from __future__ import annotations

import random
from fractions import Fraction

import torch

from ptqlab.core.fixed_point import exact_requantize_reference, quantize_multiplier
from ptqlab.labkit.exercise import Exercise, Verdict, contained, in_process, judged, not_ok, seeded
from ptqlab.labkit.runner import TIME_LIMIT_S

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
    draws = [(rng.uniform(1e-4, 0.9), rng.randint(0, 255), rng.uniform(-300, 300)) for _ in range(n)]
    m0s, shifts = quantize_multiplier(torch.tensor([d[0] for d in draws], dtype=torch.float64))
    for (_, zero_point, target), m0, shift in zip(draws, m0s.tolist(), shifts.tolist(), strict=True):
        # target: the output before clamping, in codes
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


@seeded
def seeded_cases(generator: torch.Generator) -> tuple[list[tuple[int, int, int, int]], list[int]]:
    """(the cases, the reference's code for each), by seed (see ``seeded``); the cases' own ``random.Random``
    is seeded from ``generator``."""
    cases = fresh_cases(seed=int(torch.randint(0, 2**62, (), generator=generator)))
    return cases, [reference(*case) for case in cases]


def _code(returned) -> int | str:
    """A Python int (or a one-element integer tensor) as an int, anything else as its repr: 3.0 is not an
    integer code."""
    if type(returned) is int:
        return returned
    if isinstance(returned, torch.Tensor) and returned.numel() == 1 and not returned.is_floating_point():
        if not returned.is_complex() and returned.dtype != torch.bool:
            return int(returned.reshape(()))
    return repr(returned)


def judge(run, seed: int | None = None) -> Verdict:
    """The verdict on the student's ``requantize``: passed, or the first mismatch, its exact value and a hint."""
    cases, codes = seeded_cases(seed)
    status, payload = run([("requantize", case) for case in cases])
    if (bad := not_ok(status, payload)) is not None:
        return bad
    for i, (case, returned, expected) in enumerate(zip(cases, payload, codes, strict=True)):
        got = _code(returned)
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


def check(source: str, seed: int | None = None, time_limit_s: float = TIME_LIMIT_S) -> Verdict:
    """The student's ``source`` judged in the contained runner (what "Check my code" does)."""
    if not isinstance(source, str) or not source.strip():
        return Verdict(None, "**Write your `requantize` above, then press the button.**")
    return judged(judge, contained(source, time_limit_s), seed)


def compare(candidate, seed: int | None = None) -> Verdict:
    """Trusted ``candidate`` (a function or source, see ``in_process``) judged in this process."""
    return judged(judge, in_process(candidate), seed)


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
