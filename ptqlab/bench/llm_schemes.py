"""Every scheme on a causal LM, one table: perplexity, KL(reference ‖ scheme), top-1 agreement, quantize
time and peak memory.

Weight schemes go through ``ptqlab.ptq.algorithms.run_algorithm`` (RTN, GPTQ, AWQ, SmoothQuant) on every
Linear except the (tied) output head, which stays at the reference weights as GPTQ/AWQ's reference code
leaves it; GGUF rows fake-quantize the same Linears with ``ptqlab.core.gguf_formats``; "fp8" rows cast
W / s to e4m3 with one s = max|W_row| / 448 per output row (``core.float_formats``), "nf4" rows round
blocks of 64 to the NF4 codebook scaled by their absmax (``core.codebook``). W8A8 rows quantize every
Linear's input: per-tensor uint8 calibrated once ("static", the hardest setting, SmoothQuant's O3) or
per token at run time ("dynamic", what most W8A8 LLM engines do). GPTQ and AWQ run block by block
(``sequential="blocks"``): each decoder layer sees the inputs of the model quantized so far; GPTQ with
act-order (static groups) and the reference's range search per group (``GPTQ_OPTIONS``).
Peak memory is the process's resident set (RSS) high-water mark during the quantize call: the kernel's own
(VmHWM, reset before the call) where Linux allows, else sampled every 10 ms from /proc (torch's CPU tensors
are invisible to tracemalloc); reported as the rise over the RSS
before the call. The reference of SmolLM2 is "the published weights (dequantized Q4_1)": they already lie
on the Q4_1 grid.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from typing import NamedTuple

import torch
from torch import nn

from ptqlab.core.codebook import nf4_quantize
from ptqlab.core.float_formats import get_format, round_to_format
from ptqlab.core.gguf_formats import fake_quantize_gguf, get_gguf_format
from ptqlab.core.progress import Progress
from ptqlab.core.spec import PerChannel, PerGroup, QuantSpec
from ptqlab.ptq.algorithms import run_algorithm
from ptqlab.ptq.llm_eval import LMScore, score_lm

HEAD = "lm_head"


class Scheme(NamedTuple):
    label: str
    kind: str  # "gguf", "fp8", "nf4" or an algorithm name of run_algorithm
    weight_spec: QuantSpec | None = None
    act_spec: QuantSpec | None = None
    gguf: str | None = None
    act_mode: str = "static"  # with act_spec: "static" (calibrated) or "per-token" (dynamic)
    options: tuple = ()  # (name, value) pairs handed to run_algorithm


def int_w(bits: int, group: int | None = None) -> QuantSpec:
    """Symmetric signed int weights, per output channel (group None) or per group along the input."""
    return QuantSpec(bits=bits, granularity=PerChannel(0) if group is None else PerGroup(group))


A8 = QuantSpec(bits=8, signed=False, symmetric=False)  # uint8 asymmetric; per tensor, or per token if dynamic
BLOCKWISE = (("sequential", "blocks"),)  # GPTQ/AWQ: block by block, inputs from the model quantized so far
AWQ_OPTIONS = (*BLOCKWISE, ("max_rows", 16384))  # every calibration token (the search reads XᵀX)
# GPTQ as its reference quantizes LLMs: columns in act-order with static groups, each group's range by the
# reference's shrink search (``ptq.range_search``; Frantar et al.'s ``Quantizer(mse=True)``)
GPTQ_OPTIONS = (*BLOCKWISE, ("act_order", True), ("clip", True))
ALGORITHM_OPTIONS = {"gptq": dict(GPTQ_OPTIONS), "awq": dict(AWQ_OPTIONS)}  # the LLM runs of lab 10 too
SEARCH = (("alpha", "search"),)  # SmoothQuant: α per layer, searched on the W8A8 output error


SCHEMES: dict[str, Scheme] = {
    "gguf-q8_0": Scheme("GGUF Q8_0", "gguf", gguf="Q8_0"),
    "gguf-q4_1": Scheme("GGUF Q4_1 (the published grid)", "gguf", gguf="Q4_1"),
    "gguf-q4_0": Scheme("GGUF Q4_0", "gguf", gguf="Q4_0"),
    "gguf-q5_1": Scheme("GGUF Q5_1 (another grid)", "gguf", gguf="Q5_1"),
    "fp8-e4m3": Scheme("fp8 e4m3 weights, per-row scale", "fp8"),
    "nf4-b64": Scheme("NF4 weights, blocks of 64", "nf4"),
    "rtn-w8": Scheme("RTN W8 per-channel", "rtn", int_w(8)),
    "rtn-w4g64": Scheme("RTN W4 g64", "rtn", int_w(4, 64)),
    "gptq-w4g64": Scheme("GPTQ W4 g64, act-order, range search", "gptq", int_w(4, 64), options=GPTQ_OPTIONS),
    "awq-w4g64": Scheme("AWQ W4 g64", "awq", int_w(4, 64), options=AWQ_OPTIONS),
    "rtn-w8a8": Scheme("RTN W8A8 static per-tensor", "rtn", int_w(8), A8),
    "smoothquant-w8a8": Scheme(
        "SmoothQuant W8A8 static per-tensor", "smoothquant", int_w(8), A8, options=SEARCH
    ),
    "rtn-w8a8-token": Scheme("RTN W8A8 dynamic per-token", "rtn", int_w(8), A8, act_mode="per-token"),
    "smoothquant-w8a8-token": Scheme(
        "SmoothQuant W8A8 dynamic per-token",
        "smoothquant",
        int_w(8),
        A8,
        act_mode="per-token",
        options=SEARCH,
    ),
    "rtn-w3g64": Scheme("RTN W3 g64", "rtn", int_w(3, 64)),
    "gptq-w3g64": Scheme("GPTQ W3 g64, act-order, range search", "gptq", int_w(3, 64), options=GPTQ_OPTIONS),
    "awq-w3g64": Scheme("AWQ W3 g64", "awq", int_w(3, 64), options=AWQ_OPTIONS),
}


def quantizable_layers(model: nn.Module) -> list[str]:
    """Every Linear but the output head."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != HEAD]


@torch.no_grad()
def gguf_copy(model: nn.Module, fmt: str, layers=None) -> nn.Module:
    """A copy whose Linears (head excluded) carry their weights through GGUF ``fmt`` and back."""
    get_gguf_format(fmt)
    work = copy.deepcopy(model)
    modules = dict(work.named_modules())
    for name in quantizable_layers(work) if layers is None else layers:
        layer = modules[name]
        layer.weight = nn.Parameter(fake_quantize_gguf(layer.weight.detach(), fmt), requires_grad=False)
    return work


@torch.no_grad()
def fp8_weight(w: torch.Tensor, fmt: str = "fp8_e4m3") -> torch.Tensor:
    """Ŵ = s · round_fp8(W / s), one s = max|W_row| / fmt.max per output row (an all-zero row stays 0)."""
    f = get_format(fmt)
    if not isinstance(w, torch.Tensor) or not w.is_floating_point() or w.dim() != 2 or w.numel() == 0:
        raise TypeError(
            f"w must be a non-empty 2-D float tensor, got {getattr(w, 'shape', type(w).__name__)}"
        )
    if not bool(torch.isfinite(w).all()):
        raise ValueError("w has NaN or ±Inf entries: an fp8 scale cannot be chosen for them")
    amax = w.detach().float().abs().amax(1, keepdim=True)
    scale = torch.where(amax > 0, amax / f.max, torch.ones_like(amax))
    return round_to_format((w.float() / scale).clamp(-f.max, f.max), f) * scale


@torch.no_grad()
def codebook_copy(model: nn.Module, kind: str, layers=None) -> nn.Module:
    """A copy whose Linears (head excluded) carry fp8 e4m3 per-row (``kind="fp8"``) or NF4 blocks of 64."""
    work = copy.deepcopy(model)
    modules = dict(work.named_modules())
    for name in quantizable_layers(work) if layers is None else layers:
        w = modules[name].weight.detach()
        new = fp8_weight(w) if kind == "fp8" else nf4_quantize(w, 64)[2]
        modules[name].weight = nn.Parameter(new.to(w.dtype), requires_grad=False)
    return work


class SchemeRow(NamedTuple):
    key: str
    label: str
    score: LMScore
    quantize_seconds: float
    peak_rss_mb: float | None = None  # RSS high-water during the quantize call, MB
    rss_rise_mb: float | None = None  # that peak minus the RSS before the call, MB


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: the process's high-water mark so far
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_kernel_peak() -> bool:
    """Reset the kernel's own RSS high-water mark (VmHWM) of this process: Linux ≥ 4.0, ``clear_refs`` 5."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _kernel_peak_bytes() -> int:
    """VmHWM of /proc/self/status (0 where it cannot be read)."""
    try:
        with open("/proc/self/status") as f:
            line = next((ln for ln in f if ln.startswith("VmHWM:")), "")
        return int(line.split()[1]) * 1024 if line else 0
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss(fn, interval: float = 0.01):
    """(fn(), peak RSS bytes while it ran, RSS bytes before): the kernel's high-water mark (VmHWM, reset
    before the call) where Linux allows it — exact, even for an allocation shorter than a sampling period —
    and RSS sampled every ``interval`` s in a thread everywhere."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    before, peak, done = _rss_bytes(), [0], threading.Event()
    exact = _reset_kernel_peak()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            done.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = fn()
    finally:
        done.set()
        thread.join()
    kernel = _kernel_peak_bytes() if exact else 0
    return result, max(peak[0], kernel, _rss_bytes(), before), before


def run_scheme(
    key: str, model: nn.Module, calibration: list, progress: Progress = None, *, layers=None, **options
):
    """(quantized copy, seconds) of scheme ``key`` (one of SCHEMES) on ``layers`` (default: every Linear
    but the head); ``options`` override the scheme's own run_algorithm options."""
    layers = quantizable_layers(model) if layers is None else list(layers)
    if key not in SCHEMES:
        raise ValueError(f"key must be one of {sorted(SCHEMES)}, got {key!r}")
    scheme = SCHEMES[key]
    start = time.perf_counter()
    if scheme.kind == "gguf":
        return gguf_copy(model, scheme.gguf, layers), time.perf_counter() - start
    if scheme.kind in ("fp8", "nf4"):
        return codebook_copy(model, scheme.kind, layers), time.perf_counter() - start
    run = run_algorithm(
        scheme.kind,
        model,
        weight_spec=scheme.weight_spec,
        act_spec=scheme.act_spec,
        act_mode=scheme.act_mode,
        calibration=calibration if (scheme.kind != "rtn" or scheme.act_spec) else None,
        fold_bn=False,
        layers=layers,
        progress=progress,
        **{**dict(scheme.options), **options},
    )
    return run.model, run.seconds


def scheme_table(model, windows, reference, calibration, *, keys=tuple(SCHEMES), progress: Progress = None):
    """One SchemeRow per scheme key, scored against the reference log-probs over ``windows``."""
    rows = []
    for key in keys:
        (quantized, seconds), peak, before = peak_rss(
            lambda k=key: run_scheme(k, model, calibration, progress)
        )
        score = score_lm(quantized, windows, reference)
        rows.append(SchemeRow(key, SCHEMES[key].label, score, seconds, peak / 1e6, (peak - before) / 1e6))
        del quantized
    return rows


__all__ = [
    "ALGORITHM_OPTIONS",
    "GPTQ_OPTIONS",
    "codebook_copy",
    "fp8_weight",
    "peak_rss",
    "SCHEMES",
    "Scheme",
    "SchemeRow",
    "gguf_copy",
    "quantizable_layers",
    "run_scheme",
    "scheme_table",
]
