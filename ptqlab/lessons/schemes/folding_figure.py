"""Lab 03's BatchNorm-folding figure (matplotlib, drawn once per model and cached); the slider-driven
figures are browser-drawn charts in ``plots.schemes_charts``."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

from ptqlab.bench.figure import new_figure
from ptqlab.labkit.models import LABELS
from ptqlab.labkit.raster import image
from ptqlab.lessons.schemes.numbers import FoldingPoint, lab_folding

COLORS = {"per-tensor": "tab:red", "per-channel": "tab:blue", "per-group": "tab:green"}


def folding_figure(
    points: Sequence[FoldingPoint], fp32_accuracy: float, factors: dict[str, torch.Tensor], title: str
) -> Figure:
    """Left: accuracy vs weight bits, per-tensor/per-channel, BN kept or folded first. Right: the per-channel
    factor s = γ/σ that folding multiplies each output channel's weights by."""
    fig, (ax, ax_s) = new_figure(1, 2, width=11, height=4.2, layout=None)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.86, bottom=0.13, wspace=0.2)
    for name, s in factors.items():
        ax_s.plot(
            torch.sort(s, descending=True).values.numpy(),
            label=f"{name}: max/min = {float(s.max() / s.min()):.1f}",
        )
    ax_s.set_yscale("log")
    ax_s.set(
        title="BatchNorm factor per channel, sorted",
        xlabel="channel rank",
        ylabel="s = γ / sqrt(σ² + ε) (log)",
    )
    ax_s.legend(fontsize=8)
    for grain in ("per-tensor", "per-channel"):
        for folded in (False, True):
            pts = sorted(
                (p.bits, p.accuracy) for p in points if p.granularity == grain and p.folded == folded
            )
            ax.plot(
                [b for b, _ in pts],
                [100 * a for _, a in pts],
                marker="o",
                linestyle="-" if folded else ":",
                color=COLORS[grain],
                label=f"{grain}, BN {'folded' if folded else 'kept'}",
            )
    ax.axhline(100 * fp32_accuracy, color="black", linewidth=0.8, label="fp32")
    ax.set(title=title, xlabel="weight bits", ylabel="test accuracy (%)", ylim=(0, 101))
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    ax.set_title("Weight-only quantization, min/max ranges")
    return fig


# ---- lab 03's figures as screen-resolution PNGs, cached per setting ------------------------------------------


@functools.lru_cache(maxsize=4)
def folding_image(name: str):
    """``folding_figure`` of a digits model's BN-folding study."""
    return image(folding_figure(*lab_folding(name), f"{LABELS[name]}: BN folding and granularity"))
