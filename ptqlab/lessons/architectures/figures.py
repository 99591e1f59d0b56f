"""Lab 11's figures, drawn by the browser (``labkit.vega``): the depthwise channels' weight ranges (what
decides a per-tensor collapse) and the ViT's activations with the range each calibrator picks."""

from __future__ import annotations

import torch

from ptqlab.labkit.vega import (
    PLOT_DIGITS,
    Chart,
    color_scale,
    histogram_rows,
    layer,
    panel,
    quantitative,
    rows,
)

SPREAD_COLORS = {"BatchNorm folded": "#d62728", "after CLE": "#1f77b4"}
CALIBRATOR_COLORS = {"minmax": "#d62728", "percentile": "#ff7f0e", "entropy": "#2ca02c", "mse": "#9467bd"}
SITE_TITLES = {"layernorm": "after LayerNorm", "softmax": "after softmax", "gelu": "after GELU"}


def spread_rows(ranges: dict[str, torch.Tensor], series: str) -> list[dict]:
    """One point per channel: its layer (short name), r_c / max r of the layer, and the series."""
    layers, ratio = [], []
    for name, r in ranges.items():
        short = name.split(".")[0]
        rel = (r / r.max().clamp(min=1e-30)).tolist()
        layers += [short] * len(rel)
        ratio += rel
    return rows(layer=layers, ratio=ratio, series=[series] * len(ratio), digits=PLOT_DIGITS)


def spread_chart(ranges: dict[str, torch.Tensor], ranges_cle: dict[str, torch.Tensor], title: str) -> Chart:
    """Every depthwise channel's range relative to its layer's widest, folded and after CLE (log axis), with
    the line where a channel keeps one int8 step under a per-tensor scale (1/127)."""
    data = spread_rows(ranges, "BatchNorm folded") + spread_rows(ranges_cle, "after CLE")
    low = min(1 / 127, min(d["ratio"] for d in data if d["ratio"]) if data else 1)
    axis = "r_c / max r of the layer (log)"
    y = quantitative(
        "ratio",
        axis,
        scale={"type": "log", "domain": [low / 2, 1.2]},
    )
    color = {"field": "series", "type": "nominal", "scale": color_scale(SPREAD_COLORS), "title": None,
             "legend": {"orient": "bottom", "direction": "horizontal", "symbolType": "circle"}}  # fmt: skip
    points = layer(
        data,
        {"type": "point", "filled": True, "opacity": 0.6, "size": 22},
        x={"field": "layer", "type": "nominal", "title": "depthwise layer", "sort": None},
        xOffset={"field": "series", "type": "nominal"},
        y=y,
        color=color,
    )
    step = layer(
        rows(ratio=[1 / 127], label=["one int8 step of the per-tensor scale (1/127)"]),
        {"type": "rule", "strokeDash": [4, 3], "color": "#555"},
        y=quantitative("ratio", axis),
    )
    return Chart(
        panel(title + " — dashed: one int8 step of a per-tensor scale (1/127)", [points, step], 620, 260)
    )


def site_panel(site: str, sample: torch.Tensor, ranges: dict[str, tuple[float, float]]) -> dict:
    """The site's values (histogram, log count) with each calibrator's chosen [lo, hi] as two rules."""
    bars = layer(
        histogram_rows(sample, 80),
        {"type": "rect", "color": "#999", "opacity": 0.8},
        x=quantitative("a", "activation value"),
        x2={"field": "b"},
        y=quantitative("count", "count (log)", scale={"type": "log"}),
        y2={"datum": 0.5},
    )
    names, edges = [], []
    for name, (lo, hi) in ranges.items():
        names += [name, name]
        edges += [lo, hi]
    rules = layer(
        rows(calibrator=names, edge=edges),
        {"type": "rule", "strokeWidth": 1.5, "strokeDash": [5, 2]},
        x=quantitative("edge", None),
        color={
            "field": "calibrator",
            "type": "nominal",
            "scale": color_scale(CALIBRATOR_COLORS),
            "title": "uint8 range chosen by",
            "legend": {"orient": "bottom", "direction": "horizontal"},
        },  # fmt: skip
    )
    return panel(SITE_TITLES[site], [bars, rules], 250, 200)


def vit_chart(study: dict) -> Chart:
    """One panel per site: the ViT-style model's activations and the clipping range each calibrator picks."""
    panels = [
        site_panel(site, entry["sample"], {k: tuple(v) for k, v in entry["stats"]["ranges"].items()})
        for site, entry in study["sites"].items()
    ]
    return Chart(
        {
            "title": "ViT-style on digits: activations (a sample) and each calibrator's uint8 range",
            "hconcat": panels,
            "spacing": 30,
            "resolve": {"scale": {"x": "independent", "y": "independent"}},
        }
    )
