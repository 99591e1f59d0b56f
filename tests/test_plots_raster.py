"""plots.raster: one draw at screen resolution, a real PNG, clear errors."""

import pytest

from ptqlab.bench.figure import new_figure
from ptqlab.labkit.raster import png


def test_png_is_one_png_of_the_figure_size():
    fig, (ax,) = new_figure(width=4, height=2, layout=None)
    ax.plot([0, 1], [0, 1])
    data = png(fig, dpi=50)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (200, 100)


def test_png_rejects_bad_input():
    with pytest.raises(TypeError, match="fig"):
        png("not a figure")
    fig, _ = new_figure()
    with pytest.raises(ValueError, match="dpi"):
        png(fig, dpi=0)
