"""Requantization with a fixed-point multiplier, as integer-only engines do it (gemmlowp, TFLite).

An int8 layer accumulates in int32 at scale s_x·s_w; its output lives at scale s_y, so the accumulator must be
multiplied by the real number M = s_x·s_w / s_y (usually < 1). Integer hardware has no float unit, so M is
stored as a 31-bit integer mantissa and a right shift (Jacob et al. 2018, "Quantization and Training of Neural
Networks for Efficient Integer-Arithmetic-Only Inference", §2.2):

    M = M0 · 2^−n,   M0 ∈ [2^30, 2^31)   (M0 / 2^31 ∈ [0.5, 1): M's normalized mantissa in Q0.31)

    y_q = clamp(z_y + ⌊(acc · M0 + 2^(n−1)) / 2^n⌋, q_min, q_max)

The product acc·M0 fits int64 (|acc| < 2^31, M0 < 2^31); adding 2^(n−1) before the arithmetic right shift
rounds the exact value acc·M0·2^−n to nearest, ties toward +∞: TFLite's single-rounding
``MultiplyByQuantizedMultiplier``. (gemmlowp's default rounds twice — a rounding doubling high multiply, then
a rounding right shift — which can differ from this by one code on rare near-ties.) Float engines (fbgemm)
instead compute nearbyint(acc·M) in float32: ties go to even, so the two differ only on exact ties and where
float32 rounding moves a value across a half.
"""

from __future__ import annotations

import math

import torch

Q31 = 1 << 31
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
MAX_SHIFT = 62  # acc·M0 < 2^62, so shifting further would always give 0


def quantize_multiplier(multiplier: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M0, n) int64 tensors with M0 · 2^−n ≈ multiplier, M0 ∈ [2^30, 2^31), one pair per entry.

    M0 = round(f · 2^31) with multiplier = f · 2^e, f ∈ [0.5, 1) (``math.frexp``), and n = 31 − e. The
    relative error |M0·2^−n − M| / M is below 2^−31. Raises ValueError naming ``multiplier`` unless
    0 < multiplier < 2^30 (a right shift of at least 1) and n ≤ 62.
    """
    m = torch.as_tensor(multiplier, dtype=torch.float64).reshape(-1)
    if m.numel() == 0 or not bool(torch.isfinite(m).all()):
        raise ValueError("multiplier must be a non-empty tensor of finite values")
    m0s, shifts = [], []
    for value in m.tolist():
        if not 0.0 < value < 2.0**30:
            raise ValueError(f"multiplier must lie in (0, 2^30) (M = s_x·s_w/s_y), got {value!r}")
        fraction, exponent = math.frexp(value)
        m0 = round(fraction * Q31)
        if m0 == Q31:  # fraction rounded up to 1.0: renormalize
            m0, exponent = m0 // 2, exponent + 1
        shift = 31 - exponent
        if shift > MAX_SHIFT:
            raise ValueError(
                f"multiplier {value!r} is too small: it needs a right shift of {shift} > {MAX_SHIFT}"
            )
        m0s.append(m0)
        shifts.append(shift)
    return torch.tensor(m0s, dtype=torch.int64), torch.tensor(shifts, dtype=torch.int64)


def multiply_by_quantized_multiplier(
    acc: torch.Tensor, m0: torch.Tensor, shift: torch.Tensor
) -> torch.Tensor:
    """⌊(acc · M0 + 2^(n−1)) / 2^n⌋ in int64: acc·M0·2^−n rounded to nearest, ties toward +∞.

    ``m0`` and ``shift`` broadcast against ``acc`` (per-channel: shape (C,) against (…, C), or reshaped by the
    caller). ``acc`` must be an integer tensor inside int32, the accumulator an engine holds; ``m0`` must lie
    in [2^30, 2^31) and ``shift`` in [1, 62] (what ``quantize_multiplier`` returns), else ValueError.
    """
    if not isinstance(acc, torch.Tensor) or acc.is_floating_point() or acc.dtype == torch.bool:
        raise TypeError(f"acc must be an integer tensor, got {getattr(acc, 'dtype', type(acc).__name__)}")
    acc = acc.to(torch.int64)
    if acc.numel() and (int(acc.min()) < INT32_MIN or int(acc.max()) > INT32_MAX):
        raise ValueError(
            f"acc overflows int32: values reach [{int(acc.min())}, {int(acc.max())}], "
            f"outside [{INT32_MIN}, {INT32_MAX}]"
        )
    m0, shift = _integer(m0, "m0"), _integer(shift, "shift")
    if m0.numel() and (int(m0.min()) < Q31 // 2 or int(m0.max()) >= Q31):
        raise ValueError(
            f"m0 must lie in [2^30, 2^31) (quantize_multiplier's mantissa), got [{int(m0.min())}, {int(m0.max())}]"
        )
    if shift.numel() and (int(shift.min()) < 1 or int(shift.max()) > MAX_SHIFT):
        raise ValueError(f"shift must lie in [1, {MAX_SHIFT}], got [{int(shift.min())}, {int(shift.max())}]")
    half = torch.bitwise_left_shift(torch.ones_like(shift), shift - 1)
    return torch.bitwise_right_shift(acc * m0 + half, shift)  # arithmetic shift: floor division by 2^n


def _integer(value, name: str) -> torch.Tensor:
    """An int or integer tensor as int64, refusing floats and bools naming ``name``."""
    if (
        isinstance(value, bool)
        or isinstance(value, torch.Tensor)
        and (value.is_floating_point() or value.dtype == torch.bool)
    ):
        raise TypeError(f"{name} must be an int or an integer tensor, got {getattr(value, 'dtype', 'bool')}")
    if not isinstance(value, int | torch.Tensor):
        raise TypeError(f"{name} must be an int or an integer tensor, got {type(value).__name__}")
    return torch.as_tensor(value, dtype=torch.int64)


def requantize(
    acc: torch.Tensor,
    m0: torch.Tensor,
    shift: torch.Tensor,
    zero_point: int,
    *,
    qmin: int = 0,
    qmax: int = 255,
) -> torch.Tensor:
    """Output codes y_q = clamp(z_y + round(acc · M0 · 2^−n), qmin, qmax) as int64 (a fused ReLU: qmin = z_y)."""
    if qmin > qmax:
        raise ValueError(f"qmin ({qmin}) must not exceed qmax ({qmax})")
    if isinstance(zero_point, bool | float) or not isinstance(zero_point, int | torch.Tensor):
        raise TypeError(f"zero_point must be an int, got {zero_point!r}")
    scaled = multiply_by_quantized_multiplier(acc, m0, shift)
    return torch.clamp(scaled + int(zero_point), qmin, qmax)


def exact_requantize_reference(acc: int, multiplier_m0: int, shift: int) -> int:
    """The same rounding on Python integers (unbounded): floor(acc·M0 / 2^n + 1/2). An independent oracle."""
    return (2 * acc * multiplier_m0 + (1 << shift)) // (1 << (shift + 1))
