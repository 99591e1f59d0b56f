"""Batch-1 speed of a causal LM: prefill (1 × 128 tokens) and decode tokens/s, against the decode roofline.

Decode at batch 1 reads every weight once per token, so it is memory-bound:

    roofline tokens/s = bandwidth / weight bytes read per token       (bandwidth measured here)
    % of roofline     = measured tokens/s / roofline tokens/s

Decode is timed as ``generate`` of ``new_tokens`` greedy tokens from a 1-token prompt with the KV cache
(per token: total / new_tokens; the one-token prefill is included, negligible). Variants are timed
interleaved after warm-up (``bench.timing.time_interleaved``), median and spread reported. Engine recipes:
fp32 eager and torchao's int8 weight-only / int8 dynamic / int4 weight-only where they apply on this
machine, and ONNX Runtime's decode step with a KV cache, fp32 / int8 / int4 (``bench.llm_speed_ort``);
a recipe that fails to build or run is reported with its reason, never silently dropped. No engine spins:
torch's OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``, set by importing ptqlab before torch) and
ORT's pool does not spin (``ort_session.session_options``); a torch imported before ptqlab spins, which
speeds its eager decode up (many tiny parallel regions per token) at its neighbours' expense.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import nn

from ptqlab.bench.llm_speed_ort import ORT_RECIPES, Variant, ort_variants
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
    note: str = ""  # set when the recipe did not run: why
    detail: str = ""  # what the engine is (e.g. "ONNX Runtime, KV cache, int4 MatMulNBits block 64, …")


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


def _eager_variants(model, names, prompt, new_tokens, step) -> tuple[dict[str, Variant], dict[str, str]]:
    """fp32 eager and the torchao recipes in ``names``: HF ``model(prompt)`` and greedy ``model.generate``."""
    models, notes, details = {"fp32 eager": (model, 4.0)}, {}, {"fp32 eager": "PyTorch eager, HF generate"}
    step("fp32 eager")
    for name in names:
        config, kw, bpw = ENGINE_RECIPES[name]
        try:
            variant = _torchao_variant(model, config, **kw)
            with torch.inference_mode():
                variant(torch.zeros(1, 4, dtype=torch.int64))
        except Exception as error:  # a recipe that does not apply here is a row with its reason
            notes[name] = f"not run: {type(error).__name__}: {str(error).splitlines()[0][:100]}"
            continue
        models[name], details[name] = (variant, bpw), _call(f"torchao {config}", kw) + ", HF generate"
        step(name)
    one, variants = prompt[:, :1], {}
    for name, (m, bpw) in models.items():
        variants[name] = Variant(
            lambda m=m: m(prompt, use_cache=False),
            lambda m=m: m.generate(
                one,
                attention_mask=torch.ones_like(one),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=0,
            ),
            weight_bytes(model, bpw),
            details[name],
        )
    return variants, notes


def _call(name: str, kw: dict) -> str:
    return f"{name}({', '.join(f'{k}={v}' for k, v in kw.items())})"


def speed_steps(recipes=None) -> int:
    """How many times ``speed_table`` calls its ``step``: fp32 eager, each recipe, the ONNX export (when an
    ORT recipe is asked for) and the interleaved timing."""
    names = list(ENGINE_RECIPES) + list(ORT_RECIPES) if recipes is None else list(recipes)
    return 2 + len(names) + any(n in ORT_RECIPES for n in names)


def speed_table(
    model: nn.Module,
    *,
    prompt_tokens: int = 128,
    new_tokens: int = 16,
    repeats: int = 5,
    recipes=None,
    step=None,
) -> tuple[list[SpeedRow], float]:
    """(rows, measured bandwidth bytes/s): fp32 eager and each recipe of ``recipes`` (default: every torchao
    recipe of ``ENGINE_RECIPES`` and every ONNX Runtime one of ``llm_speed_ort.ORT_RECIPES``), all timed in
    one interleaved run on the same prompt and the same ``new_tokens``. ``step(desc)``, if given, is called
    after each stage (``speed_steps`` of them): a progress bar's tick."""
    names = list(ENGINE_RECIPES) + list(ORT_RECIPES) if recipes is None else list(recipes)
    unknown = [n for n in names if n not in ENGINE_RECIPES and n not in ORT_RECIPES]
    if unknown:
        raise ValueError(f"recipes: unknown {unknown}; known: {[*ENGINE_RECIPES, *ORT_RECIPES]}")
    prompt = torch.arange(1, prompt_tokens + 1, dtype=torch.int64)[None]
    step = step or (lambda desc="": None)
    variants, notes = _eager_variants(
        model, [n for n in names if n in ENGINE_RECIPES], prompt, new_tokens, step
    )
    ort, ort_notes = ort_variants(
        model, [n for n in names if n in ORT_RECIPES], prompt, new_tokens, step=step
    )
    variants, notes = variants | ort, notes | ort_notes
    fns = {
        f"{name}/{part}": getattr(v, part) for name, v in variants.items() for part in ("prefill", "decode")
    }
    stats = time_interleaved(fns, repeats=repeats, warmup=1)
    step("timed interleaved")
    bandwidth, _ = measure_read_bandwidth(1 << 29)
    rows = []
    for name, v in variants.items():
        pre, dec = stats[f"{name}/prefill"], stats[f"{name}/decode"]
        tps = new_tokens / dec.median_s
        roof = 1.0 / memory_floor_s(v.weight_bytes, bandwidth)
        rows.append(
            SpeedRow(
                name,
                1e3 * pre.median_s,
                1e3 * (pre.p90_s - pre.p10_s),
                tps,
                1e3 * (dec.p90_s - dec.p10_s) / new_tokens,
                v.weight_bytes,
                roof,
                attained_fraction(1 / roof, 1 / tps),
                detail=v.detail,
            )
        )
    rows += [
        SpeedRow(n, float("nan"), 0, float("nan"), 0, 0, float("nan"), float("nan"), note)
        for n, note in notes.items()
    ]
    return rows, bandwidth


def best_speedup(rows: list[SpeedRow], kind: str) -> tuple[str, float] | None:
    """(name, decode tokens/s ÷ fp32 eager's) of the fastest row whose name contains ``kind`` ("int8",
    "int4"), or None when no such row ran (or fp32 eager did not)."""
    fp32 = next((r for r in rows if r.name == "fp32 eager" and not r.note), None)
    ran = [r for r in rows if kind in r.name and not r.note]
    if fp32 is None or not ran:
        return None
    best = max(ran, key=lambda r: r.decode_tokens_per_s)
    return best.name, best.decode_tokens_per_s / fp32.decode_tokens_per_s


__all__ = [
    "ENGINE_RECIPES",
    "best_speedup",
    "ORT_RECIPES",
    "SpeedRow",
    "speed_steps",
    "speed_table",
    "weight_bytes",
]
