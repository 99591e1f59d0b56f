"""The figure factory behind every matplotlib figure (the benchmark charts and the labs' PNG figures), and
the axis helpers they share.

Figures are ``matplotlib.figure.Figure`` objects, never pyplot's: a lab can build one per slider move
without leaking open figures, and nothing depends on a global "current figure".
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure


def new_figure(
    rows: int = 1,
    cols: int = 1,
    *,
    width: float = 10.0,
    height: float = 3.4,
    dpi: float | None = None,
    layout: str | None = "constrained",
    **subplot_kw,
) -> tuple[Figure, list[Axes]]:
    """A pyplot-free figure with ``rows × cols`` axes (returned flat), ``height`` inches per row.

    ``layout=None`` skips the constrained-layout solver (faster; the caller places the axes itself).
    """
    fig = Figure(figsize=(width, height * rows), dpi=dpi, layout=layout)
    axes = fig.subplots(rows, cols, squeeze=False, **subplot_kw)
    return fig, [ax for row in axes for ax in row]


def labelled(
    ax: Axes,
    *,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    legend: str = "best",
) -> Axes:
    """Title and axis labels in one call, a light grid, and a legend if anything is labelled.

    ``legend`` is a matplotlib location, or ``"outside"`` to put it right of the axes (never covers data).
    """
    if title:
        ax.set_title(title, fontsize=10)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    if handles and legend == "outside":
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    elif handles:
        ax.legend(fontsize=8, loc=legend, framealpha=0.9)
    return ax
