"""Lab 10's figures, drawn by the browser (``labkit.vega``): one Q4_1 block against three grids, KL vs bits
per weight over every scored setting, activation channel maxima before/after smoothing, block sensitivity."""

from __future__ import annotations

import torch

from ptqlab.labkit.vega import Chart, color_scale, layer, panel, quantitative, rows

GRID_COLORS = {
    "the block's 32 weights": "#222222",
    "GGUF Q4_1 (the published grid)": "#2ca02c",
    "uint4, integer zero point": "#d62728",
    "GGUF Q5_1 (5 bits, another grid)": "#1f77b4",
}
SMOOTH_COLORS = {"before smoothing": "#d62728", "after smoothing": "#1f77b4"}


def block_chart(values: torch.Tensor, grids: dict[str, torch.Tensor], title: str) -> Chart:
    """One row per grid: its points as ticks; the top row the block's weights. A weight on a tick of a
    row is kept exactly by that grid."""
    names, xs = [], []
    for name, points in {"the block's 32 weights": values, **grids}.items():
        names += [name] * len(points)
        xs += points.tolist()
    data = rows(grid=names, x=xs)
    mark = {"type": "tick", "thickness": 2, "size": 22}
    y = {"field": "grid", "type": "nominal", "title": None, "sort": list(GRID_COLORS)}
    color = {"field": "grid", "type": "nominal", "scale": color_scale(GRID_COLORS), "legend": None}
    return Chart(
        panel(title, [layer(data, mark, x=quantitative("x", "weight value"), y=y, color=color)], 620, 150)
    )


def scheme_chart(points: list[dict], selected: str) -> Chart:
    """KL mean (log) against bits per weight for every scored setting; the selected one ringed."""
    data = rows(
        label=[p["label"] for p in points],
        bpw=[p["bits_per_weight"] for p in points],
        kl=[max(p["kl_mean"], 1e-6) for p in points],
        ppl=[p["ppl"] for p in points],
        family=[p["family"] for p in points],
    )
    x = quantitative("bpw", "bits per weight (codes + fp16 scales / offsets)")
    y = quantitative("kl", "KL(reference ‖ quantized), mean (log)", scale={"type": "log"})
    tooltip = [{"field": "label"}, {"field": "ppl", "title": "PPL"}, {"field": "kl", "title": "KL mean"}]
    dots = layer(data, {"type": "point", "filled": True, "size": 70}, x=x, y=y,
                 color={"field": "family", "type": "nominal", "title": None, "legend": {"symbolType": "circle"}}, tooltip=tooltip)  # fmt: skip
    ring = layer([r for r in data if r["label"] == selected], {"type": "point", "size": 320, "color": "black",
                 "strokeWidth": 2}, x=x, y=y)  # fmt: skip
    return Chart(
        panel(
            "Every scored setting: error against storage (the ring: your setting; KL 0 drawn at 1e-6)",
            [dots, ring],
        )
    )


def outlier_chart(stats: dict, title: str) -> Chart:
    """Per input channel: max|X_j| (top) and max|W_:,j| (bottom), before and after smoothing, log scale."""

    def part(before, after, what):
        n = len(before)
        data = rows(channel=list(range(n)) * 2, v=[*before.tolist(), *after.tolist()],
                    when=["before smoothing"] * n + ["after smoothing"] * n)  # fmt: skip
        color = {"field": "when", "type": "nominal", "scale": color_scale(SMOOTH_COLORS), "title": None,
                 "legend": {"symbolType": "circle"}}  # fmt: skip
        mark = {"type": "point", "filled": True, "size": 12, "opacity": 0.8}
        y = quantitative("v", f"{what} (log)", scale={"type": "log"})
        return panel(what, [layer(data, mark, x=quantitative("channel", "input channel j"), y=y, color=color)],
                     440, 170)  # fmt: skip

    return Chart({"title": title, "vconcat": [
        {"hconcat": [part(stats["act"], stats["act_after"], "activation channel max |X_j|"),
                     histogram(stats["act"], stats["act_after"])]},
        part(stats["weight"], stats["weight_after"], "weight column max |W_:,j|"),
    ]})  # fmt: skip


def histogram(before: torch.Tensor, after: torch.Tensor, bins: int = 40) -> dict:
    """Histogram of log10 max|X_j| over the channels, before and after smoothing, on shared bins."""
    logs = [v.clamp(min=1e-12).log10().double() for v in (before, after)]
    lo, hi = min(float(v.min()) for v in logs), max(float(v.max()) for v in logs)
    hi = hi if hi > lo else lo + 1
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    data = []
    for name, v in zip(SMOOTH_COLORS, logs, strict=True):
        counts = torch.histc(v, bins=bins, min=lo, max=hi).long()
        keep = counts > 0
        data += rows(a=edges[:-1][keep].tolist(), b=edges[1:][keep].tolist(), count=counts[keep].tolist(),
                     when=[name] * int(keep.sum()))  # fmt: skip
    color = {"field": "when", "type": "nominal", "scale": color_scale(SMOOTH_COLORS), "legend": None}
    bars = layer(data, {"type": "rect", "opacity": 0.55}, x=quantitative("a", "log10 max|X_j|"),
                 x2={"field": "b"}, y=quantitative("count", "channels"), y2={"datum": 0}, color=color)  # fmt: skip
    return panel("channels per log10 max", [bars], 200, 170)


def sensitivity_chart(per_block: list[dict], kept: list[int]) -> Chart:
    """KL mean with only block b at 4 bits, per block; the blocks kept at 8 bits highlighted."""
    data = rows(block=list(range(len(per_block))), kl=[r["kl_mean"] for r in per_block],
                kept=["kept at 8 bits" if b in kept else "4 bits" for b in range(len(per_block))])  # fmt: skip
    colors = {"kept at 8 bits": "#2ca02c", "4 bits": "#7f7f7f"}
    bars = layer(data, {"type": "bar"}, x={"field": "block", "type": "ordinal", "title": "decoder block"},
                 y=quantitative("kl", "KL mean with only this block at W4 g64"),
                 color={"field": "kept", "type": "nominal", "scale": color_scale(colors), "title": None,
                        "legend": {"symbolType": "square"}})  # fmt: skip
    return Chart(panel("Per-block sensitivity (one block at 4 bits, the rest as published)", [bars]))
