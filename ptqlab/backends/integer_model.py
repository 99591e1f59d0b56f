"""A whole torch.ao int8 model re-run with integers only: the engine's integers, ptqlab's arithmetic.

``IntegerModel.from_torch_ao(qmodel)`` walks a model converted by the ``ao-static-int8`` recipe (one int8
region: Quantize → Flatten/Linear/Conv2d/ReLU/MaxPool2d/Dropout → DeQuantize) and rebuilds each quantized
layer as an ``IntegerLinear``/``IntegerConv2d`` with the same weight codes, scales and zero points. A ReLU
right after a layer is fused into its clamp (on codes, ReLU is max(y_q, z_y)); max-pooling and flattening act
on codes directly (both commute with the increasing map code → real). The only floats left are the input's
quantization and the final dequantization.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ptqlab.backends.integer_only import (
    IntegerConv2d,
    IntegerLayer,
    conv2d_from_torch_ao,
    linear_from_torch_ao,
)

PASS_THROUGH = ("Identity", "Dropout", "QuantizedDropout", "DeQuantize", "LinearPackedParams")


@dataclass
class IntegerModel:
    """input qparams, then a list of steps: IntegerLayer, "flatten", ("maxpool", kernel, stride)."""

    input_scale: float
    input_zero_point: int
    steps: list

    @classmethod
    def from_torch_ao(cls, qmodel: nn.Module) -> IntegerModel:
        kinds = {"Linear": linear_from_torch_ao, "LinearReLU": linear_from_torch_ao}
        kinds |= {"Conv2d": conv2d_from_torch_ao, "ConvReLU2d": conv2d_from_torch_ao}
        leaves = [m for m in qmodel.modules() if type(m).__name__ in kinds or not list(m.children())]
        quant = [m for m in leaves if type(m).__name__ == "Quantize"]
        if len(quant) != 1:
            raise ValueError(f"qmodel must hold exactly one int8 region (one Quantize), found {len(quant)}")
        scale, zero_point = float(quant[0].scale), int(quant[0].zero_point)
        steps: list = []
        for m in leaves[leaves.index(quant[0]) + 1 :]:
            name = type(m).__name__
            if name in kinds and hasattr(m, "_packed_params"):
                layer = kinds[name](m, scale, zero_point)
                scale, zero_point = layer.output_scale, layer.output_zero_point
                steps.append(layer)
            elif name == "ReLU" and steps and isinstance(steps[-1], IntegerLayer):
                steps[-1].relu = True
            elif name == "Flatten":
                steps.append("flatten")
            elif name == "MaxPool2d":
                steps.append(("maxpool", m.kernel_size, m.stride))
            elif name not in PASS_THROUGH:
                raise ValueError(f"qmodel: no integer-only version of {name}")
        return cls(float(quant[0].scale), int(quant[0].zero_point), steps)

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """x_q = clamp(round(x / s) + z, 0, 255), as the engine's Quantize does (x · (1/s) in float32)."""
        inv = 1.0 / torch.tensor(self.input_scale, dtype=torch.float32)
        return torch.clamp(torch.round(x.float() * inv) + self.input_zero_point, 0, 255).to(torch.int64)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The last layer's output codes for a float input batch (integers from the input's codes on)."""
        q = self.quantize_input(x)
        for step in self.steps:
            if isinstance(step, IntegerLayer):
                if not isinstance(step, IntegerConv2d) and q.dim() > 2:
                    q = q.flatten(1)
                q = step(q)
            elif step == "flatten":
                q = q.flatten(1)
            else:
                q = F.max_pool2d(q.double(), step[1], step[2]).to(torch.int64)
        return q

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        last = [s for s in self.steps if isinstance(s, IntegerLayer)][-1]
        return last.dequantize(self.codes(x)).float()

    def layers(self) -> list[IntegerLayer]:
        return [s for s in self.steps if isinstance(s, IntegerLayer)]
