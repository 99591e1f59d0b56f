"""Lab 04's figures: the benchmark charts of ``ptqlab.bench.charts`` (``ptqlab bench models --charts`` draws
the same ones) — speedup bars with their spread, size against quality with the Pareto front, the roofline."""

from ptqlab.bench.charts import roofline_figure, size_quality_figure, speedup_figure

__all__ = ["roofline_figure", "size_quality_figure", "speedup_figure"]
