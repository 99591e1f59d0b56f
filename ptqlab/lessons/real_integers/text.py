"""Lab 09's sentences and tables, built from the integers the lab computed."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import torch

from ptqlab.backends.integer_only import UINT8_MAX, UINT8_MIN
from ptqlab.core.codebook import codebook_bits_per_weight, kmeans_quantize, linear_quantize, nf4_quantize
from ptqlab.core.fixed_point import INT32_MAX, multiply_by_quantized_multiplier
from ptqlab.core.float_formats import FORMATS, format_table
from ptqlab.core.metrics import mse, sqnr_db
from ptqlab.core.packed_file import bits_per_weight, payload_nbytes, save_packed
from ptqlab.core.packing import byte_table
from ptqlab.core.spec import PerChannel, PerGroup, QuantSpec
from ptqlab.lessons.real_integers.numbers import (
    LAYERS,
    codebook_accuracy,
    lab_mlp,
    lab_tensor,
    layer_walkthrough,
    round_trips,
    weight_row_codes,
    whole_model,
)
from ptqlab.lessons.real_integers.questions import PACKED_SHAPE, PACKED_SPEC


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
        + output_code_sentence(layer, int(t.total()[0, c]), m0, n, int(w["codes"][c]))
        + f"\n\nOverflow: with K = {w['k']} inputs, codes up to {w['top_x']} and |w_q| ≤ 128, the worst case "
        f"|acc| ≤ {w['worst_case']:,} vs int32's {INT32_MAX:,}: overflow could start beyond K = "
        f"{w['overflow_k']:,} inputs. On the real test digits the largest |acc| leaves "
        f"**{w['headroom_bits']:.1f} bits** of headroom."
    )


def output_code_sentence(layer, acc: int, m0: int, shift: int, code: int) -> str:
    """ "Output code: z_y + round(acc·M0·2^−n) = …", naming the clamp only when it fired: the fused ReLU's floor
    z_y when the rounded value fell below it, uint8's 0 or 255 when it fell outside."""
    z = layer.output_zero_point
    rounded = int(
        multiply_by_quantized_multiplier(torch.tensor([acc]), torch.tensor([m0]), torch.tensor([shift]))[0]
    )
    lo = max(z, UINT8_MIN) if layer.relu else UINT8_MIN
    raw = z + rounded
    text = f"Output code: z_y + round(acc·M0·2^−n) = {z} + {rounded} = {raw}"
    if raw < lo and layer.relu:
        text += f", below z_y, so the fused ReLU clamps it to **{code}** (= z_y, the code of 0.0)."
    elif raw < lo or raw > UINT8_MAX:
        text += f", outside uint8, so it saturates to **{code}**."
    elif layer.relu:
        text += f" = **{code}** (≥ z_y = {z}: the fused ReLU's clamp does not fire for this channel)."
    else:
        text += f" = **{code}**."
    return text


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


def codebook_accuracy_markdown(bits: int) -> str:
    r = codebook_accuracy(bits)
    return (
        f"Digits MLP (BN folded), every Linear weight on a {2**bits}-level per-tensor grid, activations in float: "
        f"top-1 **{r['linear']:.2%}** with linear levels, **{r['k-means']:.2%}** with k-means centroids."
    )


PYTHON_LAYERS = ("W8A16Linear", "W4A16Linear")
WEIGHT_ONLY_ENGINES = ("torchao-int8-weight-only", "torchao-int4-weight-only", "ort-int4-weight-only")
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def weight_only_markdown(model: str, batch: int, repeats: int = 10) -> str:
    """The comparison table (measured now, interleaved with fp32) and what it says on this CPU."""
    from ptqlab.backends.hardware import hardware_facts, last_level_cache_bytes
    from ptqlab.bench.weight_only import ENGINE_RECIPES, compare_weight_only
    from ptqlab.labkit.layout import timed_bar

    with timed_bar(len(ENGINE_RECIPES) + 1, f"Weight-only variants of the {model}, batch {batch}") as step:
        rows, skipped = compare_weight_only(model, batch, repeats=repeats, step=step)
    verdict = weight_only_verdict(rows, batch, hardware_facts("cpu").isa, last_level_cache_bytes())
    return weight_only_table(rows, skipped) + "\n\n" + verdict


def weight_only_table(rows, skipped: list[str]) -> str:
    lines = [
        "| variant | size (MB) | quality | median ms [p10, p90] | speed vs fp32 |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.variant} | {r.size_bytes / 1e6:.2f} | {r.quality:.4f} | {r.median_ms:.2f} "
                     f"[{r.p10_ms:.2f}, {r.p90_ms:.2f}] | {r.speedup:.2f}× |")  # fmt: skip
    lines += [f"\n*Not run here:* {s}" for s in skipped]
    return "\n".join(lines)


def weight_only_verdict(rows, batch: int, isa: dict[str, bool], llc_bytes: int | None) -> str:
    """Whether the engines' weight-only kernels beat fp32 *here* (``speedup`` of the same interleaved run), and
    why not when they do not: each call dequantizes int8/int4 to float before multiplying (extra work fp32
    skips), the CPU's int8 dot-product instructions (read from its flags) play no part in a float GEMM, and
    fewer bytes only pay when the forward is memory-bound — batch 1 with weights larger than the cache."""
    by = {r.variant: r for r in rows}
    engines = [by[n] for n in WEIGHT_ONLY_ENGINES if n in by]
    python = [r for r in rows if r.variant.startswith(PYTHON_LAYERS)]
    if not engines:
        return "*No engine weight-only kernel ran here (see “Not run here”): only ptqlab's Python layers are compared.*"
    fmt = lambda r: f"{r.variant} ({r.speedup:.2f}×)"  # noqa: E731
    base = by.get("fp32")
    apart = lambda r: base is None or r.p90_ms < base.p10_ms or r.p10_ms > base.p90_ms  # noqa: E731
    slower = [r for r in engines if r.speedup < 1.0 and apart(r)]
    faster = [r for r in engines if r.speedup >= 1.0 and apart(r)]
    noise = [r for r in engines if not apart(r)]
    out = []
    if faster:
        out.append(f"**Faster than fp32 here:** {', '.join(map(fmt, faster))}.")
    if noise:
        out.append(
            f"**Within the noise:** {', '.join(map(fmt, noise))} — their p10–p90 range overlaps fp32's, so this "
            "run cannot tell them from fp32 (press again, or measure on an idle machine)."
        )
    if slower:
        out.append(f"**Slower than fp32 here:** {', '.join(map(fmt, slower))}.")
        if python:
            best_python = max(python, key=lambda r: r.speedup)
            beaten = [r.variant for r in slower if r.speedup < best_python.speedup]
            if beaten:
                out.append(
                    f"{', '.join(beaten)} {'is' if len(beaten) == 1 else 'are'} even slower than ptqlab's "
                    f"Python layer {best_python.variant} ({best_python.speedup:.2f}×)."
                )
        out.append(_slow_reason(batch, isa, llc_bytes, by.get("fp32")))
    out.append(_ort_sentence(by.get("ort-fp32"), by.get("ort-int4-weight-only")))
    return "\n\n".join(o for o in out if o)


def _slow_reason(batch: int, isa: dict[str, bool], llc_bytes: int | None, fp32) -> str:
    """Why an engine's weight-only kernel is slower than fp32 here: dequantize work, the CPU's flags, and
    whether memory traffic limits fp32 at all (batch > 1, or weights inside the last-level cache)."""
    have = [f for f in INT8_DOT_FLAGS if isa.get(f)]
    simd = "AVX-512" if isa.get("avx512f") else "AVX2" if isa.get("avx2") else "no AVX2"
    flags = (f"This CPU lists {', '.join(have)}" if have else f"This CPU lists {simd} and none of "
             f"{', '.join(INT8_DOT_FLAGS)}")  # fmt: skip
    fits = llc_bytes is not None and fp32 is not None and fp32.size_bytes <= llc_bytes
    bound = (
        f"at batch {batch} each weight feeds {2 * batch} FLOPs, so the GEMM, not memory, sets the time"
        if batch > 1
        else (f"the fp32 weights ({fp32.size_bytes / 1e6:.1f} MB) fit in the {llc_bytes / 2**20:.0f} MiB "
              "last-level cache, so memory traffic is not what limits fp32" if fits
              else "at batch 1 each weight is read once per row, and on this CPU the dequantize work outweighs the "
              "bytes it saves")
    )  # fmt: skip
    return (
        "Why: a weight-only kernel multiplies in float, so it must turn every int8/int4 weight back into "
        f"a float (unpack, subtract the zero point, multiply by the scale) on every call — work fp32 never "
        f"does. {flags}; int8 dot-product instructions would not help anyway, since the activations stay "
        f"float. Fewer bytes only pay when moving weights is the bottleneck, and here {bound}."
    )


def _ort_sentence(ort, ort4) -> str:
    """MatMulNBits against ORT's own fp32: what the int4 weights add on the engine they run on."""
    if not (ort and ort4):
        return ""
    gain = ort.median_ms / ort4.median_ms
    return (
        f"On ONNX Runtime alone, MatMulNBits runs at {gain:.2f}× ORT fp32 ({ort4.median_ms:.2f} vs "
        f"{ort.median_ms:.2f} ms): "
        + (
            f"the int4 weights add {gain:.2f}× on top of what the engine gains over torch fp32."
            if gain >= 1.0
            else "the int4 weights cost ORT time too; its speed against torch fp32 is the engine's, not "
            "the int4 weights'."
        )
    )


def recap_markdown() -> str:
    """The recap, every number measured by the lab's lesson module."""
    r, fc2 = whole_model(), layer_walkthrough("fc2", 0)
    book = codebook_accuracy(2)
    bpw = bits_per_weight(PACKED_SHAPE, PACKED_SPEC, 16)
    return "\n".join(
        [
            "## Recap",
            "",
            f"- Integers only — int32 accumulators, zero-point cross terms, an int32 bias, M0·2^−n — the "
            f"digits MLP scores {r['integer']:.2%} against the x86 engine's {r['engine']:.2%}; "
            f"{r['same_codes']:.2%} of its output codes are the engine's.",
            f"- An int32 accumulator has room: fc2's largest on the test digits leaves "
            f"{fc2['headroom_bits']:.1f} bits of headroom.",
            f"- Packing is bookkeeping you can predict to the byte: int4 with one fp16 scale per 128 "
            f"weights costs {bpw:.3f} bits per weight.",
            f"- A codebook puts its levels where the weights are: at 2 bits the MLP keeps {book['k-means']:.2%} "
            f"with k-means centroids vs {book['linear']:.2%} with linear levels — but no integer GEMM runs on it.",
            "- A weight-only layer in Python saves memory, not time: it builds the float weight matrix on every "
            "call. The engines dequantize tiles inside the GEMM, so the weights cross the memory bus once, at "
            "8 or 4 bits — whether that beats fp32 depends on the CPU and the batch: section 5 measures it here.",
        ]
    )
