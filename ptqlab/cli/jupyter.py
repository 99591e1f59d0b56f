"""Two Jupyter/Colab notebooks built from the same ptqlab functions and widgets as the marimo labs. They
are companions, not copies: the full labs (goals, self-checks, exercises, figures) exist only in marimo.

    affine_staircase.ipynb    lab 01's formulas with lab 06's staircase widget
    clipping_explorer.ipynb   lab 02's question (where to clip) with lab 06's clipping explorer

    python -m ptqlab.cli.jupyter [DIR]      # writes both (default labs/jupyter)

The notebooks are plain nbformat-4 JSON written by hand (no nbformat dependency); the copies committed
under ``labs/jupyter/`` are this module's output, and a test keeps the two identical.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

_PTQLAB_FIRST = (
    "import ptqlab  # noqa: F401, I001 — first: it sets OMP_WAIT_POLICY before torch is imported\n"
)
_FIRST = _PTQLAB_FIRST + "import torch\n\n"

_HEAVY_TAILED = """\
# A heavy-tailed "activation": Student-t with 3 degrees of freedom (most values small, a few huge)
from ptqlab.models.data import heavy_tailed_activations

x = heavy_tailed_activations()
print(f"{x.numel()} values in [{x.min():.2f}, {x.max():.2f}]; 99 % lie within ±{x.abs().quantile(0.99):.2f}")"""


def _live_output(widget: str, callback: str, prepare: str, prints: str, setup: str = "") -> str:
    """A code cell whose ``ipywidgets.Output`` follows ``widget``: ``callback`` runs ``prepare``, then
    reprints ``prints`` into the output each time the widget's ``stats`` change."""
    setup = setup and setup + "\n"
    return f"""\
import ipywidgets

live = ipywidgets.Output()
{setup}

def {callback}(change=None):
{textwrap.indent(prepare, "    ")}
    live.clear_output(wait=True)
    with live:
{textwrap.indent(prints, "        ")}


{widget}.observe({callback}, names=["stats"])
{callback}()
live"""


AFFINE_MAP = [
    (
        "markdown",
        """\
# The affine map and its staircase (Jupyter companion to labs 01 and 06)

Quantization stores a real number $x$ as an integer code $q$ on a grid of step $s$ (the *scale*),
shifted so that the real 0 is the code $z$ (the *zero point*):

$$q = \\mathrm{clamp}(\\mathrm{round}(x / s) + z,\\ q_{min},\\ q_{max}), \\qquad \\hat x = (q - z)\\, s$$

For a range $[lo, hi]$ (widened to include 0) an asymmetric $b$-bit grid uses
$s = (hi - lo) / (q_{max} - q_{min})$ and $z = q_{min} - \\mathrm{round}(lo / s)$.
Every number below is computed by `ptqlab`; the widgets only draw.""",
    ),
    ("code", _FIRST + "from ptqlab import QuantSpec, choose_qparams, dequantize, fake_quantize, quantize"),
    ("markdown", "## A range, a scheme, and the two numbers they fix"),
    (
        "code",
        """\
spec = QuantSpec(bits=4, symmetric=False)  # signed 4-bit: codes -8 … 7
qparams = choose_qparams(-1.0, 2.0, spec)
print(f"scale s = {qparams.scale.item():.6f}, zero point z = {qparams.zero_point.item()}")

x = torch.tensor([-1.5, -1.0, -0.1, 0.0, 0.07, 0.5, 1.99, 3.0])
q = quantize(x, qparams, spec)
x_hat = dequantize(q, qparams, spec)
for xi, qi, hi in zip(x.tolist(), q.tolist(), x_hat.tolist(), strict=True):
    print(f"x = {xi:6.2f}  ->  q = {qi:3d}  ->  x̂ = {hi:7.4f}   error {xi - hi:+.4f}")""",
    ),
    (
        "markdown",
        """\
## Drag the range ends

The staircase is $x \\mapsto \\hat x$. Drag **lo** and **hi**, type another bit width, tick *symmetric*.
Watch the scale and the zero point: 0 always lands exactly on a grid line (the blue one).""",
    ),
    (
        "code",
        """\
from ptqlab.widgets import AffineStaircase

stairs = AffineStaircase(lo=-1.0, hi=1.0, bits=3)
stairs""",
    ),
    (
        "markdown",
        """\
The widget is an ordinary Python object. The output below follows it live (an `observe` callback);
`stairs.lo`, `stairs.hi`, `stairs.bits`, `stairs.current_spec` and `stairs.qparams` are there for your
own cells.""",
    ),
    (
        "code",
        _live_output(
            "stairs",
            "show_qparams",
            prepare="""\
spec = stairs.current_spec  # QuantSpec with the widget's bits and symmetry
point = torch.tensor([0.3])""",
            prints="""\
print(f"range [{stairs.lo:.4f}, {stairs.hi:.4f}], {stairs.bits} bits:", end=" ")
print(f"scale = {stairs.stats['scale']:.6g}, zero point = {stairs.stats['zero_point']}")
print(f"0.3 is stored as q = {quantize(point, stairs.qparams, spec).item()}", end=" ")
print(f"and read back as {fake_quantize(point, stairs.qparams, spec).item():.6f}")""",
        ),
    ),
    (
        "markdown",
        """\
**Try:** type `lo` larger than `hi`, or 40 bits: the widget refuses, says why, and keeps its last valid
state. From Python, `stairs.lo = 5` raises the same message as a `ValueError`.""",
    ),
]

CALIBRATION = [
    (
        "markdown",
        """\
# Where to clip: the clipping explorer (Jupyter companion to labs 02 and 06)

Calibration picks the range $[lo, hi]$ of each tensor. Min-max covers every value, so one outlier
stretches the grid and every ordinary value gets a coarse step (*rounding* error). Clipping the tails
refines the grid but maps the outliers to the ends (*clipping* error). The total is their sum:

$$\\text{MSE} = \\underbrace{\\tfrac1N \\sum_{x\\ \\text{on the grid's range}} (x - \\hat x)^2}_{\\text{rounding}}
\\;+\\; \\underbrace{\\tfrac1N \\sum_{x\\ \\text{outside it}} (x - \\hat x)^2}_{\\text{clipping}}$$""",
    ),
    (
        "code",
        _PTQLAB_FIRST
        + "\nfrom ptqlab import QuantSpec, error_split\nfrom ptqlab.observers import PER_TENSOR, make_observer",
    ),
    ("code", _HEAVY_TAILED),
    (
        "markdown",
        """\
## Drag the thresholds

Red bars are clipped. The coloured lines are the ranges every per-tensor calibrator in
`ptqlab.observers` (`PER_TENSOR`) picks for this grid, each calibrated on `x` (click one's button to jump
there); the numbers under the plot are recomputed by `ptqlab.error_split` every time you let go of a handle.""",
    ),
    (
        "code",
        """\
from ptqlab.widgets import ClippingExplorer

spec = QuantSpec(bits=4, symmetric=False)
explorer = ClippingExplorer(x, spec=spec, observers=PER_TENSOR)
explorer""",
    ),
    (
        "code",
        _live_output(
            "explorer",
            "compare",
            setup='minmax = error_split(x, make_observer("minmax").observe(x).qparams(spec), spec)',
            prepare="split = explorer.split",
            prints="""\
print(f"your range [{explorer.lo:.3f}, {explorer.hi:.3f}]: SQNR {split.sqnr_db:.2f} dB", end=" ")
print(f"(min-max: {minmax.sqnr_db:.2f} dB), {100 * split.clipped_fraction:.2f} % clipped")""",
        ),
    ),
    (
        "markdown",
        """\
## Every per-tensor observer on this tensor

The markers above, as numbers: each calibrator's range for this grid, and the error that range gives.
Pass other names or calibrated observers to see them as markers: `ClippingExplorer(x, spec, observers=[...])`.""",
    ),
    (
        "code",
        """\
for name in PER_TENSOR:
    observer = make_observer(name).observe(x)
    lo, hi = observer.range_for(spec)  # the range it picks for this grid (searches use its bits)
    split = error_split(x, observer.qparams(spec), spec)
    clipped = 100 * split.clipped_fraction
    print(f"{name:>12}: [{lo:8.3f}, {hi:8.3f}]  SQNR {split.sqnr_db:6.2f} dB  clipped {clipped:5.2f} %")""",
    ),
]

NOTEBOOKS = {"affine_staircase.ipynb": AFFINE_MAP, "clipping_explorer.ipynb": CALIBRATION}


def notebook(cells: list[tuple[str, str]]) -> dict:
    """An nbformat 4.5 notebook (as a dict) from (kind, source) pairs, without outputs, keys sorted as ``ruff format`` writes them."""

    def cell(i: int, kind: str, source: str) -> dict:
        c = {
            "cell_type": kind,
            "id": f"cell-{i:02d}",
            "metadata": {},
            "source": source.splitlines(keepends=True),
        }
        if kind == "code":
            c.update(execution_count=None, outputs=[])
        return c

    return {
        "cells": [cell(i, kind, src) for i, (kind, src) in enumerate(cells)],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render(name: str) -> str:
    """The JSON text of notebook ``name`` (one of ``NOTEBOOKS``)."""
    if name not in NOTEBOOKS:
        raise ValueError(f"unknown notebook {name!r}; choose from {sorted(NOTEBOOKS)}")
    return json.dumps(notebook(NOTEBOOKS[name]), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(directory: str | Path) -> list[Path]:
    """Write every notebook into ``directory`` (created if needed); returns the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in NOTEBOOKS:
        path = out / name
        path.write_text(render(name), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_all(sys.argv[1] if len(sys.argv) > 1 else "labs/jupyter"):
        print(p)
