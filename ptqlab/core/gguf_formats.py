"""llama.cpp's GGUF block formats Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 on torch, byte for byte (``ggml-quants.c``).

Every format cuts a row into blocks of 32 weights and stores, per block, fp16 metadata and the codes:

    Q8_0   d = absmax / 127                 q = round(x / d)            ∈ −127…127   x̂ = d·q
    Q4_0   d = max / −8  (max: the signed   q = trunc(x/d + 8.5)        ∈ 0…15       x̂ = d·(q − 8)
    Q5_0   d = max / −16  value of largest  q = trunc(x/d + 16.5)       ∈ 0…31       x̂ = d·(q − 16)
                          magnitude)
    Q4_1   d = (max − min) / 15, m = min    q = trunc((x − m)/d + 0.5)  ∈ 0…15       x̂ = d·q + m
    Q5_1   d = (max − min) / 31, m = min    q = trunc((x − m)/d + 0.5)  ∈ 0…31       x̂ = d·q + m

Conventions that differ from ptqlab's affine core (and are kept here on purpose): the codes are computed
with the float32 d (1/d precomputed, 0 when d = 0), only the *stored* d and m are rounded to fp16, so
x̂ uses the fp16 values; Q8_0 rounds half away from zero (``roundf``; torch.round is half to even), the
others add 0.5 (or 8.5, 16.5) and truncate; Q4_0's scale is negative, so the value of largest magnitude
lands exactly on code 0 (−8·d) and the grid reaches one step further on the *other* side; Q4_1's offset m
is a float, not an integer zero point. Bytes per block: fp16 d (2), [fp16 m (2)], [the fifth bits of the 32
codes (4)], then the codes: one int8 each (Q8_0), or nibbles with code j in the low half of byte j and code
j + 16 in the high half. Bits per weight = 8 · bytes per block / 32 (Q8_0 8.5, Q4_0 4.5, Q4_1 5, Q5_0 5.5,
Q5_1 6). Tests check the bytes against the ``gguf`` package's numpy reference (``gguf.quants``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ptqlab.core import checks

BLOCK = 32


@dataclass(frozen=True)
class GGUFFormat:
    name: str
    bits: int  # code bits
    offset: bool  # True: x̂ = d·q + m (Q4_1, Q5_1); False: symmetric, x̂ = d·(q − bias)
    block_bytes: int

    @property
    def bits_per_weight(self) -> float:
        """8 · bytes per block / weights per block: the fp16 d (and m) included."""
        return 8 * self.block_bytes / BLOCK


FORMATS: dict[str, GGUFFormat] = {
    "Q8_0": GGUFFormat("Q8_0", 8, False, 2 + 32),
    "Q4_0": GGUFFormat("Q4_0", 4, False, 2 + 16),
    "Q4_1": GGUFFormat("Q4_1", 4, True, 2 + 2 + 16),
    "Q5_0": GGUFFormat("Q5_0", 5, False, 2 + 4 + 16),
    "Q5_1": GGUFFormat("Q5_1", 5, True, 2 + 2 + 4 + 16),
}


def get_gguf_format(fmt: GGUFFormat | str) -> GGUFFormat:
    if isinstance(fmt, GGUFFormat):
        return fmt
    if not isinstance(fmt, str) or fmt.upper() not in FORMATS:
        raise ValueError(f"fmt must be one of {sorted(FORMATS)}, got {fmt!r}")
    return FORMATS[fmt.upper()]


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """C's ``roundf`` as ``gguf.quants.np_roundf`` writes it: sign(x) · (⌊|x|⌋ + ⌊2(|x| − ⌊|x|⌋)⌋).
    (Not ⌊|x| + 0.5⌋: in float32, 0.49999997 + 0.5 rounds up to 1.)"""
    a = x.abs()
    floored = torch.floor(a)
    return torch.sign(x) * (floored + torch.floor(2 * (a - floored)))


def _blocks(x: torch.Tensor) -> torch.Tensor:
    x = checks.float_tensor(x, "x")
    if x.dim() == 0 or x.shape[-1] % BLOCK:
        raise ValueError(f"x: the last dimension must be a multiple of {BLOCK}, got shape {tuple(x.shape)}")
    return x.detach().to(torch.float32).reshape(-1, BLOCK)


def _inverse(d: torch.Tensor) -> torch.Tensor:
    return torch.where(d == 0, torch.zeros_like(d), 1.0 / torch.where(d == 0, torch.ones_like(d), d))


def block_codes(x: torch.Tensor, fmt: GGUFFormat | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes (n, 32) int64, d (n, 1) float32, m (n, 1) float32 or zeros) before fp16 storage."""
    f = get_gguf_format(fmt)
    blocks = _blocks(x)
    if f.name == "Q8_0":
        d = blocks.abs().amax(1, keepdim=True) / 127
        return round_half_away(blocks * _inverse(d)).to(torch.int64), d, torch.zeros_like(d)
    levels = (1 << f.bits) - 1
    if f.offset:
        lo, hi = blocks.amin(1, keepdim=True), blocks.amax(1, keepdim=True)
        d = (hi - lo) / levels
        q = torch.trunc((blocks - lo) * _inverse(d) + 0.5)
        return q.clamp(0, levels).to(torch.int64), d, lo
    half = (levels + 1) // 2
    peak = blocks.gather(1, blocks.abs().argmax(1, keepdim=True))
    d = peak / -half
    q = torch.trunc(blocks * _inverse(d) + (half + 0.5))
    return q.clamp(0, levels).to(torch.int64), d, torch.zeros_like(d)


def _fp16_bytes(v: torch.Tensor) -> torch.Tensor:
    return v.to(torch.float16).view(torch.uint8).reshape(-1, 2)


def _nibbles(q: torch.Tensor) -> torch.Tensor:
    low = q & 0x0F
    return (low[:, :16] | (low[:, 16:] << 4)).to(torch.uint8)


def _high_bits(q: torch.Tensor) -> torch.Tensor:
    """Bit 4 of each of the 32 codes, little-endian: code j is bit j % 8 of byte j // 8."""
    bits = ((q >> 4) & 1).reshape(-1, 4, 8)
    weights = torch.tensor([1 << i for i in range(8)], dtype=torch.int64)
    return (bits * weights).sum(-1).to(torch.uint8)


def quantize_gguf(x: torch.Tensor, fmt: GGUFFormat | str) -> torch.Tensor:
    """The bytes llama.cpp writes: uint8 of shape (*x.shape[:-1], x.shape[-1] / 32 · block_bytes)."""
    f = get_gguf_format(fmt)
    q, d, m = block_codes(x, f)
    parts = [_fp16_bytes(d)]
    if f.offset:
        parts.append(_fp16_bytes(m))
    if f.name == "Q8_0":
        parts.append(q.to(torch.int8).view(torch.uint8))
    else:
        if f.bits == 5:
            parts.append(_high_bits(q))
        parts.append(_nibbles(q))
    blocks = torch.cat(parts, 1)
    return blocks.reshape(*x.shape[:-1], x.shape[-1] // BLOCK * f.block_bytes)


def dequantize_gguf(data: torch.Tensor, fmt: GGUFFormat | str) -> torch.Tensor:
    """float32 weights from the bytes of ``quantize_gguf`` (shape (*rows, bytes) → (*rows, weights))."""
    f = get_gguf_format(fmt)
    if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8:
        raise TypeError(
            f"data must be a uint8 tensor of {f.name} blocks, got {getattr(data, 'dtype', data)!r}"
        )
    if data.dim() == 0 or data.shape[-1] % f.block_bytes:
        raise ValueError(f"data: the last dimension must be a multiple of {f.block_bytes} bytes for {f.name}")
    b = data.reshape(-1, f.block_bytes)
    d = b[:, :2].contiguous().view(torch.float16).to(torch.float32)
    at = 4 if f.offset else 2
    if f.name == "Q8_0":
        out = b[:, 2:].contiguous().view(torch.int8).to(torch.float32) * d
    else:
        packed = b[:, -16:].to(torch.int64)
        q = torch.cat([packed & 0x0F, packed >> 4], 1)
        if f.bits == 5:
            high = b[:, at : at + 4].to(torch.int64)
            bits = (high[:, :, None] >> torch.arange(8)) & 1
            q = q | (bits.reshape(-1, 32) << 4)
        if f.offset:
            out = d * q.to(torch.float32) + b[:, 2:4].contiguous().view(torch.float16).to(torch.float32)
        else:
            out = d * (q - (1 << (f.bits - 1))).to(torch.float32)
    return out.reshape(*data.shape[:-1], data.shape[-1] // f.block_bytes * BLOCK)


def fake_quantize_gguf(x: torch.Tensor, fmt: GGUFFormat | str) -> torch.Tensor:
    """x → bytes → x̂ (float32, x's shape): what a GGUF runtime computes with."""
    return dequantize_gguf(quantize_gguf(x, fmt), fmt).reshape(x.shape)


__all__ = [
    "BLOCK",
    "FORMATS",
    "GGUFFormat",
    "block_codes",
    "dequantize_gguf",
    "fake_quantize_gguf",
    "get_gguf_format",
    "quantize_gguf",
    "round_half_away",
]
