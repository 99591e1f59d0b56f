"""What lab 02's sliders call: the same numbers as ``lessons.calibration`` and ``lessons.vendors``, each piece
cached on what it depends on, so that a slider only recomputes what it moved.

    setting = data_setting(body, outlier_size, outlier_percent, n_batches)   # hashable: the data sliders
    results = comparison(setting, spec, p)      # == compare_observers(*synthetic_calibration(*setting), spec, p)
    curve = curve_for(setting, spec)            # == error_curve(stats, spec): p does not move it
    answers = vendor_answers(setting, spec, p)  # == vendors.vendor_answers(x_eval, spec, p)
    view = lazy_vendors_view(setting, spec, p)  # their table, computed once scrolled into view

Three caches, keyed on hashable arguments (``functools.lru_cache``):

* a calibrator's **range** per (setting, grid, calibrator), with p in the key only for percentile: moving
  p re-runs one quantile, not the entropy, MSE and L2 searches; a vendor observer that does not search
  (ONNX Runtime's entropy window, min/max) has one range per setting, whatever the grid;
* the **score** of a range on the evaluation values (``score_range``) per (setting, grid, name, lo, hi);
* the observed **vendor observers** per setting (they watch the evaluation sample, not the stream).

Every cached value is the plain path's value, computed by the same functions in the same order.
"""

from __future__ import annotations

import functools
import time

import marimo as mo
import torch

from ptqlab.core.spec import QuantSpec
from ptqlab.lessons.calibration.numbers import (
    CalibrationStats,
    ObserverResult,
    error_curve,
    observers,
    score_range,
    synthetic_calibration,
)
from ptqlab.lessons.calibration.vendors import VendorAnswer, vendor_rows, vendors_markdown, why_they_differ
from ptqlab.observers import PER_TENSOR, Observer, make_observer
from ptqlab.observers.threshold_error import ThresholdError

DataSetting = tuple[str, float, float, int]  # body, outlier size (σ), outlier fraction, batches


def data_setting(body: str, outlier_size: float, outlier_percent: float, n_batches: int) -> DataSetting:
    """The data sliders as ``synthetic_calibration``'s arguments (share in % → fraction)."""
    return (str(body), float(outlier_size), float(outlier_percent) / 100, int(n_batches))


def data(setting: DataSetting) -> tuple[CalibrationStats, torch.Tensor]:
    """(calibration stats, evaluation values) of this setting (``synthetic_calibration``, cached there)."""
    return synthetic_calibration(*setting)


def timed_data(setting: DataSetting) -> tuple[CalibrationStats, torch.Tensor, float]:
    """``data(setting)`` and its wall time in ms (near 0 once the setting was seen)."""
    start = time.perf_counter()
    stats, x_eval = data(setting)
    return stats, x_eval, (time.perf_counter() - start) * 1e3


@functools.lru_cache(maxsize=1024)
def calibrator_range(setting: DataSetting, spec: QuantSpec, name: str, p: float | None) -> tuple:
    """``observers(stats, p)[name].range_for(spec)``; ``p`` only matters (and must only be given) for
    percentile."""
    stats, _ = data(setting)
    return observers(stats, 99.99 if p is None else p)[name].range_for(spec)


def _p_key(name: str, p: float) -> float | None:
    return float(p) if name == "percentile" else None


@functools.lru_cache(maxsize=4096)
def score(setting: DataSetting, spec: QuantSpec, name: str, lo: float, hi: float) -> ObserverResult:
    """``score_range(name, lo, hi, x_eval, spec)`` on this setting's evaluation values."""
    _, x_eval = data(setting)
    return score_range(name, lo, hi, x_eval, spec)


def comparison(setting: DataSetting, spec: QuantSpec, p: float) -> list[ObserverResult]:
    """Every calibrator's range and error on the evaluation values: ``compare_observers`` for this setting."""
    results = []
    for name in PER_TENSOR:
        lo, hi = calibrator_range(setting, spec, name, _p_key(name, p))
        results.append(score(setting, spec, name, float(lo), float(hi)))
    return results


def timed_comparison(setting: DataSetting, spec: QuantSpec, p: float) -> tuple[list[ObserverResult], float]:
    """``comparison`` and its wall time in ms (what a slider move costs in Python)."""
    start = time.perf_counter()
    results = comparison(setting, spec, p)
    return results, (time.perf_counter() - start) * 1e3


@functools.lru_cache(maxsize=256)
def curve_for(setting: DataSetting, spec: QuantSpec) -> ThresholdError:
    """``error_curve(stats, spec)`` of this setting (independent of p)."""
    stats, _ = data(setting)
    return error_curve(stats, spec)


class CachedRanges(Observer):
    """A calibrator of the lab whose ``range_for`` reads ``calibrator_range`` (the table's own ranges): the
    clipping explorer marks them without re-running the searches."""

    def __init__(self, setting: DataSetting, name: str, p: float) -> None:
        super().__init__()
        self.setting, self.name, self.p = setting, name, float(p)
        self.batches = observers(data(setting)[0], self.p)[name].batches

    def _config(self) -> dict:
        return {"setting": self.setting, "name": self.name, "p": self.p}

    def range_for(self, spec: QuantSpec) -> tuple:
        if not isinstance(spec, QuantSpec):
            raise TypeError(f"spec must be a QuantSpec, got {type(spec).__name__}")
        return calibrator_range(self.setting, spec, self.name, _p_key(self.name, self.p))

    def _range(self) -> tuple:
        return observers(data(self.setting)[0], self.p)[self.name].range()


def cached_observers(setting: DataSetting, p: float) -> dict[str, Observer]:
    """The six calibrators of ``observers(stats, p)`` (same names, same order), ranges from the cache."""
    return {name: CachedRanges(setting, name, p) for name in PER_TENSOR}


@functools.lru_cache(maxsize=256)
def _vendor_observer(setting: DataSetting, name: str, kw: tuple) -> Observer:
    _, x_eval = data(setting)
    obs = make_observer(name, **dict(kw))
    obs.observe(x_eval)
    return obs


@functools.lru_cache(maxsize=1024)
def _vendor_range(setting: DataSetting, name: str, kw: tuple, spec: QuantSpec | None) -> tuple[float, float]:
    obs = _vendor_observer(setting, name, kw)
    if spec is None:  # does not search: the base class's range_for is its range() for every grid
        return tuple(float(v) for v in obs.range())
    return tuple(float(v) for v in obs.range_for(spec))


def vendor_answers(setting: DataSetting, spec: QuantSpec, p: float) -> list[VendorAnswer]:
    """``vendors.vendor_answers(x_eval, spec, p)`` for this setting, observers and ranges cached."""
    out = []
    for library, method, settings, name, kw in vendor_rows(p):
        key = tuple(sorted(kw.items()))
        searches = type(_vendor_observer(setting, name, key)).range_for is not Observer.range_for
        lo, hi = _vendor_range(setting, name, key, spec if searches else None)
        out.append(VendorAnswer(library, method, settings, score(setting, spec, name, lo, hi)))
    return out


def vendors_view(setting: DataSetting, spec: QuantSpec, p: float):
    """The vendors' table and why they differ, for this setting (markdown, from ``vendor_answers``)."""
    answers = vendor_answers(setting, spec, p)
    return mo.vstack([mo.md(vendors_markdown(answers)), mo.md(why_they_differ(answers))])


def lazy_vendors_view(setting: DataSetting, spec: QuantSpec, p: float):
    """``vendors_view`` computed when the page scrolls it into view (``mo.lazy``): ONNX Runtime's entropy
    window search (~0.3 s per data setting) then never competes with the charts above it for the CPU."""
    return mo.lazy(functools.partial(vendors_view, setting, spec, float(p)), show_loading_indicator=True)
