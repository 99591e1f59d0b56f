"""The Q4_1-origin lesson: SmolLM2's published weights already lie on a Q4_1 grid.

Q4_1 stores each block of 32 weights as x̂ = d·q + m (q ∈ 0…15; d = (max − min)/15 and m = min, both fp16),
so every block holds at most 16 distinct values. Consequences measured here on the Linears of three decoder blocks
(the tests check the idempotence on every Linear):

* idempotence: Q4_1 of a Q4_1 block finds the same min, max, d and m, so it returns every weight bit for bit;
* integer vs float zero point: an asymmetric uint4 grid with an *integer* zero point z puts its points at
  s·(q − z): 0 is on the grid, m generally is not, so the whole grid is shifted against the published one
  and (almost) every weight moves;
* more bits on another grid: Q5_1's points m + k·(max − min)/31 meet the published m + j·(max − min)/15
  only at the two ends (31 and 15 share no factor), so the 14 inner values all move, by up to half a step.
"""

from __future__ import annotations

import functools

import torch

from ptqlab.bench.llm_schemes import quantizable_layers
from ptqlab.core.affine import choose_qparams
from ptqlab.core.gguf_formats import BLOCK, fake_quantize_gguf
from ptqlab.core.progress import Progress, track
from ptqlab.core.spec import PerGroup, QuantSpec
from ptqlab.models.cache import load_or_build
from ptqlab.ptq.simulate import quantize_weight

FACT_BLOCKS = (0, 15, 29)  # the decoder blocks whose 7 Linears each (10.6 M weights) the facts cover
EXAMPLE_LAYER = "model.layers.0.mlp.down_proj"
EXAMPLE_BLOCKS = 48  # the first blocks of the example layer, kept for the lab's block slider
INTEGER_ZERO_POINT = QuantSpec(bits=4, signed=False, symmetric=False, granularity=PerGroup(32))
REQUANTIZERS = {
    "GGUF Q4_1 (the published grid)": lambda w: fake_quantize_gguf(w, "Q4_1"),
    "uint4 g32, integer zero point": lambda w: quantize_weight(w, INTEGER_ZERO_POINT),
    "GGUF Q5_1 (5 bits, another grid)": lambda w: fake_quantize_gguf(w, "Q5_1"),
    "GGUF Q4_0 (symmetric, d = max / −8)": lambda w: fake_quantize_gguf(w, "Q4_0"),
}


def distinct_per_block(w: torch.Tensor) -> torch.Tensor:
    """Number of distinct values in each block of 32 consecutive weights of each row, (blocks,) int64."""
    blocks = w.detach().reshape(-1, BLOCK).sort(1).values
    return 1 + (blocks[:, 1:] != blocks[:, :-1]).sum(1)


def _layer_stats(w: torch.Tensor) -> dict:
    stats = {"distinct": distinct_per_block(w)}
    for name, fn in REQUANTIZERS.items():
        w_hat = fn(w)
        stats[name] = ((w_hat != w).sum().item(), float(((w_hat - w) ** 2).sum()), float((w**2).sum()))
    return stats


def _build(model, progress: Progress = None) -> dict:
    modules = dict(model.named_modules())
    changed = dict.fromkeys(REQUANTIZERS, 0)
    err = dict.fromkeys(REQUANTIZERS, 0.0)
    energy, weights, histogram = 0.0, 0, torch.zeros(BLOCK + 1, dtype=torch.int64)
    names = [
        n for n in quantizable_layers(model) if any(n.startswith(f"model.layers.{b}.") for b in FACT_BLOCKS)
    ]
    for name in track(names, progress, "Q4_1 checks"):
        w = modules[name].weight.detach()
        stats = _layer_stats(w)
        histogram += torch.bincount(stats["distinct"], minlength=BLOCK + 1)
        weights += w.numel()
        for key in REQUANTIZERS:
            n, e, total = stats[key]
            changed[key] += n
            err[key] += e
        energy += total
    example = modules[EXAMPLE_LAYER].weight.detach().reshape(-1, BLOCK)[:EXAMPLE_BLOCKS].clone()
    return {
        "weights": weights,
        "blocks": weights // BLOCK,
        "distinct_histogram": histogram,
        "changed": changed,
        "relative_mse": {k: err[k] / energy for k in REQUANTIZERS},
        "example": example,
    }


@functools.lru_cache(maxsize=1)
def facts() -> dict:
    """The lesson's numbers over the Linears of FACT_BLOCKS (cached)."""
    from ptqlab.lessons.llm.numbers import cache_key, lab_model

    key = cache_key(
        "q4_1-facts", FACT_BLOCKS, EXAMPLE_LAYER, EXAMPLE_BLOCKS, INTEGER_ZERO_POINT, _build, _layer_stats
    )
    return load_or_build("lab10-q4_1", key, lambda: _build(lab_model()[0]))[0]


def block_grids(block: int) -> dict:
    """One real block of the example layer: its 32 values and the points each requantizer's grid offers
    (Q4_1's and Q5_1's with fp16 d and m as llama.cpp stores them; the integer zero point's from ptqlab's
    ``choose_qparams``, the rule ``quantize_weight`` applies per group)."""
    if isinstance(block, bool) or not isinstance(block, int) or not 0 <= block < EXAMPLE_BLOCKS:
        raise ValueError(f"block must be an int in [0, {EXAMPLE_BLOCKS}), got {block!r}")
    x = facts()["example"][block][None]
    lo, hi = float(x.min()), float(x.max())
    q4 = torch.linspace(0, 15, 16)
    d4 = torch.tensor((hi - lo) / 15).to(torch.float16).float()
    d5 = torch.tensor((hi - lo) / 31).to(torch.float16).float()
    m = torch.tensor(lo).to(torch.float16).float()
    qp = choose_qparams(lo, hi, QuantSpec(bits=4, signed=False, symmetric=False))
    s, z = float(qp.scale), float(qp.zero_point)
    return {
        "values": x[0],
        "grids": {
            "GGUF Q4_1 (the published grid)": d4 * q4 + m,
            "uint4, integer zero point": s * (q4 - z),
            "GGUF Q5_1 (5 bits, another grid)": d5 * torch.linspace(0, 31, 32) + m,
        },
    }
