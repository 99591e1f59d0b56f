"""Lab 09's slider figures, drawn by the browser (``plots.vega``): the int32 accumulator and its headroom,
float-format grids against integer grids."""

from __future__ import annotations

import math

import torch

from ptqlab.core.fixed_point import INT32_MAX
from ptqlab.labkit.vega import (
    PLOT_DIGITS,
    Chart,
    color_scale,
    histogram_rows,
    layer,
    panel,
    quantitative,
    rows,
    series_color,
)

PANEL_WIDTH, PANEL_HEIGHT = 400, 210
LEGEND_BELOW = {"orient": "bottom", "direction": "horizontal", "title": None}
HEADROOM_COLORS = {
    "largest |acc| seen": "#1f77b4",
    "worst case K·max x_q·128": "#ff7f0e",
    "int32 limit 2³¹−1": "#d62728",
}


def headroom_rows(acc: torch.Tensor, worst_case: int) -> list[dict]:
    """Bits of magnitude, log₂|value|, of the largest accumulator seen, the worst case and int32's limit."""
    observed = max(float(acc.detach().double().abs().max()), 1.0)
    bits = [math.log2(observed), math.log2(max(worst_case, 1)), math.log2(INT32_MAX)]
    return rows(name=list(HEADROOM_COLORS), bits=bits, label=[f"{b:.1f} bits" for b in bits])


def accumulator_chart(acc: torch.Tensor, worst_case: int, title: str) -> Chart:
    """Left: histogram of every int32 accumulator value (log count). Right: bits each bound needs."""
    bars = layer(
        histogram_rows(acc, 120),
        {"type": "rect", "color": "#1f77b4", "opacity": 0.8},
        x=quantitative("a", "accumulator value acc (integer)"),
        x2={"field": "b"},
        y=quantitative("count", "count (log)", scale={"type": "log"}),
        y2={"datum": 0.5},
    )
    histogram = panel(
        "int32 accumulator values (all outputs, all test digits)", [bars], PANEL_WIDTH, PANEL_HEIGHT
    )
    y = {"field": "name", "type": "nominal", "title": None, "sort": None}
    x = quantitative("bits", "log₂ |value| (bits of magnitude)", scale={"domain": [0, 36]})
    color = {"field": "name", "type": "nominal", "scale": color_scale(HEADROOM_COLORS), "legend": None}
    data = headroom_rows(acc, worst_case)
    layers = [
        layer(data, {"type": "bar"}, x=x, y=y, color=color),
        layer(data, {"type": "text", "align": "left", "dx": 4}, x=x, y=y, text={"field": "label"}),
    ]
    headroom = panel("Headroom: bits of magnitude", layers, PANEL_WIDTH - 120, PANEL_HEIGHT)
    return Chart({"title": title, "hconcat": [histogram, headroom], "spacing": 40})


def _inside(grid: torch.Tensor, amax: float) -> list[float]:
    return grid[(grid >= -amax) & (grid <= amax)].tolist()


def values_panel(x: torch.Tensor, points: dict[str, list[float]], colors: dict[str, str]) -> dict:
    """The tensor's histogram (log count) with each grid's points inside ±max|x| as a rug along the top."""
    value = quantitative("a", "value")
    layers = [
        layer(
            histogram_rows(x, 150),
            {"type": "rect", "opacity": 0.8},
            x=value,
            x2={"field": "b"},
            y=quantitative("count", "count (log)", scale={"type": "log"}),
            y2={"datum": 0.5},
            color=series_color(colors, "values", LEGEND_BELOW),
        )
    ]
    for i, (name, grid) in enumerate(points.items()):
        top = 4 + 16 * i
        rug = {"type": "rule", "strokeWidth": 0.8}
        ends = {"y": {"value": top}, "y2": {"value": top + 12}}
        data = rows(a=grid, digits=PLOT_DIGITS)
        layers.append(layer(data, rug, x=value, **ends, color=series_color(colors, name, LEGEND_BELOW)))
    title = "Values and the points each grid can represent"
    return panel(title, layers, PANEL_WIDTH, PANEL_HEIGHT)


def spacing_panel(grids: dict[str, torch.Tensor], amax: float, colors: dict[str, str]) -> dict:
    """The gap from each grid point in [0, amax] to the one below it (log axis)."""
    steps = []
    for name, grid in grids.items():
        g = torch.sort(grid[(grid >= 0) & (grid <= amax)]).values
        if len(g) > 1:
            data = rows(a=g[1:].tolist(), gap=g.diff().tolist(), digits=PLOT_DIGITS)
            mark = {"type": "line", "interpolate": "step-before"}
            gap = quantitative("gap", "gap to the next point below", scale={"type": "log"})
            steps.append(
                layer(
                    data,
                    mark,
                    x=quantitative("a", "value"),
                    y=gap,
                    color=series_color(colors, name, LEGEND_BELOW),
                )
            )
    title = "Spacing between neighbouring grid points (x ≥ 0)"
    return panel(title, steps, PANEL_WIDTH, PANEL_HEIGHT)


def grids_chart(
    x: torch.Tensor, float_grid: torch.Tensor, int_grid: torch.Tensor, labels: tuple[str, str], title: str
) -> Chart:
    """Left: the tensor's histogram with both grids as rugs. Right: the gap between neighbouring grid points
    against position — constant for the integer grid, growing with |x| for the float grid."""
    amax = float(x.abs().max())
    inside = {labels[0]: _inside(float_grid, amax), labels[1]: _inside(int_grid, amax)}
    names = [f"{name} grid ({len(p)} pts)" for name, p in inside.items()]
    colors = {"values": "#aaaaaa", names[0]: "#9467bd", names[1]: "#2ca02c"}
    points = dict(zip(names, inside.values(), strict=True))
    grids = dict(zip(names, (float_grid, int_grid), strict=True))
    panels = [values_panel(x, points, colors), spacing_panel(grids, amax, colors)]
    return Chart(
        {"title": title, "hconcat": panels, "spacing": 40, "resolve": {"scale": {"x": "independent"}}}
    )
