"""Lab 03's figures: granularity (ranges, scales, per-channel SQNR), BatchNorm folding, activation grids."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

from ptqlab.core.affine import integer_grid
from ptqlab.lessons.models import LABELS
from ptqlab.lessons.schemes import (
    ActSchemeResult,
    FoldingPoint,
    SchemeResult,
    activation_symmetry,
    lab_folding,
    lab_granularities,
    lab_post_relu,
    lab_weight_matrices,
)
from ptqlab.plots.figure import new_figure
from ptqlab.plots.raster import image

COLORS = {"per-tensor": "tab:red", "per-channel": "tab:blue", "per-group": "tab:green"}


def legend_below(ax, ncol: int = 2) -> None:
    """The legend under the axes' x label, so that it never covers a point."""
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, frameon=False)


def granularity_figure(w: torch.Tensor, results: dict[str, SchemeResult], title: str) -> Figure:
    """2×2: per-channel ranges, the scale each granularity picks, per-channel SQNR, two channels' histograms."""
    fig, (ax_range, ax_scale, ax_err, ax_hist) = new_figure(2, 2, width=11, height=4.1, layout=None)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.92, bottom=0.13, hspace=0.72, wspace=0.22)
    channels = torch.arange(w.shape[0])
    _draw_channel_ranges(ax_range, w, channels)
    _draw_scales(ax_scale, results, channels)
    _draw_channel_errors(ax_err, results, channels)
    _draw_widest_vs_typical(ax_hist, w, results)
    fig.suptitle(title)
    return fig


def _draw_channel_ranges(ax_range, w: torch.Tensor, channels: torch.Tensor) -> None:
    lo, hi = w.amin(1), w.amax(1)
    ax_range.vlines(channels, lo, hi, color="tab:blue", linewidth=0.8, label="channel [min, max]")
    amax = float(w.abs().max())
    for y in (-amax, amax):
        ax_range.axhline(y, color=COLORS["per-tensor"], linestyle="--", linewidth=1)
    ax_range.plot([], [], color=COLORS["per-tensor"], linestyle="--", label="per-tensor range ±max|W|")
    ax_range.set(title="Weight range of every output channel", xlabel="output channel", ylabel="weight value")
    legend_below(ax_range)


def _draw_scales(ax_scale, results: dict[str, SchemeResult], channels: torch.Tensor) -> None:
    for name, r in results.items():
        s = r.scales
        if name == "per-group":
            ax_scale.fill_between(
                channels,
                s.amin(1),
                s.amax(1),
                color=COLORS[name],
                alpha=0.3,
                label=f"{name} (min–max over groups)",
            )
        elif name == "per-tensor":
            ax_scale.axhline(float(s[0, 0]), color=COLORS[name], linestyle="--", label=name)
        else:
            ax_scale.plot(channels, s[:, 0], ".", color=COLORS[name], markersize=3, label=name)
    ax_scale.set_yscale("log")
    ax_scale.set(
        title="Scale chosen (one integer step)", xlabel="output channel", ylabel="scale (weight units / step)"
    )
    legend_below(ax_scale)


def _draw_channel_errors(ax_err, results: dict[str, SchemeResult], channels: torch.Tensor) -> None:
    for name, r in results.items():
        ax_err.plot(
            channels,
            r.channel_sqnr_db,
            ".",
            markersize=3,
            color=COLORS[name],
            label=f"{name}: {r.sqnr_db:.1f} dB overall",
        )
    ax_err.set(title="Error per channel", xlabel="output channel", ylabel="SQNR (dB, higher is better)")
    legend_below(ax_err)


def _draw_widest_vs_typical(ax_hist, w: torch.Tensor, results: dict[str, SchemeResult]) -> None:
    amax_c = w.abs().amax(1)
    widest, typical = int(amax_c.argmax()), int(amax_c.argsort()[len(amax_c) // 2])
    for c, color in ((widest, "tab:orange"), (typical, "tab:purple")):
        ax_hist.hist(
            w[c].numpy(),
            bins=80,
            color=color,
            alpha=0.6,
            label=f"channel {c} (max|w| = {float(amax_c[c]):.3g})",
        )
    spec = results["per-tensor"].spec
    if spec.levels <= 64:
        grid = integer_grid(results["per-tensor"].qparams, spec)
        ax_hist.vlines(
            grid, 0, 1, transform=ax_hist.get_xaxis_transform(), color=COLORS["per-tensor"], linewidth=0.6
        )
        ax_hist.plot(
            [], [], color=COLORS["per-tensor"], linewidth=0.6, label=f"per-tensor grid ({spec.levels} levels)"
        )
    ax_hist.set_yscale("log")
    ax_hist.set(title="Widest vs typical channel", xlabel="weight value", ylabel="count (log)")
    legend_below(ax_hist)


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


def activation_figure(act: torch.Tensor, results: dict[str, ActSchemeResult], title: str) -> Figure:
    """Histogram of a post-ReLU activation with each scheme's representable values underneath."""
    fig, (ax,) = new_figure(width=9, height=4.6, layout=None)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.93, bottom=0.3)
    ax.hist(act.flatten().numpy(), bins=120, color="grey", alpha=0.7, label="activation values")
    ax.set_yscale("log")
    for i, (name, r) in enumerate(results.items()):
        scale, zp = r.qparams
        codes = torch.arange(r.spec.qmin, r.spec.qmax + 1, dtype=torch.float32)
        values = (codes - float(zp)) * float(scale)
        y = 0.06 + 0.08 * i
        ax.plot(
            values,
            [y] * len(values),
            "|",
            markersize=12,
            transform=ax.get_xaxis_transform(),
            color=("tab:red", "tab:blue")[i],
            label=f"{name}: {r.codes_used} codes used, SQNR {r.sqnr_db:.1f} dB",
        )
    ax.set(title=title, xlabel="activation value", ylabel="count (log)")
    legend_below(ax, ncol=1)
    return fig


# ---- lab 03's figures as screen-resolution PNGs, cached per setting ------------------------------------------


@functools.lru_cache(maxsize=128)
def granularity_image(name: str, folded: bool, layer: str, *, bits: int, group_size: int, symmetric: bool):
    """``granularity_figure`` for one layer of a lab model (``lessons.schemes.lab_granularities``)."""
    w = lab_weight_matrices(name, folded)[layer]
    results = lab_granularities(name, folded, layer, bits=bits, group_size=group_size, symmetric=symmetric)
    title = f"{LABELS[name]} · {layer} · W{bits} · {tuple(w.shape)}"
    return image(granularity_figure(w, results, title))


@functools.lru_cache(maxsize=4)
def folding_image(name: str):
    """``folding_figure`` of a digits model's BN-folding study."""
    return image(folding_figure(*lab_folding(name), f"{LABELS[name]}: BN folding and granularity"))


@functools.lru_cache(maxsize=16)
def activation_image(bits: int):
    """``activation_figure`` of the MLP's post-ReLU fc2 input at A``bits``."""
    act = lab_post_relu()
    return image(
        activation_figure(act, activation_symmetry(act, bits), f"MLP fc2 input (post-ReLU), A{bits}")
    )
