"""Lab 03's coding exercise: symmetric per-channel and per-group scales of a weight matrix W (C_out, K),

    scale_c  = max_k |W_ck| / ((qmax − qmin) / 2)                      (one per output channel = row)
    scale_cj = max_{k in group j} |W_ck| / ((qmax − qmin) / 2)         (groups of g consecutive inputs of a row)

checked against ptqlab's ``qparams_for`` (PerChannel(0), PerGroup(g, axis=1)) on fresh random weights with
one outlier channel (see ``ptqlab.labkit.exercise``). Every drawn K is a multiple of every group size
checked: the lesson's groups tile a row exactly (ptqlab's ``PerGroup`` refuses a group that does not divide
K, as torchao's group-wise kernels do), so no case asks for a ragged last group, and an answer that also
handles one (slicing ``w[:, j : j + g]``) passes as well.
"""

from __future__ import annotations

import torch

from ptqlab.core.affine import qparams_for
from ptqlab.core.spec import PerChannel, PerGroup, QuantSpec
from ptqlab.labkit.exercise import (
    Exercise,
    Verdict,
    as_tensor,
    first_mismatch,
    judges,
    not_ok,
    seeded,
)

SCALES_STARTER = '''\
def per_channel_scales(w, bits):
    """w: (C_out, K). Symmetric signed grid: one scale per output channel (row), shape (C_out,)."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    ...


def per_group_scales(w, bits, group_size):
    """One scale per group of group_size consecutive inputs of each row, shape (C_out, K // group_size)."""
    ...
'''

SCALES_SOLUTION = """\
def per_channel_scales(w, bits):
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return w.abs().amax(dim=1) / ((qmax - qmin) / 2)


def per_group_scales(w, bits, group_size):
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    c_out, k = w.shape
    groups = w.reshape(c_out, k // group_size, group_size)
    return groups.abs().amax(dim=2) / ((qmax - qmin) / 2)
"""


CASES = ((4, 8), (8, 16), (3, 4))  # (bits, group size)
K_STEP = 16  # every K is a multiple of it, so each group size above divides K


def random_weight(generator: torch.Generator) -> torch.Tensor:
    """(C_out, K) Gaussian weights with one output channel 20× wider (the outlier per-channel scales fix);
    K ∈ {32, 48, 64}, a multiple of every group size in ``CASES``."""
    c_out, k = (
        int(torch.randint(6, 17, (), generator=generator)),
        K_STEP * int(torch.randint(2, 5, (), generator=generator)),
    )
    w = torch.randn(c_out, k, generator=generator) * 0.05
    w[int(torch.randint(0, c_out, (), generator=generator))] *= 20
    return w


def _scale_diagnosis(w: torch.Tensor, got: torch.Tensor, expected: torch.Tensor, bits: int) -> str:
    """Name the usual mistake behind a wrong scale, or the first mismatching element."""
    half_steps, narrow = (2**bits - 1) / 2, 2 ** (bits - 1) - 1
    if torch.allclose(got * narrow, expected * half_steps, rtol=1e-5):
        return (
            f"you divided by 2^(b−1) − 1 = {narrow} (the narrow range [−{narrow}, {narrow}], the tutorial's "
            f"convention); ptqlab and torch.ao divide by (qmax − qmin)/2 = {half_steps:g}."
        )
    if torch.allclose(got, expected / 2, rtol=1e-5):
        return f"you divided by qmax − qmin = {2**bits - 1}, the asymmetric step count; symmetric uses half of it."
    if got.numel() > 1 and torch.allclose(got, got.flatten()[0].expand_as(got)):
        return "every block got the same scale: that is per-tensor. Take the max over each block only."
    i = first_mismatch(expected, got, 1e-6 * float(expected.max()))
    return (
        f"first mismatching element, index {i}: expected {float(expected.flatten()[i]):.6g}, yours is "
        f"{float(got.flatten()[i]):.6g}. Use max |w| (negative weights count) over the block."
    )


def _problem(name: str, w: torch.Tensor, result, expected: torch.Tensor, bits: int) -> str | None:
    got, problem = as_tensor(result, name)
    if problem is not None:
        return problem
    if got.numel() == expected.numel() and got.shape != expected.shape:
        got = got.reshape(expected.shape)  # (C_out, 1) for (C_out,) is fine
    if got.shape != expected.shape:
        return (
            f"for W of shape {tuple(w.shape)} it returned shape {tuple(got.shape)}, expected "
            f"{tuple(expected.shape)}: one scale per output channel (reduce over dim 1)"
            + (", per group of consecutive inputs" if expected.dim() == 2 else "")
            + "."
        )
    if first_mismatch(expected, got.float(), 1e-6 * float(expected.max())) is None:
        return None
    return _scale_diagnosis(w, got.float(), expected, bits)


@seeded
def seeded_cases(
    generator: torch.Generator,
) -> list[tuple[torch.Tensor, int, int, torch.Tensor, torch.Tensor]]:
    """(W, bits, group size, ptqlab's per-channel scales, ptqlab's per-group scales) per case, by seed."""
    cases = []
    for bits, g in CASES:
        w = random_weight(generator)
        per_channel = qparams_for(w, QuantSpec(bits=bits, granularity=PerChannel(0))).scale.reshape(-1)
        per_group = qparams_for(w, QuantSpec(bits=bits, granularity=PerGroup(g, axis=1))).scale
        cases.append((w, bits, g, per_channel, per_group))
    return cases


def judge_scales(run, seed: int | None = None) -> Verdict:
    """Lab 03's exercise against ptqlab's per-channel and per-group symmetric min/max scales."""
    cases = seeded_cases(seed)
    calls = [("per_channel_scales", (w, bits)) for w, bits, *_ in cases]
    calls += [("per_group_scales", (w, bits, g)) for w, bits, g, *_ in cases]
    status, results = run(calls)
    if (bad := not_ok(status, results)) is not None:
        return bad
    for k, (w, bits, g, per_channel, per_group) in enumerate(cases):
        for name, expected, result in (
            ("per_channel_scales", per_channel, results[k]),
            ("per_group_scales", per_group, results[len(cases) + k]),
        ):
            if result is None or result is Ellipsis:
                return Verdict(False, f"**{name}** returned {result!r}: fill in every `...`.")
            if (problem := _problem(name, w, result, expected, bits)) is not None:
                return Verdict(False, f"**{name}** (W{bits}, group {g}): {problem}")
    return Verdict(
        True, f"**All correct** on {len(cases)} fresh random weight matrices, each with an outlier channel."
    )


check_scales, compare_scales = judges(judge_scales)


EXERCISES = (
    Exercise(
        "Coding exercise: per-channel and per-group scales",
        "Write the symmetric scales of a weight matrix `w` (C_out, K): one per output channel, and one per "
        "group of `group_size` consecutive inputs of a row, with ptqlab's divisor (qmax − qmin)/2. "
        "**Check my code** runs them in a separate process ({time_limit} limit) on fresh random weights with "
        "an outlier channel (K is always a multiple of `group_size`, as ptqlab's groups require) and compares "
        "them with ptqlab's `qparams_for` (to 10⁻⁶ of the largest scale).",
        SCALES_STARTER,
        SCALES_SOLUTION,
        check_scales,
        editor_height=260,
    ),
)
