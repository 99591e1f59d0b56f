"""ONNX Runtime's percentile calibrator (``onnxruntime.quantization.calibrate``, ``CalibrationMethod.Percentile``).

symmetric (ORT's default): a histogram of |x| with ``num_bins`` (2048) bins over [min |x|, max |x|] of the
    *first* batch; a later batch with a larger max appends bins of the same width (values below the first
    edge are dropped, as ``numpy.histogram`` with explicit edges does). With cdf = cumsum(counts)/total,
    T = edge[searchsorted(cdf, p/100)] — the *left* edge of the bin where the cdf reaches p — and the
    range is (−T, T) clipped to the observed [min, max].
two-tailed (``symmetric=False``): ORT's signed histogram (``OrtSignedHistogram``), cut = (100 − p)/200;
    lo = edge[searchsorted(cdf, cut)], hi = edge[searchsorted(cdf, 1 − cut)], clipped to [min, max].

How it differs from ptqlab's ``percentile``: ptqlab inverts a piecewise-linear CDF (within the bin) on a
histogram that starts at 0 and re-bins when the range grows; ORT snaps to a bin edge, starts the |x|
histogram at the first batch's min |x| and never re-bins; ORT clips each side of (−T, T) to [min, max]
separately (a one-sided stream gets an asymmetric range), ptqlab keeps (−T, T) with T <= max |x|.
Default p: ORT 99.999, ptqlab 99.99.
"""

from __future__ import annotations

import math

import torch

from ptqlab.observers.base import Observer
from ptqlab.observers.ort_entropy import OrtSignedHistogram


class OrtAbsHistogram:
    """ORT's |x| histogram: fixed width, the first edge at the first batch's min |x|, bins appended."""

    def __init__(self, num_bins: int) -> None:
        self.num_bins = num_bins
        self.counts: torch.Tensor | None = None
        self.first_edge = 0.0
        self.width = 0.0

    def add(self, a: torch.Tensor, amax: float, amin: float) -> None:
        """Add |x| (``a``) whose max and min are ``amax`` and ``amin`` (Python floats)."""
        if self.counts is None:
            lo, hi = (amin, amax) if amax > amin else (amin - 0.5, amax + 0.5)
            self.first_edge, self.width = lo, (hi - lo) / self.num_bins
            self.counts = torch.histc(a, bins=self.num_bins, min=lo, max=hi).to(torch.float64)
            return
        n = self.counts.numel()
        last = self.first_edge + n * self.width
        if amax > last:  # numpy.arange(last + w, amax + w, w): ceil((amax − last) / w) new edges
            extra = math.ceil((amax - last) / self.width)
            self.counts = torch.cat([self.counts, self.counts.new_zeros(extra)])
            n += extra
        hi = self.first_edge + n * self.width
        self.counts = self.counts + torch.histc(a, bins=n, min=self.first_edge, max=hi).to(torch.float64)

    def edges(self) -> torch.Tensor:
        n = self.counts.numel()
        return self.first_edge + self.width * torch.arange(n + 1, dtype=torch.float64)


class OrtPercentileObserver(Observer):
    """ONNX Runtime's percentile calibrator (see the module docstring); ORT's defaults."""

    name = "ort_percentile"

    def __init__(self, p: float = 99.999, num_bins: int = 2048, symmetric: bool = True) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p) or not 0 <= p <= 100:
            raise ValueError(f"p must be a percentage in [0, 100], got {p!r}")
        if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 2:
            raise ValueError(f"num_bins must be an int >= 2, got {num_bins!r}")
        self.p, self.num_bins, self.symmetric = float(p), num_bins, bool(symmetric)
        self.hist = OrtAbsHistogram(num_bins) if self.symmetric else OrtSignedHistogram(num_bins)
        self.data_min: torch.Tensor | None = None
        self.data_max: torch.Tensor | None = None
        self._abs_min: torch.Tensor | None = None  # set by _extrema, consumed by _hint in the same observe

    def _config(self) -> dict:
        return {"p": self.p, "num_bins": self.num_bins, "symmetric": self.symmetric}

    def _extrema(self, x):
        lo, hi = torch.aminmax(x)
        if self.symmetric and self.data_min is None:  # ORT's first |x| histogram starts at min |x|
            self._abs_min = x.abs().amin()
        return lo, hi

    def _hint(self, extrema):
        lo, hi = extrema
        amax = torch.maximum(lo.abs(), hi.abs()).double().reshape(1)
        amin, self._abs_min = self._abs_min, None
        return amax if amin is None else torch.cat([amax, amin.double().reshape(1)])

    def _update(self, x, extrema, hint) -> None:
        lo, hi = extrema
        amax, amin = (hint[0], hint[1]) if len(hint) == 2 else (hint[0], 0.0)
        if self.symmetric:
            self.hist.add(x.abs().reshape(-1), amax, amin)
        else:
            self.hist.add(x, amax)
        first = self.data_min is None
        self.data_min = lo if first else torch.minimum(self.data_min, lo)
        self.data_max = hi if first else torch.maximum(self.data_max, hi)

    def _range(self) -> tuple[torch.Tensor, torch.Tensor]:
        counts = self.hist.counts.cpu()
        cdf = torch.cumsum(counts / counts.sum(), 0)
        edges = self.hist.edges()
        if self.symmetric:
            t = edges[torch.searchsorted(cdf, torch.tensor(self.p / 100, dtype=torch.float64))]
            lo, hi = -t, t
        else:
            cut = (100.0 - self.p) / 200.0
            lo = edges[torch.searchsorted(cdf, torch.tensor(cut, dtype=torch.float64))]
            hi = edges[torch.searchsorted(cdf, torch.tensor(1.0 - cut, dtype=torch.float64))]
        lo, hi = lo.to(self.data_min), hi.to(self.data_max)
        return torch.maximum(lo, self.data_min), torch.minimum(hi, self.data_max)
