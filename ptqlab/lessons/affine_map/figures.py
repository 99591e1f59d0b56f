"""Lab 01's figure: the staircase x → x̂ and its error, a browser-drawn chart (``plots.vega``) exact at every
bit width, from ``lessons.affine_map.affine_curve``.

The staircase is drawn from its vertices, not from samples: code k covers the inputs up to the decision
threshold t_k = (k − zp + ½)·scale, where x̂ jumps from (k − zp)·scale to (k + 1 − zp)·scale. So the chart
has no aliasing at any bit width: up to ``EXACT_STEPS`` codes (8 bits) every step and every tooth of the rounding
saw-tooth is drawn; beyond that (9+ bits, a pixel or less a step) the staircase is the straight line it
looks like and the saw-tooth is drawn as its band, ±scale/2, and the legend says so.
"""

from __future__ import annotations

import math

from ptqlab.labkit.vega import Chart, color_scale, layer, number, panel, quantitative, rows, tick_axis
from ptqlab.lessons.affine_map.numbers import AffineCurve, fmt

EXACT_STEPS = 256  # codes drawn one by one; beyond, a step is about a pixel of a WIDTH-pixel panel
MAX_DECADES = 3  # log ticks per side of the error axis
IDENTITY, STAIRCASE, GRID, REQUESTED, CLIPPED = (
    "x̂ = x (no error)",
    "x̂ = (x_q − zp)·scale",
    "grid points",
    "requested range",
    "clipped (outside the grid)",
)


def thresholds(curve: AffineCurve) -> tuple[list[float], list[float]]:
    """(decision thresholds t_k, grid values g_k) of the curve's grid: code k for t_{k−1} < x < t_k."""
    s, zp, spec = curve.scale, curve.zero_point, curve.spec
    grid = [(k - zp) * s for k in range(spec.qmin, spec.qmax + 1)]
    return [(k - zp + 0.5) * s for k in range(spec.qmin, spec.qmax)], grid


def staircase_vertices(curve: AffineCurve) -> tuple[list[float], list[float]]:
    """(x, x̂) vertices of the staircase over the curve's axis; a straight line when steps are sub-pixel."""
    left, right = float(curve.x[0]), float(curve.x[-1])
    if curve.spec.levels > EXACT_STEPS:
        return [left, curve.grid_lo, curve.grid_hi, right], [
            curve.grid_lo,
            curve.grid_lo,
            curve.grid_hi,
            curve.grid_hi,
        ]
    ts, grid = thresholds(curve)
    xs, ys = [left], [grid[0]]
    for t, below, above in zip(ts, grid, grid[1:], strict=False):
        xs += [t, t]
        ys += [below, above]
    return xs + [right], ys + [grid[-1]]


def error_series(curve: AffineCurve) -> list[dict]:
    """Rows (x, error, lower, series) of x̂ − x: the rounding saw-tooth inside the grid (or its ±s/2 band when
    the teeth are sub-pixel) and the two clipping ramps outside it."""
    left, right, g_lo, g_hi, half = (
        float(curve.x[0]),
        float(curve.x[-1]),
        curve.grid_lo,
        curve.grid_hi,
        curve.scale / 2,
    )
    split = curve.split
    rounding = f"rounding error (MSE {split.rounding_mse:.3g})"
    clipping = f"clipping error (MSE {split.clipping_mse:.3g})"
    if curve.spec.levels > EXACT_STEPS:
        rounding = (
            f"rounding error (MSE {split.rounding_mse:.3g}): {curve.spec.levels - 1:,} teeth, drawn as a band"
        )
        out = rows(x=[g_lo, g_hi], error=[half, half], lower=[-half, -half], series=[rounding] * 2)
    else:
        ts, _ = thresholds(curve)
        xs, es = [g_lo], [0.0]
        for t in ts:
            xs += [t, t]
            es += [-half, half]
        out = rows(
            x=xs + [g_hi], error=es + [0.0], lower=[None] * (len(xs) + 1), series=[rounding] * (len(xs) + 1)
        )
    ramps = rows(x=[left, g_lo], error=[g_lo - left, 0.0], lower=[None, None], series=[clipping] * 2)
    ramps += rows(x=[g_hi, right], error=[0.0, g_hi - right], lower=[None, None], series=[clipping + " "] * 2)
    return out + ramps


def error_axis(half_step: float, biggest: float) -> dict:
    """Symlog ticks: −s/2, 0, s/2, then up to ``MAX_DECADES`` powers of ten per side (≥ 10× beyond s/2)."""
    ticks, labels = [-half_step, 0.0, half_step], ["−s/2", "0", "s/2"]
    first = math.ceil(math.log10(10 * half_step))
    decades = list(range(first, math.floor(math.log10(max(biggest * 1.05, 1e-30))) + 1))
    stride = max(1, math.ceil(len(decades) / MAX_DECADES))
    for k in decades[::-1][::stride]:
        ticks += [10.0**k, -(10.0**k)]
        labels += [fmt(10.0**k), fmt(-(10.0**k)).replace("-", "−")]
    order = sorted(range(len(ticks)), key=ticks.__getitem__)
    return tick_axis(
        "error x̂ − x (s = scale)",
        [ticks[i] for i in order],
        [labels[i] for i in order],
        grid=True,
    )


def _x(domain: list, title: str | None = None, field: str = "x") -> dict:
    return quantitative(field, title, scale={"domain": domain, "nice": False, "zero": False})


def _spans(curve: AffineCurve, domain: list, color: dict) -> dict:
    """The clipping region, x outside [grid_lo, grid_hi], shaded over the panel's whole height."""
    data = rows(a=[domain[0], curve.grid_hi], b=[curve.grid_lo, domain[1]], series=[CLIPPED, CLIPPED])
    return layer(
        data, {"type": "rect", "opacity": 0.12}, x=_x(domain, field="a"), x2={"field": "b"}, color=color
    )


def _caption(curve: AffineCurve) -> str:
    spec = curve.spec
    kind = f"{spec.bits}-bit {'int' if spec.signed else 'uint'}, {'symmetric' if spec.symmetric else 'asymmetric'}"
    return f"{kind}: scale {fmt(curve.scale)}, zero point {curve.zero_point}"


def staircase_panel(curve: AffineCurve, domain: list) -> dict:
    """x̂ against x with the identity, the requested range's edges, the grid points and the clipped region."""
    xs, ys = staircase_vertices(curve)
    colors = {
        STAIRCASE: "#1f77b4",
        IDENTITY: "#7f7f7f",
        GRID: "#1f77b4",
        REQUESTED: "black",
        CLIPPED: "#d62728",
    }
    if curve.spec.levels > 64:
        del colors[GRID]
    color = {"field": "series", "type": "nominal", "scale": color_scale(colors), "title": None}
    y = {"field": "y", "type": "quantitative", "title": "output x̂ (real value)", "scale": {"zero": False}}
    line = {"type": "line", "strokeWidth": 1.6}
    layers = [
        _spans(curve, domain, color),
        layer(
            rows(x=domain, y=domain, series=[IDENTITY] * 2),
            {**line, "strokeDash": [5, 4], "strokeWidth": 1},
            x=_x(domain),
            y=y,
            color=color,
        ),
        layer(rows(x=xs, y=ys, series=[STAIRCASE] * len(xs)), line, x=_x(domain), y=y, color=color),
        layer(
            rows(x=[curve.lo, curve.hi], series=[REQUESTED] * 2),
            {"type": "rule", "strokeDash": [2, 3]},
            x=_x(domain),
            color=color,
        ),
    ]
    if curve.spec.levels <= 64:
        _, grid = thresholds(curve)
        points = rows(x=grid, y=grid, series=[GRID] * len(grid))
        layers.append(
            layer(points, {"type": "point", "filled": True, "size": 18}, x=_x(domain), y=y, color=color)
        )
    title = f"The staircase x → x̂ — {_caption(curve)}; requested range [{fmt(curve.lo)}, {fmt(curve.hi)}]"
    return panel(title, layers)


def error_panel(curve: AffineCurve, domain: list) -> dict:
    """x̂ − x on a symlog axis (linear within ±s/2): the rounding saw-tooth and the clipping ramps."""
    data, half = error_series(curve), curve.scale / 2
    biggest = max(abs(r["error"]) for r in data)
    names = list(dict.fromkeys(r["series"] for r in data))
    colors = {name: ("#d62728" if name.startswith("clipping") else "#1f77b4") for name in names}
    colors[CLIPPED] = "#d62728"
    legend = {"values": [n for n in names if not n.endswith(" ")]}
    color = {
        "field": "series",
        "type": "nominal",
        "scale": color_scale(colors),
        "title": None,
        "legend": legend,
    }
    scale = {"type": "symlog", "constant": number(half)}
    y = {"field": "error", "type": "quantitative", "scale": scale, "axis": error_axis(half, biggest)}
    lines = [r for r in data if r["lower"] is None]
    bands = [r for r in data if r["lower"] is not None]
    x = _x(domain, "input x (real value)")
    layers = [
        _spans(curve, domain, color),
        layer(lines, {"type": "line", "strokeWidth": 1.3}, x=x, y=y, color=color, detail={"field": "series"}),
        layer(
            rows(y=[-half, half]),
            {"type": "rule", "strokeDash": [4, 3], "color": "black", "strokeWidth": 0.7},
            y={**y, "field": "y"},
        ),
    ]
    if bands:
        layers.insert(
            1, layer(bands, {"type": "area", "opacity": 0.5}, x=x, y=y, y2={"field": "lower"}, color=color)
        )
    title = "The error x̂ − x (linear within ±s/2, log beyond; MSE of a uniform x over this axis)"
    return panel(title, layers)


def affine_map_chart(curve: AffineCurve) -> Chart:
    """Lab 01's figure: the staircase on top, its error below, both over the same input axis."""
    domain = [number(curve.x[0]), number(curve.x[-1])]
    return Chart(
        {
            "vconcat": [staircase_panel(curve, domain), error_panel(curve, domain)],
            "resolve": {"scale": {"color": "independent"}, "legend": {"color": "independent"}},
            "spacing": 18,
        }
    )
