"""The observer interface: watch a stream of batches, then report a clipping range.

    obs.observe(x)        # any number of batches; memory stays bounded
    lo, hi = obs.range()  # float32 tensors: shape () per-tensor, shape (C,) per-channel
    qp = obs.qparams(spec)  # choose_qparams(lo, hi, spec) through the affine core
    obs.reset()

A batch with NaN/Inf is rejected with a ValueError *before* any state changes.
"""

from __future__ import annotations

import torch

from ptqlab import checks
from ptqlab.affine import QParams, choose_qparams
from ptqlab.spec import QuantSpec


class Observer:
    """Base class. Subclasses implement ``_update(x)`` (x already validated, float32) and ``_range()``."""

    name = "observer"

    def __init__(self) -> None:
        self.batches = 0

    def observe(self, x: torch.Tensor) -> Observer:
        checks.float_tensor(x, "x")
        self._update(x.detach().to(torch.float32))
        self.batches += 1
        return self

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.batches == 0:
            raise ValueError(f"{type(self).__name__} has observed no data yet: call observe(x) first")
        return self._range()

    def qparams(self, spec: QuantSpec) -> QParams:
        lo, hi = self.range()
        return choose_qparams(lo, hi, spec)

    def reset(self) -> None:
        self.__init__(**self._config())

    # --- for subclasses ---
    def _config(self) -> dict:
        return {}

    def _update(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def _range(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class MinMaxObserver(Observer):
    """Running minimum and maximum over every batch seen: lo = min_t min(x_t), hi = max_t max(x_t)."""

    name = "minmax"

    def __init__(self) -> None:
        super().__init__()
        self.min_val: torch.Tensor | None = None
        self.max_val: torch.Tensor | None = None

    def _update(self, x: torch.Tensor) -> None:
        lo, hi = torch.aminmax(x)
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val, self.max_val = torch.minimum(self.min_val, lo), torch.maximum(self.max_val, hi)

    def _range(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.min_val.clone(), self.max_val.clone()
