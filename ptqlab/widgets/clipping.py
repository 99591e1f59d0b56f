"""ClippingExplorer: drag the clipping thresholds over a tensor's histogram, watch the error split move.

For thresholds [lo, hi] and a scheme ``spec`` (with ``bits`` from the widget) the widget computes, in Python,

    qparams = choose_qparams(lo, hi, spec)
    split   = error_split(x, qparams, spec)     # rounding MSE + clipping MSE = total MSE, SQNR, clipped share

and syncs the numbers to the browser, which only draws them and reports where the handles were dropped.
Above EXACT_LIMIT elements the tensor is summarised once (``TensorSummary``: a 65536-bin histogram and
exact moments) and every drag reads estimates from it in constant time; ``stats["exact"]`` says which,
the browser marks estimates with ≈, and ``exact_split()`` computes the exact numbers on demand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import traitlets

from ptqlab.core import checks
from ptqlab.core.affine import choose_qparams
from ptqlab.core.metrics import error_split
from ptqlab.core.spec import PerTensor, QuantSpec
from ptqlab.observers import Observer, make_observer
from ptqlab.widgets._base import RangeWidget, esm, finite_grid, json_number
from ptqlab.widgets.summary import TensorSummary

EXACT_LIMIT = 262_144  # up to this many elements every drag runs error_split on the whole tensor


def histogram(x: torch.Tensor, bins: int) -> tuple[list[float], list[float]]:
    """(edges, counts): ``bins`` equal-width bins over [min(x), max(x)] (float64, like numpy.histogram)."""
    flat = x.detach().flatten()
    lo, hi = (float(v) for v in torch.aminmax(flat))
    if lo == hi:
        pad = max(0.5, abs(lo) * 1e-6)
        lo, hi = lo - pad, hi + pad
    counts = torch.histc(flat.to(torch.float64) if flat.numel() <= EXACT_LIMIT else flat, bins, lo, hi)
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    return edges.tolist(), counts.tolist()


def marker_observers(x: torch.Tensor, observers) -> list[tuple[str, Observer]]:
    """(label, observer) pairs; names are built with ``make_observer``, fresh observers observe ``x``.

    ``observers`` is an iterable of names / Observer instances, or a mapping label -> name / Observer.
    Observers that have already seen data (e.g. a calibration stream) are used as they are.
    """
    if isinstance(observers, str):
        observers = [observers]
    items = observers.items() if isinstance(observers, Mapping) else ((None, o) for o in observers)
    pairs = []
    for label, obs in items:
        if isinstance(obs, str):
            label, obs = label or obs, make_observer(obs)
        if not isinstance(obs, Observer):
            raise TypeError(f"observers must be names or Observer instances, got {type(obs).__name__}")
        if not obs.per_tensor:
            raise ValueError(
                f"observer {label or obs.name!r} gives a range per channel; the explorer needs one"
            )
        if obs.batches == 0:
            obs.observe(x)
        pairs.append((label or obs.name, obs))
    return pairs


def observer_markers(x: torch.Tensor, observers, spec: QuantSpec | None = None) -> list[dict]:
    """One marker {name, lo, hi} per observer (see :func:`marker_observers`): its ``range_for(spec)``,
    the range it picks for that grid (searching observers use its bits and symmetry), or ``range()``
    without a spec."""
    return [_marker(label, obs, spec) for label, obs in marker_observers(x, observers)]


def _marker(label: str, obs: Observer, spec: QuantSpec | None) -> dict:
    lo, hi = obs.range() if spec is None else obs.range_for(spec)
    return {"name": label, "lo": float(lo), "hi": float(hi)}


class ClippingExplorer(RangeWidget):
    """Histogram of ``x`` with draggable clipping thresholds ``lo``/``hi`` and the resulting error split.

    ``lo``/``hi`` default to min(x)/max(x), ``bits`` to ``spec.bits`` (default spec: asymmetric int8);
    ``observers`` become markers (see :func:`observer_markers`): each one's range for the current grid,
    recomputed when ``bits`` changes. ``observers=PER_TENSOR`` marks every per-tensor calibrator.

    ``ClippingExplorer(x, spec=QuantSpec(bits=4, symmetric=False), observers=["minmax"])``; read the
    thresholds from ``.lo``/``.hi`` (or ``.thresholds``), the numbers from ``.stats``, and the exact
    ptqlab objects from ``.qparams`` and ``.split``.
    """

    _esm = esm("clipping.js")

    edges = traitlets.List(traitlets.Float()).tag(sync=True)
    counts = traitlets.List(traitlets.Float()).tag(sync=True)
    log_counts = traitlets.Bool(True).tag(sync=True)
    markers = traitlets.List(traitlets.Dict()).tag(sync=True)
    stats = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        x: torch.Tensor,
        spec: QuantSpec | None = None,
        lo: float | None = None,
        hi: float | None = None,
        observers: Iterable | Mapping = ("minmax",),
        bins: int = 160,
        bits: int | None = None,
        **kwargs,
    ) -> None:
        checks.float_tensor(x, "x")
        spec = QuantSpec(bits=8, symmetric=False) if spec is None else spec
        if not isinstance(spec, QuantSpec):
            raise TypeError(f"spec must be a QuantSpec, got {type(spec).__name__}")
        if not isinstance(spec.granularity, PerTensor):
            raise ValueError(f"the explorer shows one range per tensor; spec has {spec.granularity}")
        if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= 2000:
            raise ValueError(f"bins must be an int in [2, 2000], got {bins!r}")
        self.x = x.detach().to(torch.float32)
        self.spec = spec
        self.qparams = None
        self.split = None
        self.summary = TensorSummary(self.x) if self.x.numel() > EXACT_LIMIT else None
        self._observers = marker_observers(self.x, observers)
        self._marked_bits = None
        x_lo, x_hi = (float(v) for v in torch.aminmax(self.x))
        if lo is None and hi is None and x_lo == x_hi:  # a constant tensor: a small range around it
            pad = max(1.0, abs(x_lo) * 1e-6)
            lo, hi = (x_lo - pad, x_hi) if x_lo + pad > 3.4e38 else (x_lo, x_hi + pad)
        lo = x_lo if lo is None else lo
        hi = (x_hi if x_hi > lo else lo + max(1.0, abs(lo) * 1e-6)) if hi is None else hi
        edges, counts = histogram(self.x, bins)
        super().__init__(
            lo=lo,
            hi=hi,
            bits=spec.bits if bits is None else bits,
            edges=edges,
            counts=counts,
            **kwargs,
        )

    @property
    def thresholds(self) -> tuple[float, float]:
        return self.lo, self.hi

    @property
    def current_spec(self) -> QuantSpec:
        """The scheme in use now: ``spec`` with the widget's ``bits``."""
        return self.spec.with_(bits=self.bits)

    def exact_split(self):
        """``error_split`` of the whole tensor for the current range (the exact numbers, at any size)."""
        return error_split(self.x, self.qparams, self.current_spec)

    def _compute(self, lo: float, hi: float, bits: int) -> tuple:
        spec = self.spec.with_(bits=bits)
        qparams = choose_qparams(lo, hi, spec)
        grid = finite_grid(qparams, spec)
        if self.summary is None:
            split = error_split(self.x, qparams, spec)
            stats = {k: getattr(split, k) for k in EXACT_STATS}
        else:
            split, stats = None, self.summary.estimate(lo, hi, spec, grid)
        return spec, qparams, split, grid, stats

    def _show(self, result) -> None:
        spec, self.qparams, self.split, (scale, grid_lo, grid_hi), numbers = result
        with self.hold_sync():
            if self._marked_bits != spec.bits:
                self.markers = [_marker(label, obs, spec) for label, obs in self._observers]
                self._marked_bits = spec.bits
            self.stats = {
                "scale": scale,
                "zero_point": int(self.qparams.zero_point),
                "qmin": spec.qmin,
                "qmax": spec.qmax,
                "grid_lo": grid_lo,
                "grid_hi": grid_hi,
                "exact": self.summary is None,
                **numbers,
                "sqnr_db": json_number(numbers["sqnr_db"]),
            }
            self.error = ""


EXACT_STATS = (
    "rounding_mse",
    "clipping_mse",
    "total_mse",
    "sqnr_db",
    "clipped_fraction",
    "max_rounding_error",
    "max_clipping_error",
)
