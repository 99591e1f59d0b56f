"""Integer-only Linear and Conv2d: uint8 activations × int8 weights → int32 accumulator → uint8 output codes.

With x = s_x (x_q − z_x), w = s_w (w_q − z_w) and b_q = round(b / (s_x s_w)) (int32, scale s_x·s_w),
one output of a layer with K inputs per output is

    acc = Σ x_q w_q  −  z_w Σ x_q  −  z_x Σ w_q  +  K z_x z_w  +  b_q           (the cross terms expanded)
    y_q = clamp(z_y + round(acc · M0 · 2^−n), 0, 255),     M0 · 2^−n ≈ M = s_x s_w / s_y

(``ptqlab.core.fixed_point``); a fused ReLU is the clamp's lower bound raised to z_y. Σ w_q and K z_x z_w
depend on the weights only, so engines precompute them; z_w = 0 (symmetric weights) removes the z_w Σ x_q
term, the only cross term that costs work at run time. Jacob et al. 2018, §2.3–2.4.

Each term is computed exactly, with float64 matmul/convolution standing in for an integer kernel (integer
GEMM is not a BLAS routine): every product and partial sum is an integer of magnitude ≤ K·255·255 < 2^53,
which float64 represents exactly, so the result is the exact integer (checked against int64 in the tests). Padding pads
x_q with z_x, the code of the real 0 — what the engines do. An accumulator term outside int32 raises a
ValueError naming ``x_q``: a real int32 accumulator would silently wrap around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ptqlab.core.fixed_point import INT32_MAX, INT32_MIN, quantize_multiplier, requantize

UINT8_MIN, UINT8_MAX = 0, 255


class AccumulatorTerms(NamedTuple):
    """The int32 accumulator of every output, term by term (int64 tensors of the output's shape)."""

    products: torch.Tensor  # Σ x_q w_q
    weight_zero_point_term: torch.Tensor  # z_w Σ x_q
    input_zero_point_term: torch.Tensor  # z_x Σ w_q
    constant: torch.Tensor  # K z_x z_w
    bias: torch.Tensor  # b_q

    def total(self) -> torch.Tensor:
        return (
            self.products
            - self.weight_zero_point_term
            - self.input_zero_point_term
            + self.constant
            + self.bias
        )


def check_int32(value: torch.Tensor, what: str, name: str) -> None:
    lo, hi = int(value.min()), int(value.max())
    if lo < INT32_MIN or hi > INT32_MAX:
        raise ValueError(
            f"{name}: int32 accumulator overflow in {what} (values reach [{lo}, {hi}], int32 holds "
            f"[{INT32_MIN}, {INT32_MAX}]); a real engine would wrap around silently"
        )


def check_codes(x_q: torch.Tensor, lo: int, hi: int, name: str) -> torch.Tensor:
    if not isinstance(x_q, torch.Tensor) or x_q.is_floating_point() or x_q.dtype == torch.bool:
        raise TypeError(
            f"{name} must be an integer tensor of codes, got {getattr(x_q, 'dtype', type(x_q).__name__)}"
        )
    if x_q.numel() and (int(x_q.min()) < lo or int(x_q.max()) > hi):
        raise ValueError(f"{name} holds codes in [{int(x_q.min())}, {int(x_q.max())}], outside [{lo}, {hi}]")
    return x_q.to(torch.int64)


def per_channel_qparams(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(int8 codes as int64, scales float64 (C,), zero points int64 (C,)) of a quantized qint8 weight."""
    if not isinstance(weight, torch.Tensor) or not weight.is_quantized or weight.dtype != torch.qint8:
        raise TypeError(
            "weight must be a quantized torch.qint8 tensor (torch.quantize_per_tensor/per_channel)"
        )
    channels = weight.shape[0]
    if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        if weight.q_per_channel_axis() != 0:
            raise ValueError("weight must be quantized per output channel (axis 0)")
        scale = weight.q_per_channel_scales().to(torch.float64)
        zero_point = weight.q_per_channel_zero_points().to(torch.int64)
    else:
        scale = torch.full((channels,), weight.q_scale(), dtype=torch.float64)
        zero_point = torch.full((channels,), weight.q_zero_point(), dtype=torch.int64)
    return weight.int_repr().to(torch.int64), scale, zero_point


@dataclass
class IntegerLayer:
    """Shared state of an integer-only layer; subclasses say how inputs meet weights (``correlate``)."""

    weight_q: torch.Tensor  # int8 codes (as int64), output channel first
    weight_scale: torch.Tensor  # float64 (C,)
    weight_zero_point: torch.Tensor  # int64 (C,)
    bias_q: torch.Tensor  # int64 (C,), inside int32, scale s_x·s_w
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    relu: bool = False
    m0: torch.Tensor = field(init=False)
    shift: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.m0, self.shift = quantize_multiplier(self.multiplier)

    @property
    def multiplier(self) -> torch.Tensor:
        """M = s_x s_w / s_y per output channel (float64)."""
        return self.input_scale * self.weight_scale / self.output_scale

    @classmethod
    def from_quantized(cls, weight: torch.Tensor, bias: torch.Tensor | None, *, input_scale: float,
                       input_zero_point: int, output_scale: float, output_zero_point: int, relu: bool = False,
                       **geometry) -> IntegerLayer:  # fmt: skip
        """From a qint8 weight (per-tensor or per-channel), a float bias and the activation qparams."""
        codes, scale, zero_point = per_channel_qparams(weight)
        if not (input_scale > 0 and output_scale > 0):
            raise ValueError(f"input_scale and output_scale must be > 0, got {input_scale}, {output_scale}")
        bias_q = torch.zeros_like(zero_point)
        if bias is not None:
            bias_q = torch.round(bias.detach().to(torch.float64) / (input_scale * scale)).to(torch.int64)
            check_int32(bias_q, "the quantized bias round(b / (s_x s_w))", "bias")
        return cls(codes, scale, zero_point, bias_q, float(input_scale), int(input_zero_point),
                   float(output_scale), int(output_zero_point), relu, **geometry)  # fmt: skip

    def correlate(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def per_channel(self, v: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """(C,) reshaped to broadcast against an output (N, C) or (N, C, H, W)."""
        return v.reshape((1, -1) + (1,) * (out.dim() - 2))

    def prepare_input(self, x_q: torch.Tensor) -> torch.Tensor:
        return x_q

    def accumulator_terms(self, x_q: torch.Tensor) -> AccumulatorTerms:
        """acc term by term for input codes ``x_q`` (uint8 range), each checked to fit int32."""
        x = self.prepare_input(check_codes(x_q, UINT8_MIN, UINT8_MAX, "x_q"))
        products = self.correlate(x, self.weight_q)
        check_int32(products, "Σ x_q·w_q", "x_q")
        x_sums = self.correlate(x, torch.ones_like(self.weight_q))
        per_in = self.weight_q[0].numel()
        w_sums = self.weight_q.reshape(len(self.weight_q), -1).sum(dim=1)
        c = lambda v: self.per_channel(v, products)  # noqa: E731
        terms = AccumulatorTerms(
            products,
            c(self.weight_zero_point) * x_sums,
            self.input_zero_point * c(w_sums),
            c(per_in * self.input_zero_point * self.weight_zero_point),
            c(self.bias_q),
        )
        check_int32(terms.total(), "the accumulator (products, cross terms and bias)", "x_q")
        return terms

    def accumulate(self, x_q: torch.Tensor) -> torch.Tensor:
        return self.accumulator_terms(x_q).total()

    def __call__(self, x_q: torch.Tensor) -> torch.Tensor:
        """Output codes (int64 in [0, 255]; [z_y, 255] with the fused ReLU)."""
        acc = self.accumulate(x_q)
        qmin = self.output_zero_point if self.relu else UINT8_MIN
        m0, shift = self.per_channel(self.m0, acc), self.per_channel(self.shift, acc)
        return requantize(acc, m0, shift, self.output_zero_point, qmin=max(qmin, UINT8_MIN), qmax=UINT8_MAX)

    def dequantize(self, y_q: torch.Tensor) -> torch.Tensor:
        return (y_q.to(torch.float64) - self.output_zero_point) * self.output_scale


@dataclass
class IntegerLinear(IntegerLayer):
    """y_q = requantize(x_q · W_qᵀ with zero-point cross terms + b_q); x_q of shape (N, in_features)."""

    def correlate(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != w.shape[1]:
            raise ValueError(f"x_q must have shape (N, {w.shape[1]}), got {tuple(x.shape)}")
        return (x.double() @ w.double().T).round().to(torch.int64)  # exact: see the module docstring


@dataclass
class IntegerConv2d(IntegerLayer):
    """The same on 2-D convolutions (x_q of shape (N, C_in, H, W)); padding uses z_x, the code of 0.0."""

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def prepare_input(self, x_q: torch.Tensor) -> torch.Tensor:
        if x_q.dim() != 4:
            raise ValueError(f"x_q must have shape (N, C, H, W), got {tuple(x_q.shape)}")
        ph, pw = self.padding
        return F.pad(x_q, (pw, pw, ph, ph), value=self.input_zero_point)

    def correlate(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != w.shape[1] * self.groups:
            raise ValueError(f"x_q has {x.shape[1]} channels, the weight expects {w.shape[1] * self.groups}")
        # every partial sum is an integer of magnitude < 2^53 here (products fit int32), so float64 is exact
        out = F.conv2d(x.double(), w.double(), stride=self.stride, dilation=self.dilation, groups=self.groups)
        return out.round().to(torch.int64)


def linear_from_torch_ao(
    module, input_scale: float, input_zero_point: int, relu: bool = False
) -> IntegerLinear:
    """An IntegerLinear holding the same integers as a torch.ao quantized Linear (or LinearReLU)."""
    relu = relu or type(module).__name__ == "LinearReLU"
    return IntegerLinear.from_quantized(
        module.weight(), module.bias(), input_scale=input_scale, input_zero_point=input_zero_point,
        output_scale=float(module.scale), output_zero_point=int(module.zero_point), relu=relu,
    )  # fmt: skip


def conv2d_from_torch_ao(
    module, input_scale: float, input_zero_point: int, relu: bool = False
) -> IntegerConv2d:
    """An IntegerConv2d holding the same integers as a torch.ao quantized Conv2d (or ConvReLU2d)."""
    if module.padding_mode != "zeros":
        raise ValueError(f"module: only zero padding is supported, got padding_mode={module.padding_mode!r}")
    relu = relu or type(module).__name__ == "ConvReLU2d"
    return IntegerConv2d.from_quantized(
        module.weight(), module.bias(), input_scale=input_scale, input_zero_point=input_zero_point,
        output_scale=float(module.scale), output_zero_point=int(module.zero_point), relu=relu,
        stride=tuple(module.stride), padding=tuple(module.padding), dilation=tuple(module.dilation),
        groups=module.groups,
    )  # fmt: skip
