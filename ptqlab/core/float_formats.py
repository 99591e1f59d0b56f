"""Floating-point formats as quantization grids: fp32, fp16, bf16, fp8 e4m3 (``float8_e4m3fn``) and e5m2.

A format with e exponent bits and m mantissa bits, bias β = 2^(e−1) − 1, represents

    normal      (−1)^s · (1 + f / 2^m) · 2^(E − β),   E = 1 … E_max                 (f = 0 … 2^m − 1)
    subnormal   (−1)^s · (f / 2^m) · 2^(1 − β),       E = 0

so the spacing between neighbours is 2^(⌊log2|x|⌋ − m) — relative precision 2^−m everywhere, unlike an
integer grid's constant absolute step. IEEE formats (fp16, bf16, e5m2) reserve E = 2^e − 1 for inf/NaN:
max = (2 − 2^−m) · 2^(2^e − 2 − β). e4m3fn ("fn": finite, no inf) reserves only S.1111.111 for NaN, so its
max is 1.75 · 2^8 = 448 (Micikevicius et al. 2022, "FP8 Formats for Deep Learning").

``round_to_format`` is an independent implementation of the cast: round to nearest, ties to even, on the
spacing of x's binade (float64 arithmetic, exact here); a result past max becomes ±inf for the IEEE
formats, and ±448 for e4m3fn, which has no inf (torch's CPU cast saturates it; the OCP spec's other mode
would give NaN). Tests check it equals ``x.to(dtype)`` element for element.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ptqlab.core import checks


@dataclass(frozen=True)
class FloatFormat:
    name: str
    dtype: torch.dtype
    exponent_bits: int
    mantissa_bits: int
    ieee: bool = True  # False: e4m3fn (no inf; only all-ones exponent AND mantissa is NaN)

    @property
    def bits(self) -> int:
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def bias(self) -> int:
        return 2 ** (self.exponent_bits - 1) - 1

    @property
    def max_exponent(self) -> int:
        """Largest unbiased exponent of a finite value."""
        top = 2**self.exponent_bits - 1
        return (top - 1 if self.ieee else top) - self.bias

    @property
    def max(self) -> float:
        m = self.mantissa_bits
        mantissa = 2 - 2.0**-m if self.ieee else 2 - 2.0 ** (1 - m)  # e4m3fn loses the all-ones mantissa
        return mantissa * 2.0**self.max_exponent

    @property
    def min_normal(self) -> float:
        return 2.0 ** (1 - self.bias)

    @property
    def min_subnormal(self) -> float:
        return 2.0 ** (1 - self.bias - self.mantissa_bits)

    @property
    def epsilon(self) -> float:
        """Spacing just above 1.0: 2^−m."""
        return 2.0**-self.mantissa_bits


FORMATS: dict[str, FloatFormat] = {
    f.name: f
    for f in (
        FloatFormat("fp32", torch.float32, 8, 23),
        FloatFormat("fp16", torch.float16, 5, 10),
        FloatFormat("bf16", torch.bfloat16, 8, 7),
        FloatFormat("fp8_e4m3", torch.float8_e4m3fn, 4, 3, ieee=False),
        FloatFormat("fp8_e5m2", torch.float8_e5m2, 5, 2),
    )
}


def get_format(name: str) -> FloatFormat:
    if name not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {name!r}")
    return FORMATS[name]


def spacing(x: torch.Tensor, fmt: FloatFormat) -> torch.Tensor:
    """Distance between neighbouring representable values around |x| (float64): 2^(max(⌊log2|x|⌋, 1−β) − m)."""
    a = x.to(torch.float64).abs()
    exponent = torch.floor(torch.log2(torch.where(a > 0, a, torch.ones_like(a))))
    exponent = torch.where(a > 0, exponent, torch.full_like(a, 1 - fmt.bias))
    exponent = torch.clamp(exponent, min=1 - fmt.bias)
    return torch.exp2(exponent - fmt.mantissa_bits)


def round_to_format(x: torch.Tensor, fmt: FloatFormat | str) -> torch.Tensor:
    """x rounded to the format (returned as float32): nearest, ties to even; past max → ±inf (±448 for e4m3fn)."""
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    x = checks.float_tensor(x, "x", allow_empty=True)
    step = spacing(x, fmt)
    q = torch.round(x.to(torch.float64) / step) * step  # x/step is exact: step is a power of two
    if not fmt.ieee:  # e4m3fn has no inf: torch's cast saturates to ±max
        return q.clamp(-fmt.max, fmt.max).to(torch.float32)
    return torch.where(q.abs() > fmt.max, torch.inf * q.sign(), q).to(torch.float32)


def cast_round_trip(x: torch.Tensor, fmt: FloatFormat | str) -> torch.Tensor:
    """torch's own cast x → dtype → float32: the oracle ``round_to_format`` must equal."""
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    return x.to(fmt.dtype).to(torch.float32)


def representable_values(fmt: FloatFormat | str) -> torch.Tensor:
    """Every finite value of an 8- or 16-bit format, sorted, each once (+0 only): every bit pattern, cast."""
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    if fmt.bits == 8:
        patterns = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    elif fmt.bits == 16:
        patterns = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)
    else:
        raise ValueError(f"format must be an 8- or 16-bit format to enumerate, got {fmt.name}")
    values = patterns.view(fmt.dtype).to(torch.float64)
    return torch.unique(values[torch.isfinite(values)])


def scaled_round_trip(x: torch.Tensor, fmt: FloatFormat | str, amax: float | None = None) -> torch.Tensor:
    """Per-tensor scaled cast, as fp8 is used in practice: s = amax / max, x̂ = s · round_to_format(x / s).

    ``amax`` (default max|x|) must be a finite number > 0; an all-zero x with the default is cast unscaled."""
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    x = checks.float_tensor(x, "x")
    if amax is None:
        amax = float(x.abs().max())
        if amax == 0:
            return round_to_format(x, fmt)
    elif (
        isinstance(amax, bool) or not isinstance(amax, int | float) or not (math.isfinite(amax) and amax > 0)
    ):
        raise ValueError(
            f"amax must be a finite number > 0 (the range mapped to ±{fmt.name}'s max), got {amax!r}"
        )
    amax = float(amax)
    scale = amax / fmt.max
    return (
        round_to_format((x.double() / scale).float().clamp(-fmt.max, fmt.max), fmt).double() * scale
    ).float()


def format_table() -> list[dict]:
    """One row per format: bit split, bias, largest value, smallest normal/subnormal, epsilon."""
    return [
        {
            "format": f.name,
            "bits": f.bits,
            "exponent": f.exponent_bits,
            "mantissa": f.mantissa_bits,
            "bias": f.bias,
            "max": f.max,
            "min_normal": f.min_normal,
            "min_subnormal": f.min_subnormal,
            "epsilon": f.epsilon,
        }  # fmt: skip
        for f in FORMATS.values()
    ]
