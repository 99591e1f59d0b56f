"""Turn benchmark rows into a text table, goal verdicts and a JSON document."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ptqlab.bench.run import BenchRow

INT8_FAMILIES_EXCLUDED = ("baseline",)


def quality_text(q: dict[str, float]) -> str:
    if "accuracy" in q:
        return f"acc {100 * q['accuracy']:.2f}%"
    if "neighbour_agreement" in q:
        return f"cos {q['cosine']:.5f} (min {q['min_cosine']:.4f}), nn {100 * q['neighbour_agreement']:.0f}%"
    if "cosine" in q:
        return f"cos {q['cosine']:.5f}"
    return ""


def _ms(v: float | None) -> str:
    return "—" if v is None else (f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}")


def bench_table(rows: Iterable[BenchRow], repeats: int | None = None) -> str:
    """One line per variant: latency (median, p10–p90, repeats), speedup, size, roofline, quality."""
    rows = list(rows)
    head = f"{'variant':<30} {'median ms':>9} {'p10–p90 ms':>15} {'n':>3} {'speedup':>8} {'size MB':>8} {'roofline':>8}  quality"
    out = []
    for key in dict.fromkeys((r.model, r.batch) for r in rows):
        group = [r for r in rows if (r.model, r.batch) == key]
        out += ["", f"== {key[0]} · batch {key[1]} ==", head]
        for r in group:
            if not r.available:
                out.append(f"{r.variant:<30} unavailable: {r.reason}")
                continue
            n = f"{r.repeats}{'*' if repeats and r.repeats < repeats else ''}"
            spread = f"{_ms(r.p10_ms)}–{_ms(r.p90_ms)}"
            size = "—" if r.size_bytes is None else f"{r.size_bytes / 1e6:.2f}"
            roof = "—" if r.attained is None else f"{100 * r.attained:.0f}%"
            speed = f"{r.speedup:.2f}×"
            if r.speedup_vs_compiled_fp32 is not None and r.variant != "fp32+compile":
                speed += f" ({r.speedup_vs_compiled_fp32:.2f}× vs compiled fp32)"
            if r.speedup_vs_ort_fp32 is not None and r.variant != "ort-fp32":
                speed += f" ({r.speedup_vs_ort_fp32:.2f}× vs ORT fp32)"
            out.append(
                f"{r.variant:<30} {_ms(r.median_ms):>9} {spread:>15} {n:>3} {speed:>8} {size:>8} {roof:>8}  {quality_text(r.quality)}"
            )
    if repeats and any(r.available and r.repeats < repeats for r in rows):
        out.append(
            f"\n* fewer than {repeats} repeats: the variant was too slow for the per-variant time budget"
        )
    return "\n".join(out)


@dataclass
class Goal:
    text: str
    target: float
    measured: float | None
    variant: str
    met: bool | None  # None: could not be evaluated (model/batch not measured, recipe unavailable)
    detail: str = ""

    def line(self) -> str:
        if self.met is None:
            return f"[ n/a ] {self.text}: {self.detail}"
        if self.measured is None:
            return f"[MISSED] {self.text}: {self.detail}"
        verdict = "MET  " if self.met else "MISSED"
        gap = "" if self.met else f" — short by {self.target / self.measured:.2f}×"
        shown = f"{100 * self.measured:.0f}%" if self.target and self.target < 1 else f"{self.measured:.2f}×"
        tail = f" ({self.detail})" if self.detail else ""
        return f"[{verdict}] {self.text}: {shown} with {self.variant}{gap}{tail}"


def _best(
    rows: list[BenchRow], model: str, batch: int, bits: int, min_cosine: float | None = None
) -> BenchRow | None:
    cands = [
        r
        for r in rows
        if r.available
        and r.model == model
        and r.batch == batch
        and r.bits == bits
        and r.family not in INT8_FAMILIES_EXCLUDED
        and (min_cosine is None or r.quality.get("cosine", 0.0) >= min_cosine)
    ]
    return max(cands, key=lambda r: r.speedup or 0.0, default=None)


def evaluate_goals(rows: list[BenchRow]) -> list[Goal]:
    """The issue's goals, checked against the rows of this run (speedups vs fp32 eager, same run)."""
    goals = []
    specs = [
        ("int8 ≥ 4× vs fp32, memory-bound MLP, batch 1", "membound", 1, 4.0, None),
        ("int8 ≥ 2× vs fp32, memory-bound MLP, batch 64", "membound", 64, 2.0, None),
        ("MiniLM int8 ≥ 1.5× at batch 1 (seq 32) with cosine ≥ 0.999", "minilm", 1, 1.5, 0.999),
        ("MiniLM int8 ≥ 2× at batch 1 (seq 32) with cosine ≥ 0.999", "minilm", 1, 2.0, 0.999),
    ]
    for text, model, batch, target, min_cos in specs:
        measured = [r for r in rows if r.model == model and r.batch == batch]
        if not measured:
            goals.append(Goal(text, target, None, "", None, f"{model} at batch {batch} was not measured"))
            continue
        best = _best(rows, model, batch, 8, min_cos)
        if best is None:
            fastest = _best(rows, model, batch, 8)
            if fastest is None:
                goals.append(Goal(text, target, None, "", None, "no int8 recipe was available"))
            else:
                cos = fastest.quality.get("cosine", float("nan"))
                why = f"no int8 variant reached cosine {min_cos}; the fastest, {fastest.variant} ({fastest.speedup:.2f}×), has {cos:.5f}"
                goals.append(Goal(text, target, None, "", False, why))
            continue
        detail = f"roofline {100 * best.attained:.0f}%" if best.attained else ""
        if min_cos:
            detail = f"cosine {best.quality.get('cosine', float('nan')):.5f}"
        goals.append(Goal(text, target, best.speedup, best.variant, best.speedup >= target, detail))
    goals.append(_int4_goal(rows))
    goals.append(_roofline_goal(rows))
    for model, batch in dict.fromkeys((r.model, r.batch) for r in rows):
        best = _best(rows, model, batch, 4)
        if best is not None:
            goals.append(
                Goal(f"best int4 on {model}, batch {batch}", 0.0, best.speedup, best.variant, True, "")
            )
        goals += best_engines(rows, model, batch)
    return goals


def _int4_goal(rows: list[BenchRow]) -> Goal:
    text = "int4 weight-only ≥ 10× vs fp32, memory-bound MLP, batch 1"
    best = _best(rows, "membound", 1, 4)
    if best is None:
        return Goal(text, 10.0, None, "", None, "no int4 recipe measured on membound at batch 1")
    cos = best.quality.get("cosine", float("nan"))
    detail = (
        f"cosine {cos:.4f}; roofline {100 * best.attained:.0f}%" if best.attained else f"cosine {cos:.4f}"
    )
    return Goal(text, 10.0, best.speedup, best.variant, best.speedup >= 10.0, detail)


def _roofline_goal(rows: list[BenchRow]) -> Goal:
    """The best int8 at batch 1 on membound reaches ≥ 70 % of the memory roofline (measured bandwidth)."""
    text = "best int8 on membound, batch 1, ≥ 70 % of the roofline"
    best = _best(rows, "membound", 1, 8)
    if best is None or best.attained is None:
        return Goal(text, 0.7, None, "", None, "no int8 row with a roofline on membound at batch 1")
    detail = f"{best.median_ms:.2f} ms vs a floor of {best.floor_ms:.2f} ms" if best.floor_ms else ""
    return Goal(text, 0.7, best.attained, best.variant, best.attained >= 0.7, detail)


def best_engines(rows: list[BenchRow], model: str, batch: int) -> list[Goal]:
    """The fastest variant of each engine family for this model and batch (informational goal lines)."""
    group = [r for r in rows if r.available and r.model == model and r.batch == batch and r.speedup]
    fastest: dict[str, BenchRow] = {}
    for r in group:
        if r.family not in fastest or r.speedup > fastest[r.family].speedup:
            fastest[r.family] = r
    ranked = sorted(fastest.values(), key=lambda r: -r.speedup)
    return [
        Goal(
            f"{'best engine' if i == 0 else 'then'} on {model}, batch {batch}: {r.family}",
            0.0,
            r.speedup,
            f"{r.variant} ({quality_text(r.quality)})",
            True,
        )
        for i, r in enumerate(ranked)
    ]


def goals_text(goals: list[Goal]) -> str:
    lines = []
    for g in goals:
        if g.target == 0.0 and g.met:  # informational (int4)
            lines.append(f"[ info] {g.text}: {g.measured:.2f}× with {g.variant}")
        else:
            lines.append(g.line())
    return "\n".join(lines)


def roofline_cell(row: BenchRow, llc_bytes: int | None) -> str:
    """floor / measured with 3 significant digits, or "not meaningful" when the weights fit in the LLC."""
    if row.weight_bytes is None or row.attained is None:
        return "—"
    if llc_bytes is not None and row.weight_bytes <= llc_bytes:
        return "not meaningful (fits in cache)"
    return f"{100 * row.attained:.3g}%"
