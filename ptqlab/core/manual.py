"""The seed tutorial's ``ManualQuantizer``, kept as a teaching entry point, with its two defects fixed.

The seed computed, for the whole tensor,

    scale      = (max - min) / (qmax - qmin)
    zero_point = qmin - min / scale                    # a float, never rounded or clamped
    x_q        = clamp(round(x / scale + zero_point), qmin, qmax)

Defect 1: the zero point is a float. Then 0.0 maps to round(zero_point) but dequantizes to
(round(zp) - zp) · scale ≠ 0, so exact zeros (ReLU outputs, padding) come back as small non-zeros, and
the zero point cannot be stored in an integer field. Defect 2: a constant tensor has max == min, so
scale = 0 and x / scale divides by zero (NaN/Inf codes).

Fixed here by delegating to the exact core: the range is widened to include 0, the scale is floored at
float32 eps, and the zero point is an integer clamped into [qmin, qmax].

The seed's calls work as written: ``ManualQuantizer.quantize_tensor(w)`` on the class (the seed's
@staticmethod: 8-bit asymmetric), on an instance (its own bits), and with ``num_bits=4``, returning
``(quantized, scale, zero_point)``; ``dequantize_tensor(quantized, scale, zero_point)`` likewise.
"""

from __future__ import annotations

import types

import torch

from ptqlab.core import checks
from ptqlab.core.affine import QParams, dequantize, qparams_for, quantize
from ptqlab.core.spec import QuantSpec


class seed_method:
    """A method that also works when called on the class, as the seed's @staticmethods were: it then
    binds to a default instance (``ManualQuantizer()``, 8-bit asymmetric)."""

    def __init__(self, func) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, instance, owner=None):
        return types.MethodType(self.func, instance if instance is not None else owner())


class ManualQuantizer:
    """Per-tensor affine quantization to ``bits``-bit signed integers, the seed's way (fixed)."""

    def __init__(self, bits: int = 8, symmetric: bool = False):
        self.spec = QuantSpec(bits=bits, signed=True, symmetric=symmetric)
        self.bits = bits
        self.qmin, self.qmax = self.spec.qmin, self.spec.qmax

    def _spec(self, num_bits) -> QuantSpec:
        if num_bits is None:
            return self.spec
        if isinstance(num_bits, bool) or not isinstance(num_bits, int):
            raise TypeError(f"num_bits must be an int, got {type(num_bits).__name__}")
        return self.spec.with_(bits=num_bits)

    @seed_method
    def quantize_tensor(
        self, tensor: torch.Tensor, num_bits: int | None = None
    ) -> tuple[torch.Tensor, float, int]:
        """Return (x_q, scale, zero_point): integer codes, a float scale and an integer zero point.
        ``num_bits`` (the seed's argument) overrides the quantizer's own ``bits`` for this call."""
        spec = self._spec(num_bits)
        checks.float_tensor(tensor, "tensor")
        scale, zero_point = qparams_for(tensor, spec)
        x_q = quantize(tensor, QParams(scale, zero_point), spec)
        return x_q, float(scale.reshape(())), int(zero_point.reshape(()))

    @seed_method
    def dequantize_tensor(
        self, quantized: torch.Tensor, scale: float, zero_point: int, num_bits: int | None = None
    ) -> torch.Tensor:
        """x ≈ (x_q - zero_point) · scale."""
        if isinstance(zero_point, float) and not float(zero_point).is_integer():
            raise TypeError(
                f"zero_point must be an integer, got {zero_point!r} (the seed's float zero point)"
            )
        qp = QParams(torch.tensor(float(scale), dtype=torch.float32), torch.tensor(int(zero_point)))
        return dequantize(quantized, qp, self._spec(num_bits))
