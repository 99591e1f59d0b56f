"""Running min/max: the range of everything seen so far.

    lo = min_t min(x_t),   hi = max_t max(x_t)

Exact and order independent: observing a stream in batches gives the range of the concatenation.
"""

from __future__ import annotations

import torch

from ptqlab.observers.base import Observer


class MinMaxObserver(Observer):
    """Running minimum and maximum over every batch seen (torch.ao's ``MinMaxObserver``)."""

    name = "minmax"

    def __init__(self) -> None:
        super().__init__()
        self.min_val: torch.Tensor | None = None
        self.max_val: torch.Tensor | None = None

    def _update(self, x: torch.Tensor, extrema: tuple[torch.Tensor, torch.Tensor]) -> None:
        lo, hi = extrema
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val, self.max_val = torch.minimum(self.min_val, lo), torch.maximum(self.max_val, hi)

    def _range(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.min_val.clone(), self.max_val.clone()
