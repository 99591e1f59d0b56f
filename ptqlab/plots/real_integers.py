"""Lab 09's figures: the int32 accumulator and its headroom, float-format grids against integer grids."""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure

from ptqlab.core.fixed_point import INT32_MAX
from ptqlab.plots.figure import labelled, new_figure


def accumulator_figure(acc: torch.Tensor, worst_case: int, title: str) -> Figure:
    """Left: histogram of every int32 accumulator value on the test set. Right: bits each bound needs."""
    fig, (ax_hist, ax_bits) = new_figure(1, 2, width=11, height=3.4)
    values = acc.reshape(-1).double()
    ax_hist.hist(values.numpy(), bins=120, color="tab:blue", alpha=0.8)
    ax_hist.set_yscale("log")
    labelled(
        ax_hist, title="int32 accumulator values (all outputs, all test digits)", xlabel="acc", ylabel="count"
    )
    observed = max(float(values.abs().max()), 1.0)
    names = ["largest |acc| seen", "worst case K·max x_q·128", "int32 limit 2³¹−1"]
    bits = [math.log2(observed), math.log2(max(worst_case, 1)), math.log2(INT32_MAX)]
    ax_bits.barh(names, bits, color=["tab:blue", "tab:orange", "tab:red"])
    for i, b in enumerate(bits):
        ax_bits.text(b, i, f" {b:.1f} bits", va="center", fontsize=9)
    ax_bits.set_xlim(0, 36)
    labelled(ax_bits, title="Headroom: bits of magnitude", xlabel="log₂ |value|")
    fig.suptitle(title)
    return fig


def grids_figure(
    x: torch.Tensor, float_grid: torch.Tensor, int_grid: torch.Tensor, labels: tuple[str, str], title: str
) -> Figure:
    """Left: the tensor's histogram with both grids as rugs. Right: the gap between neighbouring grid points
    against position — constant for the integer grid, growing with |x| for the float grid."""
    fig, (ax_hist, ax_step) = new_figure(1, 2, width=11, height=3.6)
    amax = float(x.abs().max())
    ax_hist.hist(x.numpy(), bins=150, color="0.7", label="values")
    top = ax_hist.get_ylim()[1]
    fg = float_grid[(float_grid >= -amax) & (float_grid <= amax)].numpy()
    ig = int_grid[(int_grid >= -amax) & (int_grid <= amax)].numpy()
    ax_hist.vlines(
        fg, top * 0.9, top, color="tab:purple", linewidth=0.6, label=f"{labels[0]} grid ({len(fg)} pts)"
    )
    ax_hist.vlines(
        ig,
        top * 0.78,
        top * 0.88,
        color="tab:green",
        linewidth=0.8,
        label=f"{labels[1]} grid ({len(ig)} pts)",
    )
    labelled(
        ax_hist,
        title="Values and the points each grid can represent",
        xlabel="value",
        ylabel="count",
        legend="lower left",
    )
    for grid, color, name in ((float_grid, "tab:purple", labels[0]), (int_grid, "tab:green", labels[1])):
        g = torch.sort(grid[(grid >= 0) & (grid <= amax)]).values
        if len(g) > 1:
            ax_step.step(g[1:].numpy(), g.diff().numpy(), where="pre", color=color, label=name)
    ax_step.set_yscale("log")
    labelled(ax_step, title="Spacing between neighbouring grid points (x ≥ 0)", xlabel="value", ylabel="gap")
    fig.suptitle(title)
    return fig
