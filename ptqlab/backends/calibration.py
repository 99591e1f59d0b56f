"""ptqlab's observers drive the real kernels' activation ranges.

Two bridges, one rule — the clipping range [lo, hi] of every quantized activation comes from a ptqlab
``Observer`` (``make_observer(name, **kw)``), so whatever calibrator a lesson taught (min-max, percentile,
entropy, MSE) is the one the int8 kernels use:

* ``bridged_observer(base)``: a subclass of a torch.ao / pt2e ``MinMaxObserver`` whose ``forward`` feeds a
  ptqlab observer and whose ``calculate_qparams`` first copies that observer's (lo, hi) into ``min_val`` /
  ``max_val``; the base class then turns the range into (scale, zero_point) for its dtype, including
  ``reduce_range``.
* ``observe_linear_inputs``: forward pre-hooks record each Linear's input with its own ptqlab observer; torchao's
  static config is then built from those ranges (``act_scale``).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ptqlab.core.affine import choose_qparams
from ptqlab.core.spec import QuantSpec
from ptqlab.observers import make_observer
from ptqlab.ptq.measure import eval_mode

_BRIDGES: dict[type, type] = {}


def bridged_observer(base: type) -> type:
    """A subclass of ``base`` (a torch.ao-style MinMaxObserver) whose range comes from a ptqlab observer."""
    if base in _BRIDGES:
        return _BRIDGES[base]

    class PtqlabRangeObserver(base):
        def __init__(self, ptqlab_observer: str = "minmax", ptqlab_kwargs: dict | None = None, **kwargs):
            super().__init__(**kwargs)
            self.ptqlab_name = ptqlab_observer
            self.ptqlab = make_observer(ptqlab_observer, **(ptqlab_kwargs or {}))

        def forward(self, x_orig):
            if isinstance(x_orig, torch.Tensor) and x_orig.numel() > 0 and x_orig.is_floating_point():
                self.ptqlab.observe(x_orig.detach())
            return x_orig

        def grid(self) -> QuantSpec:
            """The integer grid this torch.ao observer quantizes to, as a ptqlab spec (searching
            observers — entropy, MSE, L2 — then search the range for exactly this grid)."""
            levels = int(self.quant_max) - int(self.quant_min) + 1
            signed = self.dtype in (torch.qint8, torch.int8)
            symmetric = self.qscheme in (torch.per_tensor_symmetric, torch.per_channel_symmetric)
            return QuantSpec(bits=max(levels.bit_length() - 1, 2), signed=signed, symmetric=symmetric)

        def sync_range(self) -> None:
            """min_val, max_val <- the ptqlab observer's (lo, hi) for this grid."""
            if self.ptqlab.batches == 0:
                return
            lo, hi = per_tensor(*self.ptqlab.range_for(self.grid()))
            self.min_val = lo.to(self.min_val.device)
            self.max_val = hi.to(self.max_val.device)

        def calculate_qparams(self):
            self.sync_range()
            return super().calculate_qparams()

    PtqlabRangeObserver.__name__ = f"Ptqlab{base.__name__}"
    PtqlabRangeObserver.__qualname__ = PtqlabRangeObserver.__name__
    _BRIDGES[base] = PtqlabRangeObserver
    return PtqlabRangeObserver


def per_tensor(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A per-channel range collapsed to one per-tensor range: (min lo, max hi)."""
    return lo.detach().float().amin().reshape(()), hi.detach().float().amax().reshape(())


def run_batches(model: nn.Module, batches: Iterable[tuple]) -> int:
    """Forward every calibration batch under inference mode, in eval mode (dropout off; every module's
    train/eval flag restored after); returns how many ran."""
    n = 0
    with torch.inference_mode(), eval_mode(model):
        for args in batches:
            model(*args)
            n += 1
    return n


class LinearInputRanges:
    """One ptqlab observer per Linear input; ``ndim`` remembers the input rank (torchao wants a scale of it)."""

    def __init__(self, model: nn.Module, names: list[str], observer: str, observer_kwargs: dict):
        modules = dict(model.named_modules())
        self.observers = {n: make_observer(observer, **observer_kwargs) for n in names}
        self.ndim: dict[str, int] = {}
        self._handles = [modules[n].register_forward_pre_hook(self._hook(n)) for n in names]

    def _hook(self, name: str):
        def hook(module, args):
            x = args[0]
            self.observers[name].observe(x.detach())
            self.ndim[name] = x.ndim

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()

    def act_scale(self, name: str, spec: QuantSpec) -> torch.Tensor:
        """Per-tensor activation scale from the observed range, shaped (1,)*ndim as torchao expects."""
        obs = self.observers[name]
        if obs.batches == 0:
            raise RuntimeError(f"layer {name!r} saw no input during calibration")
        lo, hi = per_tensor(*obs.range_for(spec))
        scale = choose_qparams(lo, hi, spec).scale
        return scale.reshape((1,) * self.ndim[name])


def observe_linear_inputs(
    model: nn.Module, names: list[str], batches: list[tuple], observer: str, observer_kwargs: dict
) -> LinearInputRanges:
    """Calibrate: run the batches once with a ptqlab observer on every named layer's input."""
    ranges = LinearInputRanges(model, names, observer, observer_kwargs)
    try:
        run_batches(model, batches)
    finally:
        ranges.remove()
    return ranges
