"""The tutorial's PTQ-vs-QAT decision framework, answered from measured rows instead of rules of thumb.

The tutorial:  time-constrained and 1–3 % loss acceptable → PTQ;  ≤ 4 bits or accuracy-critical → PTQ + QAT
fine-tuning;  training from scratch → QAT.  Here: among the measured rows at the chosen bit width, keep those
that fit the time budget and the data at hand and lose at most ``max_drop`` points against fp32; recommend
the fastest to deploy. When none qualifies, say which constraint binds, with the row that would satisfy it.
"""

from __future__ import annotations

from typing import NamedTuple

from ptqlab.bench.ptq_vs_qat import Row, drop_points

DATA_CHOICES = {
    "no data at all": (0, False),
    "256 unlabelled images": (256, False),
    "the labelled training set (1437 images)": (1437, True),
}


class Recommendation(NamedTuple):
    choice: Row | None
    branch: str  # "ptq", "qat", "floor-not-met", "nothing-fits"
    markdown: str


def fits(row: Row, time_budget_s: float, data: str) -> bool:
    """The row ran to completion, within the time budget, on data the student has."""
    images, labelled = DATA_CHOICES[data]
    return (
        row.accuracy is not None
        and row.seconds <= time_budget_s
        and row.images <= images
        and (labelled or not row.labelled)
    )


def _describe(row: Row, fp32: float) -> str:
    return (
        f"**{row.method}** — {100 * row.accuracy:.2f} % ({-drop_points(row, fp32):+.2f} points vs fp32), "
        f"{row.seconds:.2f} s to deploy, {row.images} {'labelled' if row.labelled else 'unlabelled'} images"
    )


def recommend(rows: list[Row], fp32: float, *, bits: int, time_budget_s: float, data: str, max_drop: float):
    """The measured answer for the student's constraints (see the module docstring)."""
    if data not in DATA_CHOICES:
        raise ValueError(f"data must be one of {sorted(DATA_CHOICES)}, got {data!r}")
    candidates = [r for r in rows if r.bits == bits and r.accuracy is not None]
    if not candidates:
        return Recommendation(None, "nothing-fits", f"No measured row at W{bits}A8 yet.")
    feasible = [r for r in candidates if fits(r, time_budget_s, data)]
    good = [r for r in feasible if drop_points(r, fp32) <= max_drop]
    if good:
        best = min(good, key=lambda r: r.seconds)
        branch = "qat" if best.method == "QAT" else "ptq"
        why = "PTQ is enough: it meets your floor" if branch == "ptq" else "only fine-tuning meets your floor"
        return Recommendation(
            best, branch, f"Use {_describe(best, fp32)}. {why} and is the fastest that does."
        )
    meeting = [r for r in candidates if drop_points(r, fp32) <= max_drop]
    relax = (
        f" Relaxing the constraints: {_describe(min(meeting, key=lambda r: r.seconds), fp32)} meets the floor."
        if meeting
        else f" No measured method reaches a {max_drop:.1f}-point floor at W{bits}A8: raise the bits."
    )
    if not feasible:
        need = (
            "A8 activations need calibration images" if data == "no data at all" else "every row needs more"
        )
        return Recommendation(
            None, "nothing-fits", f"Nothing measured fits your time and data ({need}).{relax}"
        )
    best = max(feasible, key=lambda r: r.accuracy)
    text = f"No method within your time and data loses ≤ {max_drop:.1f} points; the best is {_describe(best, fp32)}."
    return Recommendation(best, "floor-not-met", text + relax)
