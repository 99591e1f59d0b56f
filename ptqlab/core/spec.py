"""The quantization scheme: an immutable description of an integer grid and its granularity.

A scheme fixes the integer range [qmin, qmax] and how many (scale, zero_point) pairs a tensor gets:

* ``PerTensor()``            one pair for the whole tensor;
* ``PerChannel(axis)``       one pair per index along ``axis`` (e.g. per output channel of a weight);
* ``PerGroup(size, axis)``   one pair per run of ``size`` consecutive elements along ``axis``, separately
                             for every index of the other dimensions (e.g. group-wise int4 weights).

All three are one rule, borrowed from torchao: a granularity becomes a *block shape* for a given tensor
shape, and one (scale, zero_point) pair covers one block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

MIN_BITS, MAX_BITS = 2, 16


@dataclass(frozen=True)
class PerTensor:
    """One (scale, zero_point) pair for the whole tensor."""

    def block_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape)

    def __str__(self) -> str:
        return "per-tensor"


@dataclass(frozen=True)
class PerChannel:
    """One pair per index along ``axis``."""

    axis: int = 0

    def block_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        axis = _normalise_axis(self.axis, len(shape), "axis")
        return tuple(1 if d == axis else n for d, n in enumerate(shape))

    def __str__(self) -> str:
        return f"per-channel(axis={self.axis})"


@dataclass(frozen=True)
class PerGroup:
    """One pair per ``group_size`` consecutive elements along ``axis`` (other dims kept separate)."""

    group_size: int = 32
    axis: int = -1

    def __post_init__(self) -> None:
        if isinstance(self.group_size, bool) or not isinstance(self.group_size, int):
            raise TypeError(f"group_size must be an int, got {type(self.group_size).__name__}")
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {self.group_size}")

    def block_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        axis = _normalise_axis(self.axis, len(shape), "axis")
        if shape[axis] % self.group_size:
            raise ValueError(
                f"group_size={self.group_size} does not divide dimension {axis} of size {shape[axis]}"
            )
        return tuple(self.group_size if d == axis else 1 for d in range(len(shape)))

    def __str__(self) -> str:
        return f"per-group({self.group_size}, axis={self.axis})"


Granularity = PerTensor | PerChannel | PerGroup


def _normalise_axis(axis: int, ndim: int, name: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"{name} must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for a tensor with {ndim} dimension(s)")
    return axis % ndim


SCALE_BITS = 16  # a block's scale as engines store it: fp16 (llama.cpp, ORT) or bf16 (torchao int4)


@dataclass(frozen=True)
class QuantSpec:
    """An integer grid: ``bits`` wide, signed or unsigned, symmetric or asymmetric, optionally narrow.

    Integer range:   signed   [-2^(b-1), 2^(b-1) - 1]     unsigned [0, 2^b - 1]
    ``narrow_range`` drops the lowest code (int8 becomes [-127, 127], uint8 [1, 255]) so that a symmetric
    grid is exactly symmetric around its zero point.
    """

    bits: int = 8
    signed: bool = True
    symmetric: bool = True
    narrow_range: bool = False
    granularity: Granularity = PerTensor()

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int):
            raise TypeError(f"bits must be an int, got {type(self.bits).__name__}")
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise ValueError(f"bits must be in [{MIN_BITS}, {MAX_BITS}], got {self.bits}")
        for name in ("signed", "symmetric", "narrow_range"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {type(getattr(self, name)).__name__}")
        if not isinstance(self.granularity, PerTensor | PerChannel | PerGroup):
            raise TypeError(
                "granularity must be PerTensor(), PerChannel(axis) or PerGroup(group_size, axis), "
                f"got {self.granularity!r}"
            )

    @property
    def qmin(self) -> int:
        low = -(2 ** (self.bits - 1)) if self.signed else 0
        return low + 1 if self.narrow_range else low

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    @property
    def levels(self) -> int:
        """Number of integer codes, qmax - qmin + 1."""
        return self.qmax - self.qmin + 1

    @property
    def symmetric_zero_point(self) -> int:
        """Zero point of a symmetric grid: the middle code, (qmin + qmax + 1) // 2 (0 for int8, 128 for uint8)."""
        return (self.qmin + self.qmax + 1) // 2

    @property
    def storage_dtype(self) -> torch.dtype:
        """The smallest torch integer dtype that holds [qmin, qmax]."""
        if self.signed:
            return torch.int8 if self.bits <= 8 else torch.int16
        return torch.uint8 if self.bits <= 8 else torch.uint16

    def block_shape(self, shape: tuple[int, ...] | torch.Size) -> tuple[int, ...]:
        """Shape of the block that shares one (scale, zero_point) pair, for a tensor of ``shape``."""
        return self.granularity.block_shape(tuple(shape))

    def qparams_shape(self, shape: tuple[int, ...] | torch.Size) -> tuple[int, ...]:
        """Shape of the scale / zero_point tensors for a tensor of ``shape`` (one entry per block)."""
        return tuple(n // b for n, b in zip(shape, self.block_shape(shape), strict=True))

    def bits_per_element(
        self, shape: tuple[int, ...], qparam_bits: int | None = None, *, scale_bits: int = SCALE_BITS
    ) -> float:
        """Storage cost in bits per element: b + blocks · per-block metadata / elements.

        Per block: one scale of ``scale_bits`` (16: the fp16/bf16 scales int8/int4 engines store; 32 for
        fp32), plus a zero point of the same width when the grid is asymmetric (a symmetric grid's zero point
        is a constant, not stored). ``qparam_bits`` overrides the per-block total."""
        if qparam_bits is None:
            qparam_bits = scale_bits * (1 if self.symmetric else 2)
        n = math.prod(shape)
        return self.bits + math.prod(self.qparams_shape(shape)) * qparam_bits / max(n, 1)

    def with_(self, **changes) -> QuantSpec:
        """A copy with some fields changed (the spec itself is immutable)."""
        from dataclasses import replace

        return replace(self, **changes)

    def __str__(self) -> str:
        kind = ("int" if self.signed else "uint") + str(self.bits)
        mode = "symmetric" if self.symmetric else "asymmetric"
        narrow = ", narrow" if self.narrow_range else ""
        return f"{kind} {mode}{narrow}, {self.granularity} [{self.qmin}, {self.qmax}]"
