"""Lab 09's numbers: the digits MLP run in integers only, packing byte by byte, float grids vs integer grids,
codebooks, and ptqlab's weight-only Linear next to the engines. Every number shown is computed here."""

from __future__ import annotations

import functools
import math
import tempfile
from pathlib import Path

import torch

from ptqlab.backends import get_recipe
from ptqlab.backends.integer_model import IntegerModel
from ptqlab.core.affine import fake_quantize, qparams_for, quantize
from ptqlab.core.codebook import codebook_bits_per_weight, kmeans_quantize, linear_quantize, nf4_quantize
from ptqlab.core.fixed_point import INT32_MAX
from ptqlab.core.float_formats import FORMATS, format_table, representable_values, scaled_round_trip
from ptqlab.core.metrics import mse, sqnr_db
from ptqlab.core.packed_file import bits_per_weight, payload_nbytes, save_packed
from ptqlab.core.packing import byte_table
from ptqlab.core.spec import PerChannel, PerGroup, PerTensor, QuantSpec
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


def walkthrough_markdown(w: dict, channel: int = 0) -> str:
    layer, t = w["layer"], w["terms"]
    c = min(max(channel, 0), len(layer.m0) - 1)
    m, m0, n = float(layer.multiplier[c]), int(layer.m0[c]), int(layer.shift[c])
    rows = [
        f"| term | value (output channel {c}) |", "|---|---|",
        f"| Σ x_q·w_q | {int(t.products[0, c]):,} |",
        f"| − z_w·Σ x_q (z_w = {int(layer.weight_zero_point[c])}) | {-int(t.weight_zero_point_term[0, c]):,} |",
        f"| − z_x·Σ w_q (z_x = {layer.input_zero_point}) | {-int(t.input_zero_point_term[0, c]):,} |",
        f"| + K·z_x·z_w (K = {w['k']}) | {int(t.constant[0, c]):,} |",
        f"| + b_q = round(b / (s_x s_w)) | {int(t.bias[0, c]):,} |",
        f"| **acc** (int32) | **{int(t.total()[0, c]):,}** |",
    ]  # fmt: skip
    return "\n".join(rows) + (
        f"\n\nM = s_x·s_w/s_y = {m:.6g} = M0·2^−n with **M0 = {m0:,}**, **n = {n}** "
        f"(M0·2^−n = {m0 / 2**n:.10g}, relative error {abs(m0 / 2**n - m) / m:.1e}). "
        f"Output code: z_y + round(acc·M0·2^−n) = {layer.output_zero_point} + "
        f"{int(w['codes'][c]) - layer.output_zero_point} = **{int(w['codes'][c])}**"
        + (" (ReLU fused: clamped at z_y)" if layer.relu else "")
        + f".\n\nOverflow: with K = {w['k']} inputs, codes up to {w['top_x']} and |w_q| ≤ 128, the worst case "
        f"|acc| ≤ {w['worst_case']:,} vs int32's {INT32_MAX:,}: overflow could start beyond K = "
        f"{w['overflow_k']:,} inputs. On the real test digits the largest |acc| leaves "
        f"**{w['headroom_bits']:.1f} bits** of headroom."
    )


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


def whole_model_markdown() -> str:
    r = whole_model()
    return (
        f"| digits MLP (BN folded), {r['n']} test digits | top-1 accuracy |\n|---|---|\n"
        f"| fp32 | {r['fp32']:.2%} |\n| torch.ao x86 int8 engine | {r['engine']:.2%} |\n"
        f"| ptqlab integer-only (same integers) | {r['integer']:.2%} |\n\n"
        f"Final-layer output codes equal to the engine's: **{r['same_codes']:.2%}**, the rest within "
        f"{r['max_diff']} code — the engine requantizes in float32 with ties to even and a float bias; the "
        "fixed-point path rounds ties up and adds an int32 bias."
    )


# ---- packing ------------------------------------------------------------------------------------------


def weight_row_codes(bits: int, count: int) -> torch.Tensor:
    """The first ``count`` codes of fc1's first row, quantized symmetric per-tensor to ``bits``, offset to
    unsigned (code + 2^(b−1))."""
    w = lab_mlp()[0].fc1.weight.detach()
    spec = QuantSpec(bits)
    codes = quantize(w, qparams_for(w, spec), spec).long()[0, :count]
    return codes - spec.qmin


def packing_markdown(bits: int, count: int = 8) -> str:
    codes = weight_row_codes(bits, count)
    rows = ["| byte | value | bits (7 … 0) | holds |", "|---|---|---|---|"]
    for r in byte_table(codes, bits):
        held = ", ".join(f"code {i} bits {lo}–{hi}" for i, lo, hi in r["codes"])
        rows.append(f"| {r['byte']} | {r['value']} | `{r['bits']}` | {held} |")
    listed = ", ".join(str(int(c)) for c in codes)
    return f"Codes (unsigned, {bits} bits): {listed}\n\n" + "\n".join(rows)


def packed_file_markdown(bits: int, group_size: int) -> str:
    weights = {n: getattr(lab_mlp()[0], n).weight.detach() for n in LAYERS}
    spec = QuantSpec(bits, granularity=PerGroup(group_size, axis=1))
    if any(w.shape[1] % group_size for w in weights.values()):
        spec = QuantSpec(bits, granularity=PerChannel(0))
    with tempfile.TemporaryDirectory() as tmp:
        size = save_packed(Path(tmp) / "mlp.ptq", weights, spec)
    n = sum(w.numel() for w in weights.values())
    payload = sum(payload_nbytes(tuple(w.shape), spec) for w in weights.values())
    bpw = sum(bits_per_weight(tuple(w.shape), spec) * w.numel() for w in weights.values()) / n
    return (
        f"{n:,} weights, {spec}: formula {bpw:.4f} bits/weight → {payload:,} bytes of payload; "
        f"the file on disk is **{size:,} bytes** = 16 (magic + length) + {size - 16 - payload:,} (JSON header) "
        f"+ {payload:,}. The same weights in fp32: {4 * n:,} bytes ({4 * n / size:.1f}× larger)."
    )


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


def format_error_markdown() -> str:
    rows = [
        "| format | bits | weight SQNR (dB) | activation SQNR (dB) | weight MSE |",
        "|---|---|---|---|---|",
    ]
    w, a = lab_tensor("weight"), lab_tensor("activation")
    wr, ar = round_trips(w), round_trips(a)
    for name in wr:
        bits = FORMATS[name].bits if name in FORMATS else int(name[3:])
        rows.append(
            f"| {name} | {bits} | {sqnr_db(w, wr[name]):.1f} | {sqnr_db(a, ar[name]):.1f} | {mse(w, wr[name]):.2e} |"
        )
    return "\n".join(rows)


def format_table_markdown() -> str:
    rows = ["| format | sign·exp·mantissa | bias | max | smallest normal | smallest subnormal | ε (step at 1) |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in format_table():
        rows.append(f"| {r['format']} | 1·{r['exponent']}·{r['mantissa']} | {r['bias']} | {r['max']:.4g} | "
                    f"{r['min_normal']:.3g} | {r['min_subnormal']:.3g} | {r['epsilon']:.3g} |")  # fmt: skip
    return "\n".join(rows)


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
def codebook_markdown(bits: int) -> str:
    w = lab_tensor("weight")
    book = kmeans_quantize(w, bits)
    rows = ["| grid (fc2 weight) | bits/weight (metadata counted) | MSE | SQNR (dB) |", "|---|---|---|---|"]
    lin = linear_quantize(w, bits)
    rows.append(
        f"| linear, {2**bits} levels, per tensor | {bits + 64 / w.numel():.3f} | {mse(w, lin):.2e} | {sqnr_db(w, lin):.1f} |"
    )
    km = book.dequantize()
    rows.append(
        f"| k-means, {2**bits} centroids | {codebook_bits_per_weight(w.numel(), bits):.3f} | {mse(w, km):.2e} | {sqnr_db(w, km):.1f} |"
    )
    if bits == 4:
        nf = nf4_quantize(w, 64)[2]
        rows.append(f"| NF4, blocks of 64 | {4 + 32 / 64:.3f} | {mse(w, nf):.2e} | {sqnr_db(w, nf):.1f} |")
    return "\n".join(rows)


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


def codebook_accuracy_markdown(bits: int) -> str:
    r = codebook_accuracy(bits)
    return (
        f"Digits MLP (BN folded), every Linear weight on a {2**bits}-level per-tensor grid, activations in float: "
        f"top-1 **{r['linear']:.2%}** with linear levels, **{r['k-means']:.2%}** with k-means centroids."
    )


# ---- ptqlab's weight-only Linear vs the engines -------------------------------------------------------


def weight_only_markdown(model: str, batch: int, repeats: int = 10) -> str:
    """The comparison table (measured now, interleaved with fp32) and why the Python layer is slow."""
    from ptqlab.bench.weight_only import compare_weight_only

    rows, skipped = compare_weight_only(model, batch, repeats=repeats)
    lines = [
        "| variant | size (MB) | quality | median ms [p10, p90] | speed vs fp32 |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.variant} | {r.size_bytes / 1e6:.2f} | {r.quality:.4f} | {r.median_ms:.2f} "
                     f"[{r.p10_ms:.2f}, {r.p90_ms:.2f}] | {r.speedup:.2f}× |")  # fmt: skip
    lines += [f"\n*Not run here:* {s}" for s in skipped]
    return "\n".join(lines)
