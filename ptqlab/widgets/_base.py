"""What both widgets share: a validated quantization range [lo, hi] and bit width, synced with the browser.

Validation is traitlets' cross-validation, and it computes before it commits: ``lo`` and ``hi`` must be
finite float32 numbers with ``lo < hi``, ``bits`` must lie in [MIN_BITS, MAX_BITS], and the new state's
numbers (``_compute``) must come out finite — all checked on the *proposed* values, so a value is either
accepted with its numbers or refused before anything changes. A bad value

* set from Python raises :class:`InvalidWidgetValue` (a ``ValueError`` and a ``TraitError``), and
* sent by the browser is refused and the last valid state is pushed back to it (nothing escapes);

either way the widget keeps its last valid state (thresholds, numbers) and shows the message in its
``error`` trait. The computed result is cached per state, so ``set_range`` computes once.
"""

from __future__ import annotations

import math
from pathlib import Path

import anywidget
import traitlets

from ptqlab.core.affine import representable_range
from ptqlab.core.spec import MAX_BITS, MIN_BITS

HERE = Path(__file__).resolve().parent
FLOAT32_MAX = 3.4028234663852886e38


class InvalidWidgetValue(traitlets.TraitError, ValueError):
    """A value the widget refuses: lo >= hi, a non-finite threshold, bits out of range."""


def esm(name: str) -> str:
    """The widget's ES module: the shared SVG helpers followed by ``name`` (plain JS, no build step)."""
    return (HERE / "_svg.js").read_text() + "\n" + (HERE / name).read_text()


def json_number(value: float) -> float | None:
    """JSON has no ±inf/NaN: send those as ``None`` (the browser shows ∞)."""
    return value if math.isfinite(value) else None


def finite_grid(qparams, spec) -> tuple[float, float, float]:
    """(scale, grid_lo, grid_hi) as floats; a ValueError when the grid does not fit in float32."""
    grid_lo, grid_hi = representable_range(qparams, spec)
    grid = (float(qparams.scale), float(grid_lo), float(grid_hi))
    if not all(math.isfinite(v) for v in grid) or grid[0] <= 0:
        raise ValueError(
            f"the grid overflows float32 (scale {grid[0]:.6g}, covers [{grid[1]:.6g}, {grid[2]:.6g}]): "
            "choose a narrower range"
        )
    return grid


class RangeWidget(anywidget.AnyWidget):
    """Base class: synced ``lo``, ``hi``, ``bits`` and ``error``; subclasses implement ``_refresh()``."""

    _css = (HERE / "widgets.css").read_text()

    lo = traitlets.Float(-1.0).tag(sync=True)
    hi = traitlets.Float(1.0).tag(sync=True)
    bits = traitlets.Int(8).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs) -> None:
        self._ready = False
        self._cached: tuple | None = None  # (state key, computed result)
        super().__init__(**kwargs)
        self._ready = True
        self._show(self._checked(self._state()))

    # --- validation ----------------------------------------------------------------------------------

    def _reject(self, message: str):
        self.error = message
        raise InvalidWidgetValue(message)

    def _state(self, **proposed) -> dict:
        """The inputs of ``_compute``: the current traits, with ``proposed`` values in place."""
        return {"lo": self.lo, "hi": self.hi, "bits": self.bits} | proposed

    def _checked(self, state: dict):
        """``_compute(state)`` (cached per state), or a refusal with its reason."""
        key = tuple(sorted(state.items()))
        if self._cached is None or self._cached[0] != key:
            try:
                result = self._compute(**state)
            except (ValueError, ArithmeticError, RuntimeError) as e:
                self._reject(f"lo={state['lo']:.6g}, hi={state['hi']:.6g}, bits={state['bits']}: {e}")
            self._cached = (key, result)
        return self._cached[1]

    @traitlets.validate("lo", "hi")
    def _valid_threshold(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        if not math.isfinite(value):
            self._reject(f"{name} must be a finite number, got {value!r}")
        if abs(value) > FLOAT32_MAX:
            self._reject(f"{name} must lie within float32's range (±3.4e38), got {value:.6g}")
        lo, hi = (value, self.hi) if name == "lo" else (self.lo, value)
        if not lo < hi:
            self._reject(f"lo must be below hi, got lo={lo:.6g} >= hi={hi:.6g}")
        if self._ready:
            self._checked(self._state(**{name: value}))
        return value

    @traitlets.validate("bits")
    def _valid_bits(self, proposal):
        bits = proposal["value"]
        if not MIN_BITS <= bits <= MAX_BITS:
            self._reject(f"bits must be in [{MIN_BITS}, {MAX_BITS}], got {bits}")
        if self._ready:
            self._checked(self._state(bits=bits))
        return bits

    def set_range(self, lo: float, hi: float) -> None:
        """Move both thresholds at once (validated together, so the interval may jump past itself)."""
        try:
            with self.hold_trait_notifications():
                self.lo, self.hi = lo, hi
        except traitlets.TraitError as e:
            self.error = str(e)  # the hold rolled back every trait, the message included
            raise

    def set_state(self, sync_data) -> None:
        """A change from the browser: apply it, or refuse it and resend the last valid state. Never raises:
        an exception here would reach the browser's comm, not the user."""
        try:
            super().set_state(sync_data)
        except Exception as e:  # noqa: BLE001 - whatever it was, the widget keeps its last valid state
            self.error = str(e)
            self.send_state([k for k in sync_data if k in self.keys])

    # --- recomputation -------------------------------------------------------------------------------

    @traitlets.observe("lo", "hi", "bits")
    def _on_change(self, _change) -> None:
        if self._ready:
            self._show(self._checked(self._state()))

    def _compute(self, **state):
        """Everything the widget shows for ``state`` (lo, hi, bits, ...); raise ValueError to refuse it."""
        raise NotImplementedError

    def _show(self, result) -> None:
        """Put a computed result into the synced traits (and clear ``error``)."""
        raise NotImplementedError
