"""Lab 04's goals, recap, diagram and the sentences built from measured rows and read CPU facts: which
variant is the smallest, which int8 instructions this CPU has, whether a roofline percentage means anything.
"""

from __future__ import annotations

from ptqlab.bench.run import BenchRow

GOALS = r"""
**After this lab you can**

1. tell static, dynamic and weight-only quantization apart: what is integer, and when its scale is chosen;
2. measure latency honestly: interleaved variants, warm-up, median and p10–p90 spread;
3. read size against quality and name the Pareto-optimal recipes;
4. use the roofline to say whether fewer bytes can make a forward faster on this machine;
5. explain why a quantized model can be *slower* than fp32 on a CPU.
"""

RECAP = r"""
## Recap

* **Static** int8 fixes activation scales at calibration (your calibrator sets them); **dynamic** measures
  them per batch at run time; **weight-only** keeps activations in float and only stores weights in int8/int4.
* A speedup is a ratio of medians measured in the same run; read the spread before believing 1.1×.
* Size is the bytes on disk, metadata included: on a tiny model the metadata and the format's overhead can
  make "int4" no smaller than int8.
* Fewer bytes help only a **memory-bound** forward; when the weights fit in the cache or overheads dominate,
  quantization can cost more than it saves.
* Quantization pays where its kernels are fast: check the CPU's int8 instructions (VNNI, AMX) and measure.
"""

DIAGRAMS = (  # one row each, so every box stays legible at the page's width
    'flowchart LR\n    s1["static int8 (ao-static-int8, ort-int8-static)<br/>x → int8, scale fixed at calibration"]'
    ' --> s2["int8 GEMM with int8 W"] --> s3["int8 out, requantized"]',
    'flowchart LR\n    d1["dynamic int8 (ao-dynamic-int8, torchao-int8-dynamic)<br/>x fp32 → int8, scale from this batch"]'
    ' --> d2["int8 GEMM with int8 W"] --> d3["fp32 out"]',
    'flowchart LR\n    w1["weight-only (torchao-int4/int8-weight-only)<br/>x stays fp32/bf16"]'
    ' --> w2["float GEMM, W dequantized from int4/int8"] --> w3["fp32/bf16 out"]',
)


def diagram_view():
    """Static, dynamic and weight-only as three one-row mermaid flowcharts."""
    import marimo as mo

    return mo.vstack([mo.mermaid(d) for d in DIAGRAMS], gap=0.5)


VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def isa_sentence(isa: dict[str, bool]) -> str:
    """Which int8 dot-product instructions the CPU flags list, read from ``isa`` (never assumed)."""
    have = [f for f in VNNI_FLAGS if isa.get(f)]
    lacking = [f for f in VNNI_FLAGS if not isa.get(f)]
    if have:
        tail = f" (not {', '.join(lacking)})" if lacking else ""
        return f"This CPU lists {', '.join(have)}{tail}: int8 dot products accumulate to int32 in one instruction."
    avx2 = "AVX2" if isa.get("avx2") else "no AVX2"
    return f"This CPU lists none of {', '.join(VNNI_FLAGS)} ({avx2}): int8 products go through int16 steps."


def size_sentence(rows: list[BenchRow]) -> str:
    """The smallest variant measured, and for each int4 row why its file is not 1/8 of fp32's, from its own
    bytes: the tables a forward only gathers rows from (size − weight bytes), what the engine left in float
    (its notes), and the rest of the streamed bytes above 4 bits per fp32 weight (scales, zero points, layout)."""
    sized = [r for r in rows if r.available and r.size_bytes]
    if not sized:
        return ""
    small = min(sized, key=lambda r: r.size_bytes)
    text = f"The smallest variant measured is **{small.variant}** ({small.size_bytes / 1e6:.3f} MB)."
    fp32 = next((r for r in sized if r.variant == "fp32"), None)
    for r in (r for r in sized if r.bits == 4):
        text += " " + int4_size_reason(r, fp32)
    return text


def int4_size_reason(r: BenchRow, fp32: BenchRow | None) -> str:
    """Where an int4 row's bytes go, every part measured (see ``size_sentence``)."""
    mb = lambda b: f"{b / 1e6:.3f} MB"  # noqa: E731
    text = f"**{r.variant}** takes {mb(r.size_bytes)}"
    if fp32 is None or not fp32.size_bytes:
        return text + "."
    text += f", {fp32.size_bytes / r.size_bytes:.1f}× smaller than fp32's {mb(fp32.size_bytes)} (4-bit codes alone: 8×)"
    parts = []
    tables = r.size_bytes - (r.weight_bytes or r.size_bytes)
    if tables > 0.05 * r.size_bytes:
        parts.append(
            f"{mb(tables)} is not streamed by a forward — embedding tables a forward gathers a few rows from "
            "(not MatMuls, so not quantized) and the file's own structure"
        )
    left = [n for n in r.notes if "left in fp32" in n or "stay fp32" in n or "stays fp32" in n]
    if left:
        parts.append(f"the engine reports: {'; '.join(left)}")
    if fp32.weight_bytes and r.weight_bytes:
        codes = fp32.weight_bytes / 8
        extra = r.weight_bytes - codes
        if extra > 0:
            parts.append(
                f"of the {mb(r.weight_bytes)} a forward streams, 4 bits per fp32 weight would be {mb(codes)}; the "
                f"other {mb(extra)} are group scales and zero points, the packed layout"
                + (" and the weights left in float" if left else "")
            )
    return text + (": " + "; ".join(parts) + "." if parts else ".")
