"""Batch-1 speed of a causal LM: prefill (1 × 128 tokens) and decode tokens/s, against the decode roofline.

Decode at batch 1 reads every weight once per token, so it is memory-bound:

    roofline tokens/s = bandwidth / weight bytes read per token       (bandwidth measured here)
    % of roofline     = measured tokens/s / roofline tokens/s

Decode is timed as ``generate`` of ``new_tokens`` greedy tokens from a 1-token prompt with the KV cache
(per token: total / new_tokens; the one-token prefill is included, negligible). Variants are timed
interleaved after warm-up (``bench.timing.time_interleaved``), median and spread reported. Engine recipes:
fp32 eager and torchao's int8 weight-only / int8 dynamic / int4 weight-only where they apply on this
machine (a recipe that fails to build or run is reported with its reason, never silently dropped).
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import nn

from ptqlab.bench.roofline import attained_fraction, memory_floor_s
from ptqlab.bench.timing import measure_read_bandwidth, time_interleaved


class SpeedRow(NamedTuple):
    name: str
    prefill_ms: float  # median
    prefill_spread_ms: float  # p90 − p10
    decode_tokens_per_s: float  # from the median
    decode_spread_ms: float  # p90 − p10 of one generate call / new_tokens
    weight_bytes: int
    roofline_tokens_per_s: float
    roofline_fraction: float
    note: str = ""


def weight_bytes(model: nn.Module, bytes_per_linear_weight: float = 4.0) -> int:
    """Bytes read per decoded token: every Linear weight (the tied head included: it reads the whole
    embedding) at ``bytes_per_linear_weight``, plus the norms (fp32); the embedding lookup reads one row."""
    total = 0.0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            total += module.in_features * module.out_features * bytes_per_linear_weight
        elif not list(module.children()) and not isinstance(module, nn.Embedding):
            total += sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
    return int(total)


def _torchao_variant(model: nn.Module, config_name: str, **kw) -> nn.Module:
    import torchao.quantization as tq
    from torchao.quantization import quantize_

    work = copy.deepcopy(model)
    head = work.lm_head if hasattr(work, "lm_head") else None
    if head is not None:  # untie: the quantized head must not replace the embedding table
        head.weight = nn.Parameter(head.weight.detach().clone(), requires_grad=False)
    quantize_(work, getattr(tq, config_name)(**kw))
    return work


ENGINE_RECIPES = {
    "torchao int8 weight-only": ("Int8WeightOnlyConfig", {}, 1.0),
    "torchao int8 dynamic": ("Int8DynamicActivationInt8WeightConfig", {}, 1.0),
    "torchao int4 weight-only": ("Int4WeightOnlyConfig", {"group_size": 64}, 0.5 + 4 / 64),
}


def speed_table(
    model: nn.Module, *, prompt_tokens: int = 128, new_tokens: int = 16, repeats: int = 5, recipes=None
) -> tuple[list[SpeedRow], float]:
    """(rows, measured bandwidth bytes/s): fp32 eager and each recipe of ``recipes`` (default: all)."""
    variants, notes, per_weight = {"fp32 eager": model}, {}, {"fp32 eager": 4.0}
    for name in ENGINE_RECIPES if recipes is None else recipes:
        config, kw, bpw = ENGINE_RECIPES[name]
        try:
            variant = _torchao_variant(model, config, **kw)
            with torch.inference_mode():
                variant(torch.zeros(1, 4, dtype=torch.int64))
        except Exception as error:  # a recipe that does not apply here is a row with its reason
            notes[name] = f"not run: {type(error).__name__}: {str(error).splitlines()[0][:100]}"
            continue
        variants[name], per_weight[name] = variant, bpw
    prompt = torch.arange(1, prompt_tokens + 1, dtype=torch.int64)[None]
    one = prompt[:, :1]
    fns = {}
    for name, m in variants.items():
        fns[f"{name}/prefill"] = lambda m=m: m(prompt, use_cache=False)
        fns[f"{name}/decode"] = lambda m=m: m.generate(
            one,
            attention_mask=torch.ones_like(one),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
        )
    stats = time_interleaved(fns, repeats=repeats, warmup=1)
    bandwidth, _ = measure_read_bandwidth(1 << 29)
    rows = []
    for name in variants:
        pre, dec = stats[f"{name}/prefill"], stats[f"{name}/decode"]
        nbytes = weight_bytes(model, per_weight[name])
        tps = new_tokens / dec.median_s
        roof = 1.0 / memory_floor_s(nbytes, bandwidth)
        rows.append(
            SpeedRow(
                name,
                1e3 * pre.median_s,
                1e3 * (pre.p90_s - pre.p10_s),
                tps,
                1e3 * (dec.p90_s - dec.p10_s) / new_tokens,
                nbytes,
                roof,
                attained_fraction(1 / roof, 1 / tps),
            )
        )
    rows += [
        SpeedRow(n, float("nan"), 0, float("nan"), 0, 0, float("nan"), float("nan"), note)
        for n, note in notes.items()
    ]
    return rows, bandwidth


__all__ = ["ENGINE_RECIPES", "SpeedRow", "speed_table", "weight_bytes"]
