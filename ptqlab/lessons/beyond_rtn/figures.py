"""Lab 07's figures: per-layer output error of RTN vs each algorithm, and what each algorithm did to a layer."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ptqlab.bench.figure import new_figure
from ptqlab.lessons.beyond_rtn.numbers import NAMES, Comparison, WeightViews


def layer_error_figure(comp: Comparison) -> Figure:
    """Grouped bars: relative output error ‖Y − Ŷ‖²/‖Y‖² of every layer, RTN and each algorithm (log scale)."""
    fig, (ax,) = new_figure(1, 1, width=11, height=3.6)
    layers = list(comp.runs["rtn"].layer_errors)
    names = list(comp.runs)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(layers))
    for i, name in enumerate(names):
        errors = comp.runs[name].layer_errors
        values = [max(errors[layer][1], 1e-12) if layer in errors else np.nan for layer in layers]
        ax.bar(x + i * width - 0.4 + width / 2, values, width, label=NAMES[name])
    short = [layer.replace("bert.encoder.layer.", "L").replace("attention.", "") for layer in layers]
    ax.set_xticks(
        x,
        short,
        rotation=60 if len(layers) > 8 else 0,
        ha="right" if len(layers) > 8 else "center",
        fontsize=7,
    )
    ax.set_yscale("log")
    ax.set(ylabel="‖Y − Ŷ‖² / ‖Y‖²", title="Per-layer output error on calibration inputs (lower is better)")
    ax.legend(fontsize=8, ncol=min(len(names), 4))
    return fig


def weight_panels(views: WeightViews) -> tuple[list[str], list[str]]:
    """(panels to draw, sentences for the ones left out): a panel only for an algorithm that ran and has
    something to show on this layer — AWQ needs more than one input channel to compare scales."""
    shown, absent = [], []
    checks = (
        ("adaround", views.flips is not None, "AdaRound was not run (add it and press the button)"),
        ("gptq", views.gptq_columns is not None, "GPTQ was not run"),
        ("awq", views.awq is not None and len(views.awq[1]) > 1,
         "AWQ was not run" if views.awq is None and not views.awq_ran
         else f"AWQ: {views.layer} has no per-channel scale to compare (one input channel, or none)"),
        ("cle", views.cle is not None, "CLE was not run" if not views.cle_ran
         else f"CLE: no equalizable pair starts at {views.layer}"),
    )  # fmt: skip
    for name, present, why in checks:
        (shown if present else absent).append(name if present else why)
    return shown, absent


def weights_figure(views: WeightViews) -> Figure | None:
    """One panel per algorithm with something to show on this layer (``weight_panels``); None when none has."""
    shown, _ = weight_panels(views)
    if not shown:
        return None
    cols = min(len(shown), 2)
    rows = (len(shown) + 1) // 2
    fig, axes = new_figure(rows, cols, width=11 if cols == 2 else 6, height=3.6)
    draw = {"adaround": _flips, "gptq": _gptq, "awq": _awq, "cle": _cle}
    for ax, name in zip(axes, shown, strict=False):
        draw[name](ax, views)
    for ax in axes[len(shown) :]:
        ax.set_visible(False)
    fig.suptitle(f"What each algorithm did to {views.layer}")
    return fig


def weights_view(views: WeightViews):
    """The panels that have something to show, and one line naming the ones left out and why."""
    import marimo as mo

    fig, (_, absent) = weights_figure(views), weight_panels(views)
    note = mo.md("*Not drawn:* " + "; ".join(absent) + ".") if absent else None
    return mo.vstack([v for v in (fig, note) if v is not None])


def _missing(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _flips(ax, views: WeightViews) -> None:
    if views.flips is None:
        return _missing(ax, "AdaRound not run")
    f = views.flips.numpy()
    ax.imshow(f[:64, :128], cmap="coolwarm", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    share = float((f != 0).mean())
    ax.set(title=f"AdaRound: rounded the other way ({100 * share:.1f} %)", xlabel="input", ylabel="output")
    return None


def _gptq(ax, views: WeightViews) -> None:
    if views.gptq_columns is None:
        return _missing(ax, "GPTQ not run")
    rtn_cols, gptq_cols = (c.numpy() for c in views.gptq_columns)
    ax.plot(rtn_cols, label="RTN", linewidth=0.8)
    ax.plot(gptq_cols, label="GPTQ", linewidth=0.8)
    ax.set(title="GPTQ: mean |Ŵ − W| per column (error pushed right)", xlabel="input column (sweep order)")
    ax.legend(fontsize=8)
    return None


def _awq(ax, views: WeightViews) -> None:
    if views.awq is None:
        return _missing(ax, "AWQ not run (or no scale on this layer)")
    act, scale = (t.numpy() for t in views.awq)
    ax.scatter(act, scale, s=6)
    ax.set_xscale("log")
    ax.set(title="AWQ: scale s_j vs mean |x_j|", xlabel="mean |x_j| (calibration)", ylabel="s_j")
    return None


def _cle(ax, views: WeightViews) -> None:
    if views.cle is None:
        return _missing(ax, "CLE not run, or no equalizable pair starts here")
    before, after = (t.numpy() for t in views.cle)
    ax.plot(before, label="before", linewidth=0.8)
    ax.plot(after, label="after CLE", linewidth=0.8)
    ax.set(title="CLE: max |W| per output channel", xlabel="output channel")
    ax.legend(fontsize=8)
    return None
