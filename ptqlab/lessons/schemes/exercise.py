"""Lab 03's coding exercise: symmetric per-channel and per-group scales of a weight matrix W (C_out, K),

    scale_c  = max_k |W_ck| / ((qmax − qmin) / 2)                      (one per output channel = row)
    scale_cj = max_{k in group j} |W_ck| / ((qmax − qmin) / 2)         (groups of g consecutive inputs of a row)

checked against ptqlab's ``qparams_for`` (PerChannel(0), PerGroup(g, axis=1)) on fresh random weights with
one outlier channel (see ``ptqlab.labkit.exercise``).
"""

from __future__ import annotations

import torch

from ptqlab.core.affine import qparams_for
from ptqlab.core.spec import PerChannel, PerGroup, QuantSpec
from ptqlab.labkit.exercise import Exercise, Verdict, as_tensor, first_mismatch, not_ok, seeded_generator
from ptqlab.labkit.runner import TIME_LIMIT_S, run_student_code

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


def random_weight(generator: torch.Generator) -> torch.Tensor:
    """(C_out, K) Gaussian weights with one output channel 20× wider (the outlier per-channel scales fix)."""
    c_out, k = (
        int(torch.randint(6, 17, (), generator=generator)),
        8 * int(torch.randint(4, 9, (), generator=generator)),
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


def check_scales(source: str, seed: int | None = None, time_limit_s: float = TIME_LIMIT_S) -> Verdict:
    """Lab 03's exercise against ptqlab's per-channel and per-group symmetric min/max scales."""
    generator = seeded_generator(seed)
    cases = [(random_weight(generator), bits, g) for bits, g in ((4, 8), (8, 16), (3, 4))]
    calls = [("per_channel_scales", (w, bits)) for w, bits, _ in cases]
    calls += [("per_group_scales", (w, bits, g)) for w, bits, g in cases]
    status, results = run_student_code(source, calls, time_limit_s)
    if (bad := not_ok(status, results)) is not None:
        return bad
    for k, (w, bits, g) in enumerate(cases):
        for name, grain, result in (
            ("per_channel_scales", PerChannel(0), results[k]),
            ("per_group_scales", PerGroup(g, axis=1), results[len(cases) + k]),
        ):
            expected = qparams_for(w, QuantSpec(bits=bits, granularity=grain)).scale
            if name == "per_channel_scales":
                expected = expected.reshape(-1)
            if (problem := _problem(name, w, result, expected, bits)) is not None:
                return Verdict(False, f"**{name}** (W{bits}, group {g}): {problem}")
    return Verdict(
        True, f"**All correct** on {len(cases)} fresh random weight matrices, each with an outlier channel."
    )


EXERCISES = (
    Exercise(
        "Coding exercise: per-channel and per-group scales",
        "Write the symmetric scales of a weight matrix `w` (C_out, K): one per output channel, and one per "
        "group of `group_size` consecutive inputs of a row, with ptqlab's divisor (qmax − qmin)/2. "
        "**Check my code** runs them in a separate process ({time_limit} limit) on fresh random weights with "
        "an outlier channel and compares them with ptqlab's `qparams_for`.",
        SCALES_STARTER,
        SCALES_SOLUTION,
        check_scales,
        editor_height=260,
    ),
)
