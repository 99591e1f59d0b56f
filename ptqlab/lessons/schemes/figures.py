"""Lab 03's slider figures, drawn by the browser (``plots.vega``): granularity (ranges, scales, per-channel
SQNR, the widest vs a typical channel) and the post-ReLU activation grids. Every plotted number is one
``lessons.schemes`` computed: the ranges and histograms from the weights, the scales and SQNRs from each
granularity's ``SchemeResult``, the grids from each scheme's qparams.
"""

from __future__ import annotations

import functools

import torch

from ptqlab.core.affine import integer_grid
from ptqlab.labkit.models import LABELS
from ptqlab.labkit.vega import (
    PLOT_DIGITS,
    Chart,
    histogram_rows,
    layer,
    panel,
    quantitative,
    rows,
    series_color,
)
from ptqlab.lessons.schemes.numbers import (
    ActSchemeResult,
    SchemeResult,
    activation_symmetry,
    lab_granularities,
    lab_post_relu,
    lab_weight_matrices,
)

COLORS = {"per-tensor": "#d62728", "per-channel": "#1f77b4", "per-group": "#2ca02c"}
PANEL_WIDTH, PANEL_HEIGHT = 430, 190
HISTOGRAM_BINS = 80


def _colored(layers: list[tuple[str, dict]], colors: dict[str, str]) -> list[dict]:
    """Give each (series, layer) its colour on the shared scale."""
    legend = {"orient": "bottom", "direction": "vertical", "title": None}
    for series, one in layers:
        one["encoding"]["color"] = series_color(colors, series, legend)
    return [one for _, one in layers]


def ranges_panel(w: torch.Tensor) -> dict:
    """Each output channel's [min, max] as a vertical bar, and the per-tensor range ±max|W|."""
    amax = float(w.abs().max())
    bar, edge = "channel [min, max]", "per-tensor range ±max|W|"
    colors = {bar: COLORS["per-channel"], edge: COLORS["per-tensor"]}
    bars = rows(c=range(w.shape[0]), lo=w.amin(1).tolist(), hi=w.amax(1).tolist(), digits=PLOT_DIGITS)
    x = quantitative("c", "output channel")
    layers = [
        (
            bar,
            layer(
                bars,
                {"type": "rule", "strokeWidth": 1},
                x=x,
                y=quantitative("lo", "weight value"),
                y2={"field": "hi"},
            ),
        ),
        (edge, layer(rows(y=[-amax, amax]), {"type": "rule", "strokeDash": [5, 4]}, y=quantitative("y"))),
    ]
    return panel("Weight range of every output channel", _colored(layers, colors), PANEL_WIDTH, PANEL_HEIGHT)


def scales_panel(results: dict[str, SchemeResult]) -> dict:
    """The scale each granularity picks per channel (log axis): one line, a dot per channel, a min–max band."""
    layers, colors = [], {}
    y = quantitative("s", "scale (weight units / step)", scale={"type": "log"})
    x = quantitative("c", "output channel")
    for name, r in results.items():
        s, channels = r.scales, range(r.scales.shape[0])
        label = f"{name} (min–max over groups)" if name == "per-group" else name
        colors[label] = COLORS[name]
        if name == "per-group":
            data = rows(c=channels, s=s.amin(1).tolist(), s2=s.amax(1).tolist(), digits=PLOT_DIGITS)
            layers.append(
                (label, layer(data, {"type": "area", "opacity": 0.3}, x=x, y=y, y2={"field": "s2"}))
            )
        elif name == "per-tensor":
            layers.append(
                (label, layer(rows(s=[float(s[0, 0])]), {"type": "rule", "strokeDash": [5, 4]}, y=y))
            )
        else:
            data = rows(c=channels, s=s[:, 0].tolist(), digits=PLOT_DIGITS)
            layers.append((label, layer(data, {"type": "point", "filled": True, "size": 10}, x=x, y=y)))
    return panel("Scale chosen (one integer step)", _colored(layers, colors), PANEL_WIDTH, PANEL_HEIGHT)


def channel_error_panel(results: dict[str, SchemeResult]) -> dict:
    """Per-channel SQNR of each granularity, its overall SQNR in the legend."""
    layers, colors = [], {}
    mark = {"type": "point", "filled": True, "size": 10}
    x, y = (
        quantitative("c", "output channel"),
        quantitative("db", "SQNR (dB, higher is better)", scale={"zero": False}),
    )
    for name, r in results.items():
        label = f"{name}: {r.sqnr_db:.1f} dB overall"
        colors[label] = COLORS[name]
        sqnr = r.channel_sqnr_db.tolist()
        layers.append((label, layer(rows(c=range(len(sqnr)), db=sqnr, digits=PLOT_DIGITS), mark, x=x, y=y)))
    return panel("Error per channel", _colored(layers, colors), PANEL_WIDTH, PANEL_HEIGHT)


def symlog_scale(typical_amax) -> dict:
    """A symlog axis, linear within ±``typical_amax``: the widest channel's outliers stretch a linear axis
    so far that the typical channel (and the grid steps over it) collapse into one bar at 0."""
    return {"type": "symlog", "constant": max(float(typical_amax), 1e-12)}


def widest_vs_typical_panel(w: torch.Tensor, results: dict[str, SchemeResult]) -> dict:
    """Histograms of the widest and the median channel, with the per-tensor grid when it has ≤ 64 levels."""
    amax_c = w.abs().amax(1)
    widest, typical = int(amax_c.argmax()), int(amax_c.argsort()[len(amax_c) // 2])
    layers, colors = [], {}
    x = quantitative(
        "a", "weight value (symlog: linear within ±typical max|w|)", scale=symlog_scale(amax_c[typical])
    )
    y = quantitative("count", "count (log)", scale={"type": "log"})
    for c, color in ((widest, "#ff7f0e"), (typical, "#9467bd")):
        label = f"channel {c} (max|w| = {float(amax_c[c]):.3g})"
        colors[label] = color
        bars = histogram_rows(w[c], HISTOGRAM_BINS, symlog=x["scale"]["constant"])
        mark = {"type": "rect", "opacity": 0.6}
        layers.append((label, layer(bars, mark, x=x, x2={"field": "b"}, y=y, y2={"datum": 0.5})))
    spec = results["per-tensor"].spec
    if spec.levels <= 64:
        label = f"per-tensor grid ({spec.levels} levels)"
        colors[label] = COLORS["per-tensor"]
        grid = rows(a=integer_grid(results["per-tensor"].qparams, spec).tolist())
        layers.append((label, layer(grid, {"type": "rule", "strokeWidth": 0.7}, x=x)))
    return panel("Widest vs typical channel", _colored(layers, colors), PANEL_WIDTH, PANEL_HEIGHT)


def granularity_chart(w: torch.Tensor, results: dict[str, SchemeResult], title: str) -> Chart:
    """2×2: per-channel ranges, the scale each granularity picks, per-channel SQNR, two channels' histograms."""
    panels = [
        ranges_panel(w),
        scales_panel(results),
        channel_error_panel(results),
        widest_vs_typical_panel(w, results),
    ]
    return Chart(
        {
            "title": title,
            "concat": panels,
            "columns": 2,
            "spacing": {"row": 24, "column": 40},
            "resolve": {"scale": {"color": "independent"}, "legend": {"color": "independent"}},
        }
    )


def activation_chart(act: torch.Tensor, results: dict[str, ActSchemeResult], title: str) -> Chart:
    """Histogram of a post-ReLU activation, each scheme's representable values as a row of ticks below it."""
    values = "activation values"
    colors = {values: "#7f7f7f"}
    x, y = quantitative("a", "activation value"), quantitative("count", "count (log)", scale={"type": "log"})
    mark = {"type": "rect", "opacity": 0.7}
    layers = [(values, layer(histogram_rows(act, 120), mark, x=x, x2={"field": "b"}, y=y, y2={"datum": 0.5}))]
    for i, (name, r) in enumerate(results.items()):
        label = f"{name}: {r.codes_used} codes used, SQNR {r.sqnr_db:.1f} dB"
        colors[label] = ("#d62728", "#1f77b4")[i]
        top = PANEL_HEIGHT * 2 - 8 - 22 * (len(results) - i)
        ticks = rows(a=integer_grid(r.qparams, r.spec).tolist())
        mark = {"type": "rule", "strokeWidth": 1.2}
        layers.append((label, layer(ticks, mark, x=x, y={"value": top}, y2={"value": top + 16})))
    layers = _colored(layers, colors)
    return Chart(panel(title, layers, 2 * PANEL_WIDTH, 2 * PANEL_HEIGHT))


@functools.lru_cache(maxsize=128)
def lab_granularity_chart(
    name: str, folded: bool, layer: str, *, bits: int, group_size: int, symmetric: bool
) -> Chart:
    """``granularity_chart`` for one layer of a lab model (``lessons.schemes.lab_granularities``)."""
    w = lab_weight_matrices(name, folded)[layer]
    results = lab_granularities(name, folded, layer, bits=bits, group_size=group_size, symmetric=symmetric)
    return granularity_chart(w, results, f"{LABELS[name]} · {layer} · W{bits} · {tuple(w.shape)}")


@functools.lru_cache(maxsize=16)
def lab_activation_chart(bits: int) -> Chart:
    """``activation_chart`` of the MLP's post-ReLU fc2 input at A``bits``."""
    act = lab_post_relu()
    return activation_chart(act, activation_symmetry(act, bits), f"MLP fc2 input (post-ReLU), A{bits}")
