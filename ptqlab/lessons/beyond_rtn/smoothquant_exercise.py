"""Lab 07's second coding exercise: SmoothQuant's per-input-channel factor (Xiao et al. 2022),

    s_j = max|X_j|^α / max|W_:,j|^(1−α)          then   X Wᵀ = (X / s)(W · s)ᵀ   exactly,

checked on fresh random activations with outlier channels against ptqlab's ``smoothing_scale`` (fed by
``channel_absmax``, the forward-hook statistic the algorithm uses) and against that identity.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ptqlab.labkit.exercise import (
    Verdict,
    first_mismatch,
    judges,
    not_ok,
    seeded,
    student_tensor,
)
from ptqlab.ptq.smoothquant import channel_absmax, smoothing_scale

SMOOTH_STARTER = '''\
def smoothing_factor(x, w, alpha):
    """x: calibration activations (rows, in); w: the layer's weights (out, in); 0 <= alpha <= 1.
    Return s (in,): s_j = max|X_j|**alpha / max|W_:,j|**(1 - alpha), one per input channel j."""
    x_max = ...  # max |x| per input channel, shape (in,)
    w_max = ...  # max |w| per input channel (a column of w), shape (in,)
    return ...
'''

SMOOTH_SOLUTION = """\
def smoothing_factor(x, w, alpha):
    x_max = x.abs().amax(dim=0)
    w_max = w.abs().amax(dim=0)
    return x_max**alpha / w_max ** (1 - alpha)
"""


class Case(NamedTuple):
    x: torch.Tensor  # (rows, in), a few outlier channels, signed
    w: torch.Tensor  # (out, in)
    alpha: float


def random_case(generator: torch.Generator, out: int, inputs: int, alpha: float) -> Case:
    """Signed activations with a few channels 20× larger (a transformer's outliers), Gaussian weights."""
    x = torch.randn(128, inputs, generator=generator) * (0.5 + torch.rand(inputs, generator=generator))
    x[:, torch.randperm(inputs, generator=generator)[:2]] *= 20
    return Case(x, torch.randn(out, inputs, generator=generator) * 0.1, alpha)


def reference_factor(case: Case) -> torch.Tensor:
    """ptqlab's SmoothQuant factor: max|X_j| from a forward hook on a Linear holding W, no floor."""
    layer = nn.Linear(case.w.shape[1], case.w.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(case.w)
    amax = channel_absmax(nn.Sequential(layer), ["0"], [(case.x,)])["0"]
    return smoothing_scale(amax, layer.weight, case.alpha, floor=0.0)


def _named_mistake(case: Case, got: torch.Tensor) -> str | None:
    x, w, a = case.x, case.w, case.alpha
    variants = [
        (x.abs().amax(0) ** (1 - a) / w.abs().amax(0) ** a, "α is on the wrong side: the activations get "
         "the power α, the weights 1 − α (α → 1 moves all of the difficulty into the weights)."),
        *[(xm ** a / wm ** (1 - a), "you forgot the abs: max|X_j| and max|W_:,j| count negative values too.")
          for xm, wm in ((x.amax(0), w.amax(0)), (x.amax(0), w.abs().amax(0)), (x.abs().amax(0), w.amax(0)))],
    ]  # fmt: skip
    if w.shape[0] == w.shape[1]:
        variants.append((x.abs().amax(0) ** a / w.abs().amax(1) ** (1 - a), "max|W_:,j| is per input "
                         "channel j, a *column* of W (reduce over dim 0, the outputs), not per row."))  # fmt: skip
    for value, message in variants:
        if value.shape == got.shape and torch.allclose(value, got, rtol=1e-4, equal_nan=True):
            return message
    if got.isnan().any():
        return "your factor has NaN: a negative max raised to a fractional power. Did you forget the abs?"
    return None


@seeded
def seeded_cases(generator: torch.Generator) -> list[tuple[Case, torch.Tensor]]:
    """(case, ptqlab's factor) at α = 0.75, 0.3 and 0.5 (square last), by seed (see ``seeded``)."""
    out = int(torch.randint(8, 17, (), generator=generator))
    cases = [random_case(generator, out, out + 8, 0.75), random_case(generator, out + 4, out, 0.3)]
    cases.append(random_case(generator, out, out, 0.5))
    return [(case, reference_factor(case)) for case in cases]


def _problem(case: Case, result, expected: torch.Tensor | None = None) -> str | None:
    """What is wrong with ``result`` for ``case`` (None if right); ``expected``: ptqlab's answer, if known."""
    out, inputs = case.w.shape
    where = f"for X of shape {tuple(case.x.shape)}, W of shape ({out}, {inputs}), α = {case.alpha}"
    got, problem = student_tensor(result, "smoothing_factor", where)
    if problem is not None:
        return problem
    if got.shape != (inputs,):
        return (
            f"{where} it returned shape {tuple(got.shape)}, expected ({inputs},): one factor per input "
            "channel j — reduce X and W over dim 0."
        )
    expected = reference_factor(case) if expected is None else expected
    if (i := first_mismatch(expected, got, 1e-4 * float(expected.abs().max()))) is not None:
        return f"{where}: " + (_named_mistake(case, got) or (
            f"first mismatching element, channel {i}: expected {float(expected[i]):.6g} (ptqlab's "
            f"smoothing_scale), yours is {float(got[i]):.6g}."))  # fmt: skip
    y, y_smooth = case.x @ case.w.T, (case.x / got) @ (case.w * got).T
    if (j := first_mismatch(y, y_smooth, 1e-4 * float(y.abs().max()))) is not None:
        return f"{where}: X Wᵀ and (X / s)(W · s)ᵀ differ at element {j}: is every s_j positive and finite?"
    return None


def judge_smoothing(run, seed: int | None = None) -> Verdict:
    """Lab 07's SmoothQuant exercise on fresh random layers, α = 0.75, 0.3 and 0.5 (square last)."""
    cases = seeded_cases(seed)
    status, results = run([("smoothing_factor", (c.x, c.w, c.alpha)) for c, _ in cases])
    if (bad := not_ok(status, results)) is not None:  # one process for the three layers
        if "must match the size" in bad.message:
            return Verdict(False, bad.message + " — **Hint:** both maxima are per *input* channel: "
                           "reduce X and W over dim 0, giving two tensors of shape (in,).")  # fmt: skip
        return bad
    for (case, expected), result in zip(cases, results, strict=True):
        if (problem := _problem(case, result, expected)) is not None:
            return Verdict(False, problem)
    return Verdict(
        True,
        f"**All correct** on {len(cases)} fresh random layers with outlier channels: equal to ptqlab's "
        "SmoothQuant factor, and X Wᵀ = (X / s)(W · s)ᵀ holds with your s.",
    )


check_smoothing, compare_smoothing = judges(judge_smoothing)
