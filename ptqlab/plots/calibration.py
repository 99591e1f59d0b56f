"""Figures for lab 02 (calibration): the data with every calibrator's range, and error versus threshold.

Built on ``matplotlib.figure.Figure`` (no pyplot state), so a notebook can rebuild them on every slider
move without leaking figures. Every plotted number comes from ``ptqlab.lessons.calibration``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from ptqlab.lessons.calibration import CalibrationStats, ObserverResult
from ptqlab.observers.threshold_error import ThresholdError
from ptqlab.plots.figure import new_figure

COLORS = {
    "minmax": "#1f77b4",
    "moving_average": "#17becf",
    "percentile": "#ff7f0e",
    "entropy": "#2ca02c",
    "mse": "#d62728",
    "l2": "#9467bd",
}
STYLES = {
    "minmax": "-",
    "moving_average": (0, (1, 1)),
    "percentile": "--",
    "entropy": "-.",
    "mse": "-",
    "l2": ":",
}


def _figure(width: float = 8.6, height: float = 3.1) -> tuple[Figure, object]:
    """A figure at 80 dpi with fixed margins and room on the right for the legend.

    marimo renders figures at twice their dpi with a tight bounding box; a modest dpi and no
    constrained-layout solver keep one render near 100 ms, so slider moves stay interactive.
    """
    fig, (ax,) = new_figure(width=width, height=height, dpi=80, layout=None)
    fig.subplots_adjust(left=0.08, right=0.64, bottom=0.16, top=0.9)
    return fig, ax


def _cheap_log_y(ax) -> None:
    """Log y-axis with plain-text labels and no minor ticks (mathtext labels dominate render time)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(numticks=6))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(
        FuncFormatter(lambda v, _: f"{v:.0e}".replace("e+0", "e").replace("e-0", "e-"))
    )


def _fmt_db(db: float) -> str:
    return "∞ dB" if db == float("inf") else f"{db:.1f} dB"


def ranges_figure(stats: CalibrationStats, results: list[ObserverResult], display_bins: int = 256) -> Figure:
    """Histogram of the calibration data (log counts) with the range each calibrator's grid covers overlaid.

    The lines are the grid's ends [(qmin − zp)·s, (qmax − zp)·s], not the raw observed [lo, hi]: a symmetric
    grid mirrors the larger side, and 0 is always on the grid."""
    h = stats.histogram.hist
    counts = h.counts.cpu().numpy()
    group = max(1, counts.size // display_bins)
    coarse = counts[: counts.size // group * group].reshape(-1, group).sum(1)
    edges = h.edges().cpu().numpy()[::group][: coarse.size + 1]
    fig, ax = _figure()
    ax.stairs(
        np.maximum(coarse, 0.5), edges, fill=True, color="#c7c7c7", label="calibration data", baseline=0.5
    )
    _cheap_log_y(ax)
    for r in results:
        label = f"{r.name}: [{r.grid_lo:.3g}, {r.grid_hi:.3g}]  SQNR {_fmt_db(r.sqnr_db)}"
        for k, x in enumerate((r.grid_lo, r.grid_hi)):
            ax.axvline(
                x,
                color=COLORS.get(r.name, "k"),
                ls=STYLES.get(r.name, "-"),
                lw=1.6,
                label=None if k else label,
            )
    ax.set_xlabel("activation value x")
    ax.set_ylabel("count per bin (log)")
    ax.set_title(
        f"Calibration data ({int(float(h.total())):,} values) and each calibrator's clipping range",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.grid(True, alpha=0.3)
    return fig


def error_curve_figure(curve: ThresholdError, results: list[ObserverResult], symmetric: bool) -> Figure:
    """The grid's rounding, clipping and total error per element versus the threshold; choices marked."""
    t = curve.thresholds.cpu().numpy()
    rounding, clipping = curve.rounding.cpu().numpy(), curve.clipping.cpu().numpy()
    total = rounding + clipping
    floor = max(float(total.min()) * 1e-3, 1e-30)
    fig, ax = _figure()
    ax.plot(
        t, np.maximum(rounding, floor), color="#1f77b4", ls="--", lw=1.2, label="rounding (inside the grid)"
    )
    ax.plot(t, np.maximum(clipping, floor), color="#d62728", ls="--", lw=1.2, label="clipping (outside)")
    ax.plot(t, np.maximum(total, floor), color="black", lw=1.8, label="total")
    for r in results:
        x = max(-r.lo, r.hi) if symmetric else r.hi
        y = float(np.interp(x, t, total))
        ax.plot(
            [x], [max(y, floor)], "o", ms=8, mfc="none", mew=2, color=COLORS.get(r.name, "k"), label=r.name
        )
    _cheap_log_y(ax)
    ax.set_xlabel(
        "clipping threshold T (range [−T, T])"
        if symmetric
        else "upper end of the range hi (lo fixed at the MSE optimum)"
    )
    ax.set_ylabel("squared error per value")
    ax.set_title("Quantization error of the actual grid versus threshold, from the histogram", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.grid(True, alpha=0.3)
    return fig


def calibrators_markdown(results: list[ObserverResult]) -> str:
    """A markdown table of every calibrator's range and measured error; the best SQNR (±0.05 dB) in bold."""
    best = max(r.sqnr_db for r in results) - 0.05
    rows = [
        "| calibrator | observed range [lo, hi] | grid covers | clipped | rounding MSE | clipping MSE | total MSE | SQNR |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        mark = "**" if r.sqnr_db >= best else ""
        rows.append(
            f"| {mark}{r.name}{mark} | [{r.lo:.4g}, {r.hi:.4g}] | [{r.grid_lo:.4g}, {r.grid_hi:.4g}] | {100 * r.clipped_fraction:.3f} % "
            f"| {r.rounding_mse:.3e} | {r.clipping_mse:.3e} | {r.mse:.3e} | {mark}{_fmt_db(r.sqnr_db)}{mark} |"
        )
    return "\n".join(rows)
