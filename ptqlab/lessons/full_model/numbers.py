"""Lab 04's measurement session and the prose that explains it — every number in the prose is measured.

m = measure("mlp", ["fp32", "ao-dynamic-int8"], batch=64, repeats=10, observer="minmax")
narrate(m)   # markdown built only from m.rows / m.facts / m.bandwidth
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ptqlab.backends.hardware import HardwareFacts, hardware_facts, last_level_cache_bytes
from ptqlab.bench import run as bench
from ptqlab.bench.models import BenchModel, load_bench_model
from ptqlab.bench.report import quality_text, roofline_cell
from ptqlab.bench.run import BenchRow
from ptqlab.bench.timing import measure_read_bandwidth
from ptqlab.labkit.layout import timed_bar
from ptqlab.lessons.full_model.text import isa_sentence


@dataclass
class LabMeasurement:
    model: str
    title: str
    batch: int
    repeats: int
    observer: str
    rows: list[BenchRow]
    facts: HardwareFacts
    bandwidth: float  # bytes/s
    eval_set: str = ""  # what the quality column is measured on
    llc_bytes: int | None = None  # the last-level cache: weights that fit make the roofline not meaningful
    elapsed_s: float | None = None  # wall time of the whole run (set by measure_with_progress)

    def available(self) -> list[BenchRow]:
        return [r for r in self.rows if r.available]


@functools.lru_cache(maxsize=4)
def bench_model(name: str) -> BenchModel:
    return load_bench_model(name)


@functools.lru_cache(maxsize=1)
def bandwidth_now(mib: int = 512) -> float:
    """Memory read bandwidth, measured once per process (``measure_read_bandwidth`` over ``mib`` MiB)."""
    return measure_read_bandwidth(mib << 20)[0]


def steps_for(recipes: list[str], compiled: list[str], repeats: int, warmup: int = 2) -> int:
    """How many ``step`` callbacks ``measure`` makes at most (for a progress bar's total)."""
    n_variants = len(set(recipes) | {"fp32"}) + len(compiled)
    return n_variants * (1 + warmup + repeats)


def measure(
    model: str,
    recipes: list[str],
    batch: int,
    *,
    repeats: int = 10,
    observer: str = "minmax",
    compiled: list[str] | None = None,
    step: Callable[[str], None] | None = None,
    budget_s: float = 8.0,
    threads: int | None = None,
) -> LabMeasurement:
    """Quantize ``model`` with each recipe, time all of them interleaved, and measure the bandwidth.

    ``threads`` sets torch's intra-op thread count for this measurement only (restored afterwards).
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        return _measure(model, recipes, batch, repeats, observer, compiled, step, budget_s)
    finally:
        torch.set_num_threads(previous)


def settings_key(
    model: str, recipes, batch: int, *, repeats: int, observer: str, threads: int | None
) -> tuple:
    """The inputs that produce a measurement, hashable: a finished run is shown again while they hold."""
    return (model, tuple(recipes), int(batch), int(repeats), observer, threads)


def measure_settings(settings: tuple) -> LabMeasurement:
    """``measure_with_progress`` for a ``settings_key``."""
    model, recipes, batch, repeats, observer, threads = settings
    return measure_with_progress(
        model, list(recipes), batch, repeats=repeats, observer=observer, threads=threads
    )


def measure_with_progress(
    model: str, recipes: list[str], batch: int, *, repeats: int, observer: str, threads: int | None
) -> LabMeasurement:
    """``measure`` under marimo's progress bar, one tick per quantization, warm-up and timed call."""
    total = steps_for(list(recipes), [], repeats)
    t0 = time.perf_counter()
    with timed_bar(total, "Calibrating, quantizing, timing") as step:
        m = measure(
            model, list(recipes), batch, repeats=repeats, observer=observer, step=step, threads=threads
        )
    m.elapsed_s = time.perf_counter() - t0
    return m


def run_time_sentence(m: LabMeasurement) -> str:
    """How long this run took, and which recipes' set-up (export, calibration, quantization) cost most."""
    if m.elapsed_s is None:
        return ""
    setups = sorted((r for r in m.rows if r.available and r.setup_s), key=lambda r: -r.setup_s)
    slowest = ", ".join(f"{r.variant} {r.setup_s:.1f} s" for r in setups[:3])
    return (
        f"This run took **{m.elapsed_s:.0f} s** on this machine"
        + (f"; the slowest set-ups: {slowest}" if slowest else "")
        + ". Timing takes the rest: the repeats of every variant, interleaved."
    )


def thread_choices() -> tuple[dict[str, int], str]:
    """Options for a threads picker (1 … logical cores) and the current torch setting as the default."""
    n = max(1, os.cpu_count() or 1, torch.get_num_threads())
    return {str(k): k for k in range(1, n + 1)}, str(torch.get_num_threads())


def _measure(model, recipes, batch, repeats, observer, compiled, step, budget_s) -> LabMeasurement:
    bm = bench_model(model)
    bench.dynamo_for_benchmarks()
    bandwidth = bandwidth_now()
    rows = bench.run_group(
        bm,
        batch,
        recipes=list(recipes),
        compiled=list(compiled or []),
        repeats=repeats,
        warmup=2,
        budget_s=budget_s,
        bandwidth=bandwidth,
        observer=observer,
        step=step,
    )
    bench.reset_compiled()
    facts = hardware_facts("cpu")
    return LabMeasurement(
        model,
        bm.title,
        batch,
        repeats,
        observer,
        rows,
        facts,
        bandwidth,
        bm.eval_set,
        last_level_cache_bytes(),
    )


QUICK = ("mlp", ("ao-dynamic-int8", "ao-static-int8", "torchao-int8-dynamic"), 64, 5)


@functools.lru_cache(maxsize=1)
def quick_measurement() -> LabMeasurement:
    """A small measurement for a lab's first render: digits MLP, 3 recipes, batch 64, 5 repeats (~2 s)."""
    model, recipes, batch, repeats = QUICK
    return measure(model, list(recipes), batch, repeats=repeats)


def _x(v: float) -> str:
    return f"{v:.2f}×"


def narrate(m: LabMeasurement) -> str:
    """Markdown explaining this measurement: the winner, the losers and why, and the memory roofline."""
    rows = m.available()
    fp32 = next(r for r in rows if r.variant == "fp32")
    others = [r for r in rows if r.variant != "fp32"]
    out = [
        f"**Measured just now** on {m.facts.cpu_model} ({m.facts.torch_threads} threads), {m.title}, batch "
        f"{m.batch}, median of {m.repeats} interleaved runs: fp32 takes **{fp32.median_ms:.3f} ms** "
        f"(p10–p90 {fp32.p10_ms:.3f}–{fp32.p90_ms:.3f} ms)."
    ]
    if others:
        best = max(others, key=lambda r: r.speedup)
        lead = (
            f"The fastest variant is **{best.variant}** at **{best.median_ms:.3f} ms = {_x(best.speedup)}** fp32"
            if best.speedup >= 1.0
            else f"**No variant beats fp32 here.** The least slow, **{best.variant}**, takes "
            f"**{best.median_ms:.3f} ms = {_x(best.speedup)}** fp32 (slower)"
        )
        out.append(
            f"{lead}, {best.size_bytes / 1e6:.3f} MB instead of {fp32.size_bytes / 1e6:.3f} MB, "
            f"{quality_text(best.quality)} (fp32: {quality_text(fp32.quality)}; quality on {m.eval_set}, "
            f"in chunks of {m.batch}, the last one padded to the batch size)."
        )
        slower = [r for r in others if r.speedup < 1.0]
        if slower:
            listed = ", ".join(
                f"{r.variant} ({_x(r.speedup)})" for r in sorted(slower, key=lambda r: r.speedup)
            )
            out.append(
                f"**Slower than fp32 here:** {listed}. Quantization only pays when the saved bytes or the "
                "faster int8 arithmetic outweigh its fixed costs: quantizing activations, rescaling outputs, "
                "and for torchao, tensor-subclass dispatch in Python on every Linear call."
            )
    torchao = [r for r in others if r.family == "torchao" and r.bits == 8]
    fbgemm = [r for r in others if r.family.startswith("torch.ao")]
    if torchao and fbgemm:
        t, f = max(torchao, key=lambda r: r.speedup), max(fbgemm, key=lambda r: r.speedup)
        out.append(
            f"**fbgemm vs torchao.** Best torch.ao (x86/fbgemm) variant: {f.variant} at {_x(f.speedup)}; best torchao "
            f"int8: {t.variant} at {_x(t.speedup)}. {isa_sentence(m.facts.isa)} fbgemm/oneDNN ship hand-written x86 int8 "
            "GEMMs with prepacked weights (`vpmaddubsw` on AVX2, `vpdpbusd` with VNNI); torchao's CPU int8 path "
            "calls `torch._int_mm` plus separate quantize/rescale ops and is tuned for GPUs and for "
            "`torch.compile`. On a CUDA GPU the picture flips: torchao's int8 runs on tensor cores and its "
            "int4 on the tinygemm kernel, fused by torch.compile — measure it there with `ptqlab bench`."
        )
    out.append(_roofline_text(m, fp32, others))
    return "\n\n".join(out)


def _roofline_text(m: LabMeasurement, fp32: BenchRow, others: list[BenchRow]) -> str:
    bw = m.bandwidth / 1e9
    stream = fp32.weight_bytes / (fp32.median_ms / 1e3) / 1e9
    text = (
        f"**Roofline.** Measured read bandwidth: **{bw:.1f} GB/s**. A forward must stream its weights once: "
        f"fp32 moves {fp32.weight_bytes / 1e6:.2f} MB, so it cannot beat {fp32.floor_ms:.3f} ms; it took "
        f"{fp32.median_ms:.3f} ms ({stream:.1f} GB/s; floor / measured: {roofline_cell(fp32, m.llc_bytes)}). "
    )
    if m.llc_bytes is not None and fp32.weight_bytes <= m.llc_bytes:
        text += (
            f"But {fp32.weight_bytes / 1e6:.2f} MB fits in this CPU's {m.llc_bytes / 2**20:.0f} MiB last-level "
            "cache: after the first call the weights come from cache, not memory, so this floor does not bind "
            "and the percentages are **not meaningful** here; fewer bytes buy little. "
        )
    elif fp32.attained >= 0.5:
        text += (
            "The forward runs near the memory limit: it is **memory-bound**, and the best a format can do is "
            "the ratio of bytes (int8 ≈ 4×, int4 ≈ 8×). "
        )
    else:
        text += (
            "It is far from that floor, so this forward is **not memory-bound**: the weights fit in cache or "
            "per-call overheads (Python, kernel launch, small matrices) dominate, and fewer bytes buy little. "
        )
    if others and not (m.llc_bytes is not None and fp32.weight_bytes <= m.llc_bytes):
        closest = max(others, key=lambda r: r.attained or 0.0)
        if closest.weight_bytes and closest.floor_ms:
            text += (
                f"Closest to its own floor — each variant measured against the bytes *it* streams, embedding "
                f"tables excluded on every engine: {closest.variant}, {closest.weight_bytes / 1e6:.2f} MB per "
                f"forward, floor {closest.floor_ms:.3f} ms, at {roofline_cell(closest, m.llc_bytes)}. "
            )
    text += (
        f"At batch {m.batch} each weight feeds {2 * m.batch} FLOPs: at batch 1 that is 2 FLOPs per weight — "
        "far less work per byte than a core can do, so batch 1 is bandwidth-bound for any model larger than "
        "the caches; at large batch the same bytes feed many rows and arithmetic speed decides."
    )
    return text


def hardware_markdown(facts: HardwareFacts, bandwidth: float) -> str:
    isa = ", ".join(f"{k} {'✓' if v else '✗'}" for k, v in facts.isa.items())
    return (
        f"| fact | value |\n|---|---|\n| CPU | {facts.cpu_model} |\n| cores / torch threads | "
        f"{facts.logical_cores} / {facts.torch_threads} |\n| ISA | {isa} |\n| torch / torchao | {facts.torch_version} / "
        f"{facts.torchao_version} |\n| quantized engine | {facts.quantized_engine} |\n| read bandwidth | "
        f"{bandwidth / 1e9:.1f} GB/s |\n| device | {facts.device_name} |"
    )


def measurement_markdown(m: LabMeasurement) -> str:
    lines = [
        "| variant | median ms (p10–p90) | n | speedup | vs ORT fp32 | size MB | quality | roofline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in m.rows:
        if not r.available:
            lines.append(f"| {r.variant} | unavailable: {r.reason} | | | | | | |")
            continue
        vs_ort = _x(r.speedup_vs_ort_fp32) if r.speedup_vs_ort_fp32 is not None else "—"
        size = f"{r.size_bytes / 1e6:.3f}" if r.size_bytes else "—"
        lines.append(
            f"| {r.variant} | {r.median_ms:.3f} ({r.p10_ms:.3f}–{r.p90_ms:.3f}) | {r.repeats} | {_x(r.speedup)} | "
            f"{vs_ort} | {size} | {quality_text(r.quality)} | {roofline_cell(r, m.llc_bytes)} |"
        )
    return "\n".join(lines)
