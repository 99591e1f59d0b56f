"""Moving-average min/max (torch.ao's ``MovingAverageMinMaxObserver``).

    first batch:   m_lo = min(x_1),                   m_hi = max(x_1)
    then:          m_lo ← m_lo + c · (min(x_t) − m_lo),   m_hi ← m_hi + c · (max(x_t) − m_hi)

with averaging constant c = 0.01 by default. The update is float32, term for term as torch.ao writes it,
except where that overflows (a batch at +3e38 after one at −3e38): there it is computed in float64, so
finite batches always leave a finite range. One outlier batch moves the range by c of its excess only,
so a rare spike is mostly ignored; the price is that the range depends on batch order and size.
"""

from __future__ import annotations

import math

import torch

from ptqlab.observers.base import Observer


def ema_step(m: torch.Tensor, x: torch.Tensor, c: float) -> torch.Tensor:
    """m + c·(x − m) in float32 (torch.ao's terms); in float64 where float32 would overflow."""
    step = m + c * (x - m)
    wide = (m.double() + c * (x.double() - m.double())).float()
    return torch.where(torch.isfinite(step), step, wide)


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
            self.min_val = ema_step(self.min_val, lo, self.averaging_constant)
            self.max_val = ema_step(self.max_val, hi, self.averaging_constant)

    def _range(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.min_val.clone(), self.max_val.clone()
