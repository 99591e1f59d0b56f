"""Lab 02's figures, browser-drawn charts (``plots.vega``): the data with every calibrator's range, and the
grid's error versus the clipping threshold. Every plotted number comes from ``ptqlab.lessons.calibration``.

Python only builds the data (a 256-bin display histogram, ≤ 512 points per curve, one row per calibrator);
the browser lays out axes and legends. Six ranges often land on top of each other (min/max and the moving
average, MSE and L2): each calibrator gets its own row in a strip under the histogram, named on the axis
with its SQNR, so no two labels can overlap; on the error curve the legend names each pick and its threshold.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from ptqlab.labkit.vega import Chart, color_scale, layer, number, panel, quantitative, rows
from ptqlab.lessons.calibration.numbers import CalibrationStats, ObserverResult
from ptqlab.observers.threshold_error import ThresholdError

COLORS = {  # none is the curves' blue (rounding), red (clipping) or black (total)
    "minmax": "#8c564b",
    "moving_average": "#e377c2",
    "percentile": "#ff7f0e",
    "entropy": "#2ca02c",
    "mse": "#9467bd",
    "l2": "#17becf",
}
DASHES = {"minmax": [1, 0], "moving_average": [2, 2], "percentile": [6, 3], "entropy": [8, 3, 2, 3]}
DASHES |= {"mse": [1, 0], "l2": [2, 4]}
DISPLAY_BINS = 256
CURVE_POINTS = 512
ROUNDING, CLIPPING, TOTAL = "rounding (inside the grid)", "clipping (outside)", "total"
ROW_HEIGHT = 18


def _fmt_db(db: float) -> str:
    return "∞ dB" if db == float("inf") else f"{db:.1f} dB"


def display_histogram(stats: CalibrationStats, display_bins: int = DISPLAY_BINS) -> list[dict]:
    """Rows (a, b, count, base) of the calibration histogram merged into about ``display_bins`` bins of
    [a, b); empty bins are left out (the log axis starts at ``base`` = 0.5)."""
    h = stats.histogram.hist
    counts, edges = h.counts.detach().cpu().double(), h.edges().detach().cpu().double()
    group = max(1, counts.numel() // display_bins)
    n = counts.numel() // group * group
    merged = counts[:n].reshape(-1, group).sum(1)
    if n < counts.numel():  # a remainder joins the last display bin
        merged[-1] += counts[n:].sum()
    left, right = edges[:n:group], torch.cat([edges[group:n:group], edges[-1:]])
    keep = merged > 0
    k = int(keep.sum())
    return rows(a=left[keep].tolist(), b=right[keep].tolist(), count=merged[keep].tolist(), base=[0.5] * k)


def _domain(bars: list[dict], results: list[ObserverResult]) -> list[float]:
    ends = [r["a"] for r in bars] + [r["b"] for r in bars]
    ends += [number(v) for r in results for v in (r.grid_lo, r.grid_hi)]
    lo, hi = min(ends), max(ends)
    pad = 0.02 * (hi - lo) or 1.0
    return [number(lo - pad), number(hi + pad)]


def _color(results: list[ObserverResult], extra: dict | None = None, legend: bool = True) -> dict:
    colors = {**(extra or {}), **{r.name: COLORS.get(r.name, "black") for r in results}}
    out = {"field": "series", "type": "nominal", "scale": color_scale(colors), "title": None}
    return out if legend else {**out, "legend": None}


def _dash(results: list[ObserverResult]) -> dict:
    scale = {"domain": [r.name for r in results], "range": [DASHES.get(r.name, [1, 0]) for r in results]}
    return {"field": "series", "type": "nominal", "scale": scale, "title": None}


def histogram_panel(stats: CalibrationStats, results: list[ObserverResult], domain: list, bars: list) -> dict:
    """The calibration histogram (log counts) with each calibrator's grid ends as vertical rules."""
    x = quantitative("a", None, scale={"zero": False, "domain": domain, "nice": False})
    y = quantitative("count", "count per bin (log)", scale={"zero": False, "type": "log"})
    ends = rows(
        x=[v for r in results for v in (r.grid_lo, r.grid_hi)],
        series=[r.name for r in results for _ in range(2)],
    )
    layers = [
        layer(bars, {"type": "rect", "color": "#c7c7c7"}, x=x, x2={"field": "b"}, y=y, y2={"field": "base"}),
        layer(
            ends,
            {"type": "rule", "strokeWidth": 1.8},
            x={**x, "field": "x"},
            color=_color(results),
            strokeDash=_dash(results),
        ),
    ]
    total = round(float(stats.histogram.hist.total()))  # re-binning splits counts: 32767.9999… is 32,768
    title = f"Calibration data ({total:,} values, grey) and the range each calibrator's grid covers"
    return panel(title, layers)


def ranges_panel(results: list[ObserverResult], domain: list) -> dict:
    """One row per calibrator: the interval its grid covers, named with its SQNR on the evaluation data."""
    labels = [f"{r.name} · {_fmt_db(r.sqnr_db)}" for r in results]
    data = rows(lo=[r.grid_lo for r in results], hi=[r.grid_hi for r in results], label=labels)
    for row, r in zip(data, results, strict=True):
        row["series"] = r.name
    y = {"field": "label", "type": "nominal", "sort": labels, "title": None}
    x = quantitative(
        "lo",
        "activation value x (grid covers [(qmin − zp)·s, (qmax − zp)·s])",
        scale={"zero": False, "domain": domain, "nice": False},
    )
    color = _color(results, legend=False)
    rule = {"type": "rule", "strokeWidth": 4, "strokeCap": "butt"}
    dash = {**_dash(results), "legend": None}
    layers = [layer(data, rule, x=x, x2={"field": "hi"}, y=y, color=color, strokeDash=dash)]
    title = "Each calibrator's grid, named with its SQNR on the fresh evaluation values"
    return panel(title, layers, height=ROW_HEIGHT * len(results))


def ranges_chart(stats: CalibrationStats, results: list[ObserverResult]) -> Chart:
    """Histogram of the calibration data with every calibrator's grid range, and the ranges row by row.

    The ranges are the grid's ends [(qmin − zp)·s, (qmax − zp)·s], not the raw observed [lo, hi]: a
    symmetric grid mirrors the larger side, and 0 is always on the grid."""
    bars = display_histogram(stats)
    domain = _domain(bars, results)
    panels = [histogram_panel(stats, results, domain, bars), ranges_panel(results, domain)]
    return Chart({"vconcat": panels, "spacing": 10})


def pick(r: ObserverResult, symmetric: bool) -> float:
    """Where a calibrator sits on the error curve's axis: T = max(−lo, hi) (symmetric) or hi."""
    return max(-r.lo, r.hi) if symmetric else r.hi


def curve_rows(curve: ThresholdError, points: int = CURVE_POINTS) -> tuple[list[dict], float]:
    """(rows t, error, series of the three curves at ≤ ``points`` thresholds, the log axis' floor).

    Errors below the floor (1e-3 × the smallest total, e.g. zero clipping past the data) are drawn on it."""
    t, rounding, clipping = curve.thresholds, curve.rounding, curve.clipping
    total = rounding + clipping
    floor = max(float(total.min()) * 1e-3, 1e-30)
    stride = max(1, -(-t.numel() // points))
    out = []
    for name, values in ((ROUNDING, rounding), (CLIPPING, clipping), (TOTAL, total)):
        kept = values[::stride].clamp_min(floor)
        out += rows(t=t[::stride].tolist(), error=kept.tolist(), series=[name] * kept.numel())
    return out, floor


def picks(curve: ThresholdError, results: list[ObserverResult], symmetric: bool, floor: float) -> list[dict]:
    """Rows (t, error, series) of each calibrator's threshold on the total-error curve (linear interpolation),
    the series naming the calibrator and its threshold."""
    t, total = curve.thresholds.double().numpy(), (curve.rounding + curve.clipping).double().numpy()
    xs = [pick(r, symmetric) for r in results]
    ys = np.maximum(np.interp(xs, t, total), floor)
    return rows(t=xs, error=ys.tolist(), series=[r.name for r in results])


def error_curve_chart(curve: ThresholdError, results: list[ObserverResult], symmetric: bool) -> Chart:
    """The grid's rounding, clipping and total error per value versus the threshold; each calibrator's pick."""
    lines, floor = curve_rows(curve)
    marks = picks(curve, results, symmetric, floor)
    names = {r.name: f"{r.name}: {'T' if symmetric else 'hi'} = {pick(r, symmetric):.4g}" for r in results}
    for row in marks:
        row["label"] = names[row["series"]]
    extra = {ROUNDING: "#1f77b4", CLIPPING: "#d62728", TOTAL: "black"}
    color = _color(results, extra)
    color["legend"] = {"labelExpr": _legend_names(names)}
    x_title = (
        "clipping threshold T (range [−T, T])"
        if symmetric
        else "upper end of the range hi (lo fixed at the MSE optimum)"
    )
    x = quantitative("t", x_title, scale={"zero": False})
    y = quantitative(
        "error", "squared error per value (log)", scale={"zero": False, "type": "log"}, axis={"format": "~e"}
    )
    line_dash = {
        "field": "series",
        "type": "nominal",
        "scale": {"domain": [ROUNDING, CLIPPING, TOTAL], "range": [[5, 3], [5, 3], [1, 0]]},
        "legend": None,
    }
    layers = [layer(lines, {"type": "line", "strokeWidth": 1.5}, x=x, y=y, color=color, strokeDash=line_dash)]
    tooltip = [
        {"field": "label", "type": "nominal"},
        {"field": "error", "type": "quantitative", "format": ".3g"},
    ]
    point = {"type": "point", "filled": False, "size": 110, "strokeWidth": 2.2}
    layers.append(layer(marks, point, x=x, y=y, color=color, tooltip=tooltip))
    title = "Quantization error of the actual grid versus the threshold, from the histogram"
    return Chart(panel(title, layers))


def _legend_names(names: dict[str, str]) -> str:
    """A Vega label expression showing each calibrator's legend entry with its threshold."""
    expression = "datum.label"
    for name, text in names.items():
        expression = (
            f"(datum.label === {json.dumps(name)} ? {json.dumps(text, ensure_ascii=False)} : {expression})"
        )
    return expression


def calibrators_markdown(results: list[ObserverResult]) -> str:
    """A markdown table of every calibrator's range and measured error; the best SQNR (±0.05 dB) in bold."""
    best = max(r.sqnr_db for r in results) - 0.05
    rows_ = [
        "| calibrator | observed range [lo, hi] | grid covers | clipped | rounding MSE | clipping MSE | total MSE | SQNR |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        mark = "**" if r.sqnr_db >= best else ""
        rows_.append(
            f"| {mark}{r.name}{mark} | [{r.lo:.4g}, {r.hi:.4g}] | [{r.grid_lo:.4g}, {r.grid_hi:.4g}] | {100 * r.clipped_fraction:.3f} % "
            f"| {r.rounding_mse:.3e} | {r.clipping_mse:.3e} | {r.mse:.3e} | {mark}{_fmt_db(r.sqnr_db)}{mark} |"
        )
    return "\n".join(rows_)
