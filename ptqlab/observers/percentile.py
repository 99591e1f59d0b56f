"""Percentile calibration: clip at the p-th percentile instead of the extreme value.

    symmetric:     T = quantile(|x|, p/100),   range (−T, T)
    two-tailed:    lo = quantile(x, α),  hi = quantile(x, 1 − α),  α = (1 − p/100) / 2

(ONNX Runtime's convention: (100 − p)/2 percent cut from each tail.) Quantiles come from the streaming
histogram by inverting its piecewise-linear CDF (uniform mass inside a bin), so they lie within one bin
width of ``numpy.percentile`` on the concatenated stream; they are clipped to the exact data [min, max],
so p = 100 gives min/max exactly. Default p = 99.99.
"""

from __future__ import annotations

import math

import torch

from ptqlab.core.spec import QuantSpec
from ptqlab.observers.histogram import HistogramObserver


def histogram_quantile(counts: torch.Tensor, lo, width, q: torch.Tensor | float) -> torch.Tensor:
    """x such that a fraction q of the histogram's mass lies below x (piecewise-linear CDF), vectorised in q."""
    counts = counts.to(torch.float64)
    q = torch.as_tensor(q, dtype=torch.float64, device=counts.device)
    cdf = counts.cumsum(0)
    target = q * cdf[-1]
    j = (
        torch.searchsorted(cdf, target.reshape(-1).contiguous())
        .clamp(max=counts.numel() - 1)
        .reshape(q.shape)
    )
    before = cdf[j] - counts[j]
    frac = torch.where(
        counts[j] > 0, (target - before) / counts[j].clamp_min(1e-300), torch.zeros_like(target)
    )
    lo = torch.as_tensor(lo, dtype=torch.float64, device=counts.device)
    w = torch.as_tensor(width, dtype=torch.float64, device=counts.device)
    return lo + (j.to(torch.float64) + frac.clamp(0.0, 1.0)) * w


class PercentileObserver(HistogramObserver):
    """Clip at the p-th percentile of |x| (symmetric) or at the two tails' (100 − p)/2 percentiles."""

    name = "percentile"

    def __init__(self, p: float = 99.99, bins: int = 2048, symmetric: bool = True, bits: int = 8) -> None:
        if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p) or not 0 < p <= 100:
            raise ValueError(f"p must be a percentage in (0, 100], got {p!r}")
        super().__init__(bins=bins, symmetric=symmetric, bits=bits)
        self.p = float(p)

    def _config(self) -> dict:
        return {"p": self.p, **super()._config()}

    def _search(self, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hist
        lo_d, hi_d = h.data_min.double(), h.data_max.double()
        if self.p == 100.0:  # no clipping: the exact data range, not a histogram edge
            return self._symmetric_or_clipped(torch.maximum(-lo_d, hi_d), spec)
        if spec.symmetric:
            a = torch.maximum(-lo_d, hi_d)
            t = histogram_quantile(h.abs_counts(), 0.0, h.width, self.p / 100).clamp(max=a)
            return -t, t
        alpha = (1 - self.p / 100) / 2
        q = histogram_quantile(h.counts, h.lo, h.width, torch.tensor([alpha, 1 - alpha], dtype=torch.float64))
        return q[0].clamp(lo_d, hi_d), q[1].clamp(lo_d, hi_d)
