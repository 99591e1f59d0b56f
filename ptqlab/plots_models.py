"""Figure builders for the model-level labs (03 schemes, 05 sensitivity). Each returns a matplotlib Figure
built without pyplot (no global state, nothing to close)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.figure import Figure

from ptqlab.affine import integer_grid
from ptqlab.calibration_study import summarize
from ptqlab.schemes import ActSchemeResult, FoldingPoint, SchemeResult
from ptqlab.sensitivity import MixedPrecisionPoint, MixedPrecisionResult, SensitivityReport

COLORS = {"per-tensor": "tab:red", "per-channel": "tab:blue", "per-group": "tab:green"}


def granularity_figure(w: torch.Tensor, results: dict[str, SchemeResult], title: str) -> Figure:
    """2×2: per-channel ranges, the scale each granularity picks, per-channel SQNR, two channels' histograms."""
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    (ax_range, ax_scale), (ax_err, ax_hist) = fig.subplots(2, 2)
    channels = torch.arange(w.shape[0])
    lo, hi = w.amin(1), w.amax(1)
    ax_range.vlines(channels, lo, hi, color="tab:blue", linewidth=0.8, label="channel [min, max]")
    amax = float(w.abs().max())
    for y in (-amax, amax):
        ax_range.axhline(y, color=COLORS["per-tensor"], linestyle="--", linewidth=1)
    ax_range.plot([], [], color=COLORS["per-tensor"], linestyle="--", label="per-tensor range ±max|W|")
    ax_range.set(title="Weight range of every output channel", xlabel="output channel", ylabel="weight value")
    ax_range.legend(loc="upper right", fontsize=8)

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
    ax_scale.legend(fontsize=8)

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
    ax_err.legend(fontsize=8)

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
    ax_hist.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def folding_figure(
    points: Sequence[FoldingPoint], fp32_accuracy: float, factors: dict[str, torch.Tensor], title: str
) -> Figure:
    """Left: accuracy vs weight bits, per-tensor/per-channel, BN kept or folded first. Right: the per-channel
    factor s = γ/σ that folding multiplies each output channel's weights by."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax, ax_s = fig.subplots(1, 2)
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
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    ax = fig.subplots()
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
    ax.legend(fontsize=8, loc="upper right")
    return fig


def sensitivity_figure(report: SensitivityReport, title: str) -> Figure:
    """Grouped bars: accuracy drop (points) when only that layer is quantized, per bit width."""
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    ax = fig.subplots()
    n = len(report.bits)
    width = 0.8 / n
    for i, b in enumerate(sorted(report.bits)):
        drops = [100 * report.drop(layer, b) for layer in report.layers]
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(report.layers))]
        ax.bar(xs, drops, width, label=f"W{b}")
    ax.set_xticks(range(len(report.layers)), report.layers)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set(title=title, xlabel="layer quantized alone (all others fp32)", ylabel="accuracy drop (points)")
    ax.legend(title="weight bits", fontsize=8)
    return fig


def _kb_and_percent(points) -> tuple[list[float], list[float]]:
    """A mixed-precision plot's coordinates: sizes in KiB and metrics in percent."""
    return [p.size_bytes / 1024 for p in points], [100 * p.metric for p in points]


def pareto_figure(
    result: MixedPrecisionResult, chosen: MixedPrecisionPoint | None, budget_bytes: float, title: str
) -> Figure:
    """Size vs accuracy: every configuration measured, the greedy path, the Pareto front and the pick."""
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    ax = fig.subplots()
    ax.scatter(
        *_kb_and_percent(result.explored),
        s=12,
        color="lightgrey",
        label="configurations measured",
    )
    ax.plot(
        *_kb_and_percent(result.path),
        "-o",
        markersize=3,
        color="tab:blue",
        linewidth=1,
        label="greedy path",
    )
    front = result.pareto()
    ax.step(
        *_kb_and_percent(front),
        where="post",
        color="tab:green",
        linewidth=1.5,
        label="Pareto front",
    )
    ax.plot(
        *_kb_and_percent(result.uniform),
        "ks",
        markersize=5,
        label="same bits everywhere (" + ", ".join(f"W{b}" for b in result.choices) + ")",
    )
    ax.axvline(budget_bytes / 1024, color="tab:red", linestyle="--", linewidth=1, label="size budget")
    if chosen is not None:
        ax.plot(*_kb_and_percent([chosen]), "*", markersize=16, color="tab:red", label="chosen")
    ax.axhline(100 * result.float_metric, color="black", linewidth=0.6, label="fp32 accuracy")
    ax.set(title=title, xlabel="model size (KiB, all parameters)", ylabel="test accuracy (%)")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def calibration_figure(points, title: str) -> Figure:
    """Accuracy vs calibration-set size per selection method (mean over seeds, band = min–max)."""
    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.subplots()
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:purple")
    for (method, rows), color in zip(summarize(points).items(), colors, strict=False):
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
    ax.legend(title="selection", fontsize=8)
    return fig
