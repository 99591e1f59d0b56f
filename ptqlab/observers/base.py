"""The observer interface: watch a stream of batches, then report a clipping range.

    obs.observe(x)          # any number of batches; memory stays bounded
    lo, hi = obs.range()    # float32 tensors: shape () per-tensor, shape (C,) per-channel
    qp = obs.qparams(spec)  # choose_qparams(*obs.range_for(spec), spec) through the affine core
    obs.reset()

``range()`` uses the observer's own defaults (e.g. ``symmetric=True, bits=8`` for histogram observers);
``range_for(spec)`` and ``qparams(spec)`` search for the grid that ``spec`` describes (its bits, its
symmetry). Observers that do not search (min/max families) return the same range either way.

A batch with NaN/Inf is rejected with a ValueError *before* any state changes. The check costs no extra
pass over the data: NaN propagates through the batch's min/max, and ±Inf *is* the min or max, so reading
back one flag computed from the (already needed) extrema suffices. That read-back (one small tensor: the
finite flag, plus for histogram observers a "range grew" flag riding along) is the only host round-trip in
``observe()``; everything else stays on the tensor's device.
"""

from __future__ import annotations

import torch

from ptqlab.core import checks
from ptqlab.core.affine import QParams, choose_qparams
from ptqlab.core.spec import QuantSpec


class Observer:
    """Base class. Subclasses implement ``_update(x, extrema)`` and ``_range()``.

    ``_extrema(x)`` returns the batch's (min, max) on the device (per-tensor by default; per-channel
    observers reduce per channel); ``observe`` checks them for NaN/Inf, then hands them to ``_update``.
    """

    name = "observer"
    per_tensor = True  # range() gives one (lo, hi) pair; False when it gives one pair per channel

    def __init__(self) -> None:
        self.batches = 0

    def observe(self, x: torch.Tensor) -> Observer:
        x = _as_batch(x)
        extrema = self._extrema(x)
        lo, hi = extrema
        finite = torch.isfinite(lo).all() & torch.isfinite(hi).all()
        valid = self._valid(extrema)
        finite = finite if valid is None else finite & valid
        hint = self._hint(extrema)
        if hint is None:
            ok = bool(finite)  # the one read-back
        else:
            # one read-back for both; a float hint (a vector too) comes back as Python float(s)
            values = torch.cat([finite.reshape(1).to(hint.dtype), hint.reshape(-1)]).tolist()
            ok, hint = bool(values[0]), (values[1] if hint.dim() == 0 else values[1:])
        if not ok:
            checks.float_tensor(x, "x")  # raises, counting the NaN/Inf
            self._refuse(extrema)  # the data is finite but this observer cannot take it
        if hint is None:
            self._update(x, extrema)
        else:
            self._update(x, extrema, hint)
        self.batches += 1
        return self

    def range(self) -> tuple[torch.Tensor, torch.Tensor]:
        self._require_data()
        return self._range()

    def range_for(self, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
        """The range to use for ``spec``'s grid (searching observers use its bits and symmetry)."""
        if not isinstance(spec, QuantSpec):
            raise TypeError(f"spec must be a QuantSpec, got {type(spec).__name__}")
        return self.range()

    def qparams(self, spec: QuantSpec) -> QParams:
        lo, hi = self.range_for(spec)
        return choose_qparams(lo, hi, spec)

    def reset(self) -> None:
        self.__init__(**self._config())

    def state_nbytes(self) -> int:
        """Bytes held in tensors by this observer (to check that memory does not grow with batches)."""
        return _tensor_bytes(vars(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"

    # --- for subclasses ---
    def _config(self) -> dict:
        return {}

    def _extrema(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.aminmax(x)

    def _valid(self, extrema: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor | None:
        """An optional 0-d bool tensor (read back with the finite flag): False refuses the batch."""
        return None

    def _refuse(self, extrema: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Raise the ValueError for a finite batch that ``_valid`` refused."""
        raise ValueError("x contains non-finite values")  # pragma: no cover (float_tensor raised)

    def _hint(self, extrema: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor | None:
        """An optional tensor (0-d bool, or float scalars) read back with the finite flag, passed to
        ``_update`` as Python value(s)."""
        return None

    def _update(self, x: torch.Tensor, extrema: tuple[torch.Tensor, torch.Tensor]) -> None:
        raise NotImplementedError

    def _range(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _require_data(self) -> None:
        if self.batches == 0:
            raise ValueError(f"{type(self).__name__} has observed no data yet: call observe(x) first")


def _as_batch(x) -> torch.Tensor:
    """Type, dtype and emptiness checks (metadata only: no read of the data), then float32, detached."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    checks.not_meta(x, "x")
    if x.numel() == 0:
        raise ValueError(f"x is empty (shape {tuple(x.shape)}): there is nothing to observe")
    if x.dtype == torch.float64:  # finite float64 beyond float32's range would become ±inf below
        return checks.fits_float32(x, "x")
    return x.detach().to(torch.float32)


def _tensor_bytes(obj, seen: set | None = None) -> int:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v, seen) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_tensor_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return _tensor_bytes(vars(obj), seen)
    return 0
