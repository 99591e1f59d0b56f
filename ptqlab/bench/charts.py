"""Figures for measured benchmark rows: speedup bars, size-vs-quality Pareto, memory roofline."""

from __future__ import annotations

from pathlib import Path

from matplotlib import ticker
from matplotlib.patches import Rectangle

from ptqlab.backends.hardware import last_level_cache_bytes
from ptqlab.bench.figure import new_figure
from ptqlab.bench.report import roofline_cell
from ptqlab.bench.run import BenchRow
from ptqlab.core.pareto import pareto_front

FAMILY_COLORS = {
    "baseline": "#7f7f7f",
    "torch.ao (x86/fbgemm)": "#1f77b4",
    "pt2e + inductor": "#9467bd",
    "torchao": "#ff7f0e",
    "onnxruntime (CPU EP)": "#2ca02c",
}
OTHER_COLOR = "#8c564b"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
QUALITY_LABEL = {"accuracy": "test accuracy (%)", "cosine": "cosine vs fp32"}


def _available(rows: list[BenchRow], model: str, batch: int | None = None) -> list[BenchRow]:
    return [r for r in rows if r.available and r.model == model and (batch is None or r.batch == batch)]


def legend_families(rows: list[BenchRow]) -> list[str]:
    """The engine families drawn, in FAMILY_COLORS order, then any other family: the legend names every colour."""
    present = {r.family for r in rows}
    return [f for f in FAMILY_COLORS if f in present] + sorted(present - set(FAMILY_COLORS))


def speedup_figure(rows: list[BenchRow], model: str):
    """Horizontal bars: speedup vs fp32 eager (median), whiskers from the p90/p10 latencies, one panel per batch."""
    batches = sorted({r.batch for r in _available(rows, model)})
    fig, axes = new_figure(1, max(len(batches), 1), width=5.2 * max(len(batches), 1), height=4.6)
    for ax, batch in zip(axes, batches, strict=False):
        group = _available(rows, model, batch)
        base = next((r.median_ms for r in group if r.variant == "fp32"), None)
        names = [r.variant for r in group]
        speed = [r.speedup for r in group]
        lo = [s - base / r.p90_ms for s, r in zip(speed, group, strict=True)]
        hi = [base / r.p10_ms - s for s, r in zip(speed, group, strict=True)]
        colors = [FAMILY_COLORS.get(r.family, OTHER_COLOR) for r in group]
        y = range(len(group))
        ax.barh(y, speed, xerr=[lo, hi], color=colors, capsize=3)
        ax.axvline(1.0, color="black", lw=1, ls="--")
        for i, (s, h) in enumerate(zip(speed, hi, strict=True)):
            ax.text(s + h, i, f" {s:.2f}×", va="center", fontsize=8)
        ax.set_xlim(0, max(base / r.p10_ms for r in group) * 1.22)
        ax.set_yticks(list(y), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("speedup vs fp32 eager (median, p10–p90)")
        ax.set_title(f"{model}, batch {batch}")
    families = legend_families(_available(rows, model))
    handles = [Rectangle((0, 0), 1, 1, color=FAMILY_COLORS.get(f, OTHER_COLOR)) for f in families]
    axes[-1].legend(handles, families, loc="lower right", fontsize=7, framealpha=0.9)
    fig.suptitle(f"Measured speedup — {model} (same run, interleaved)")
    return fig


def _scatter_variants(ax, group: list[BenchRow], xs, ys, label) -> None:
    """One marker per variant (colour = family, shape = position), named in the legend, not on the plot."""
    for i, (r, x, y) in enumerate(zip(group, xs, ys, strict=True)):
        color = FAMILY_COLORS.get(r.family, OTHER_COLOR)
        ax.scatter(
            x, y, color=color, marker=MARKERS[i % len(MARKERS)], s=45, zorder=3, alpha=0.85, label=label(r)
        )


def _plain_log_ticks(ax) -> None:
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def size_quality_figure(rows: list[BenchRow], model: str, batch: int):
    """Serialized size (MB, log) vs quality; the dashed line joins the Pareto-optimal recipes."""
    group = [r for r in _available(rows, model, batch) if r.size_bytes]
    key = "accuracy" if any("accuracy" in r.quality for r in group) else "cosine"
    scale = 100.0 if key == "accuracy" else 1.0
    pts = [(r.size_bytes / 1e6, r.quality.get(key, float("nan")) * scale) for r in group]
    fig, (ax,) = new_figure(width=8.6, height=4.4)
    _scatter_variants(ax, group, [p[0] for p in pts], [p[1] for p in pts], lambda r: r.variant)
    front = pareto_front(range(len(pts)), cost=lambda i: pts[i][0], value=lambda i: pts[i][1])
    ax.plot(
        [pts[i][0] for i in front],
        [pts[i][1] for i in front],
        ls="--",
        color="black",
        lw=1,
        label="Pareto front",
    )
    ax.scatter(  # ringed too: a front of one recipe has no line to draw
        [pts[i][0] for i in front],
        [pts[i][1] for i in front],
        s=160,
        facecolors="none",
        edgecolors="black",
        lw=1,
        zorder=4,
        label="Pareto-optimal",
    )
    ax.set_xscale("log")
    _plain_log_ticks(ax)
    if key == "accuracy":  # accuracy cannot exceed 100 %: the axis stops there, points on it stay visible
        ax.set_ylim(top=100.0)
        for artist in ax.collections:
            artist.set_clip_on(False)
    ax.set_xlabel("serialized state_dict size (MB, log scale)")
    ax.set_ylabel(QUALITY_LABEL[key])
    ax.set_title(f"Size vs quality — {model}, batch {batch}")
    ax.legend(fontsize=7, loc="best", framealpha=0.9)
    return fig


def roofline_figure(
    rows: list[BenchRow], bandwidth: float, model: str, batch: int, llc_bytes: int | None = None
):
    """Latency vs weight bytes per forward (log-log); the line t = bytes / bandwidth is the memory floor.
    Labels give floor / measured, or "not meaningful" for weights that fit in ``llc_bytes`` (default: read)."""
    llc_bytes = last_level_cache_bytes() if llc_bytes is None else llc_bytes
    group = [r for r in _available(rows, model, batch) if r.weight_bytes]
    fig, (ax,) = new_figure(width=8.6, height=4.4)
    if group:
        sizes = [r.weight_bytes / 1e6 for r in group]
        lo, hi = min(sizes) / 1.5, max(sizes) * 1.5
        ax.plot(
            [lo, hi],
            [lo * 1e6 / bandwidth * 1e3, hi * 1e6 / bandwidth * 1e3],
            color="black",
            lw=1.2,
            label=f"memory floor: bytes / {bandwidth / 1e9:.1f} GB/s",
        )
        _scatter_variants(
            ax,
            group,
            sizes,
            [r.median_ms for r in group],
            lambda r: f"{r.variant}: {roofline_cell(r, llc_bytes)}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax)
    ax.set_xlabel("weight bytes streamed per forward (MB, log)")
    ax.set_ylabel("median latency (ms, log)")
    ax.set_title(f"Roofline — {model}, batch {batch} (% = floor / measured)")
    ax.legend(fontsize=7, loc="best", framealpha=0.9)
    return fig


def save_charts(rows: list[BenchRow], bandwidth: float, directory: str | Path) -> list[Path]:
    """speedup_<model>.png, pareto_<model>_b<batch>.png, roofline_<model>_b<smallest batch>.png."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for model in dict.fromkeys(r.model for r in rows if r.available):
        batches = sorted({r.batch for r in _available(rows, model)})
        figs = {f"speedup_{model}.png": speedup_figure(rows, model)}
        figs[f"pareto_{model}_b{batches[-1]}.png"] = size_quality_figure(rows, model, batches[-1])
        figs[f"roofline_{model}_b{batches[0]}.png"] = roofline_figure(rows, bandwidth, model, batches[0])
        for name, fig in figs.items():
            fig.savefig(out / name, dpi=110)
            paths.append(out / name)
    return paths
