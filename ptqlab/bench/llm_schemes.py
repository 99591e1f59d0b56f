"""Every scheme on a causal LM, one table: perplexity, KL(reference ‖ scheme), top-1 agreement, time.

Weight schemes go through ``ptqlab.ptq.algorithms.run_algorithm`` (RTN, GPTQ, AWQ, SmoothQuant) on every
Linear except the (tied) output head, which stays at the reference weights as GPTQ/AWQ's reference code
leaves it; GGUF rows fake-quantize the same Linears with ``ptqlab.core.gguf_formats``. The reference of
SmolLM2 is "the published weights (dequantized Q4_1)": they already lie on the Q4_1 grid.
"""

from __future__ import annotations

import copy
import time
from typing import NamedTuple

import torch
from torch import nn

from ptqlab.core.gguf_formats import fake_quantize_gguf, get_gguf_format
from ptqlab.core.progress import Progress
from ptqlab.core.spec import PerChannel, PerGroup, QuantSpec
from ptqlab.ptq.algorithms import run_algorithm
from ptqlab.ptq.llm_eval import LMScore, score_lm

HEAD = "lm_head"


class Scheme(NamedTuple):
    label: str
    kind: str  # "gguf" or an algorithm name of run_algorithm
    weight_spec: QuantSpec | None = None
    act_spec: QuantSpec | None = None
    gguf: str | None = None


def int_w(bits: int, group: int | None = None) -> QuantSpec:
    """Symmetric signed int weights, per output channel (group None) or per group along the input."""
    return QuantSpec(bits=bits, granularity=PerChannel(0) if group is None else PerGroup(group))


A8 = QuantSpec(bits=8, signed=False, symmetric=False)  # per-tensor uint8, min/max on the calibration batches


SCHEMES: dict[str, Scheme] = {
    "gguf-q8_0": Scheme("GGUF Q8_0", "gguf", gguf="Q8_0"),
    "gguf-q4_1": Scheme("GGUF Q4_1 (the published grid)", "gguf", gguf="Q4_1"),
    "gguf-q4_0": Scheme("GGUF Q4_0", "gguf", gguf="Q4_0"),
    "gguf-q5_1": Scheme("GGUF Q5_1 (another grid)", "gguf", gguf="Q5_1"),
    "rtn-w8": Scheme("RTN W8 per-channel", "rtn", int_w(8)),
    "rtn-w4g64": Scheme("RTN W4 g64", "rtn", int_w(4, 64)),
    "gptq-w4g64": Scheme("GPTQ W4 g64", "gptq", int_w(4, 64)),
    "awq-w4g64": Scheme("AWQ W4 g64", "awq", int_w(4, 64)),
    "rtn-w8a8": Scheme("RTN W8A8", "rtn", int_w(8), A8),
    "smoothquant-w8a8": Scheme("SmoothQuant W8A8", "smoothquant", int_w(8), A8),
    "rtn-w3g64": Scheme("RTN W3 g64", "rtn", int_w(3, 64)),
    "gptq-w3g64": Scheme("GPTQ W3 g64", "gptq", int_w(3, 64)),
    "awq-w3g64": Scheme("AWQ W3 g64", "awq", int_w(3, 64)),
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


class SchemeRow(NamedTuple):
    key: str
    label: str
    score: LMScore
    quantize_seconds: float


def run_scheme(
    key: str, model: nn.Module, calibration: list, progress: Progress = None, *, layers=None, **options
):
    """(quantized copy, seconds) of scheme ``key`` (one of SCHEMES) on ``layers`` (default: every Linear
    but the head)."""
    layers = quantizable_layers(model) if layers is None else list(layers)
    if key not in SCHEMES:
        raise ValueError(f"key must be one of {sorted(SCHEMES)}, got {key!r}")
    scheme = SCHEMES[key]
    start = time.perf_counter()
    if scheme.kind == "gguf":
        return gguf_copy(model, scheme.gguf, layers), time.perf_counter() - start
    run = run_algorithm(
        scheme.kind,
        model,
        weight_spec=scheme.weight_spec,
        act_spec=scheme.act_spec,
        calibration=calibration if (scheme.kind != "rtn" or scheme.act_spec) else None,
        fold_bn=False,
        layers=layers,
        progress=progress,
        **options,
    )
    return run.model, run.seconds


def scheme_table(model, windows, reference, calibration, *, keys=tuple(SCHEMES), progress: Progress = None):
    """One SchemeRow per scheme key, scored against the reference log-probs over ``windows``."""
    rows = []
    for key in keys:
        quantized, seconds = run_scheme(key, model, calibration, progress)
        rows.append(SchemeRow(key, SCHEMES[key].label, score_lm(quantized, windows, reference), seconds))
        del quantized
    return rows


__all__ = ["SCHEMES", "Scheme", "SchemeRow", "gguf_copy", "quantizable_layers", "run_scheme", "scheme_table"]
