"""Entropy (KL-divergence) calibration, TensorRT's algorithm (GTC 2017, IInt8EntropyCalibrator2).

On a histogram h of |x| with B = 2048 bins of width w, and L = 2^(bits−1) quantized levels (128 for int8),
for every candidate i = L..B (i bins kept):

    P = h[0:i], with all outliers h[i:] added to P[i−1]                      (reference distribution)
    Q: merge h[0:i] into L levels of m = ⌊i/L⌋ bins (the last level also takes the i − L·m leftover
       bins), then spread each level's count evenly over the bins of that level where P ≠ 0
    KL(i) = Σ_{P_j>0} p_j log(p_j / q_j),  p = P/ΣP, q = Q/ΣQ   (+∞ if some q_j = 0 where p_j > 0)

and the threshold is T = (argmin_i KL(i) + ½)·w (the first argmin; clipped to max|x|).

Vectorised: every term is a prefix sum, so all candidates cost O(#candidates · L) (≈ 0.25 M numbers for
int8), never O(#candidates · B):  Σ_j p_j log p_j comes from a prefix sum of h·log h plus the folded last
bin; Σ_j p_j log q_j = Σ_levels (P_level/ΣP) · log(Q_level / (nonzero_level · ΣQ)).

Conventions differ between libraries (each from its own source code or documentation):
* threshold: TensorRT and Intel Neural Compressor use (i + ½)·w, half a bin beyond the kept bins;
  NVIDIA modelopt uses the bin edge i·w (``half_bin=False`` here), and takes the *last* argmin after
  setting h[0] = h[1]; ONNX Runtime uses a signed 128-bin histogram with windows centred on zero and
  eps-smoothing, and clips the pair (−T, T) to the observed [min, max]; INC uses 255 levels and starts at
  70 % of the bins.
* candidates: the GTC pseudocode loops i in range(128, 2048) (i = 2048, no clipping, excluded); we keep
  i = B as a candidate so that clean data can still choose "no clipping".
* levels: 2^(bits−1) because the |x| histogram only sees one half of a signed grid.
Asymmetric specs (here): the symmetric threshold clipped to the data, (max(−T, min), min(T, max)), as ONNX
Runtime does.
"""

from __future__ import annotations

import torch

from ptqlab.core.spec import QuantSpec
from ptqlab.observers.histogram import HistogramObserver


def kl_divergences(h: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(candidates i = levels..B, KL(i)) for the |x| histogram ``h``; empty when levels > B."""
    h = h.to(torch.float64)
    B, L, dev = h.numel(), levels, h.device
    if L > B:
        return torch.empty(0, dtype=torch.int64, device=dev), torch.empty(0, dtype=torch.float64, device=dev)
    i = torch.arange(L, B + 1, device=dev)
    zero = h.new_zeros(1)
    C = torch.cat([zero, h.cumsum(0)])  # C[k] = Σ_{j<k} h_j
    Z = torch.cat([zero, (h > 0).to(torch.float64).cumsum(0)])  # nonzero bins before k
    H = torch.cat([zero, torch.special.xlogy(h, h).cumsum(0)])  # Σ_{j<k} h_j log h_j
    total = C[-1]

    m = i // L  # bins per level
    k = torch.arange(L + 1, device=dev)
    bounds = torch.where(k[None, :] == L, i[:, None], k[None, :] * m[:, None])  # (K, L+1) level edges
    q_level = C[bounds].diff(dim=1)  # merged counts of h[0:i] (outliers excluded)
    nonzero = Z[bounds].diff(dim=1)  # bins where P ≠ 0 (P = h there, except P[i−1])
    outliers = total - C[i]
    last_p = h[i - 1] + outliers  # P[i−1]
    last_nonzero = nonzero[:, -1] + ((h[i - 1] == 0) & (outliers > 0)).to(torch.float64)
    last_p_level = q_level[:, -1] + outliers
    sum_q = C[i]

    # Σ_j P_j log P_j: bins before i−1 from the prefix sum, plus the folded last bin
    plogp = H[i - 1] + torch.special.xlogy(last_p, last_p)
    # Σ_j P_j log q_j·ΣQ = Σ_levels P_level · log(Q_level / nonzero_level); P_level = Q_level but the last
    body = torch.special.xlogy(q_level[:, :-1], q_level[:, :-1] / nonzero[:, :-1].clamp_min(1)).sum(1)
    last_ok = (q_level[:, -1] > 0) & (last_nonzero > 0)
    last_ratio = torch.where(last_ok, q_level[:, -1] / last_nonzero.clamp_min(1), torch.ones_like(sum_q))
    plogq = body + torch.special.xlogy(last_p_level, last_ratio)
    kl = (plogp - plogq) / total + torch.log(torch.where(sum_q > 0, sum_q, total) / total)
    impossible = ((last_p_level > 0) & ~last_ok) | (sum_q <= 0)
    kl = torch.where(impossible, torch.full_like(kl, float("inf")), kl)
    return i, kl


def entropy_threshold(h: torch.Tensor, width, levels: int, half_bin: bool = True) -> torch.Tensor:
    """T = (argmin KL + ½)·w (or argmin·w without ``half_bin``), at most B·w; B·w if levels > B."""
    w = torch.as_tensor(width, dtype=torch.float64, device=h.device)
    B = h.numel()
    candidates, kl = kl_divergences(h, levels)
    if candidates.numel() == 0 or not bool(torch.isfinite(kl).any()):
        return B * w
    best = candidates[torch.argmin(kl)].to(torch.float64)
    return torch.minimum((best + (0.5 if half_bin else 0.0)) * w, B * w)


class EntropyObserver(HistogramObserver):
    """KL-divergence calibration (TensorRT); ``half_bin=False`` gives modelopt's bin-edge threshold."""

    name = "entropy"

    def __init__(
        self, bins: int = 2048, symmetric: bool = True, bits: int = 8, half_bin: bool = True
    ) -> None:
        super().__init__(bins=bins, symmetric=symmetric, bits=bits)
        self.half_bin = bool(half_bin)

    def _config(self) -> dict:
        return {**super()._config(), "half_bin": self.half_bin}

    def _search(self, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
        levels = 2 ** (spec.bits - 1)
        t = entropy_threshold(self.hist.abs_counts(), self.hist.width, levels, self.half_bin)
        return self._symmetric_or_clipped(t, spec)
