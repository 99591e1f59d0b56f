"""Moving-average min/max (torch.ao's ``MovingAverageMinMaxObserver``).

    first batch:   m_lo = min(x_1),                   m_hi = max(x_1)
    then:          m_lo ← m_lo + c · (min(x_t) − m_lo),   m_hi ← m_hi + c · (max(x_t) − m_hi)

with averaging constant c = 0.01 by default. One outlier batch moves the range by c of its excess only,
so a rare spike is mostly ignored; the price is that the range depends on batch order and size.
"""

from __future__ import annotations

import math

import torch

from ptqlab.observers.base import Observer


class MovingAverageMinMaxObserver(Observer):
    """Exponential moving average of each batch's min and max; the first batch initialises."""

    name = "moving_average"

    def __init__(self, averaging_constant: float = 0.01) -> None:
        c = averaging_constant
        if isinstance(c, bool) or not isinstance(c, int | float) or not (0 < c <= 1) or not math.isfinite(c):
            raise ValueError(f"averaging_constant must be a number in (0, 1], got {averaging_constant!r}")
        super().__init__()
        self.averaging_constant = float(c)
        self.min_val: torch.Tensor | None = None
        self.max_val: torch.Tensor | None = None

    def _config(self) -> dict:
        return {"averaging_constant": self.averaging_constant}

    def _update(self, x: torch.Tensor, extrema: tuple[torch.Tensor, torch.Tensor]) -> None:
        lo, hi = extrema
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            c = self.averaging_constant  # float32 arithmetic, term for term as torch.ao writes it
            self.min_val = self.min_val + c * (lo - self.min_val)
            self.max_val = self.max_val + c * (hi - self.max_val)

    def _range(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.min_val.clone(), self.max_val.clone()
