"""Per-block sensitivity of SmolLM2 and which blocks to keep at 8 bits under a size budget.

``ptqlab.ptq.sensitivity`` measures one *layer* at a time and lowers layers greedily, re-measuring every
candidate (O(layers²) forwards): on a Llama that is 210 Linears, hours on 2 cores. A decoder is made of
identical blocks, so here the unit is the block (its 7 Linears together):

    sensitivity(b) = KL(reference ‖ model with only block b at LOW)          (mean over the slice's tokens)

and, every block costing the same bytes, the greedy choice under a budget of k blocks at HIGH is the k
most sensitive blocks. Each kept-set of BUDGETS is then measured for real (no additivity assumed), beside a
negative control that keeps the k *least* sensitive blocks instead.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from ptqlab.bench.llm_schemes import int_w
from ptqlab.core.progress import Progress, track
from ptqlab.models.cache import cache_path, read_entry, write_entry
from ptqlab.ptq import llm_eval
from ptqlab.ptq.simulate import quantize_weight

LOW, HIGH = int_w(4, 64), int_w(8)
BUDGETS = (0, 2, 4, 8, 15, 30)  # blocks kept at HIGH


def block_linears(model: nn.Module, block: int) -> dict[str, nn.Linear]:
    return {f"model.layers.{block}.{n}": m for n, m in model.model.layers[block].named_modules()
            if isinstance(m, nn.Linear)}  # fmt: skip


def block_bytes(model: nn.Module, block: int, spec) -> float:
    """Bytes of block ``block``'s Linear weights under ``spec`` (codes + fp16 scales)."""
    return sum(m.weight.numel() * spec.bits_per_element(tuple(m.weight.shape)) / 8
               for m in block_linears(model, block).values())  # fmt: skip


class _Swapper:
    """The lab's model with chosen blocks' weights swapped for quantized ones, restored on ``reset``."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.original: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def set(self, bits: dict[int, object]) -> nn.Module:
        self.reset()
        for block, spec in bits.items():
            for name, layer in block_linears(self.model, block).items():
                self.original[name] = layer.weight.detach().clone()
                layer.weight.copy_(quantize_weight(layer.weight, spec))
        return self.model

    @torch.no_grad()
    def reset(self) -> None:
        modules = dict(self.model.named_modules())
        for name, w in self.original.items():
            modules[name].weight.copy_(w)
        self.original.clear()


def _score(model, windows, reference) -> dict:
    s = llm_eval.score_lm(model, windows, reference)
    return {"ppl": s.ppl, "kl_mean": s.kl_mean, "kl_p99": s.kl_p99, "top1": s.top1}


def _build(progress: Progress = None) -> dict:
    import copy

    from ptqlab.lessons.llm.numbers import eval_windows, lab_model, reference_logprobs

    work = copy.deepcopy(lab_model()[0])
    windows, ref = eval_windows(), reference_logprobs()
    n = len(work.model.layers)
    swap = _Swapper(work)
    jobs = [("alone", b, None) for b in range(n)]
    per_block = {}
    for _, b, _ in track(jobs, progress, "one block at 4 bits at a time"):
        per_block[b] = _score(swap.set({b: LOW}), windows, ref)
    order = sorted(range(n), key=lambda b: -per_block[b]["kl_mean"])
    kept = {}
    for k in track(list(BUDGETS), progress, "budgets"):
        for rule, chosen in (("most", order[:k]), ("least", order[::-1][:k])):
            if rule == "least" and k in (0, n):
                kept[(rule, k)] = kept[("most", k)]
                continue
            bits = {b: (HIGH if b in chosen else LOW) for b in range(n)}
            kept[(rule, k)] = _score(swap.set(bits), windows, ref)
    swap.reset()
    return {
        "per_block": [per_block[b] for b in range(n)],
        "order": order,
        "kept": {f"{rule}:{k}": v for (rule, k), v in kept.items()},
        "bytes_low": [block_bytes(work, b, LOW) for b in range(n)],
        "bytes_high": [block_bytes(work, b, HIGH) for b in range(n)],
    }


def _path():
    from ptqlab.lessons.llm.numbers import cache_key

    return cache_path("lab10-sensitivity", cache_key("sensitivity", LOW, HIGH, BUDGETS, _build, _Swapper))


@functools.lru_cache(maxsize=1)
def _cached() -> dict | None:
    return read_entry(_path(), lambda saved: saved if isinstance(saved, dict) else None)


def cached() -> dict | None:
    """The sensitivity study if it was computed before, else None (no model load)."""
    return _cached()


def compute(progress: Progress = None) -> dict:
    """The study, computed now (about 40 forwards of the slice) and kept in the cache."""
    found = cached()
    if found is not None:
        return found
    result = _build(progress)
    write_entry(_path(), result, what="lab 10 sensitivity")
    _cached.cache_clear()
    return result


def budget(study: dict, k: int) -> dict:
    """What keeping k blocks at 8 bits gives: the blocks, the Linear-weight megabytes, and the measured
    scores of the greedy choice (most sensitive kept) and of the negative control (least sensitive kept)."""
    if k not in BUDGETS:
        raise ValueError(f"k must be one of {BUDGETS}, got {k!r}")
    chosen = sorted(study["order"][:k])
    size = sum(study["bytes_high"][b] if b in chosen else study["bytes_low"][b]
               for b in range(len(study["order"])))  # fmt: skip
    return {"blocks": chosen, "megabytes": size / 1e6, "greedy": study["kept"][f"most:{k}"],
            "control": study["kept"][f"least:{k}"]}  # fmt: skip


def study_or_run(run: bool, progress: Progress = None) -> dict | None:
    """The cached study; when there is none, computed now if ``run`` (the lab's button), else None."""
    found = cached()
    return found if found is not None or not run else compute(progress)
