"""Lab 05's figures: per-layer sensitivity, the mixed-precision Pareto chart, accuracy vs calibration set."""

from __future__ import annotations

import functools

from matplotlib.figure import Figure

from ptqlab.bench.figure import new_figure
from ptqlab.labkit import vega
from ptqlab.labkit.models import LABELS
from ptqlab.labkit.raster import image
from ptqlab.lessons.sensitivity.numbers import calibration_spread, lab_mixed_precision, lab_sensitivity
from ptqlab.ptq.sensitivity import MixedPrecisionPoint, MixedPrecisionResult, SensitivityReport

LEGEND_OUTSIDE = {
    "loc": "upper left",
    "bbox_to_anchor": (1.01, 1.0),
    "borderaxespad": 0.0,
}  # never on the data
COLORS = {"per-tensor": "tab:red", "per-channel": "tab:blue", "per-group": "tab:green"}


def sensitivity_figure(report: SensitivityReport, title: str) -> Figure:
    """Grouped bars: accuracy drop (points) when only that layer is quantized, per bit width."""
    fig, (ax,) = new_figure(width=9, height=4.2, layout=None)
    fig.subplots_adjust(left=0.08, right=0.86, top=0.92, bottom=0.12)  # the legend sits right of the axes
    n = len(report.bits)
    width = 0.8 / n
    for i, b in enumerate(sorted(report.bits)):
        drops = [100 * report.drop(layer, b) for layer in report.layers]
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(report.layers))]
        ax.bar(xs, drops, width, label=f"W{b}")
    ax.set_xticks(range(len(report.layers)), report.layers)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set(title=title, xlabel="layer quantized alone (all others fp32)", ylabel="accuracy drop (points)")
    ax.legend(title="weight bits", fontsize=8, **LEGEND_OUTSIDE)
    return fig


def _kb_and_percent(points) -> list[dict]:
    """A mixed-precision chart's rows: size in KiB and metric in percent."""
    return vega.rows(kib=[p.size_bytes / 1024 for p in points], pct=[100 * p.metric for p in points])


_KIB = vega.quantitative("kib", "model size (KiB, all parameters)", scale={"zero": False})
_PCT = vega.quantitative("pct", "test accuracy (%)", scale={"zero": False})


def _series(colors: dict[str, str], series: str, data: list[dict], mark: dict, **encoding) -> dict:
    return vega.layer(data, mark, **encoding, color=vega.series_color(colors, series))


def mixed_precision_chart(
    result: MixedPrecisionResult, chosen: MixedPrecisionPoint | None, budget_bytes: float, title: str
) -> vega.Chart:
    """Size vs accuracy, drawn by the browser: every configuration measured, the greedy path, the Pareto front,
    uniform bit widths, the budget and the configuration chosen for it."""
    uniform = "same bits everywhere (" + ", ".join(f"W{b}" for b in result.choices) + ")"
    marks = {
        "configurations measured": (
            "#bbbbbb",
            result.explored,
            {"type": "point", "filled": True, "size": 16},
        ),
        "greedy path": ("#1f77b4", result.path, {"type": "line", "point": {"size": 14}, "strokeWidth": 1}),
        "Pareto front": (
            "#2ca02c",
            result.pareto(),
            {"type": "line", "interpolate": "step-after", "strokeWidth": 1.5},
        ),
        uniform: ("black", result.uniform, {"type": "point", "shape": "square", "filled": True, "size": 40}),
    }
    if chosen is not None:
        marks["chosen"] = (
            "#d62728",
            [chosen],
            {"type": "point", "shape": "diamond", "filled": True, "size": 220},
        )
    colors = {name: color for name, (color, _, _) in marks.items()} | {
        "size budget": "#d62728",
        "fp32 accuracy": "black",
    }
    layers = [
        _series(colors, name, _kb_and_percent(points), mark, x=_KIB, y=_PCT)
        for name, (_, points, mark) in marks.items()
    ]
    budget = vega.rows(kib=[budget_bytes / 1024])
    layers.insert(
        -1 if chosen is not None else len(layers),
        _series(colors, "size budget", budget, {"type": "rule", "strokeDash": [5, 4]}, x=_KIB),
    )
    fp32 = vega.rows(pct=[100 * result.float_metric])
    layers.append(_series(colors, "fp32 accuracy", fp32, {"type": "rule", "strokeWidth": 0.7}, y=_PCT))
    return vega.Chart(vega.panel(title, layers, height=300))


def calibration_figure(points, title: str) -> Figure:
    """Accuracy vs calibration-set size per selection method (mean over seeds, band = min–max)."""
    fig, (ax,) = new_figure(width=10, height=4.2)
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
    ax.legend(title="selection", fontsize=8, **LEGEND_OUTSIDE)
    return fig


# ---- lab 05's figures for its controls, cached per setting ---------------------------


@functools.lru_cache(maxsize=8)
def sensitivity_image(name: str, granularity: str):
    """``sensitivity_figure`` of a lab model (``lessons.sensitivity.lab_sensitivity``)."""
    title = f"{LABELS[name]}: one layer quantized at a time ({granularity}, BN folded)"
    return image(sensitivity_figure(lab_sensitivity(name, granularity), title))


@functools.lru_cache(maxsize=256)
def lab_mixed_precision_chart(name: str, granularity: str, budget_kib: float) -> vega.Chart:
    """``mixed_precision_chart`` with the configuration chosen for ``budget_kib`` (cached per setting)."""
    result = lab_mixed_precision(name, granularity)
    title = f"{LABELS[name]}: size vs accuracy ({granularity})"
    return mixed_precision_chart(result, result.for_budget(budget_kib * 1024), budget_kib * 1024, title)
