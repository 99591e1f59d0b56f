"""Lab 04's exercise: what is wrong with a student's dynamic int8 Linear, named (see
``ptqlab.lessons.full_model.exercise`` for the scheme and its oracles). Each function returns None when its
part is right, else one markdown sentence: a named mistake, or the first mismatching element.
"""

from __future__ import annotations

import torch

QMAX = 127
FLOAT32_EXACT = 2**24  # above it float32 holds only every second integer


def position(t: torch.Tensor, i: int) -> str:
    return str(tuple(int(v) for v in torch.unravel_index(torch.tensor(i), t.shape)))


def scales_problem(s_got: torch.Tensor, case: dict, expected: torch.Tensor) -> str | None:
    zero = case["x"].abs().amax(dim=1) == 0
    if s_got.numel() == 1 and len(expected) > 1:
        return "one scale for the whole batch is per-tensor: dynamic quantization takes one per row (token)."
    if s_got.numel() != len(expected):
        return f"`s_x` has {s_got.numel()} values for {len(expected)} rows: one scale per row (reduce over dim 1)."
    s_got = s_got.reshape(-1).double()
    for r in zero.nonzero().flatten().tolist():
        if not (torch.isfinite(s_got[r]) and s_got[r] > 0):
            return (
                f"row {r} is all zeros and your scale there is {float(s_got[r]):g}: x / s_x is 0/0 = NaN (an int "
                "cast may hide it as 0 or a garbage code). Give an all-zero row a positive scale (torchao uses "
                "float32 eps; ptqlab uses 1): every code is 0 either way."
            )
    got, want = s_got[~zero], expected[~zero].double()
    if torch.allclose(got, want, rtol=1e-6, atol=0):
        return None
    for ratio, why in (
        (127 / 128, "you divided by 128: the row's max becomes code 128, which int8 cannot hold (it wraps to "
         "−128, or is clipped to 127). The symmetric grid here is [−127, 127]: divide by 127."),
        (127 / 127.5, "you divided by 127.5 = (qmax − qmin)/2 (torchao's default grid [−128, 127], lab 03's "
         "convention); this exercise uses the narrow grid [−127, 127]: divide by 127."),
        (127 / 255, "you divided by 255, the asymmetric step count; symmetric divides max|x| by 127."),
    ):  # fmt: skip
        if torch.allclose(got, want * ratio, rtol=1e-5, atol=0):
            return why
    if len(got) > 1 and torch.allclose(got, got[:1].expand_as(got), rtol=1e-6):
        return "every row got the same scale: that is per-tensor. Take max |x| over each row (dim 1)."
    i = int((~((got - want).abs() <= 1e-6 * want)).nonzero()[0])  # NaN counts as a mismatch
    row = int((~zero).nonzero().flatten()[i])
    return f"`s_x[{row}]`: expected max|x_row| / 127 = {float(want[i]):.6g}, yours is {float(got[i]):.6g}."


def codes_problem(q_got: torch.Tensor, case: dict, expected: torch.Tensor, s: torch.Tensor) -> str | None:
    if q_got.shape != expected.shape:
        return f"`x_q` has shape {tuple(q_got.shape)}, expected {tuple(expected.shape)} (one code per input)."
    if q_got.is_floating_point():
        if torch.isnan(q_got).any():
            r = int(torch.isnan(q_got).nonzero()[0, 0])
            return f"`x_q` has NaN in row {r}: an all-zero row divided by a zero scale. Give it a positive scale."
        return "`x_q` must hold integers: round, clamp, then `.to(torch.int8)`."
    if int(q_got.long().abs().max()) > QMAX:
        return f"a code reaches {int(q_got.long().abs().max())}: clamp to [−127, 127] (int8's −128 stays unused)."
    if torch.equal(q_got.long(), expected.long()):
        return None
    scaled = case["x"] / s.float()[:, None]  # in float32, as the student's code computes it
    clear = (
        scaled - scaled.round()
    ).abs() > 1e-3  # away from a whole number: trunc and floor are unambiguous
    for fn, name in (
        (torch.trunc, "truncated (`.to(int)` on a float drops the fraction)"),
        (torch.floor, "floored"),
    ):
        wrong = fn(scaled).clamp(-QMAX, QMAX).long()
        if torch.equal(q_got.long()[clear], wrong[clear]) and not torch.equal(wrong, expected.long()):
            return f"you {name} x / s_x instead of rounding it to the nearest code: use `torch.round` first."
    i = int((q_got.long() != expected.long()).flatten().nonzero()[0])
    return (
        f"first mismatching code at {position(expected, i)}: expected {int(expected.flatten()[i])}, yours is "
        f"{int(q_got.flatten()[i])} (x / s_x = {float(scaled.flatten()[i]):.4f})."
    )


def acc_problem(acc: torch.Tensor, expected: torch.Tensor) -> str | None:
    if acc.shape != expected.shape:
        return (
            f"shape {tuple(acc.shape)}, expected (batch, out) = {tuple(expected.shape)}: x_q @ w_q.T "
            "(w_q is stored (out, in))."
        )
    if acc.dtype in (torch.int8, torch.uint8, torch.int16):
        return (
            f"you accumulated in {acc.dtype}: one product of two codes reaches 127² = 16,129 and a row adds up "
            "to `in` of them. Torch's int8 @ int8 wraps around silently; accumulate in int32 or int64."
        )
    if torch.equal(acc.double(), expected.double()):
        return None
    i = int((acc.double() != expected.double()).flatten().nonzero()[0])
    want, got = int(expected.flatten()[i]), float(acc.flatten()[i])
    if acc.dtype in (torch.float32, torch.float16, torch.bfloat16):
        return (
            f"at {position(expected, i)} the exact sum is {want:,}, yours is {got:,.0f}: you accumulated in "
            f"{acc.dtype}. Above 2^24 = {FLOAT32_EXACT:,} float32 holds only even integers, so the sum is "
            "rounded; int8 kernels accumulate in int32. Use `.long()` (or float64, exact to 2^53)."
        )
    return (
        f"first mismatching accumulator at {position(expected, i)}: expected {want:,}, yours is {got:,.0f}."
    )


def close(got: torch.Tensor, want: torch.Tensor) -> bool:
    """Within 1e-5 of |want| (plus 1e-5 of its mean magnitude, for outputs that cancel to near 0)."""
    return bool(((got.double() - want).abs() <= 1e-5 * (want.abs() + want.abs().mean())).all())


def output_problem(y: torch.Tensor, case: dict, o: dict, s_x: torch.Tensor) -> str | None:
    """``s_x``: the student's own scales (they passed), to rebuild their mistakes exactly."""
    if y.shape != o["y"].shape:
        return f"shape {tuple(y.shape)}, expected (batch, out) = {tuple(o['y'].shape)}."
    if not torch.isfinite(y).all():
        r = int((~torch.isfinite(y)).nonzero()[0, 0])
        zero = bool(case["x"][r].abs().max() == 0)
        return f"row {r} of y is not finite" + (
            ": it is an all-zero row divided by a zero scale." if zero else "."
        )
    if close(y, o["y"]):
        return None
    acc, s, w = o["acc"].double(), s_x.reshape(-1).double(), case["w_scale"].double()
    b = 0.0 if case["bias"] is None else case["bias"].double()
    variants = {
        "you forgot the bias: add it after rescaling.": acc * s[:, None] * w[None, :],
        "you forgot `w_scale`: each output channel's weights have their own scale.": acc * s[:, None] + b,
        "you forgot `s_x`: each row's codes are in units of its own scale.": acc * w[None, :] + b,
        "`w_scale` is applied along the batch axis (`w_scale[:, None]`): it belongs to the output channels, "
        "the columns of y (`w_scale[None, :]`).": acc * s[:, None] * w[:, None] + b,
        "`s_x` is applied along the output axis: it belongs to the rows of y (`s_x[:, None]`).": acc
        * s[None, :]
        * w[None, :]
        + b,
        "both scales are on the wrong axis (y = acc · s_x · w_scale with s_x per row, w_scale per column).": acc
        * s[None, :]
        * w[:, None]
        + b,
    }
    for why, wrong in variants.items():
        if close(y, wrong):
            return why
    i = int(
        ((y.double() - o["y"]).abs() > 1e-5 * (o["y"].abs() + o["y"].abs().mean())).flatten().nonzero()[0]
    )
    return (
        f"first mismatching element at {position(y, i)}: expected {float(o['y'].flatten()[i]):.7g}, yours is "
        f"{float(y.flatten()[i]):.7g} (relative tolerance 1e-5)."
    )
