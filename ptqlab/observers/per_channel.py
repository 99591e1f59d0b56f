"""Per-channel running min/max along any axis (torch.ao's ``PerChannelMinMaxObserver``).

For a batch x with C channels along ``axis``:

    lo[c] = min_t min(x_t[..., c, ...]),   hi[c] = max_t max(x_t[..., c, ...])     (shape (C,))

Every batch must have the same number of channels; the other dimensions may change between batches.
"""

from __future__ import annotations

import torch

from ptqlab.observers.minmax import MinMaxObserver


class PerChannelMinMaxObserver(MinMaxObserver):
    """Running min/max per index along ``axis``; ``range()`` returns two (C,) tensors.

    The running update is :class:`MinMaxObserver`'s, elementwise over the (C,) extrema."""

    name = "per_channel"
    per_tensor = False

    def __init__(self, axis: int = 0) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"axis must be an int, got {type(axis).__name__}")
        super().__init__()
        self.axis = axis

    def _config(self) -> dict:
        return {"axis": self.axis}

    def _extrema(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() == 0 or not -x.dim() <= self.axis < x.dim():
            raise ValueError(f"x has shape {tuple(x.shape)}: axis={self.axis} is out of range for it")
        channels = x.movedim(self.axis, 0).reshape(x.shape[self.axis], -1)
        if self.min_val is not None and channels.shape[0] != self.min_val.numel():
            raise ValueError(
                f"x has {channels.shape[0]} channels along axis {self.axis}, "
                f"but earlier batches had {self.min_val.numel()}"
            )
        return torch.aminmax(channels, dim=1)
