"""Lab 02's coding exercise: a symmetric percentile calibrator,

    T = quantile(|x|, p / 100)      (linear interpolation between order statistics, as ``torch.quantile``)

checked on fresh random tensors against the exact quantile and ptqlab's ``PercentileObserver`` (a 2048-bin
histogram; a histogram answer within one of its bins is accepted too), on tensors with a heavy negative tail (see ``ptqlab.labkit.exercise``). The
verdict names the usual mistakes: the percentile of x instead of |x|, p used as a fraction (or divided by
100 twice), an off-by-one index into the sorted values, max|x|.
"""

from __future__ import annotations

import torch

from ptqlab.core.spec import QuantSpec
from ptqlab.labkit.exercise import Exercise, Verdict, as_tensor, not_ok, seeded_generator
from ptqlab.labkit.runner import TIME_LIMIT_S, run_student_code
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


def random_activations(generator: torch.Generator) -> torch.Tensor:
    """1-D Gaussian activations, 1,000–3,000 of them, whose negative tail is 3× heavier than the positive."""
    n = int(torch.randint(1000, 3001, (), generator=generator))
    x = torch.randn(n, generator=generator)
    return torch.where(x < 0, 3 * x, x)


def reference_threshold(x: torch.Tensor, p: float) -> tuple[float, float]:
    """(ptqlab's percentile threshold T, the histogram's bin width): the answer and its tolerance."""
    obs = PercentileObserver(p=p)
    obs.observe(x)
    _, hi = obs.range_for(QuantSpec(bits=8))
    return float(hi), float(obs.hist.width)


def _diagnosis(x: torch.Tensor, p: float, got: float, tol: float) -> str:
    """Name the mistake that reproduces ``got``, or say how far it is."""
    a = x.abs().double()
    ranked = a.sort().values
    h = (len(a) - 1) * p / 100
    mistakes = {
        "you took the percentile of x, not of |x|: the negative tail must count too": torch.quantile(
            x.double(), p / 100
        ),
        "you took max|x| (p = 100, min/max): clip at the p-th percentile instead": a.max(),
        "p arrives in percent: divide it by 100 once (you divided twice, or used 1 − p/100)": torch.quantile(
            a, p / 10_000
        ),
        "1 − p/100 is the share clipped, not the quantile: use p/100": torch.quantile(a, 1 - p / 100),
    }
    for message, value in mistakes.items():
        if abs(got - float(value)) <= tol:
            return message + "."
    for index in range(int(h) - 2, int(h) + 3):
        if 0 <= index < len(a) and abs(got - float(ranked[index])) <= 1e-6 * float(ranked[-1]):
            return (
                f"off-by-one index: you returned sorted |x| at index {index}; with n = {len(a)} the p-th "
                f"percentile sits at position (n − 1)·p/100 = {h:.2f} (0-based), between indices {int(h)} and "
                f"{int(h) + 1}, interpolated (as `torch.quantile` does)."
            )
    return f"T = {got:.6g}, expected {float(torch.quantile(a, p / 100)):.6g} (torch.quantile of |x|)."


def _problem(x: torch.Tensor, p: float, got: float) -> str | None:
    """None when ``got`` is the exact quantile or within one bin of ptqlab's observer, else the diagnosis.
    The exact check comes first so that an off-by-one index is caught even inside the observer's bin."""
    exact = float(torch.quantile(x.abs().double(), p / 100))
    if abs(got - exact) <= 1e-6 * max(abs(exact), 1.0):
        return None
    why = _diagnosis(x, p, got, 1e-6 * max(abs(exact), 1.0))
    expected, width = reference_threshold(x, p)
    if why.startswith("T =") and abs(got - expected) <= width + 1e-9:
        return None  # a histogram answer, as ptqlab's own
    return why if not why.startswith("T =") else f"{why} (ptqlab's observer: {expected:.6g})"


def check_percentile(source: str, seed: int | None = None, time_limit_s: float = TIME_LIMIT_S) -> Verdict:
    """Lab 02's exercise: the exact quantile of |x| (``torch.quantile``, linear), or within one histogram bin of
    ptqlab's PercentileObserver; anything else gets the mistake that reproduces it."""
    generator = seeded_generator(seed)
    cases = [(random_activations(generator), p) for p in CASES]
    status, results = run_student_code(
        source, [("percentile_threshold", (x, p)) for x, p in cases], time_limit_s
    )
    if status == "error" and "quantile() q" in str(results):
        return Verdict(False, f"**Your code raised an error:** {results}. p arrives in percent: use p / 100.")
    if (bad := not_ok(status, results)) is not None:
        return bad
    for (x, p), result in zip(cases, results, strict=True):
        got, problem = as_tensor(result, "percentile_threshold")
        if problem is None and got.numel() != 1:
            problem = f"return one number T, not a tensor of shape {tuple(got.shape)}"
        if problem is not None:
            return Verdict(False, f"**percentile_threshold**: {problem}.")
        if (why := _problem(x, p, float(got))) is not None:
            return Verdict(False, f"**percentile_threshold** (n = {len(x)}, p = {p:g}): {why}")
    return Verdict(
        True,
        f"**All correct** on {len(cases)} fresh random tensors (p = {', '.join(f'{p:g}' for p in CASES)}), "
        "the exact quantile of |x| (ptqlab's percentile observer agrees within its histogram's resolution).",
    )


EXERCISES = (
    Exercise(
        "Coding exercise: a percentile calibrator",
        "Write `percentile_threshold(x, p)`: the p-th percentile of |x| (p in percent, e.g. 99.9), so that the "
        "symmetric range is [−T, T]. `torch` is imported. The check runs your code in a separate process "
        "({time_limit} limit) on fresh random tensors with a heavy negative tail and compares it with the exact "
        "quantile and with ptqlab's percentile observer.",
        PERCENTILE_STARTER,
        PERCENTILE_SOLUTION,
        check_percentile,
        editor_height=200,
    ),
)
