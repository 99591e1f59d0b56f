"""Lab 02's coding exercise: a symmetric percentile calibrator,

    T = quantile(|x|, p / 100)      (linear interpolation between order statistics, as ``torch.quantile``)

checked on fresh random tensors with a heavy negative tail against the exact quantile (float64), within a
tolerance a float32 answer meets: 1 % of the gap between the two sorted |x| the percentile lies between,
plus 2·10⁻⁶·T (float32's position (n − 1)·p/100 is off by ~10⁻⁴ of a step, its values by ~10⁻⁷). A
histogram answer within one bin of ptqlab's ``PercentileObserver`` (2048 bins) is accepted too. Each case's
position lies 0.05–0.95 of the way between two indices and those two values are ≥ 2·10⁻⁴·T apart, so the
tolerance is at most 2 % of that gap and an order statistic (no interpolation, or an index off by one) is at
least 5 % of it away: never accepted.
The verdict names the usual mistakes: the percentile of x instead of |x|, p used as a fraction (or divided
by 100 twice), an order statistic instead of the interpolated value, max|x|.
"""

from __future__ import annotations

import math

import torch

from ptqlab.core.spec import QuantSpec
from ptqlab.labkit.exercise import (
    Exercise,
    Verdict,
    as_tensor,
    judges,
    not_ok,
    seeded,
)
from ptqlab.observers.percentile import PercentileObserver

PERCENTILE_STARTER = '''\
def percentile_threshold(x, p):
    """x: a 1-D tensor of activations; p: a percentage such as 99.9.
    Return T, the p-th percentile of |x| (the symmetric range is then [-T, T])."""
    ...
'''

PERCENTILE_SOLUTION = """\
def percentile_threshold(x, p):
    return torch.quantile(x.abs().double(), p / 100).item()
"""

CASES = (99.0, 99.9, 95.0)
GAP_SHARE = 0.01  # of the gap between the two sorted |x| the percentile interpolates
REL_TOL = 2e-6  # of T
MIN_GAP = 2e-4  # of T: the two sorted |x| around every percentile are at least this far apart
TOLERANCE_TEXT = "1 % of the gap between the two sorted |x| it interpolates, plus 2·10⁻⁶·T"


def position(n: int, p: float) -> float:
    """Where the p-th percentile of n sorted values sits: (n − 1)·p/100, 0-based (torch.quantile, linear)."""
    return (n - 1) * p / 100


def _between_indices(n: int) -> bool:
    return all(0.05 <= position(n, p) % 1 <= 0.95 for p in CASES)


def _gaps_are_wide(x: torch.Tensor) -> bool:
    ranked = x.abs().double().sort().values
    for p in CASES:
        i = int(position(len(x), p))
        if float(ranked[i + 1] - ranked[i]) < MIN_GAP * float(ranked[i + 1]):
            return False
    return True


def random_activations(generator: torch.Generator) -> torch.Tensor:
    """1-D Gaussian activations (1,000–3,000 drawn), whose negative tail is 3× heavier than the positive:
    the longest prefix of the drawn values in which every percentile in ``CASES`` lies well between two
    distinct sorted |x| (0.05–0.95 of the way, the two ≥ 2·10⁻⁴·T apart; almost always all of them)."""
    n = int(torch.randint(1000, 3001, (), generator=generator))
    x = torch.randn(n, generator=generator)
    x = torch.where(x < 0, 3 * x, x)
    for m in range(n, 1, -1):
        if _between_indices(m) and _gaps_are_wide(x[:m]):
            return x[:m]
    raise RuntimeError("no prefix of the drawn activations separates the percentiles")  # never, in practice


def quantile_within(ranked: torch.Tensor, q: float) -> tuple[float, float]:
    """(the q-quantile of the sorted float64 ``ranked``, linear, and the tolerance around it: 1 % of the gap
    between the two values it interpolates plus 2·10⁻⁶ of its size)."""
    i = min(int((len(ranked) - 1) * q), len(ranked) - 1)
    value = float(torch.quantile(ranked, q))
    gap = float(ranked[min(i + 1, len(ranked) - 1)] - ranked[i])
    return value, GAP_SHARE * gap + REL_TOL * abs(value)


def exact_threshold(x: torch.Tensor, p: float) -> tuple[float, float]:
    """(the exact T in float64, the tolerance an answer is accepted within)."""
    return quantile_within(x.abs().double().sort().values, p / 100)


def reference_threshold(x: torch.Tensor, p: float) -> tuple[float, float]:
    """(ptqlab's percentile threshold T, the histogram's bin width): the answer and its tolerance."""
    obs = PercentileObserver(p=p)
    obs.observe(x)
    _, hi = obs.range_for(QuantSpec(bits=8))
    return float(hi), float(obs.hist.width)


def _diagnosis(x: torch.Tensor, p: float, got: float) -> str | None:
    """Name the mistake that reproduces ``got`` (None when none does), each within its own tolerance."""
    a = x.abs().double()
    ranked = a.sort().values
    h = position(len(a), p)
    mistakes = {
        "you took the percentile of x, not of |x|: the negative tail must count too": (
            x.double().sort().values,
            p / 100,
        ),
        "you took max|x| (p = 100, min/max): clip at the p-th percentile instead": (ranked, 1.0),
        "p arrives in percent: divide it by 100 once (you divided twice, or used 1 − p/100)": (
            ranked,
            p / 10_000,
        ),
        "1 − p/100 is the share clipped, not the quantile: use p/100": (ranked, 1 - p / 100),
    }
    for message, (values, q) in mistakes.items():
        value, tol = quantile_within(values, q)
        if abs(got - value) <= tol:
            return message + "."
    where = (
        f"with n = {len(a)} the p-th percentile sits at position (n − 1)·p/100 = {h:.2f} (0-based), between "
        f"indices {int(h)} and {int(h) + 1}, interpolated linearly (as `torch.quantile` does)."
    )
    for index in range(int(h) - 2, int(h) + 4):
        if 0 <= index < len(a) and abs(got - float(ranked[index])) <= 1e-6 * float(ranked[-1]):
            if index in (int(h), int(h) + 1):
                return f"no interpolation: you returned sorted |x| at index {index}, one of its two neighbours; {where}"
            return f"off-by-one index: you returned sorted |x| at index {index}; {where}"
    return None


@seeded
def seeded_cases(generator: torch.Generator) -> list[tuple[torch.Tensor, float, float, float]]:
    """(x, p, exact T, tolerance) per p in ``CASES``, by seed (see ``seeded``)."""
    return [(x, p, *exact_threshold(x, p)) for x, p in ((random_activations(generator), p) for p in CASES)]


def _problem(x: torch.Tensor, p: float, got: float, exact: float, tol: float) -> str | None:
    """None when ``got`` is the exact quantile (within its tolerance) or within one bin of ptqlab's observer,
    else the diagnosis. The exact check comes first, and a named mistake is never accepted as a histogram
    answer, so an order statistic is caught even inside the observer's bin."""
    if abs(got - exact) <= tol:
        return None
    if (why := _diagnosis(x, p, got)) is not None:
        return why
    expected, width = reference_threshold(x, p)
    if abs(got - expected) <= width + 1e-9:
        return None  # a histogram answer, as ptqlab's own
    return (
        f"T = {got:.7g}, expected {exact:.7g} ± {tol:.2g} (`torch.quantile` of |x|, linear interpolation; "
        f"the tolerance is {TOLERANCE_TEXT})."
    )


def judge_percentile(run, seed: int | None = None) -> Verdict:
    """Lab 02's exercise: the exact quantile of |x| (``torch.quantile``, linear) within its tolerance, or within
    one histogram bin of ptqlab's PercentileObserver; anything else gets the mistake that reproduces it."""
    cases = seeded_cases(seed)
    status, results = run([("percentile_threshold", (x, p)) for x, p, _, _ in cases])
    if status == "error" and "quantile() q" in str(results):
        return Verdict(False, f"**Your code raised an error:** {results}. p arrives in percent: use p / 100.")
    if (bad := not_ok(status, results)) is not None:
        return bad
    for (x, p, exact, tol), result in zip(cases, results, strict=True):
        if result is None or result is Ellipsis:
            return Verdict(False, f"**percentile_threshold** returned {result!r}: fill in every `...`.")
        got, problem = as_tensor(result, "percentile_threshold")
        if problem is None and got.numel() != 1:
            problem = f"return one number T, not a tensor of shape {tuple(got.shape)}"
        if problem is not None:
            return Verdict(False, f"**percentile_threshold**: {problem}.")
        value = float(got.reshape(()))
        if not math.isfinite(value):
            return Verdict(False, f"**percentile_threshold** (n = {len(x)}, p = {p:g}) returned {value}.")
        if (why := _problem(x, p, value, exact, tol)) is not None:
            return Verdict(False, f"**percentile_threshold** (n = {len(x)}, p = {p:g}): {why}")
    return Verdict(
        True,
        f"**All correct** on {len(cases)} fresh random tensors (p = {', '.join(f'{p:g}' for p in CASES)}): the "
        f"quantile of |x| within {TOLERANCE_TEXT}.",
    )


check_percentile, compare_percentile = judges(judge_percentile)


EXERCISES = (
    Exercise(
        "Coding exercise: a percentile calibrator",
        "Write `percentile_threshold(x, p)`: the p-th percentile of |x| (p in percent, e.g. 99.9), so that the "
        "symmetric range is [−T, T]; between two sorted values, interpolate linearly (`torch.quantile`'s "
        "default). `torch` is imported. The check runs your code in a separate process ({time_limit} limit) "
        "on fresh random tensors with a heavy negative tail and compares T with the exact quantile, within "
        f"{TOLERANCE_TEXT} (float32 is precise enough), or within one bin of ptqlab's histogram observer.",
        PERCENTILE_STARTER,
        PERCENTILE_SOLUTION,
        check_percentile,
        editor_height=200,
    ),
)
