"""What both widgets share: a validated quantization range [lo, hi] and bit width, synced with the browser.

Validation is traitlets' cross-validation: ``lo`` and ``hi`` must be finite with ``lo < hi``, and ``bits``
must lie in [MIN_BITS, MAX_BITS]. A bad value

* set from Python raises :class:`InvalidWidgetValue` (a ``ValueError`` and a ``TraitError``), and
* sent by the browser is refused and the last valid state is pushed back to it;

either way the widget keeps its last valid state and shows the message in its ``error`` trait.
"""

from __future__ import annotations

import math
from pathlib import Path

import anywidget
import traitlets

from ptqlab.core.spec import MAX_BITS, MIN_BITS

HERE = Path(__file__).resolve().parent


class InvalidWidgetValue(traitlets.TraitError, ValueError):
    """A value the widget refuses: lo >= hi, a non-finite threshold, bits out of range."""


def esm(name: str) -> str:
    """The widget's ES module: the shared SVG helpers followed by ``name`` (plain JS, no build step)."""
    return (HERE / "_svg.js").read_text() + "\n" + (HERE / name).read_text()


def json_number(value: float) -> float | None:
    """JSON has no ±inf/NaN: send those as ``None`` (the browser shows ∞)."""
    return value if math.isfinite(value) else None


class RangeWidget(anywidget.AnyWidget):
    """Base class: synced ``lo``, ``hi``, ``bits`` and ``error``; subclasses implement ``_refresh()``."""

    _css = (HERE / "widgets.css").read_text()

    lo = traitlets.Float(-1.0).tag(sync=True)
    hi = traitlets.Float(1.0).tag(sync=True)
    bits = traitlets.Int(8).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs) -> None:
        self._ready = False
        super().__init__(**kwargs)
        self._ready = True
        self._refresh()

    # --- validation ----------------------------------------------------------------------------------

    def _reject(self, message: str):
        self.error = message
        raise InvalidWidgetValue(message)

    @traitlets.validate("lo", "hi")
    def _valid_threshold(self, proposal):
        name, value = proposal["trait"].name, proposal["value"]
        if not math.isfinite(value):
            self._reject(f"{name} must be a finite number, got {value!r}")
        lo, hi = (value, self.hi) if name == "lo" else (self.lo, value)
        if not lo < hi:
            self._reject(f"lo must be below hi, got lo={lo:.6g} >= hi={hi:.6g}")
        return value

    @traitlets.validate("bits")
    def _valid_bits(self, proposal):
        bits = proposal["value"]
        if not MIN_BITS <= bits <= MAX_BITS:
            self._reject(f"bits must be in [{MIN_BITS}, {MAX_BITS}], got {bits}")
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
        """A change from the browser: apply it, or refuse it and resend the last valid state."""
        try:
            super().set_state(sync_data)
        except traitlets.TraitError as e:
            self.error = str(e)
            self.send_state([k for k in sync_data if k in self.keys])

    # --- recomputation -------------------------------------------------------------------------------

    @traitlets.observe("lo", "hi", "bits")
    def _on_change(self, _change) -> None:
        if self._ready:
            self._refresh()

    def _refresh(self) -> None:
        raise NotImplementedError
