"""The seed's "Quantization Impact Across Architectures" table, side by side with the one measured here.

The vision rows are architecture-faithful small models trained on the 8×8 digits (``ptqlab.models.vision``),
labelled "ResNet-style on digits" etc.: NOT the ImageNet models. The BERT row is all-MiniLM-L6-v2 (quality:
embedding cosine vs fp32, as ``ptqlab bench models``). The LLaMA row is a hook: ``LLM_ROW`` stays
"pending" until ``register_llm_row`` fills it (``ptqlab.bench.architecture_llm_row`` measures SmolLM2-135M;
slow, so only on request); no number is invented.

``measure_rows(models, batches, …)`` measures the rows (``ptqlab bench architectures`` and lab 11 share it),
calling ``step(description)`` after every recipe built and every timed call (for a progress bar).

Per model: int8 static PTQ (per-channel symmetric int8 weights, uint8 activations calibrated with
``CALIBRATOR``) on every real engine recipe in ``ENGINE_RECIPES``, timed interleaved with fp32 by
``ptqlab.bench.run.run_group`` at batch 1 and a core-filling batch; the row reports the fastest engine
at the large batch, its quality and its serialized size vs fp32's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ptqlab.bench.models import BenchModel

SEED_TABLE = (
    ("ResNet-50", "76.1 %", "75.8 %", "-0.3", "2.8×", "4×"),
    ("MobileNetV2", "72.0 %", "71.5 %", "-0.5", "3.2×", "4×"),
    ("BERT-Base", "84.5 %", "83.9 %", "-0.6", "2.5×", "4×"),
    ("LLaMA-7B", "45.3 PPL", "46.1 PPL", "+0.8 PPL", "2.1×", "4×"),
    ("Vision Transformer", "81.8 %", "80.9 %", "-0.9", "2.4×", "4×"),
)
SEED_ORDER = tuple(r[0] for r in SEED_TABLE)
MEASURED_MODELS = {
    "ResNet-50": "resnet",
    "MobileNetV2": "mobilenetv2",
    "BERT-Base": "minilm",
    "Vision Transformer": "vit",
}
ENGINE_RECIPES = ("ao-static-int8", "pt2e-x86-int8", "ort-int8-static")
BASELINES = ("fp32", "ort-fp32")  # ORT's int8 gain is also reported against ORT's own fp32
CALIBRATOR = "minmax"
PENDING_LLM = "pending: SmolLM2-135M, measured only on request (--models …,llama)"
LLM_MODEL = "llama"  # the --models name of the LLaMA row


@dataclass
class ArchitectureRow:
    """One measured row; ``why`` says what the machine could not produce."""

    seed_name: str
    measured_on: str
    quality_label: str = ""
    fp32: float | None = None
    int8: float | None = None
    delta: float | None = None
    engine: str = ""
    speedup: dict[int, float] = field(default_factory=dict)  # batch -> best engine's speedup over fp32 eager
    size_ratio: float | None = None  # fp32 serialized bytes / int8 serialized bytes
    engines: dict[str, dict[int, float]] = field(default_factory=dict)  # recipe -> batch -> speedup vs fp32
    ort_int8_vs_ort_fp32: dict[int, float] = field(default_factory=dict)  # the int8 gain on ORT alone
    why: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


LLM_ROW: dict[str, Callable[[], ArchitectureRow] | None] = {"fill": None}


def register_llm_row(fill: Callable[[], ArchitectureRow]) -> None:
    """Let the SmolLM2 work (issue 20) fill the LLaMA row: ``fill()`` returns its measured row."""
    if not callable(fill):
        raise TypeError(f"fill must be callable, got {type(fill).__name__}")
    LLM_ROW["fill"] = fill


def pending_llm_row() -> ArchitectureRow:
    """The LLaMA-7B row when it is not measured: it says so, and no number is invented."""
    why = [PENDING_LLM + ": not measured in this run"]
    return ArchitectureRow("LLaMA-7B", PENDING_LLM, "perplexity", why=why)


def llm_row() -> ArchitectureRow:
    """The LLaMA-7B row: the registered measurement (``register_llm_row``), else the pending row."""
    if LLM_ROW["fill"] is not None:
        return LLM_ROW["fill"]()
    return pending_llm_row()


def _best(rows, batch: int):
    ok = [r for r in rows if r.batch == batch and r.available and r.recipe in ENGINE_RECIPES]
    return max(ok, key=lambda r: r.speedup) if ok else None


def summarize(bm: BenchModel, seed_name: str, rows: list, batches: list[int]) -> ArchitectureRow:
    """The table row for one model from ``run_group``'s rows at ``batches`` (the last is the large one)."""
    row = ArchitectureRow(seed_name, bm.title, bm.quality_label)
    fp32 = next((r for r in rows if r.recipe == "fp32" and r.batch == batches[-1]), None)
    best = _best(rows, batches[-1])
    row.why += [
        f"{r.recipe} b{r.batch}: {r.reason}" for r in rows if not r.available and r.recipe in ENGINE_RECIPES
    ]
    if fp32 is None or best is None:
        row.why.append("no int8 engine ran on this model here")
        return row
    key = bm.quality_key
    row.fp32, row.int8 = fp32.quality.get(key), best.quality.get(key)
    row.delta = None if row.fp32 is None or row.int8 is None else row.int8 - row.fp32
    row.engine = best.recipe
    for b in batches:
        same = next((r for r in rows if r.batch == b and r.variant == best.variant and r.available), None)
        if same is not None:
            row.speedup[b] = same.speedup
    for r in rows:
        if r.available and r.recipe in ENGINE_RECIPES + BASELINES[1:]:
            row.engines.setdefault(r.recipe, {})[r.batch] = r.speedup
        if r.available and r.recipe == "ort-int8-static" and r.speedup_vs_ort_fp32:
            row.ort_int8_vs_ort_fp32[r.batch] = r.speedup_vs_ort_fp32
    if fp32.size_bytes and best.size_bytes:
        row.size_ratio = fp32.size_bytes / best.size_bytes
    return row


def steps_for(models, batches: list[int], repeats: int, warmup: int = 3) -> int:
    """At most how many ``step`` calls ``measure_rows`` makes for the vision/BERT rows (a progress total)."""
    recipes = len(BASELINES) + len(ENGINE_RECIPES)
    n = sum(1 for m in models if m in MEASURED_MODELS.values())
    return n * len(batches) * recipes * (1 + warmup + repeats)


def measure_rows(
    models,
    batches: list[int],
    *,
    repeats: int = 10,
    budget_s: float = 10.0,
    step: Callable[[str], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[ArchitectureRow]:
    """One ArchitectureRow per seed row whose model is in ``models`` (names of ``MEASURED_MODELS``, plus
    ``LLM_MODEL`` for the LLaMA row registered with ``register_llm_row``; the pending row otherwise), in
    the seed's order."""
    from ptqlab.bench import run as bench
    from ptqlab.bench.models import ModelUnavailable, load_bench_model

    models = list(models)
    known = (*MEASURED_MODELS.values(), LLM_MODEL)
    bad = [m for m in models if m not in known]
    if bad or not models:
        raise ValueError(f"models: unknown {bad}; choose from {', '.join(known)}")
    if not batches or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in batches):
        raise ValueError(f"batches must be positive ints, got {batches!r}")
    rows = []
    for seed_name, name in MEASURED_MODELS.items():
        if name not in models:
            continue
        try:
            bm = load_bench_model(name)
        except ModelUnavailable as e:
            rows.append(ArchitectureRow(seed_name, name, why=[f"model unavailable: {e}"]))
            continue
        if log:
            log(f"{bm.title}: quality on {bm.eval_set}")
        measured, cache = [], {}
        for b in batches:
            measured += bench.run_group(
                bm,
                b,
                recipes=[*BASELINES, *ENGINE_RECIPES],
                compiled=[],
                repeats=repeats,
                budget_s=budget_s,
                observer=CALIBRATOR,
                cache=cache,
                step=step,
            )
            bench.reset_compiled()
        rows.append(summarize(bm, seed_name, measured, batches))
    if LLM_MODEL in models and LLM_ROW["fill"] is not None and log:
        log("LLaMA row: the registered measurement (minutes)")
    rows.append(llm_row() if LLM_MODEL in models else pending_llm_row())
    rows.sort(key=lambda r: SEED_ORDER.index(r.seed_name))
    return rows


def format_table(rows: list[ArchitectureRow]) -> str:
    """The seed's table and the measured one, one line per architecture."""
    seed = {s[0]: s for s in SEED_TABLE}
    lines = [
        "| seed row | seed fp32 → int8 (Δ), speedup, size | measured on | fp32 | int8 | Δ | engine | speedup (batch) | size |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = seed[r.seed_name]
        cells = [f"{v:.4f}" if v is not None else "—" for v in (r.fp32, r.int8, r.delta)]
        sp = " / ".join(f"{v:.2f}× (b{b})" for b, v in r.speedup.items()) or "—"
        size = f"{r.size_ratio:.2f}×" if r.size_ratio else "—"
        lines.append(
            f"| {r.seed_name} | {s[1]} → {s[2]} ({s[3]}), {s[4]}, {s[5]} | {r.measured_on} ({r.quality_label}) | "
            + " | ".join(cells)
            + f" | {r.engine or '—'} | {sp} | {size} |"
        )
        lines += [f"|   | why: {w} |" for w in r.why]
        engines = "; ".join(
            f"{k} " + "/".join(f"{v:.2f}×" for v in per.values()) for k, per in r.engines.items()
        )
        if engines:
            ort = "/".join(f"{v:.2f}×" for v in r.ort_int8_vs_ort_fp32.values()) or "—"
            lines.append(f"|   | every engine vs fp32 eager: {engines}; ORT int8 vs ORT fp32: {ort} |")
    return "\n".join(lines)


__all__ = [
    "CALIBRATOR",
    "BASELINES",
    "ENGINE_RECIPES",
    "LLM_MODEL",
    "MEASURED_MODELS",
    "PENDING_LLM",
    "SEED_ORDER",
    "SEED_TABLE",
    "ArchitectureRow",
    "format_table",
    "llm_row",
    "measure_rows",
    "pending_llm_row",
    "register_llm_row",
    "steps_for",
    "summarize",
]
