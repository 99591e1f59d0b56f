"""Measure every PTQ recipe side by side on this machine: latency, speedup, size, quality, roofline.

For one model at one batch size (``run_group``): apply each available recipe to a copy (eager results are
reused across batch sizes; compiled ones are rebuilt, their graphs are shape-specialized), optionally wrap
some in ``torch.compile``, time them all interleaved in this process (``ptqlab.bench.timing``), then record each
one's serialized size, quality, and how close it gets to the memory roofline (``ptqlab.bench.roofline``).
Everything a recipe could not do is a row with ``available=False`` and the reason — never a crash.

The command line (``ptqlab bench models ...``) lives in ``ptqlab.cli.bench_models``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from ptqlab.backends import RECIPES, QuantizedResult, RecipeUnavailable, compile_frozen, compiler_available
from ptqlab.bench import roofline
from ptqlab.bench.models import BenchModel
from ptqlab.bench.size import serialized_bytes, torchao_model_bytes
from ptqlab.bench.timing import TimingStats, time_interleaved

DEFAULT_RECIPES = tuple(RECIPES)
DEFAULT_COMPILED = (
    "fp32",
    "torchao-int8-dynamic",
)  # torchao is built to be compiled; fbgemm modules gain nothing
Step = Callable[[str], None]


@dataclass
class BenchRow:
    model: str
    batch: int
    variant: str  # recipe name, "+compile" when wrapped in torch.compile
    recipe: str
    label: str
    family: str
    bits: int
    compiled: bool
    available: bool
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    median_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    repeats: int = 0
    speedup: float | None = None  # fp32 eager median / this median, same run
    speedup_vs_compiled_fp32: float | None = None
    speedup_vs_ort_fp32: float | None = None  # ORT rows: the quantization gain on ONNX Runtime alone
    size_bytes: int | None = None
    torchao_size_bytes: int | None = None
    weight_bytes: int | None = None  # streamed per forward (embedding tables excluded)
    floor_ms: float | None = None
    attained: float | None = None  # floor / median
    quality: dict[str, float] = field(default_factory=dict)
    setup_s: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _row(model: str, batch: int, variant: str, recipe: str, compiled: bool, **kw) -> BenchRow:
    r = RECIPES[recipe]
    label = r.label + (" + torch.compile" if variant != recipe else "")
    return BenchRow(model, batch, variant, recipe, label, r.family, r.bits, compiled, **kw)


def _underlying(model: torch.nn.Module) -> torch.nn.Module:
    """The module a compiled wrapper runs (for sizes)."""
    inner = getattr(model, "compiled", model)
    return getattr(inner, "_orig_mod", inner)


def build_variants(
    bm: BenchModel,
    args: tuple,
    recipes: list[str],
    compiled: list[str],
    *,
    device: torch.device,
    observer: str,
    cache: dict,
    step: Step | None = None,
) -> tuple[dict[str, tuple[str, QuantizedResult, float]], list[BenchRow], int]:
    """variant -> (recipe, result, setup seconds); plus unavailable rows. ``cache`` keeps eager results."""
    batch = args[0].shape[0]
    variants, missing = {}, []
    for name in recipes:
        recipe = RECIPES[name]
        ok, reason = recipe.availability(bm.model, device)
        if ok and name in cache:
            variants[name] = cache[name]
        elif ok:
            t0 = time.perf_counter()
            try:
                res = recipe.apply(bm.model, args, bm.calibration, observer=observer, device=device)
                variants[name] = (name, res, time.perf_counter() - t0)
                if not res.compiled:
                    cache[name] = variants[name]
            except RecipeUnavailable as e:
                ok, reason = False, str(e).removeprefix(f"{name}: ")
            except Exception as e:  # a recipe failing on this model is a finding, not a crash
                ok, reason = False, f"failed: {type(e).__name__}: {str(e)[:240]}"
        if not ok:
            missing.append(_row(bm.name, batch, name, name, recipe.compiles, available=False, reason=reason))
        if step:
            step(f"{bm.name} b{batch}: {name}")
    for name in compiled:
        if name not in variants or variants[name][1].compiled:
            continue
        key = f"{name}+compile"
        ok, reason = compiler_available(device)
        if ok:
            t0 = time.perf_counter()
            try:
                model = compile_frozen(variants[name][1].model)
                with torch.inference_mode():
                    model(*args)
                res = QuantizedResult(
                    model, name, variants[name][1].notes + ["torch.compile (inductor, freezing)"], True
                )
                variants[key] = (name, res, time.perf_counter() - t0)
            except Exception as e:
                ok, reason = False, f"torch.compile failed: {type(e).__name__}: {str(e)[:240]}"
        if not ok:
            missing.append(_row(bm.name, batch, key, name, True, available=False, reason=reason))
        if step:
            step(f"{bm.name} b{batch}: compile {name}")
    return variants, missing, batch


def run_group(
    bm: BenchModel,
    batch: int,
    *,
    recipes: list[str] | None = None,
    compiled: list[str] | None = None,
    repeats: int = 20,
    warmup: int = 3,
    budget_s: float | None = 20.0,
    bandwidth: float | None = None,
    device: str | torch.device = "cpu",
    observer: str = "minmax",
    cache: dict | None = None,
    step: Step | None = None,
) -> list[BenchRow]:
    """All rows for one model at one batch size (see the module docstring)."""
    device = torch.device(device)
    recipes = list(DEFAULT_RECIPES if recipes is None else recipes)
    unknown = [r for r in recipes + list(compiled or []) if r not in RECIPES]
    if unknown:
        raise ValueError(f"unknown recipe(s) {unknown}; choose from {', '.join(RECIPES)}")
    if "fp32" not in recipes:
        recipes.insert(0, "fp32")  # every speedup divides by fp32 measured in the same run
    cache = {} if cache is None else cache
    args = tuple(a.to(device) for a in bm.inputs(batch))
    variants, rows, _ = build_variants(
        bm, args, recipes, list(compiled or []), device=device, observer=observer, cache=cache, step=step
    )
    fns = {k: (lambda m=res.model: m(*args)) for k, (_, res, _) in variants.items()}
    stats = time_interleaved(
        fns,
        repeats=repeats,
        warmup=warmup,
        budget_s=budget_s,
        device=device,
        on_step=step and (lambda k: step(f"{bm.name} b{batch}: timing")),
    )
    for key, (name, res, setup) in variants.items():
        row = _row(
            bm.name, batch, key, name, res.compiled, available=True, notes=list(res.notes), setup_s=setup
        )
        _fill_timing(row, stats, res.compiled)
        _fill_size(row, _underlying(res.model), bandwidth)
        row.quality = bm.quality(res.model, batch)
        rows.append(row)
    order = {k: i for i, k in enumerate(recipes)}
    rows.sort(key=lambda r: (order.get(r.recipe, 99), r.compiled, r.variant))
    return rows


def _fill_timing(row: BenchRow, stats: dict[str, TimingStats], compiled: bool) -> None:
    """Median and p10/p90 (ms), and the speedups against fp32 eager and compiled fp32 of the same run."""
    s = stats[row.variant]
    row.median_ms, row.p10_ms, row.p90_ms, row.repeats = s.median_s * 1e3, s.p10_s * 1e3, s.p90_s * 1e3, s.n
    row.speedup = stats["fp32"].median_s / s.median_s
    if compiled and "fp32+compile" in stats:
        row.speedup_vs_compiled_fp32 = stats["fp32+compile"].median_s / s.median_s
    if row.recipe.startswith("ort-") and "ort-fp32" in stats:
        row.speedup_vs_ort_fp32 = stats["ort-fp32"].median_s / s.median_s


def _fill_size(row: BenchRow, inner: torch.nn.Module, bandwidth: float | None) -> None:
    """Serialized size, weight bytes per forward, and the roofline fraction when the bandwidth is known."""
    try:
        row.size_bytes = serialized_bytes(inner)
        row.weight_bytes = serialized_bytes(inner, exclude_embeddings=True)
    except Exception as e:
        row.notes.append(f"size unknown: {type(e).__name__}")
    if row.recipe.startswith("torchao"):
        row.torchao_size_bytes = torchao_model_bytes(inner)
    if bandwidth and row.weight_bytes:
        floor = roofline.memory_floor_s(row.weight_bytes, bandwidth)
        row.floor_ms, row.attained = floor * 1e3, roofline.attained_fraction(floor, row.median_ms / 1e3)


def dynamo_for_benchmarks() -> None:
    """Many compiled variants in one process share code objects (e.g. ``Sequential.forward``); past dynamo's
    recompile limit (8) they silently run eagerly. Raise the limit and make hitting it an error instead."""
    import torch._dynamo

    torch._dynamo.config.recompile_limit = 64
    torch._dynamo.config.accumulated_recompile_limit = 1024
    torch._dynamo.config.fail_on_recompile_limit_hit = True


def reset_compiled() -> None:
    """Forget every compiled graph (between model/batch groups: their variants are discarded)."""
    import torch._dynamo

    torch._dynamo.reset()
