"""ptqlab's Python weight-only layers (W8A16Linear, W4A16Linear) next to the engines' weight-only kernels.

One model, one batch size; every variant is timed in the same ``time_interleaved`` run as fp32 (medians and
p10/p90), sized with ``serialized_bytes`` (torch.save of the whole state_dict, embedding tables included) and scored with the bench model's
quality measure. Recipes that cannot run here are left out, with the reason, never a crash.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ptqlab.backends import RecipeUnavailable, get_recipe
from ptqlab.backends.weight_only_linear import replace_linear
from ptqlab.bench.models import load_bench_model
from ptqlab.bench.size import serialized_bytes, torchao_model_bytes
from ptqlab.bench.timing import time_interleaved

ENGINE_RECIPES = (
    "ao-dynamic-int8",
    "torchao-int8-weight-only",
    "torchao-int4-weight-only",
    "ort-fp32",  # ONNX Runtime's own fp32, so its int4 row can be read against the engine it runs on
    "ort-int4-weight-only",  # MatMulNBits: int4 blocks of 128, dequantized inside ORT's MLAS GEMM
)


@dataclass
class WeightOnlyRow:
    variant: str
    size_bytes: int
    quality: float
    median_ms: float
    p10_ms: float
    p90_ms: float
    speedup: float  # fp32 median / this median, same run

    def as_dict(self) -> dict:
        return asdict(self)


def build_weight_only_variants(
    bm, args: tuple, recipes, group_size: int, step=None
) -> tuple[dict, list[str]]:
    """variant -> model (fp32, the two Python layers, each available engine recipe); and the skipped ones.
    ``step(name)`` is called after each recipe (a progress bar's tick)."""
    variants = {
        "fp32": bm.model,
        "W8A16Linear (ptqlab, Python)": replace_linear(bm.model, bits=8),
        f"W4A16Linear g{group_size} (ptqlab, Python)": replace_linear(
            bm.model, bits=4, group_size=group_size
        ),
    }
    skipped = []
    for name in recipes:
        recipe = get_recipe(name)
        ok, reason = recipe.availability(bm.model, "cpu")
        if not ok:
            skipped.append(f"{name}: {reason}")
            continue
        try:
            variants[name] = recipe.apply(bm.model, args, bm.calibration).model
        except RecipeUnavailable as e:
            skipped.append(f"{name}: {e}")
        except Exception as e:  # a recipe failing on this model is a finding, not a crash
            skipped.append(f"{name}: failed: {type(e).__name__}: {str(e)[:200]}")
        if step:
            step(name)
    return variants, skipped


def compare_weight_only(
    model: str = "minilm",
    batch: int = 1,
    *,
    recipes: tuple[str, ...] = ENGINE_RECIPES,
    group_size: int = 32,
    repeats: int = 15,
    budget_s: float | None = 20.0,
    step=None,
) -> tuple[list[WeightOnlyRow], list[str]]:
    """(rows, skipped recipes with the reason) for ``model`` ("mlp", "cnn", "minilm") at ``batch``;
    ``step(desc)`` is called once per recipe and once after timing (``len(recipes) + 1`` calls)."""
    bm = load_bench_model(model)
    args = bm.inputs(batch)
    variants, skipped = build_weight_only_variants(bm, args, recipes, group_size, step)
    stats = time_interleaved(
        {k: (lambda m=m: m(*args)) for k, m in variants.items()}, repeats=repeats, budget_s=budget_s
    )
    if step:
        step("timed, interleaved")
    rows = []
    for name, m in variants.items():
        s = stats[name]
        size = torchao_model_bytes(m) if name.startswith("torchao") else None
        quality = bm.quality(m, batch)[bm.quality_key]
        rows.append(
            WeightOnlyRow(
                name,
                size or serialized_bytes(m),
                float(quality),
                s.median_s * 1e3,
                s.p10_s * 1e3,
                s.p90_s * 1e3,
                stats["fp32"].median_s / s.median_s,
            )  # fmt: skip
        )
    return rows, skipped
