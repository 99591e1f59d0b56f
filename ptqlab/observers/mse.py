"""MSE calibration: the range whose actual grid gives the least squared error on the histogram.

Every candidate range is scored by ``grid_error``: the histogram's mass (uniform inside each bin) rounded
to that candidate's own grid — its scale and zero point from ``choose_qparams``, its 2^bits levels and its
clamp — so the score is the error that ``error_split`` measures on the data, up to the histogram's
resolution:

    symmetric:   T* = argmin_T  mse(grid of (−T, T)),         T on the bin edges right of 0
    asymmetric:  (lo*, hi*) = argmin_{lo ≤ 0 ≤ hi} mse(grid of (lo, hi)),  edges clamped to the data range

searched coarse-to-fine (see ``ptqlab.observers.grid_error``). The Δ²/12 model (``threshold_error``) is
not used: at 2–4 bits on a spiky histogram it is far from the real error, and it once picked the empty
range [0, 0] for ReLU data at 2 bits.

Compare: modelopt's histogram "mse" tries every bin centre and fake-quantizes the bin centres (the same
idea, centres instead of the uniform-in-bin integral); AIMET weights clipped bins ×3 on a coarse
101-candidate grid.
"""

from __future__ import annotations

import torch

from ptqlab.core.spec import QuantSpec
from ptqlab.observers.grid_error import best_range
from ptqlab.observers.histogram import HistogramObserver


class MSEObserver(HistogramObserver):
    """Minimise the squared error of the actual grid (rounding + clipping) over the histogram."""

    name = "mse"

    def _search(self, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hist
        last = getattr(self, "_last_search", None)  # reused while nothing new was observed
        if last is not None and last[0] == spec and last[1] is h.counts:
            return last[2]
        data = (float(h.data_min), float(h.data_max))
        lo, hi = best_range(h.counts, h.lo.double(), h.width, spec, zero_edge=h.bins // 2, data_range=data)
        result = torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64)
        self._last_search = (spec, h.counts, result)
        return result
