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
"""

from __future__ import annotations

import torch

from ptqlab.core.affine import QParams, dequantize, qparams_for, quantize
from ptqlab.core.spec import QuantSpec


class ManualQuantizer:
    """Per-tensor affine quantization to ``bits``-bit signed integers, the seed's way (fixed)."""

    def __init__(self, bits: int = 8, symmetric: bool = False):
        self.spec = QuantSpec(bits=bits, signed=True, symmetric=symmetric)
        self.bits = bits
        self.qmin, self.qmax = self.spec.qmin, self.spec.qmax

    def quantize_tensor(self, tensor: torch.Tensor) -> tuple[torch.Tensor, float, int]:
        """Return (x_q, scale, zero_point): integer codes, a float scale and an integer zero point."""
        scale, zero_point = qparams_for(tensor, self.spec)
        x_q = quantize(tensor, QParams(scale, zero_point), self.spec)
        return x_q, float(scale.reshape(())), int(zero_point.reshape(()))

    def dequantize_tensor(self, quantized: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
        """x ≈ (x_q - zero_point) · scale."""
        if isinstance(zero_point, float) and not float(zero_point).is_integer():
            raise TypeError(
                f"zero_point must be an integer, got {zero_point!r} (the seed's float zero point)"
            )
        qp = QParams(torch.tensor(float(scale), dtype=torch.float32), torch.tensor(int(zero_point)))
        return dequantize(quantized, qp, self.spec)
