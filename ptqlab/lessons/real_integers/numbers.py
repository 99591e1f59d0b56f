"""Lab 09's numbers: the digits MLP run in integers only, packing byte by byte, float grids vs integer grids,
codebooks, and ptqlab's weight-only Linear next to the engines. Every number shown is computed here."""

from __future__ import annotations

import functools
import math

import torch

from ptqlab.backends import get_recipe
from ptqlab.backends.integer_model import IntegerModel
from ptqlab.core.affine import fake_quantize, qparams_for, quantize
from ptqlab.core.codebook import kmeans_quantize, linear_quantize
from ptqlab.core.fixed_point import INT32_MAX
from ptqlab.core.float_formats import FORMATS, representable_values, scaled_round_trip
from ptqlab.core.spec import PerTensor, QuantSpec
from ptqlab.models import digits_mlp, digits_split
from ptqlab.ptq.folding import fold_batchnorm

LAYERS = ("fc1", "fc2", "fc3", "fc4")


@functools.lru_cache(maxsize=1)
def lab_mlp() -> tuple:
    """(folded fp32 MLP, torch.ao x86 int8 model, IntegerModel on the same integers, test split)."""
    split = digits_split()
    fp32 = fold_batchnorm(digits_mlp(progress=False))
    batches = [split.x_train[i : i + 256] for i in range(0, len(split.x_train), 256)]
    engine = get_recipe("ao-static-int8").apply(fp32, (batches[0],), batches, observer="minmax").model
    return fp32, engine, IntegerModel.from_torch_ao(engine), split


@functools.lru_cache(maxsize=4)
def layer_inputs(index: int) -> torch.Tensor:
    """Input codes of integer layer ``index`` for every test digit (the previous layers run in integers)."""
    _, _, integer, split = lab_mlp()
    q = integer.quantize_input(split.x_test).flatten(1)
    for layer in integer.layers()[:index]:
        q = layer(q)
    return q


def layer_walkthrough(name: str, sample: int) -> dict:
    """Everything the step-by-step view shows for layer ``name`` (fc1…fc4) and test digit ``sample``."""
    if name not in LAYERS:
        raise ValueError(f"name must be one of {LAYERS}, got {name!r}")
    index = LAYERS.index(name)
    layer = lab_mlp()[2].layers()[index]
    x_q = layer_inputs(index)
    sample = min(max(sample, 0), len(x_q) - 1)
    terms = layer.accumulator_terms(x_q[sample : sample + 1])
    acc_all = layer.accumulate(x_q)
    k = layer.weight_q.shape[1]
    top_x = int(x_q.max())
    worst = k * max(top_x, 1) * 128
    return {
        "layer": layer, "terms": terms, "acc": acc_all, "codes": layer(x_q[sample : sample + 1])[0],
        "k": k, "top_x": top_x, "worst_case": worst, "overflow_k": INT32_MAX // (max(top_x, 1) * 128),
        "headroom_bits": math.log2(INT32_MAX / max(int(acc_all.abs().max()), 1)), "sample": sample, "name": name,
    }  # fmt: skip


@functools.lru_cache(maxsize=1)
def whole_model() -> dict:
    fp32, engine, integer, split = lab_mlp()
    with torch.inference_mode():
        engine_out, fp_out = engine(split.x_test), fp32(split.x_test)
    last = integer.layers()[-1]
    codes = integer.codes(split.x_test)
    engine_codes = torch.round(engine_out / last.output_scale).long() + last.output_zero_point
    acc = lambda out: float((out.argmax(1) == split.y_test).float().mean())  # noqa: E731
    return {
        "fp32": acc(fp_out), "engine": acc(engine_out), "integer": acc(last.dequantize(codes)),
        "same_codes": float((codes == engine_codes).float().mean()),
        "max_diff": int((codes - engine_codes).abs().max()), "n": len(split.y_test),
    }  # fmt: skip


# ---- packing ------------------------------------------------------------------------------------------


def weight_row_codes(bits: int, count: int) -> torch.Tensor:
    """The first ``count`` codes of fc1's first row, quantized symmetric per-tensor to ``bits``, offset to
    unsigned (code + 2^(b−1))."""
    w = lab_mlp()[0].fc1.weight.detach()
    spec = QuantSpec(bits)
    codes = quantize(w, qparams_for(w, spec), spec).long()[0, :count]
    return codes - spec.qmin


# ---- float formats vs integer grids -------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def lab_tensor(kind: str) -> torch.Tensor:
    """A real weight (fc2) or activation (fc2's input, post-ReLU) of the MLP, flattened."""
    fp32, _, _, split = lab_mlp()
    if kind == "weight":
        return fp32.fc2.weight.detach().reshape(-1)
    with torch.inference_mode():
        return torch.relu(fp32.fc1(split.x_test.flatten(1))).reshape(-1)


def round_trips(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """x̂ for fp16, bf16, scaled fp8 e4m3/e5m2, and symmetric per-tensor int8/int4 (same absmax)."""
    out = {"fp16": x.half().float(), "bf16": x.bfloat16().float()}
    out |= {name: scaled_round_trip(x, name) for name in ("fp8_e4m3", "fp8_e5m2")}
    for bits in (8, 4):
        spec = QuantSpec(bits, granularity=PerTensor())
        out[f"int{bits}"] = fake_quantize(x, qparams_for(x, spec), spec)
    return out


def grids(kind: str, fmt: str, int_bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(tensor, the float format's grid scaled to the tensor's absmax, the int grid with the same absmax)."""
    x = lab_tensor(kind)
    amax = float(x.abs().max())
    values = representable_values(fmt)
    float_grid = values / FORMATS[fmt].max * amax
    spec = QuantSpec(int_bits)
    scale = float(qparams_for(x, spec).scale)
    int_grid = torch.arange(spec.qmin, spec.qmax + 1, dtype=torch.float64) * scale
    return x, float_grid, int_grid


# ---- codebooks ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def codebook_accuracy(bits: int) -> dict[str, float]:
    """Top-1 of the MLP with every Linear weight replaced (activations in float): linear vs k-means."""
    fp32, _, _, split = lab_mlp()
    result = {}
    for kind, fn in (
        ("linear", lambda w: linear_quantize(w, bits)),
        ("k-means", lambda w: kmeans_quantize(w, bits).dequantize()),
    ):
        model = fold_batchnorm(fp32)
        for name in LAYERS:
            layer = getattr(model, name)
            layer.weight.data = fn(layer.weight.detach()).reshape(layer.weight.shape)
        with torch.inference_mode():
            result[kind] = float((model(split.x_test).argmax(1) == split.y_test).float().mean())
    return result


# ---- ptqlab's weight-only Linear vs the engines -------------------------------------------------------
