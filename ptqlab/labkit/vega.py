"""Charts drawn by the browser: Vega-Lite specs that marimo's page renders with the vega-embed it bundles.

A slider-driven matplotlib figure costs a few hundred milliseconds per move to rasterise (mostly text
layout), on top of marimo's own round trip. A Vega-Lite spec is a small JSON document: Python only builds
the data (a few thousand numbers at most), and the browser lays out the axes, ticks and legends — which is
what keeps a slider's figure under a quarter of a second. Nothing is fetched from the network: the
``$schema`` URL only names the spec's version.

``Chart`` speaks marimo's display protocol (``_mime_``), so a cell that ends with a ``Chart`` shows it; no
marimo import is needed here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence

import torch

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
MIME = "application/vnd.vegalite.v5+json"
SIGNIFICANT_DIGITS = 7  # float32 data: 7 digits reproduce every value the lab computed
WIDTH = 620  # pixels of one panel's plotting area
HEIGHT = 230
CONFIG = {
    "view": {"stroke": "#bbb"},
    "axis": {"labelFontSize": 11, "titleFontSize": 12, "gridOpacity": 0.5},
    "legend": {
        "labelFontSize": 11,
        "titleFontSize": 11,
        "labelLimit": 360,
        "orient": "right",
        "symbolType": "stroke",
        "symbolStrokeWidth": 2.5,
        "symbolOpacity": 1,
    },
    "title": {"fontSize": 13, "anchor": "start", "fontWeight": "normal"},
}


PLOT_DIGITS = 4  # positions on a few hundred pixels: 4 digits are exact to a tenth of a pixel


def number(value: float, digits: int = SIGNIFICANT_DIGITS) -> float | None:
    """``value`` as a JSON number with ``digits`` significant digits; None (a gap) when not finite."""
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def rows(*, digits: int = SIGNIFICANT_DIGITS, **columns: Iterable) -> list[dict]:
    """Column-wise data as Vega's row records: ``rows(x=[0, 1], y=[2, 3]) == [{"x": 0, "y": 2}, …]``.

    Floats go through ``number`` (``digits`` significant digits: ``PLOT_DIGITS`` for large data that is
    only drawn); ints (counts), strings and None are kept exactly; every column must have the same length.
    """
    names = list(columns)
    values = [list(c) for c in columns.values()]
    if len({len(v) for v in values}) > 1:
        raise ValueError(f"columns {names} have different lengths {[len(v) for v in values]}")
    convert = [
        [v if v is None or isinstance(v, str | int) else number(v, digits) for v in column]
        for column in values
    ]
    return [dict(zip(names, row, strict=True)) for row in zip(*convert, strict=True)]


def histogram_rows(values: torch.Tensor, bins: int, symlog: float | None = None) -> list[dict]:
    """Histogram bars: rows (a = bin start, b = bin end, count) over ``bins`` equal bins spanning [min, max]
    — equal on a symlog axis with constant C = ``symlog`` when given: t = sign(x)·ln(1 + |x|/C).
    Empty bins are left out (a log count axis has no 0); counts are exact ints."""
    v = values.detach().flatten().double()
    if symlog is not None:
        if not symlog > 0:
            raise ValueError(f"symlog must be a positive constant, got {symlog!r}")
        v = torch.sign(v) * torch.log1p(v.abs() / symlog)
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts = torch.histc(v, bins=bins, min=lo, max=hi)
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    if symlog is not None:
        edges = torch.sign(edges) * torch.expm1(edges.abs()) * symlog
    keep = counts > 0
    return rows(
        a=edges[:-1][keep].tolist(),
        b=edges[1:][keep].tolist(),
        count=counts[keep].long().tolist(),
        digits=PLOT_DIGITS,
    )


def quantitative(field: str, title: str | None = None, **extra) -> dict:
    """A quantitative encoding of ``field`` with axis ``title`` (None: none); ``extra`` adds e.g. ``scale``."""
    return {"field": field, "type": "quantitative", "title": title, **extra}


def panel(title: str, layers: list[dict], width: int = WIDTH, height: int = HEIGHT) -> dict:
    """One titled view of ``width`` × ``height`` pixels made of ``layers`` (a chart, or a concat's part)."""
    return {"title": title, "width": width, "height": height, "layer": layers}


def layer(data: list[dict], mark: dict | str, **encoding) -> dict:
    """One layer of a layered chart with its own data and encodings (never inherited: a rule or rect layer
    that inherited a y field its data lacks would vanish)."""
    return {"data": {"values": data}, "mark": mark, "encoding": encoding}


def series_color(colors: dict[str, str], series: str, legend: dict | None = None) -> dict:
    """A layer's colour: the constant ``series`` on the scale ``colors`` shares among a chart's layers, so one
    legend names every series without repeating its name in every data row."""
    encoding = {"datum": series, "type": "nominal", "scale": color_scale(colors), "title": None}
    return encoding if legend is None else {**encoding, "legend": legend}


def tick_axis(title: str, ticks: Sequence[float], labels: Sequence[str], **axis) -> dict:
    """An axis with ticks exactly at ``ticks`` and the text ``labels`` under them (a Vega label expression)."""
    if len(ticks) != len(labels):
        raise ValueError(f"{len(ticks)} ticks but {len(labels)} labels")
    values = [number(t) for t in ticks]
    expression = "''"
    for value, label in zip(values, labels, strict=True):
        text = json.dumps(str(label), ensure_ascii=False)
        expression = f"(abs(datum.value - ({value})) <= {abs(value) * 1e-9 + 1e-300} ? {text} : {expression})"
    return {"title": title, "values": values, "labelExpr": expression, **axis}


def color_scale(colors: dict[str, str]) -> dict:
    """A nominal colour scale mapping each series name to its colour, in this order (one shared legend)."""
    return {"domain": list(colors), "range": list(colors.values())}


class Chart:
    """A Vega-Lite chart: ``spec`` is the top-level specification (``$schema`` and ``config`` are added).

    marimo shows it through ``_mime_``; ``to_json`` gives the same document for tests or other front ends.
    """

    def __init__(self, spec: dict):
        if not isinstance(spec, dict):
            raise TypeError(f"spec must be a dict, got {type(spec).__name__}")
        self.spec = {"$schema": SCHEMA, "config": CONFIG, **spec}

    def to_json(self) -> str:
        """The spec as strict JSON (a NaN or an infinity raises: use ``number`` for data)."""
        return json.dumps(self.spec, allow_nan=False, ensure_ascii=False, separators=(",", ":"))

    def _mime_(self) -> tuple[str, str]:
        return MIME, self.to_json()

    def __repr__(self) -> str:
        return f"Chart({self.spec.get('title', 'untitled')!r})"
