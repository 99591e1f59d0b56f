"""Lab 07's tables, sentences and recap, built from the measured comparison."""

from __future__ import annotations

from ptqlab.labkit.models import LABELS
from ptqlab.lessons.beyond_rtn.numbers import NAMES, Comparison
from ptqlab.lessons.beyond_rtn.questions import rtn_at_8_bits


def comparison_markdown(comp: Comparison) -> str:
    """The result table: score, gain over RTN, runtime and what each algorithm reported."""
    minilm = comp.model == "minilm"
    head = "| algorithm | mean cosine | NN agreement | Δ cosine vs RTN | runtime (s) | notes |\n|---|---|---|---|---|---|"
    if not minilm:
        head = (
            "| algorithm | test accuracy | Δ vs RTN (points) | runtime (s) | notes |\n|---|---|---|---|---|"
        )
    base = comp.rows[0].score
    lines = [head]
    for r in comp.rows:
        note = "; ".join(r.notes[:2]).replace("|", "/")
        if minilm:
            lines.append(
                f"| {NAMES[r.algorithm]} | {r.score:.4f} | {100 * r.neighbours:.1f} % | {r.score - base:+.4f} | {r.seconds:.1f} | {note} |"
            )
        else:
            lines.append(
                f"| {NAMES[r.algorithm]} | {100 * r.score:.1f} % | {100 * (r.score - base):+.1f} | {r.seconds:.1f} | {note} |"
            )
    ref = "fp32 embeddings (cosine 1)" if minilm else f"fp32 test accuracy {100 * comp.fp32_score:.1f} %"
    kept = (
        f" Kept in float (group size does not divide their input): {', '.join(comp.skipped)}."
        if comp.skipped
        else ""
    )
    return "\n".join(lines) + f"\n\n*Spec: {comp.spec}. Reference: {ref}.{kept}*"


def best_markdown(comp: Comparison) -> str:
    best = max(comp.rows, key=lambda r: r.score)
    metric = "mean cosine" if comp.model == "minilm" else "test accuracy"
    value = f"{best.score:.4f}" if comp.model == "minilm" else f"{100 * best.score:.1f} %"
    rtn_value = f"{comp.rows[0].score:.4f}" if comp.model == "minilm" else f"{100 * comp.rows[0].score:.1f} %"
    return f"Best here: **{NAMES[best.algorithm]}**, {metric} {value} (RTN: {rtn_value}), in {best.seconds:.1f} s."


def recap_markdown(comp: Comparison) -> str:
    """The recap; its first bullet is the comparison the lab just measured."""
    minilm = comp.model == "minilm"
    fmt = (lambda v: f"{v:.4f}") if minilm else (lambda v: f"{100 * v:.1f} %")  # noqa: E731
    rtn, best = comp.rows[0], max(comp.rows, key=lambda r: r.score)
    metric = "mean cosine" if minilm else "test accuracy"
    measured = (
        f"Here ({LABELS[comp.model]}, {comp.spec}): RTN's {metric} is {fmt(rtn.score)}; the best, "
        f"**{NAMES[best.algorithm]}**, reaches {fmt(best.score)} in {best.seconds:.1f} s."
    )
    rtn8, fp32 = rtn_at_8_bits()
    eight_bits = (
        f"At 8 bits plain RTN already gives {100 * rtn8:.1f} % on the digits CNN (fp32: {100 * fp32:.1f} %)."
    )
    return "\n".join(
        [
            "## Recap",
            "",
            f"- {measured} Pick by the gap at *your* bit width and by the runtime you can afford.",
            "- Bias correction removes the mean output shift rounding adds, b ← b − (W̃ − W)·E[x]: it fixes "
            "the mean of each output channel, not the spread.",
            "- CLE, AWQ and SmoothQuant rescale channels so the float function stays the same and the grid "
            "fits better; AdaRound and GPTQ change *which* grid point each weight gets.",
            "- AdaRound and GPTQ minimise the layer's output error ‖XWᵀ − XŴᵀ‖², not the weight error, so "
            "their weights can sit further from W than RTN's.",
            f"- {eight_bits} The algorithms earn their runtime at 2–4 bits.",
        ]
    )
