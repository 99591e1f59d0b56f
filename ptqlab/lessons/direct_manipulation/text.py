"""Lab 06's sentences, built from the widgets' measured state."""

from __future__ import annotations

import torch

from ptqlab.core.affine import choose_qparams, qparams_for
from ptqlab.core.metrics import error_split
from ptqlab.core.spec import QuantSpec


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
