"""AffineStaircase: the map x -> fake_quantize(x) for a range [lo, hi] and a bit width, with its integer grid.

    qparams = choose_qparams(lo, hi, spec)
    x̂       = fake_quantize(x, qparams, spec)                  sampled densely over a fixed domain
    grid    = integer_grid(qparams, spec)  = (q - zp)·scale    for q in [qmin, qmax]

All numbers come from ptqlab (Python); the browser draws the steps and reports dragged range ends.
"""

from __future__ import annotations

import torch
import traitlets

from ptqlab.core.affine import choose_qparams, fake_quantize, integer_grid
from ptqlab.core.spec import PerTensor, QuantSpec
from ptqlab.widgets._base import RangeWidget, esm, finite_grid

MAX_GRID_SENT = 256  # above this many levels the grid lines would be denser than pixels: send none


class AffineStaircase(RangeWidget):
    """``AffineStaircase(lo=-1.0, hi=1.0, bits=3)``: drag the range ends, change bits, see scale and zero point.

    ``domain`` is the fixed x interval drawn (default: [lo, hi] widened by half its width on each side);
    ``samples`` points of it are fake-quantized per update.
    """

    _esm = esm("staircase.js")

    symmetric = traitlets.Bool(False).tag(sync=True)
    xs = traitlets.List(traitlets.Float()).tag(sync=True)
    ys = traitlets.List(traitlets.Float()).tag(sync=True)
    grid = traitlets.List(traitlets.Float()).tag(sync=True)
    stats = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        lo: float = -1.0,
        hi: float = 1.0,
        bits: int = 3,
        spec: QuantSpec | None = None,
        domain: tuple[float, float] | None = None,
        samples: int = 1201,
        **kwargs,
    ) -> None:
        spec = QuantSpec(bits=bits, symmetric=False) if spec is None else spec
        if not isinstance(spec, QuantSpec):
            raise TypeError(f"spec must be a QuantSpec, got {type(spec).__name__}")
        if not isinstance(spec.granularity, PerTensor):
            raise ValueError(f"the staircase draws one range; spec has {spec.granularity}")
        if isinstance(samples, bool) or not isinstance(samples, int) or not 2 <= samples <= 20001:
            raise ValueError(f"samples must be an int in [2, 20001], got {samples!r}")
        if domain is None:
            a, b = min(lo, 0.0), max(hi, 0.0)
            pad = 0.5 * (b - a) if b > a else 1.0
            domain = (a - pad, b + pad)
        d0, d1 = (float(v) for v in domain)
        if not d0 < d1:
            raise ValueError(f"domain must be an interval (a, b) with a < b, got {domain!r}")
        self.spec = spec
        self.qparams = None
        self.x = torch.linspace(d0, d1, samples, dtype=torch.float32)
        super().__init__(
            lo=lo,
            hi=hi,
            bits=bits,
            symmetric=kwargs.pop("symmetric", spec.symmetric),
            xs=self.x.tolist(),
            **kwargs,
        )

    @traitlets.validate("symmetric")
    def _valid_symmetric(self, proposal):
        if self._ready:
            self._checked(self._state(symmetric=proposal["value"]))
        return proposal["value"]

    @traitlets.observe("symmetric")
    def _on_symmetric(self, _change) -> None:
        if self._ready:
            self._show(self._checked(self._state()))

    def _state(self, **proposed) -> dict:
        return super()._state(**({"symmetric": self.symmetric} | proposed))

    @property
    def current_spec(self) -> QuantSpec:
        """The scheme in use now: ``spec`` with the widget's ``bits`` and ``symmetric``."""
        return self.spec.with_(bits=self.bits, symmetric=self.symmetric)

    def _compute(self, lo: float, hi: float, bits: int, symmetric: bool) -> tuple:
        spec = self.spec.with_(bits=bits, symmetric=symmetric)
        qparams = choose_qparams(lo, hi, spec)
        scale, grid_lo, grid_hi = finite_grid(qparams, spec)
        ys = fake_quantize(self.x, qparams, spec).tolist()
        grid = integer_grid(qparams, spec).tolist() if spec.levels <= MAX_GRID_SENT else []
        stats = {
            "scale": scale,
            "zero_point": int(qparams.zero_point),
            "qmin": spec.qmin,
            "qmax": spec.qmax,
            "levels": spec.levels,
            "grid_lo": grid_lo,
            "grid_hi": grid_hi,
        }
        return qparams, ys, grid, stats

    def _show(self, result) -> None:
        self.qparams, ys, grid, stats = result
        with self.hold_sync():
            self.ys, self.grid, self.stats = ys, grid, stats
            self.error = ""
