"""Quantization schemes compared on real tensors: granularity on weights, symmetry on post-ReLU activations.

Weights are viewed as a matrix W (C_out, K) with K = in_features (Linear) or in·kh·kw (Conv). Per-channel
SQNR of row c:   SQNR_c = 10·log10( Σ_k W_ck² / Σ_k (W_ck - Ŵ_ck)² )   (dB).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch
from torch import nn

from ptqlab.core.affine import QParams, fake_quantize, qparams_for, quantize
from ptqlab.core.metrics import sqnr_db
from ptqlab.core.spec import PerChannel, PerGroup, PerTensor, QuantSpec
from ptqlab.labkit.models import LABELS, digits_test_accuracy, lab_model
from ptqlab.models import digits_split
from ptqlab.ptq.calibrate import capture
from ptqlab.ptq.folding import bn_scale_factors
from ptqlab.ptq.simulate import evaluate_accuracy, simulate

GRANULARITIES = ("per-tensor", "per-channel", "per-group")


def as_matrix(weight: torch.Tensor) -> torch.Tensor:
    """W as (C_out, K): a Linear weight as is, a Conv weight flattened over (in, kh, kw)."""
    if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
        raise ValueError("weight must be a tensor with at least 2 dimensions (C_out, ...)")
    return weight.detach().to(torch.float32).flatten(1)


def fitting_group_size(k: int, group_size: int) -> int:
    """The largest divisor of ``k`` not above ``group_size`` (a group must tile the row exactly)."""
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    return max(d for d in range(1, min(k, group_size) + 1) if k % d == 0)


class SchemeResult(NamedTuple):
    """One granularity applied to one weight matrix."""

    spec: QuantSpec
    qparams: QParams
    w_hat: torch.Tensor  # (C_out, K) fake-quantized
    scales: torch.Tensor  # (C_out, blocks per row): the scale each block uses
    channel_sqnr_db: torch.Tensor  # (C_out,)
    sqnr_db: float
    bits_per_element: float  # codes + one fp16 scale per block (+ an fp16 zero point if asymmetric)


def _row_sqnr(signal: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(per-row SQNR in dB as float32, the whole matrix's SQNR in dB from the same sums)."""
    per_row = (10 * torch.log10(signal.clamp_min(1e-30) / noise.clamp_min(1e-30))).float()
    total_noise = float(noise.sum())
    total = (
        math.inf if total_noise == 0.0 else 10 * math.log10(max(float(signal.sum()), 1e-300) / total_noise)
    )
    return per_row, total


def compare_granularities(
    weight: torch.Tensor, bits: int = 4, group_size: int = 32, symmetric: bool = True
) -> dict[str, SchemeResult]:
    """Fake-quantize ``weight`` per tensor, per output channel and per group of ``group_size`` inputs
    (shrunk to a divisor of K if needed) with min/max ranges; report scales and errors.

    The SQNRs come from one float64 pass per granularity: per row 10·log10(Σw²/Σ(w−ŵ)²), and the whole
    matrix's from the same sums (what ``core.metrics.sqnr_db`` gives, to float64 rounding)."""
    w = as_matrix(weight)
    c, k = w.shape
    g = fitting_group_size(k, group_size)
    grains = {"per-tensor": PerTensor(), "per-channel": PerChannel(0), "per-group": PerGroup(g, axis=1)}
    w64 = w.double()
    signal = w64.square().sum(1)
    results = {}
    for name, grain in grains.items():
        spec = QuantSpec(bits=bits, symmetric=symmetric, granularity=grain)
        qp = qparams_for(w, spec)
        w_hat = fake_quantize(w, qp, spec)
        scales = qp.scale.reshape(-1, 1).expand(c, 1) if qp.scale.numel() == 1 else qp.scale.reshape(c, -1)
        per_row, total = _row_sqnr(signal, (w64 - w_hat.double()).square_().sum(1))
        results[name] = SchemeResult(
            spec, qp, w_hat, scales, per_row, total, spec.bits_per_element(tuple(w.shape))
        )
    return results


def weight_matrices_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """name -> weight of every Linear/Conv as a (C_out, K) matrix (for layer pickers)."""
    return {
        n: as_matrix(m.weight)
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)
    }


class FoldingPoint(NamedTuple):
    bits: int
    granularity: str
    folded: bool
    accuracy: float


def bn_folding_study(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, bits=(2, 3, 4, 6, 8), symmetric: bool = True
) -> list[FoldingPoint]:
    """Weight-only accuracy per bits × {per-tensor, per-channel} × {BN kept, BN folded before quantizing}."""
    points = []
    for b in bits:
        for name, grain in (("per-tensor", PerTensor()), ("per-channel", PerChannel(0))):
            for folded in (False, True):
                spec = QuantSpec(bits=b, symmetric=symmetric, granularity=grain)
                accuracy = evaluate_accuracy(simulate(model, spec, fold_bn=folded), x, y)
                points.append(FoldingPoint(b, name, folded, accuracy))
    return points


ACT_SCHEMES = {
    "symmetric int (zero point 0)": dict(signed=True, symmetric=True),
    "asymmetric uint (zero point from min)": dict(signed=False, symmetric=False),
}


class ActSchemeResult(NamedTuple):
    spec: QuantSpec
    qparams: QParams
    x_hat: torch.Tensor
    sqnr_db: float
    codes_used: int  # distinct integer codes the data actually lands on


def activation_symmetry(act: torch.Tensor, bits: int = 4) -> dict[str, ActSchemeResult]:
    """Symmetric vs asymmetric min/max quantization of one activation tensor (e.g. post-ReLU, x ≥ 0).

    On x ≥ 0 a symmetric signed grid spends its negative half on nothing: it uses at most 2^(b-1) + 1
    of its 2^b codes, i.e. about one bit is lost; the asymmetric grid puts all 2^b codes on [0, max].
    """
    results = {}
    for name, kw in ACT_SCHEMES.items():
        spec = QuantSpec(bits=bits, **kw)
        qp = qparams_for(act, spec)
        x_hat = fake_quantize(act, qp, spec)
        codes = int(quantize(act, qp, spec).unique().numel())
        results[name] = ActSchemeResult(spec, qp, x_hat, sqnr_db(act, x_hat), codes)
    return results


def activation_accuracy(
    model: nn.Module, calibration: torch.Tensor, x: torch.Tensor, y: torch.Tensor, bits: int
) -> dict[str, float]:
    """Accuracy with every layer input fake-quantized at ``bits`` (weights float), per activation scheme."""
    return {
        name: evaluate_accuracy(
            simulate(model, None, QuantSpec(bits=bits, **kw), calibration=calibration), x, y
        )
        for name, kw in ACT_SCHEMES.items()
    }


def effective_bits(codes_used: int) -> float:
    """log2 of the number of codes actually used."""
    return math.log2(max(codes_used, 1))


# ---- what lab 03 shows, cached per setting -------------------------------------------------------------

LAB_BITS = (2, 3, 4, 6, 8)
MODEL_CHOICES = {label: name for name, label in LABELS.items()}  # dropdown label -> model name


@functools.cache
def lab_weight_matrices(name: str, folded: bool) -> dict[str, torch.Tensor]:
    """The lab model's weight matrices (BatchNorm folded first when ``folded``; MiniLM has none)."""
    return weight_matrices_of(lab_model(name, folded and name != "minilm"))


@functools.cache
def batchnorm_count(name: str) -> int:
    """How many BatchNorm layers the lab model has (what the fold switch can fold)."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in lab_model(name, False).modules())


def default_layer(name: str, folded: bool = False) -> str:
    """The layer the lab opens on: MiniLM's first FFN output (an outlier channel), else the first layer."""
    layers = list(lab_weight_matrices(name, folded))
    return "bert.encoder.layer.0.output.dense" if name == "minilm" else layers[0]


@functools.lru_cache(maxsize=64)
def lab_granularities(
    name: str, folded: bool, layer: str, *, bits: int, group_size: int, symmetric: bool
) -> dict[str, SchemeResult]:
    """``compare_granularities`` on one layer of a lab model."""
    w = lab_weight_matrices(name, folded)[layer]
    return compare_granularities(w, bits, group_size, symmetric)


@functools.cache
def lab_folding(name: str) -> tuple[list[FoldingPoint], float, dict[str, torch.Tensor]]:
    """(BN-folding study points, fp32 accuracy, BatchNorm scale factors) of a digits model."""
    data = digits_split()
    model = lab_model(name)
    points = bn_folding_study(model, data.x_test, data.y_test, bits=LAB_BITS)
    return points, digits_test_accuracy(model), bn_scale_factors(model)


@functools.cache
def lab_post_relu() -> torch.Tensor:
    """The digits MLP's fc2 input (after fc1 → BN → ReLU) on the 360 test images."""
    return capture(lab_model("mlp"), digits_split().x_test, "fc2")


ACT_SLIDER_BITS = tuple(range(2, 9))  # lab 03's activation-bits slider


@functools.cache
def lab_activation_accuracies() -> dict[int, dict[str, float]]:
    """Accuracy per activation scheme of the digits MLP (256 calibration images) at every bit width of the
    slider, computed together on first use (~0.1 s each) so that moving the slider only looks them up."""
    data = digits_split()
    model = lab_model("mlp")
    return {
        b: activation_accuracy(model, data.x_train[:256], data.x_test, data.y_test, b)
        for b in ACT_SLIDER_BITS
    }


def lab_activation_accuracy(bits: int) -> tuple[dict[str, float], float]:
    """(accuracy per activation scheme at A``bits``, fp32 accuracy) of the digits MLP, 256 calibration images."""
    if bits not in ACT_SLIDER_BITS:
        raise ValueError(f"bits must be one of {ACT_SLIDER_BITS}, got {bits!r}")
    return lab_activation_accuracies()[bits], digits_test_accuracy(lab_model("mlp"))
