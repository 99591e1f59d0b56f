"""What lab 06 (and the Jupyter notebooks) show: a heavy-tailed tensor, and your thresholds against min/max."""

from __future__ import annotations

import torch

from ptqlab.core.affine import choose_qparams, qparams_for
from ptqlab.core.metrics import error_split
from ptqlab.core.spec import QuantSpec
from ptqlab.models.data import heavy_tailed_activations
from ptqlab.observers import make_observer

EXPLORER_SPEC = QuantSpec(bits=4, symmetric=False)  # the clipping explorer's grid in lab 06
STAIRCASE_DEFAULT = (-1.0, 1.0, 3)  # the staircase widget's lo, hi, bits when the lab opens


def calibrator_sqnr(
    x: torch.Tensor, spec: QuantSpec, names=("minmax", "percentile", "mse")
) -> dict[str, float]:
    """SQNR (dB) of ``x`` quantized with the range each calibrator picks for ``spec``."""
    out = {}
    for name in names:
        lo, hi = make_observer(name).observe(x).range_for(spec)
        out[name] = error_split(x, choose_qparams(float(lo), float(hi), spec), spec).sqnr_db
    return out


def pulled_in_sqnr(x: torch.Tensor, spec: QuantSpec, quantile: float = 0.999) -> tuple[float, float, float]:
    """(hi at the ``quantile``, SQNR with [min, that hi], SQNR with min/max): the predict-then-drag answer."""
    hi = float(torch.quantile(x, quantile))
    pulled = error_split(x, choose_qparams(float(x.min()), hi, spec), spec).sqnr_db
    return hi, pulled, error_split(x, qparams_for(x, spec), spec).sqnr_db


def lab_activations():
    """The tensor the lab's explorer shows: heavy-tailed activations (Student-t, 3 degrees of freedom)."""
    return heavy_tailed_activations()
