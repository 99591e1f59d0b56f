"""The seed's LLaMA-7B row, measured on SmolLM2-135M (``ptqlab.models.load_smollm2``): 135 M parameters
are not 7 B, and the published weights are already Q4_1 (the "fp32" model is them dequantized).

* quality: perplexity over the first ``tokens`` tokens of ``pydoc_data.topics`` in disjoint windows
  (``ptqlab.ptq.llm_eval.score_lm``), PPL = exp(mean −log p(x_t | x_<t));
* int8: RTN W8 per-channel — symmetric int8 weights, one scale per output channel, round to nearest, every
  Linear but the tied output head (``ptqlab.bench.llm_schemes``' ``rtn-w8``); activations stay float (an
  LLM's int8 is weight-only or dynamic; there is no static-activation int8 engine for it here);
* speedup: batch-1 decode tokens/s of the fastest int8 engine — torchao's int8 weight-only and int8
  dynamic, ONNX Runtime's int8 dynamic and int8 MatMulNBits decode step with a KV cache — over fp32 eager,
  timed interleaved (``ptqlab.bench.llm_speed.speed_table``);
* size: fp32 state dict bytes / bytes of the torchao int8 weight-only copy (the token embedding stays
  fp32; the head is untied and int8, so the ratio is well under 4×).

``register()`` hands ``measure_llm_row`` to ``ptqlab.bench.architectures.register_llm_row``; it is slow
(minutes), so ``ptqlab bench architectures`` runs it only with ``--models …,llama``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ptqlab.bench.architectures import ArchitectureRow, register_llm_row
from ptqlab.bench.size import serialized_bytes
from ptqlab.core.progress import Progress

MEASURED_ON = "SmolLM2-135M (135 M params ≠ 7 B; published weights dequantized Q4_1)"
INT8_ENGINES = (
    "torchao int8 weight-only",
    "torchao int8 dynamic",
    "ORT int8 dynamic",
    "ORT int8 MatMulNBits",
)
INT8_LABEL = "RTN W8 per-channel weights, float activations"
EVAL_TOKENS = 2_048
WINDOW = 512


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def int8_weight_only_copy(model: nn.Module) -> nn.Module:
    """torchao's ``Int8WeightOnlyConfig`` on a copy of every Linear (the tied head untied first, so the
    embedding table keeps its fp32 weights)."""
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    work = copy.deepcopy(model)
    head = getattr(work, "lm_head", None)
    if head is not None:
        head.weight = nn.Parameter(head.weight.detach().clone(), requires_grad=False)
    quantize_(work, Int8WeightOnlyConfig())
    return work


def summarize_llm(
    fp32_ppl: float, int8_ppl: float, speed_rows: list, size_ratio: float | None
) -> ArchitectureRow:
    """The table row from measured numbers: the best int8 engine by decode tokens/s vs "fp32 eager"; an
    engine that did not run is a ``why`` line with its reason."""
    row = ArchitectureRow("LLaMA-7B", MEASURED_ON, f"perplexity (lower is better); int8 = {INT8_LABEL}")
    row.fp32, row.int8, row.delta = float(fp32_ppl), float(int8_ppl), float(int8_ppl) - float(fp32_ppl)
    by_name = {r.name: r for r in speed_rows}
    fp32 = by_name.get("fp32 eager")
    ran = [r for r in speed_rows if r.name in INT8_ENGINES and not r.note]
    row.why += [f"{r.name}: {r.note}" for r in speed_rows if r.name in INT8_ENGINES and r.note]
    if fp32 is None or not ran:
        row.why.append("no int8 engine ran on SmolLM2 here")
    else:
        for r in ran:
            row.engines[r.name] = {1: r.decode_tokens_per_s / fp32.decode_tokens_per_s}
        best = max(ran, key=lambda r: r.decode_tokens_per_s)
        row.engine = best.name
        row.speedup = {1: best.decode_tokens_per_s / fp32.decode_tokens_per_s}
    ort_fp32 = by_name.get("ORT fp32")
    ort_int8 = [r for r in ran if r.name.startswith("ORT")]
    if ort_fp32 is not None and not ort_fp32.note and ort_int8:  # what int8 adds on ORT alone
        best_ort = max(r.decode_tokens_per_s for r in ort_int8)
        row.ort_int8_vs_ort_fp32 = {1: best_ort / ort_fp32.decode_tokens_per_s}
    row.size_ratio = size_ratio
    row.why.append("speedup: batch-1 decode tokens/s (memory-bound), not a core-filling batch")
    return row


def measure_llm_row(
    *, tokens: int = EVAL_TOKENS, window: int = WINDOW, repeats: int = 3, progress: Progress = None
) -> ArchitectureRow:
    """Measure the LLaMA row on SmolLM2-135M (see the module docstring); minutes on 2 cores."""
    from ptqlab.bench.llm_schemes import run_scheme
    from ptqlab.bench.llm_speed import speed_table
    from ptqlab.models.llm_text import corpus_tokens
    from ptqlab.models.smollm2 import load_smollm2
    from ptqlab.ptq.llm_eval import make_windows, score_lm

    _check_positive("tokens", tokens)
    _check_positive("window", window)
    _check_positive("repeats", repeats)
    model, tokenizer = load_smollm2()
    windows = make_windows(corpus_tokens(tokenizer, tokens), min(window, tokens))
    with torch.inference_mode():
        fp32 = score_lm(model, windows, progress=progress)
    quantized, _ = run_scheme("rtn-w8", model, [], progress)
    with torch.inference_mode():
        int8 = score_lm(quantized, windows, progress=progress)
    del quantized
    speed, _ = speed_table(model, repeats=repeats, recipes=[*INT8_ENGINES, "ORT fp32"])
    try:
        size_ratio = serialized_bytes(model) / serialized_bytes(int8_weight_only_copy(model))
    except Exception as error:  # a torchao that cannot build the copy: the size cell says why
        size_ratio = None
        speed_note = f"size: int8 weight-only copy failed: {type(error).__name__}"
    else:
        speed_note = ""
    row = summarize_llm(fp32.ppl, int8.ppl, speed, size_ratio)
    if speed_note:
        row.why.append(speed_note)
    return row


def register() -> None:
    """Fill the architecture table's LLaMA row with ``measure_llm_row`` (``register_llm_row``)."""
    register_llm_row(measure_llm_row)


__all__ = [
    "INT8_ENGINES",
    "MEASURED_ON",
    "int8_weight_only_copy",
    "measure_llm_row",
    "register",
    "summarize_llm",
]
