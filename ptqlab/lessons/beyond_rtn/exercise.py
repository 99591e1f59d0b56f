"""Lab 07's coding exercise: empirical bias correction (Nagel et al. 2019, "Data-Free Quantization Through
Weight Equalization and Bias Correction", §4.2) for one layer y = x Wᵀ + b whose weights were rounded to W̃:

    b̃ = b − (W̃ − W) · E[x]          so that   E[x W̃ᵀ + b̃] = E[x Wᵀ + b]   (the mean output is restored)

checked on fresh random layers against that formula in float64 (``formula_bias``; ptqlab's
``run_bias_correction``, run on a one-layer model over the case's batch, equals it: tested) and against that
property on the same batch (see ``ptqlab.labkit.exercise``). Lab 07's second
exercise, SmoothQuant's factor, is in ``ptqlab.lessons.beyond_rtn.smoothquant_exercise``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ptqlab.core.spec import PerChannel, QuantSpec
from ptqlab.labkit.exercise import (
    Exercise,
    Verdict,
    first_mismatch,
    judges,
    not_ok,
    seeded,
    student_tensor,
)
from ptqlab.lessons.beyond_rtn.smoothquant_exercise import SMOOTH_SOLUTION, SMOOTH_STARTER, check_smoothing
from ptqlab.ptq.bias_correction import run_bias_correction
from ptqlab.ptq.layer_data import rtn

BIAS_STARTER = '''\
def corrected_bias(w, w_q, bias, x_mean):
    """w: float weights W (out, in); w_q: the rounded weights W̃, dequantized (out, in);
    bias: b (out,), or None for a layer without one; x_mean: the mean input row E[x] (in,).
    Return the corrected bias b − (W̃ − W)·E[x], shape (out,)."""
    shift = ...  # the mean output shift rounding puts on each output channel, shape (out,)
    return ...
'''

BIAS_SOLUTION = """\
def corrected_bias(w, w_q, bias, x_mean):
    shift = (w_q - w) @ x_mean
    if bias is None:
        return -shift
    return bias - shift
"""

SPEC = QuantSpec(bits=3, granularity=PerChannel(0))  # coarse enough that the shift is large


class Case(NamedTuple):
    """One layer: W, W̃ = RTN(W), b (or None), a batch X and its mean row E[x]."""

    w: torch.Tensor
    w_q: torch.Tensor
    bias: torch.Tensor | None
    x: torch.Tensor
    x_mean: torch.Tensor


def random_case(generator: torch.Generator, out: int, inputs: int, with_bias: bool = True) -> Case:
    """A layer with Gaussian weights and post-ReLU-like inputs (a non-zero mean, so the shift matters)."""
    w = torch.randn(out, inputs, generator=generator) * 0.2
    bias = torch.randn(out, generator=generator) * 0.1 if with_bias else None
    x = torch.randn(64, inputs, generator=generator).relu() * (1 + torch.rand(inputs, generator=generator))
    return Case(w, rtn(w, SPEC), bias, x, x.double().mean(0).float())


def reference_bias(case: Case) -> torch.Tensor:
    """ptqlab's bias correction on a one-layer model holding W and b, calibrated on the case's batch."""
    layer = nn.Linear(case.w.shape[1], case.w.shape[0], bias=case.bias is not None)
    with torch.no_grad():
        layer.weight.copy_(case.w)
        if case.bias is not None:
            layer.bias.copy_(case.bias)
    model = nn.Sequential(layer)
    run_bias_correction(model, [case.x], ["0"], SPEC)
    if not torch.equal(model[0].weight.detach(), case.w_q):
        raise RuntimeError("run_bias_correction rounded W differently from the case's W̃")
    return model[0].bias.detach().clone()


def mean_output_gap(case: Case, bias: torch.Tensor) -> torch.Tensor:
    """Per output channel: mean of (X W̃ᵀ + b̃) − mean of (X Wᵀ + b) over the batch (0 when b̃ is right)."""
    b = case.bias if case.bias is not None else torch.zeros(case.w.shape[0])
    return (case.x @ case.w_q.T + bias).mean(0) - (case.x @ case.w.T + b).mean(0)


def _named_mistake(case: Case, got: torch.Tensor, tol: float) -> str | None:
    b = case.bias if case.bias is not None else torch.zeros(case.w.shape[0])
    delta = case.w_q - case.w
    variants = [
        (b + delta @ case.x_mean, "the sign is flipped: you added the shift. The rounding moved the mean "
         "output by +(W̃ − W)·E[x], so the bias must move by −(W̃ − W)·E[x]: b − (W̃ − W)·E[x]."),
        (b - case.w_q @ case.x_mean, "you subtracted W̃·E[x], the whole mean output of the rounded weights; "
         "the correction is only the *change* rounding made: (W̃ − W)·E[x]."),
        (-delta @ case.x_mean, "you dropped the bias b: return b − (W̃ − W)·E[x], not just the correction."),
    ]  # fmt: skip
    if delta.shape[0] == delta.shape[1]:
        variants.append(
            (b - delta.T @ case.x_mean, "you multiplied by the transpose: (W̃ − W) is (out, in) and E[x] is "
             "(in,), so the product is (W̃ − W) @ E[x], one sum over the inputs of each output channel.")
        )  # fmt: skip
    for value, message in variants:
        if value.shape == got.shape and first_mismatch(value, got, tol) is None:
            return message
    return None


def formula_bias(case: Case) -> torch.Tensor:
    """b − (W̃ − W)·E[x] in float64 (then float32): the checker's answer. ptqlab's ``run_bias_correction``
    computes the same on the same batch (``reference_bias``; the tests hold the two together on the checker's
    own cases), at ~100× the cost of this one line, which a check runs thousands of times in the tests."""
    b = case.bias.double() if case.bias is not None else torch.zeros(case.w.shape[0], dtype=torch.float64)
    return (b - (case.w_q.double() - case.w.double()) @ case.x_mean.double()).float()


@seeded
def seeded_cases(generator: torch.Generator) -> list[tuple[Case, torch.Tensor]]:
    """(case, its corrected bias) for a non-square layer, a square one, then one without a bias."""
    out = int(torch.randint(8, 17, (), generator=generator))
    cases = [random_case(generator, out, out + 8), random_case(generator, out, out)]
    cases.append(random_case(generator, out + 4, out, with_bias=False))
    return [(case, formula_bias(case)) for case in cases]


def _problem(case: Case, result, expected: torch.Tensor | None = None) -> str | None:
    """What is wrong with ``result`` for ``case`` (None if right); ``expected``: ptqlab's answer, if known."""
    out, inputs = case.w.shape
    layer = f"a layer with W of shape ({out}, {inputs})" + (
        " and **no bias** (bias=None)" if case.bias is None else ""
    )
    got, problem = student_tensor(result, "corrected_bias", f"for {layer}")
    if problem is not None:
        return problem
    if got.shape != (out,):
        axis = " — sum over the inputs (dim 1), not the outputs" if got.shape == (inputs,) else ""
        return f"for {layer} it returned shape {tuple(got.shape)}, expected ({out},): one bias per output channel{axis}."
    expected = reference_bias(case) if expected is None else expected
    tol = 1e-5 * max(1.0, float(expected.abs().max()))
    if (i := first_mismatch(expected, got, tol)) is not None:
        named = _named_mistake(case, got, tol)
        return f"for {layer}: " + (named or (
            f"first mismatching element, output channel {i}: expected {float(expected[i]):.6g} "
            f"(b − (W̃ − W)·E[x], as ptqlab's bias correction computes it), yours is {float(got[i]):.6g}."))  # fmt: skip
    gap = mean_output_gap(case, got)
    if (j := first_mismatch(torch.zeros_like(gap), gap, 1e-4 * max(1.0, float(got.abs().max())))) is not None:
        return f"for {layer}: the corrected layer's mean output differs from the float layer's at channel {j} by {float(gap[j]):.3g}."
    return None


def _shape_hint(message: str) -> str:
    if any(s in message for s in ("size mismatch", "cannot be multiplied", "must match the size")):
        return (
            " — **Hint:** (W̃ − W) is (out, in) and E[x] is (in,): the product is `(w_q - w) @ x_mean`, "
            "not its transpose, and an elementwise product must be summed over dim 1."
        )
    if "NoneType" in message:
        return " — **Hint:** a layer without a bias passes `bias=None`: treat it as zeros (return −(W̃ − W)·E[x])."
    return ""


def judge_bias_correction(run, seed: int | None = None) -> Verdict:
    """Lab 07's exercise on fresh random layers: non-square, square, then one without a bias."""
    cases = seeded_cases(seed)
    status, results = run([("corrected_bias", (c.w, c.w_q, c.bias, c.x_mean)) for c, _ in cases])
    if (bad := not_ok(status, results)) is not None:  # one process for the three layers
        return Verdict(False, bad.message + _shape_hint(bad.message))
    for (case, expected), result in zip(cases, results, strict=True):
        if (problem := _problem(case, result, expected)) is not None:
            return Verdict(False, problem)
    return Verdict(
        True,
        f"**All correct** on {len(cases)} fresh random layers (one square, one without a bias): equal to "
        "b − (W̃ − W)·E[x] as ptqlab's bias correction computes it, and each corrected layer's mean output "
        "equals the float layer's.",
    )


check_bias_correction, compare_bias_correction = judges(judge_bias_correction)

EXERCISES = (
    Exercise(
        "Coding exercise 1: bias correction",
        "The first algorithm of the table above, for one layer whose input is not quantized (so "
        "E[x̃] = E[x]): after rounding W to W̃, each output channel's mean moves by (W̃ − W)·E[x], and the "
        "bias takes it back. Write `corrected_bias`. "
        "**Check my code** runs it in a separate process ({time_limit} limit) on fresh random layers — one "
        "square, one without a bias — and compares it with b − (W̃ − W)·E[x] computed in float64 (what "
        "ptqlab's bias correction computes) and with the property "
        "that the corrected layer's mean output equals the float layer's.",
        BIAS_STARTER,
        BIAS_SOLUTION,
        check_bias_correction,
        editor_height=180,
    ),
    Exercise(
        "Coding exercise 2: SmoothQuant's factor",
        "The formula in the table at the top: write `smoothing_factor`, one s_j per input channel. The lab "
        "checks it in a separate process ({time_limit} limit) on fresh activations with outlier channels "
        "(signed, as in a transformer) at three values of α, against ptqlab's SmoothQuant and the identity "
        "X Wᵀ = (X / s)(W · s)ᵀ.",
        SMOOTH_STARTER,
        SMOOTH_SOLUTION,
        check_smoothing,
        editor_height=160,
    ),
)
