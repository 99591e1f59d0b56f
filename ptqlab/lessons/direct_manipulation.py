"""What lab 06 (and the Jupyter notebooks) show: a heavy-tailed tensor, and your thresholds against min/max."""

from __future__ import annotations

import torch

from ptqlab.core.affine import choose_qparams, qparams_for
from ptqlab.core.metrics import error_split
from ptqlab.core.spec import QuantSpec
from ptqlab.observers import make_observer


def heavy_tailed_activations(n: int = 20_000, seed: int = 0) -> torch.Tensor:
    """Student-t with 3 degrees of freedom: t = z / √(v/3), z ~ N(0, 1), v ~ χ²(3) (a sum of 3 squared
    normals). Most values are small, a few are huge: the shape of a transformer's outlier activations."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator=generator)
    v = torch.randn(3, n, generator=generator).pow(2).sum(dim=0)
    return z / (v / 3).sqrt()


def thresholds_markdown(x: torch.Tensor, lo: float, hi: float, spec: QuantSpec) -> str:
    """Your thresholds' SQNR against min/max's, the clipped share and clipping's part of the error."""
    split = error_split(x, choose_qparams(lo, hi, spec), spec)
    minmax = error_split(x, qparams_for(x, spec), spec)
    clipping_share = split.clipping_mse / split.total_mse if split.total_mse > 0 else 0.0
    return (
        f'**Your thresholds:** <span id="ptq-thresholds">lo = {lo:.4f}, hi = {hi:.4f}</span>\n\n'
        f'**SQNR:** <span id="ptq-sqnr">{split.sqnr_db:.2f} dB</span> with your range, against '
        f"{minmax.sqnr_db:.2f} dB for min-max ({split.sqnr_db - minmax.sqnr_db:+.2f} dB); "
        f"{100 * split.clipped_fraction:.3g} % of the values are clipped, and clipping makes "
        f"{100 * clipping_share:.0f} % of the error."
    )


def staircase_markdown(stats: dict, bits: int) -> str:
    """The staircase widget's grid in words: levels, scale, and the code of 0."""
    return (
        f"With {bits} bits the grid has {stats['levels']} levels, one every "
        f'**s = <span id="ptq-scale">{stats["scale"]:.4g}</span>**; the real number 0 is stored as the code '
        f"**z = {stats['zero_point']}**, so it survives quantization exactly. Try lo > 0: the range is "
        "widened to include 0 first."
    )


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
