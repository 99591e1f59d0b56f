"""Lab 05's figures: per-layer sensitivity, the mixed-precision Pareto chart, accuracy vs calibration set."""

from __future__ import annotations

import functools

from matplotlib.figure import Figure

from ptqlab.lessons.models import LABELS
from ptqlab.lessons.sensitivity import calibration_spread, lab_mixed_precision, lab_sensitivity
from ptqlab.plots.figure import new_figure
from ptqlab.plots.raster import image
from ptqlab.ptq.sensitivity import MixedPrecisionPoint, MixedPrecisionResult, SensitivityReport

COLORS = {"per-tensor": "tab:red", "per-channel": "tab:blue", "per-group": "tab:green"}


def sensitivity_figure(report: SensitivityReport, title: str) -> Figure:
    """Grouped bars: accuracy drop (points) when only that layer is quantized, per bit width."""
    fig, (ax,) = new_figure(width=9, height=4.2, layout=None)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.12)
    n = len(report.bits)
    width = 0.8 / n
    for i, b in enumerate(sorted(report.bits)):
        drops = [100 * report.drop(layer, b) for layer in report.layers]
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(report.layers))]
        ax.bar(xs, drops, width, label=f"W{b}")
    ax.set_xticks(range(len(report.layers)), report.layers)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set(title=title, xlabel="layer quantized alone (all others fp32)", ylabel="accuracy drop (points)")
    ax.legend(title="weight bits", fontsize=8)
    return fig


def _kb_and_percent(points) -> tuple[list[float], list[float]]:
    """A mixed-precision plot's coordinates: sizes in KiB and metrics in percent."""
    return [p.size_bytes / 1024 for p in points], [100 * p.metric for p in points]


def mixed_precision_figure(
    result: MixedPrecisionResult, chosen: MixedPrecisionPoint | None, budget_bytes: float, title: str
) -> Figure:
    """Size vs accuracy: every configuration measured, the greedy path, the Pareto front and the pick."""
    fig, (ax,) = new_figure(width=9, height=4.8, layout=None)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.11)
    ax.scatter(
        *_kb_and_percent(result.explored),
        s=12,
        color="lightgrey",
        label="configurations measured",
    )
    ax.plot(
        *_kb_and_percent(result.path),
        "-o",
        markersize=3,
        color="tab:blue",
        linewidth=1,
        label="greedy path",
    )
    front = result.pareto()
    ax.step(
        *_kb_and_percent(front),
        where="post",
        color="tab:green",
        linewidth=1.5,
        label="Pareto front",
    )
    ax.plot(
        *_kb_and_percent(result.uniform),
        "ks",
        markersize=5,
        label="same bits everywhere (" + ", ".join(f"W{b}" for b in result.choices) + ")",
    )
    ax.axvline(budget_bytes / 1024, color="tab:red", linestyle="--", linewidth=1, label="size budget")
    if chosen is not None:
        ax.plot(*_kb_and_percent([chosen]), "*", markersize=16, color="tab:red", label="chosen")
    ax.axhline(100 * result.float_metric, color="black", linewidth=0.6, label="fp32 accuracy")
    ax.set(title=title, xlabel="model size (KiB, all parameters)", ylabel="test accuracy (%)")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def calibration_figure(points, title: str) -> Figure:
    """Accuracy vs calibration-set size per selection method (mean over seeds, band = min–max)."""
    fig, (ax,) = new_figure(width=8, height=4.2)
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:purple")
    for (method, rows), color in zip(calibration_spread(points).items(), colors, strict=False):
        sizes = list(rows)
        mean = [100 * rows[n][0] for n in sizes]
        ax.plot(
            sizes, mean, "-o", markersize=4, color=color, label=f"{method} (mean; band: min–max over seeds)"
        )
        low, high = [100 * rows[n][1] for n in sizes], [100 * rows[n][2] for n in sizes]
        ax.fill_between(sizes, low, high, color=color, alpha=0.12)
    lowest = min(100 * p.accuracy for p in points)
    ax.set_xscale("log", base=2)
    ax.set(
        title=title,
        xlabel="calibration samples",
        ylabel="test accuracy (%)",
        ylim=(min(lowest - 1, 95), 100.5),
    )
    ax.legend(title="selection", fontsize=8)
    return fig


# ---- lab 05's slider-driven figures as screen-resolution PNGs, cached per setting ---------------------------


@functools.lru_cache(maxsize=8)
def sensitivity_image(name: str, granularity: str):
    """``sensitivity_figure`` of a lab model (``lessons.sensitivity.lab_sensitivity``)."""
    title = f"{LABELS[name]}: one layer quantized at a time ({granularity}, BN folded)"
    return image(sensitivity_figure(lab_sensitivity(name, granularity), title))


@functools.lru_cache(maxsize=256)
def mixed_precision_image(name: str, granularity: str, budget_kib: float):
    """``mixed_precision_figure`` with the configuration chosen for ``budget_kib``."""
    result = lab_mixed_precision(name, granularity)
    title = f"{LABELS[name]}: size vs accuracy ({granularity})"
    return image(
        mixed_precision_figure(result, result.for_budget(budget_kib * 1024), budget_kib * 1024, title)
    )
