"""ptqlab.plots.vega: browser-drawn charts are strict JSON that marimo displays as Vega-Lite."""

import json
import math

import pytest

from ptqlab.labkit import vega


def test_numbers_keep_seven_digits_and_gaps_for_non_finite():
    assert vega.number(1 / 3) == 0.3333333 and vega.number(3e38) == 3e38
    assert vega.number(math.nan) is None and vega.number(-math.inf) is None


def test_rows_are_records_and_columns_must_line_up():
    assert vega.rows(x=[0, 0.1 + 0.2], s=["a", None]) == [{"x": 0.0, "s": "a"}, {"x": 0.3, "s": None}]
    with pytest.raises(ValueError, match="different lengths"):
        vega.rows(x=[1, 2], y=[1])


def test_chart_is_what_marimo_displays():
    chart = vega.Chart({"mark": "point", "data": {"values": vega.rows(x=[1.0])}})
    mime, text = chart._mime_()
    assert mime == "application/vnd.vegalite.v5+json"
    spec = json.loads(text)
    assert spec["$schema"].endswith("vega-lite/v5.json") and spec["mark"] == "point" and "config" in spec
    with pytest.raises(ValueError):  # raw NaN in data is refused: it is not JSON
        vega.Chart({"data": {"values": [{"x": math.nan}]}}).to_json()
    with pytest.raises(TypeError, match="spec must be a dict"):
        vega.Chart([1])


def test_tick_axis_labels_each_tick():
    axis = vega.tick_axis("t", [-0.5, 0.0, 0.5], ["−s/2", "0", "s/2"])
    assert (
        axis["values"] == [-0.5, 0.0, 0.5]
        and axis["labelExpr"].count("?") == 3
        and "−s/2" in axis["labelExpr"]
    )
    with pytest.raises(ValueError, match="3 ticks but 2 labels"):
        vega.tick_axis("t", [1, 2, 3], ["a", "b"])


def test_plot_digits_round_floats_but_never_counts():
    assert vega.rows(x=[1.23456789], n=[123456789], digits=vega.PLOT_DIGITS) == [{"x": 1.235, "n": 123456789}]
