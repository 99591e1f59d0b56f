"""Lab 08's figures: accuracy and deploy time per method and bit width; RTN accuracy per training variant."""

from __future__ import annotations

from matplotlib.figure import Figure

from ptqlab.bench.figure import labelled, new_figure
from ptqlab.bench.ptq_vs_qat import Row
from ptqlab.ptq.training_dynamics import ROBUSTNESS_BITS, VARIANTS, DynamicsStudy, spread

VARIANT_COLORS = {"standard": "tab:gray", "lawa": "tab:blue", "cooldown": "tab:orange"}


def comparison_figure(rows: list[Row], fp32: float, title: str) -> Figure:
    """Left: test accuracy vs weight bits, one line per method, fp32 dashed. Right: time to deploy (log)."""
    fig, (ax_acc, ax_time) = new_figure(1, 2, width=11, height=3.6)
    methods = list(dict.fromkeys(r.method for r in rows))
    for method in methods:
        mine = sorted(
            (r for r in rows if r.method == method and r.accuracy is not None), key=lambda r: -r.bits
        )
        if not mine:
            continue
        bits = [r.bits for r in mine]
        ax_acc.plot(bits, [100 * r.accuracy for r in mine], marker="o", label=method)
        ax_time.plot(bits, [max(r.seconds, 1e-3) for r in mine], marker="o", label=method)
    ax_acc.axhline(100 * fp32, color="black", linestyle="--", linewidth=1, label="fp32")
    for ax in (ax_acc, ax_time):
        ax.invert_xaxis()
        ax.set_xticks(sorted({r.bits for r in rows}))
    ax_time.set_yscale("log")
    labelled(
        ax_acc,
        title="Test accuracy (W<b>A8)",
        xlabel="weight bits",
        ylabel="accuracy (%)",
        legend="lower left",
    )
    labelled(
        ax_time, title="Time to deploy from the fp32 model", xlabel="weight bits", ylabel="seconds (log)"
    )
    fig.suptitle(title)
    return fig


def dynamics_figure(result: DynamicsStudy, granularity: str, title: str) -> Figure:
    """One panel per bit width: every seed's RTN accuracy per training variant, with mean ± std."""
    fig, axes = new_figure(1, len(ROBUSTNESS_BITS), width=11, height=3.4)
    for ax, bits in zip(axes, ROBUSTNESS_BITS, strict=True):
        for i, variant in enumerate(VARIANTS):
            values = [100 * v for v in result.accuracy[variant][granularity][bits]]
            s = spread(result.accuracy[variant][granularity][bits])
            color = VARIANT_COLORS[variant]
            ax.scatter([i] * len(values), values, color=color, alpha=0.6, s=18)
            ax.errorbar([i + 0.15], [s.mean], yerr=[s.std], color=color, marker="D", capsize=4)
        ax.set_xticks(range(len(VARIANTS)), VARIANTS)
        labelled(ax, title=f"W{bits} RTN ({granularity})", ylabel="test accuracy (%)" if bits == 4 else None)
    fig.suptitle(title)
    return fig
