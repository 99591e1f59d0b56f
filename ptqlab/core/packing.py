"""Bit packing: b-bit integer codes (b = 1…8) stored densely in bytes, and back.

Layout (little-endian bit stream): code i occupies bits [i·b, (i+1)·b) of the stream, least significant bit
first, and byte j holds stream bits [8j, 8j+8) — bit k of byte j is stream bit 8j + k. So for b = 4 byte j is
``codes[2j] | codes[2j+1] << 4`` (low nibble first, torchao's ``pack_uint4`` order); for b = 2 byte j is
``c[4j] | c[4j+1] << 2 | c[4j+2] << 4 | c[4j+3] << 6``; for b = 3 codes straddle byte boundaries. A length
that does not fill the last byte is padded with zero bits, so n codes take ⌈n·b / 8⌉ bytes; unpacking needs n.

``pack_int32`` is the word layout of GPTQ-style int4/int2 kernels: 32/b codes per int32, code i at bits
[(i mod 32/b)·b, …) of word ⌊i·b/32⌋ (b must divide 32).

Codes are unsigned, in [0, 2^b − 1]; signed codes are stored offset by 2^(b−1) (``to_unsigned``).
"""

from __future__ import annotations

import torch


def check_bits(bits: int, allowed: range | tuple = range(1, 9)) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in allowed:
        raise ValueError(f"bits must be one of {list(allowed)}, got {bits!r}")
    return bits


def check_codes(codes: torch.Tensor, bits: int, name: str = "codes") -> torch.Tensor:
    """Flat int64 copy of integer ``codes``, which must lie in [0, 2^bits − 1]."""
    if not isinstance(codes, torch.Tensor) or codes.is_floating_point() or codes.is_complex():
        raise TypeError(
            f"{name} must be an integer tensor, got {getattr(codes, 'dtype', type(codes).__name__)}"
        )
    flat = codes.reshape(-1).to(torch.int64)
    top = (1 << bits) - 1
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) > top):
        raise ValueError(
            f"{name} holds values in [{int(flat.min())}, {int(flat.max())}], outside [0, {top}] for bits={bits}"
        )
    return flat


def to_unsigned(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Signed codes in [−2^(b−1), 2^(b−1) − 1] → unsigned codes c + 2^(b−1) (two's complement would also do)."""
    return codes.to(torch.int64) + (1 << (check_bits(bits) - 1))


def to_signed(codes: torch.Tensor, bits: int) -> torch.Tensor:
    return codes.to(torch.int64) - (1 << (check_bits(bits) - 1))


def packed_nbytes(numel: int, bits: int) -> int:
    """⌈numel · bits / 8⌉: the bytes ``pack`` returns."""
    return -(-numel * check_bits(bits) // 8)


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Flattened ``codes`` (integers in [0, 2^bits − 1]) → uint8 tensor of ⌈n·bits/8⌉ bytes (layout above)."""
    check_bits(bits)
    flat = check_codes(codes, bits)
    positions = torch.arange(bits, dtype=torch.int64)
    stream = ((flat[:, None] >> positions) & 1).reshape(-1)  # bit k of code i at i·bits + k
    stream = torch.cat([stream, stream.new_zeros(-stream.numel() % 8)])
    weights = torch.tensor([1 << k for k in range(8)], dtype=torch.int64)
    return (stream.reshape(-1, 8) * weights).sum(dim=1).to(torch.uint8)


def unpack(packed: torch.Tensor, bits: int, numel: int) -> torch.Tensor:
    """The first ``numel`` codes of a ``pack``ed uint8 tensor, as a flat int64 tensor."""
    check_bits(bits)
    if not isinstance(packed, torch.Tensor) or packed.dtype != torch.uint8:
        raise TypeError(
            f"packed must be a torch.uint8 tensor, got {getattr(packed, 'dtype', type(packed).__name__)}"
        )
    if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
        raise ValueError(f"numel must be a non-negative int, got {numel!r}")
    if packed.numel() < packed_nbytes(numel, bits):
        raise ValueError(
            f"packed has {packed.numel()} bytes; {numel} codes of {bits} bits need {packed_nbytes(numel, bits)}"
        )
    stream = (packed.reshape(-1).to(torch.int64)[:, None] >> torch.arange(8)) & 1
    stream = stream.reshape(-1)[: numel * bits].reshape(numel, bits)
    return (stream << torch.arange(bits, dtype=torch.int64)).sum(dim=1)


def pack_int32(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Codes → int32 words, 32/bits codes per word, first code in the least significant bits (GPTQ order).

    The bytes of ``pack`` read as little-endian int32 words (``sys.byteorder`` is "little" on every CPU torch
    ships for), zero-padded to whole words.
    """
    check_bits(bits, (1, 2, 4, 8))
    packed = pack(codes, bits)
    return torch.cat([packed, packed.new_zeros(-packed.numel() % 4)]).view(torch.int32)


def unpack_int32(words: torch.Tensor, bits: int, numel: int) -> torch.Tensor:
    check_bits(bits, (1, 2, 4, 8))
    if not isinstance(words, torch.Tensor) or words.dtype != torch.int32:
        raise TypeError(
            f"words must be a torch.int32 tensor, got {getattr(words, 'dtype', type(words).__name__)}"
        )
    return unpack(words.reshape(-1).view(torch.uint8), bits, numel)


def byte_table(codes: torch.Tensor, bits: int) -> list[dict]:
    """One row per packed byte: its value, its 8 bits (most significant first) and the codes it holds —
    (code index, bit range inside the byte) — for showing the packing byte by byte."""
    packed = pack(codes, bits)
    rows = []
    for j, byte in enumerate(packed.tolist()):
        first, last = (8 * j) // bits, min((8 * j + 7) // bits, codes.numel() - 1)
        pieces = [
            (i, max(i * bits, 8 * j) - 8 * j, min((i + 1) * bits, 8 * j + 8) - 8 * j - 1)
            for i in range(first, last + 1)
        ]
        rows.append({"byte": j, "value": byte, "bits": format(byte, "08b"), "codes": pieces})
    return rows
