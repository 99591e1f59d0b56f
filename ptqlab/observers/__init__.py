"""Observers (calibrators): from a stream of activations to a clipping range [lo, hi].

    name             class                          range
    minmax           MinMaxObserver                 running min / max
    moving_average   MovingAverageMinMaxObserver    EMA of batch min / max, c = 0.01 (torch.ao)
    per_channel      PerChannelMinMaxObserver       running min / max per index along ``axis``
    percentile       PercentileObserver             p-th percentile of |x| (or both tails), p = 99.99
    entropy          EntropyObserver                TensorRT's KL-divergence search on |x|
    mse              MSEObserver                    least expected rounding + clipping error
    l2               L2Observer                     torch.ao HistogramObserver's greedy L2 search
    ort_percentile   OrtPercentileObserver          ONNX Runtime's percentile calibrator (edge of a bin, p = 99.999)
    ort_entropy      OrtEntropyObserver             ONNX Runtime's entropy calibrator (signed window KL, 128 bins)

Histogram observers take ``symmetric`` (default True; False for ``l2``, like torch.ao's quint8 default)
and ``bits`` (default 8): the grid ``range()`` searches for. ``qparams(spec)`` / ``range_for(spec)``
search for ``spec``'s own bits and symmetry instead, from the same histogram.
"""

from ptqlab.observers.base import Observer
from ptqlab.observers.entropy import EntropyObserver
from ptqlab.observers.histogram import HistogramObserver, StreamingHistogram
from ptqlab.observers.l2 import L2Observer
from ptqlab.observers.minmax import MinMaxObserver
from ptqlab.observers.moving_average import MovingAverageMinMaxObserver
from ptqlab.observers.mse import MSEObserver
from ptqlab.observers.ort_entropy import OrtEntropyObserver
from ptqlab.observers.ort_percentile import OrtPercentileObserver
from ptqlab.observers.per_channel import PerChannelMinMaxObserver
from ptqlab.observers.percentile import PercentileObserver
from ptqlab.observers.threshold_error import ThresholdError, range_error, threshold_error

OBSERVERS: dict[str, type[Observer]] = {
    cls.name: cls
    for cls in (
        MinMaxObserver,
        MovingAverageMinMaxObserver,
        PerChannelMinMaxObserver,
        PercentileObserver,
        EntropyObserver,
        MSEObserver,
        L2Observer,
        OrtPercentileObserver,
        OrtEntropyObserver,
    )
}
# another library's calibrator, reproduced as an oracle and for its recipes (lab 02 shows them apart)
VENDOR: tuple[str, ...] = ("ort_percentile", "ort_entropy")
# the calibrators that give one range per tensor (what lab 02 compares and the explorer marks)
PER_TENSOR: tuple[str, ...] = tuple(
    name for name, cls in OBSERVERS.items() if cls.per_tensor and name not in VENDOR
)


def make_observer(name: str, **kwargs) -> Observer:
    """Build a registered observer by name, e.g. ``make_observer("percentile", p=99.9)``."""
    if name not in OBSERVERS:
        raise ValueError(f"unknown observer {name!r}; choose from {sorted(OBSERVERS)}")
    return OBSERVERS[name](**kwargs)


__all__ = [
    "OBSERVERS",
    "PER_TENSOR",
    "VENDOR",
    "EntropyObserver",
    "HistogramObserver",
    "L2Observer",
    "MSEObserver",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "Observer",
    "OrtEntropyObserver",
    "OrtPercentileObserver",
    "PerChannelMinMaxObserver",
    "PercentileObserver",
    "StreamingHistogram",
    "ThresholdError",
    "make_observer",
    "range_error",
    "threshold_error",
]
