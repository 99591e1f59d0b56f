"""Figures as PNG images drawn once at screen resolution, for the labs' slider-driven figures.

marimo shows a matplotlib ``Figure`` by saving it with ``bbox_inches="tight"`` at twice its dpi: two
draws (one to measure the tight box) of four times the pixels. ``image`` saves once, at ``dpi``, with the
figure's own layout (its constrained layout already keeps labels and outside legends inside), which is
what keeps a slider's figure under a few hundred milliseconds.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure

SCREEN_DPI = 100


def png(fig: Figure, dpi: float = SCREEN_DPI) -> bytes:
    """The figure as PNG bytes: one draw at ``dpi``, no tight-bbox pass."""
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if not dpi > 0:
        raise ValueError(f"dpi must be > 0, got {dpi!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def image(fig: Figure, dpi: float = SCREEN_DPI):
    """``png(fig)`` as a marimo image, shown at the figure's size in CSS pixels (100 per inch)."""
    import marimo as mo

    width = round(fig.get_figwidth() * 100)
    return mo.image(src=png(fig, dpi), width=width)
