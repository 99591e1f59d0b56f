"""Lab 01's figures: the staircase x → x̂ and the error it makes, from ``lessons.affine_map.affine_curve``."""

from __future__ import annotations

import functools
import math

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ptqlab.core.spec import QuantSpec
from ptqlab.lessons.affine_map import AffineCurve, affine_curve, fmt, grid_rows
from ptqlab.plots.figure import labelled, new_figure
from ptqlab.plots.raster import image

CLIP_COLOR = "#d62728"
ROUND_COLOR = "#1f77b4"
IDENTITY_COLOR = "#7f7f7f"
MAX_DECADES = 3  # log ticks per side of the error axis


def shade_outside(
    ax: Axes, lo: float, hi: float, *, label: str | None = "clipped (outside the grid)"
) -> None:
    """Shade the parts of the x-axis outside [lo, hi] (the clipping region)."""
    left, right = ax.get_xlim()
    ax.axvspan(min(left, lo), lo, color=CLIP_COLOR, alpha=0.12, lw=0, label=label)
    ax.axvspan(hi, max(right, hi), color=CLIP_COLOR, alpha=0.12, lw=0)
    ax.set_xlim(left, right)


def _caption(curve: AffineCurve) -> str:
    return f"{curve.spec.bits}-bit {'int' if curve.spec.signed else 'uint'}, " + (
        f"{'symmetric' if curve.spec.symmetric else 'asymmetric'}: scale {fmt(curve.scale)}, zero point {curve.zero_point}"
    )


def draw_staircase(ax: Axes, curve: AffineCurve) -> Axes:
    """x̂ = fake_quantize(x) against x, with the identity line and the clipping region shaded."""
    x, x_hat = curve.x.numpy(), curve.x_hat.numpy()
    ax.plot(x, x, ls="--", lw=1, color=IDENTITY_COLOR, label="x̂ = x (no error)")
    ax.plot(x, x_hat, lw=1.6, color=ROUND_COLOR, label="x̂ = (x_q − zp)·scale")
    if curve.spec.levels <= 64:  # few enough grid points to mark them
        on_grid = [v for _, v in _grid_points(curve)]
        ax.plot(on_grid, on_grid, "o", ms=3, color=ROUND_COLOR, label="grid points")
    ax.set_xlim(float(x[0]), float(x[-1]))
    shade_outside(ax, curve.grid_lo, curve.grid_hi)
    for edge in (curve.lo, curve.hi):
        ax.axvline(edge, color="black", lw=0.8, ls=":")
    ax.plot(
        [], [], color="black", lw=0.8, ls=":", label=f"requested range [{fmt(curve.lo)}, {fmt(curve.hi)}]"
    )
    return labelled(
        ax, title=f"The staircase x → x̂ — {_caption(curve)}", ylabel="output x̂ (real value)", legend="outside"
    )


def _grid_points(curve: AffineCurve) -> list[tuple[int, float]]:
    return [r for r in grid_rows(curve.qparams, curve.spec, whole_up_to=64) if r is not None]


def draw_error(ax: Axes, curve: AffineCurve) -> Axes:
    """x̂ - x along the input axis: rounding error inside the grid (≤ scale/2), clipping error outside.

    The y-axis is linear within ±scale/2 and logarithmic beyond, so the small rounding saw-tooth and the
    large clipping ramps are both readable.
    """
    x = curve.x.numpy()
    s, split = curve.scale, curve.split
    ax.plot(
        x,
        curve.rounding_error.numpy(),
        lw=1,
        color=ROUND_COLOR,
        label=f"rounding error (MSE {split.rounding_mse:.3g})",
    )
    ax.plot(
        x,
        curve.clipping_error.numpy(),
        lw=1.6,
        color=CLIP_COLOR,
        label=f"clipping error (MSE {split.clipping_mse:.3g})",
    )
    for sign in (1, -1):
        ax.axhline(sign * s / 2, color="black", lw=0.7, ls="--", label="± scale/2" if sign > 0 else None)
    _symlog_error_axis(ax, s / 2, float(curve.error.abs().max()))
    ax.set_xlim(float(x[0]), float(x[-1]))
    shade_outside(ax, curve.grid_lo, curve.grid_hi, label=None)
    return labelled(
        ax,
        title="The error x̂ − x, split by where x falls (MSE of a uniform x over this axis)",
        xlabel="input x (real value)",
        ylabel="error x̂ − x (s = scale)\nlinear within ±s/2, log beyond",
        legend="outside",
    )


def _symlog_error_axis(ax: Axes, half_step: float, biggest: float) -> None:
    """Linear within ±half_step (ticks -s/2, 0, s/2), logarithmic beyond (ticks at 10× apart)."""
    from matplotlib.ticker import FixedFormatter, FixedLocator

    ax.set_yscale("symlog", linthresh=half_step, linscale=1.5)
    ticks, labels = [-half_step, 0.0, half_step], ["−s/2", "0", "s/2"]
    # decades at least 10× beyond s/2 (closer ones crowd the s/2 label), at most MAX_DECADES per side
    first = math.ceil(math.log10(10 * half_step))
    decades = [k for k in range(first, math.floor(math.log10(max(biggest * 1.05, 1e-30))) + 1)]
    stride = max(1, math.ceil(len(decades) / MAX_DECADES))
    for k in decades[::-1][::stride]:
        ticks += [10.0**k, -(10.0**k)]
        labels += [fmt(10.0**k), fmt(-(10.0**k))]
    order = sorted(range(len(ticks)), key=ticks.__getitem__)
    ax.yaxis.set_major_locator(FixedLocator([ticks[i] for i in order]))
    ax.yaxis.set_major_formatter(FixedFormatter([labels[i] for i in order]))
    ax.yaxis.set_minor_locator(FixedLocator([]))


def affine_figure(spec: QuantSpec, lo: float, hi: float, n: int = 4001) -> Figure:
    """Lab 01's main figure: the staircase on top, its error below, sharing the input axis. Fixed margins
    (no layout solver): the legends sit in the right 30 %, the y labels in the left 11 %."""
    curve = affine_curve(spec, lo, hi, n)
    fig, (top, bottom) = new_figure(2, 1, sharex=True, layout=None)
    fig.subplots_adjust(left=0.11, right=0.70, top=0.94, bottom=0.09, hspace=0.22)
    draw_staircase(top, curve)
    draw_error(bottom, curve)
    return fig


@functools.lru_cache(maxsize=256)
def affine_image(spec: QuantSpec, lo: float, hi: float):
    """``affine_figure`` as a screen-resolution PNG (``plots.raster``), cached per setting."""
    return image(affine_figure(spec, lo, hi))
