"""A large tensor summarised once, so that every drag of the explorer costs the same at any size.

One pass builds a fine histogram (FINE_BINS bins over [min x, max x], float32 binning, float64 counts),
the exact min, max, count and Σx² (float64, in chunks). Per range [lo, hi] with grid (s, z):

    rounding, clipping MSE  ``grid_error``: each bin's mass (uniform inside the bin) against the grid   ≈
    clipped fraction        histogram CDF, linear inside a bin, below grid_lo and above grid_hi        ≈
    max clipping error      max(grid_lo − min x, max x − grid_hi, 0)                                    exact
    max rounding error      s/2 when some mass lies inside the grid (the bound; reached when dense)      ≈
    SQNR                    10·log10(Σx²/N ÷ total MSE)  (Σx² exact, the MSE estimated)                 ≈

Memory: the histogram's FINE_BINS counts and a few scalars; no copy of x is kept beyond the caller's.
"""

from __future__ import annotations

import math

import torch

from ptqlab.core.spec import QuantSpec
from ptqlab.observers.grid_error import grid_error

FINE_BINS = 65536
CHUNK = 1 << 20


class TensorSummary:
    """``TensorSummary(x)``: the fine histogram and exact moments of a float32 tensor ``x``."""

    def __init__(self, x: torch.Tensor, bins: int = FINE_BINS) -> None:
        flat = x.detach().reshape(-1)
        self.numel = flat.numel()
        lo, hi = (float(v) for v in torch.aminmax(flat))
        self.x_min, self.x_max = lo, hi
        pad = 0.0 if hi > lo else max(0.5, abs(lo) * 1e-6)
        self.edge0, top = lo - pad, hi + pad
        self.width = (top - self.edge0) / bins
        self.counts = torch.histc(flat, bins=bins, min=self.edge0, max=top).to(torch.float64)
        self.cdf = torch.cat([self.counts.new_zeros(1), self.counts.cumsum(0)])
        self.sum_sq = sum(float(c.to(torch.float64).pow(2).sum()) for c in flat.split(CHUNK))

    def _below(self, v: float) -> float:
        """Values below v: the CDF, linear inside the bin that holds v."""
        u = min(max((v - self.edge0) / self.width, 0.0), float(self.counts.numel()))
        j = min(int(u), self.counts.numel() - 1)
        return float(self.cdf[j]) + (u - j) * float(self.counts[j])

    def estimate(self, lo: float, hi: float, spec: QuantSpec, grid: tuple[float, float, float]) -> dict:
        """The explorer's numbers for the range [lo, hi]; ``grid`` = (scale, grid_lo, grid_hi)."""
        scale, grid_lo, grid_hi = grid
        r, c = grid_error(
            self.counts,
            self.edge0,
            self.width,
            torch.tensor([lo], dtype=torch.float64),
            torch.tensor([hi], dtype=torch.float64),
            spec=spec,
        )
        rounding, clipping = float(r[0]), float(c[0])
        outside = self._below(grid_lo) + (self.numel - self._below(grid_hi))
        clipped = min(max(outside / self.numel, 0.0), 1.0)
        total = rounding + clipping
        signal = self.sum_sq / self.numel
        return {
            "rounding_mse": rounding,
            "clipping_mse": clipping,
            "total_mse": total,
            "sqnr_db": math.inf
            if total == 0
            else 10 * math.log10(signal / total)
            if signal > 0
            else -math.inf,
            "clipped_fraction": clipped,
            "max_rounding_error": scale / 2 if clipped < 1 else 0.0,
            "max_clipping_error": max(grid_lo - self.x_min, self.x_max - grid_hi, 0.0),
        }
