"""L2 norm minimisation, torch.ao's ``HistogramObserver`` search (from caffe2's norm_minimization.cc).

On a histogram of x over [min, max] (B = 2048 bins of width w), the range [start, end] (bin indices) is
shrunk greedily: each iteration advances a lower quantile α and an upper quantile β by 10⁻⁵,

    l = first bin ≥ start with cSum[l] ≥ (α + 10⁻⁵)·N (at most end),
    r = last bin ≤ end with cSum[r] ≤ (β − 10⁻⁵)·N (at least start),

moves the side that sheds more bins (start ← l, α += 10⁻⁵ if l − start > end − r, else end ← r,
β −= 10⁻⁵), and stops at the first state whose L2 error is larger than the previous state's. The error of
[start, end] integrates (x − nearest centre)² over every source bin (mass uniform in the bin) against
2^bits destination bins of width (end − start + 1)·w / 2^bits; the result is
(min + start·w, min + (end + 1)·w).

torch.ao runs this as a Python loop of up to 10⁵ iterations, each recomputing an O(B) tensor error. Here:
1. all quantile bins for all 10⁵ possible α and β are found at once (``searchsorted``, the α/β sequences
   accumulated exactly as the loop does, compared in float32 against a float32 cumulative sum as
   torch.ao's tensors are: the flat tail of the CDF makes the search sensitive to those roundings);
2. the greedy path is replayed on integers: every replayed step moves start or end (each by ≥ 1 bin,
   so ≤ B steps); once the lower side stops shedding bins only the end can move, and that tail of the
   path (thousands of idle 10⁻⁵ steps) is computed in one vectorised slice;
3. the L2 error of a state is one integral per *destination* bin from prefix integrals of the histogram
   (O(2^bits) per state, not O(B)); states are evaluated in geometrically growing chunks (16, 32, …), and
   the first increase is found with a vectorised comparison — usually within the first chunk.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ptqlab.core.spec import QuantSpec
from ptqlab.observers.histogram import HistogramObserver

STEP = 1e-5


@functools.lru_cache(maxsize=1)
def _alpha_beta(n: int = 100_010) -> tuple[np.ndarray, np.ndarray]:
    """α_k and β_k after k steps, accumulated one addition at a time like the Python loop."""
    alphas = np.cumsum(np.concatenate([[0.0], np.full(n, STEP)]))
    betas = np.cumsum(np.concatenate([[1.0], np.full(n, -STEP)]))
    return alphas, betas


def greedy_path(hist: np.ndarray) -> list[tuple[int, int]]:
    """Every (start, end) state the greedy search visits, in order, until α ≥ β."""
    B = hist.size
    h32 = hist.astype(np.float32)  # torch.ao keeps float32 counts; its CPU cumsum accumulates in double
    c_sum = np.cumsum(h32, dtype=np.float64).astype(np.float32)
    total = float(np.float32(h32.sum(dtype=np.float64)))
    alphas, betas = _alpha_beta()

    def q_alpha(k0: int, k1: int) -> np.ndarray:  # first bin with cSum ≥ α_k·N, for k in [k0, k1)
        return np.searchsorted(c_sum, (alphas[k0:k1] * total).astype(np.float32), side="left")

    def q_beta(k0: int, k1: int) -> np.ndarray:  # last bin with cSum ≤ β_k·N
        return np.searchsorted(c_sum, (betas[k0:k1] * total).astype(np.float32), side="right") - 1

    # Outside the end-only tail every step moves start or end by ≥ 1 bin, so a, b ≤ B + 1 there.
    qa, qb = q_alpha(0, 2 * B + 4).tolist(), q_beta(0, 2 * B + 4).tolist()
    a = b = 0
    s, e = 0, B - 1
    states: list[tuple[int, int]] = []
    while alphas[a] < betas[b]:
        left = min(e, max(s, qa[a + 1]))
        if left == s:  # the lower side sheds nothing now and never will again: only the end moves
            stop = b + int(np.searchsorted(-betas[b:], -alphas[a], side="left"))  # first β ≤ α
            ends = np.minimum.accumulate(np.clip(q_beta(b + 1, stop + 1), s, e))
            if ends.size:
                moved = np.concatenate([[ends[0] != e], ends[1:] != ends[:-1]])
                states.extend((s, int(x)) for x in ends[moved])
            break
        right = max(s, min(e, qb[b + 1]))
        if left - s > e - right:
            s, a = left, a + 1
        else:
            e, b = right, b + 1
        states.append((s, e))
    return states


def l2_errors(hist: torch.Tensor, bin_width: float, starts: torch.Tensor, ends: torch.Tensor, dst_bins: int):
    """torch.ao's ``_compute_quantization_error`` for many (start, end) states at once (float64).

    torch.ao sums, over source bins, the exact integral of (x − nearest destination centre)² for mass
    spread uniformly in the bin (destination bins clamped to the range, so clipped mass goes to the end
    centres). The same integral, taken per *destination* bin with prefix integrals of the piecewise-constant
    density, F_k(u) = ∫_0^u f(t)·t^k dt (u in source-bin units), costs O(dst_bins) per state, not O(B):

        error(s, e) = w² · Σ_d [ΔF₂ − 2 c_d ΔF₁ + c_d² ΔF₀]  over d = clipped-low, 0..n−1, clipped-high
    """
    h = hist.to(torch.float64)
    B, dev = h.numel(), h.device
    j = torch.arange(B, dtype=torch.float64, device=dev)
    # per source bin: ∫_j^{j+1} t^k dt · h_j for k = 0, 1, 2, prefix-summed; plus h_j itself
    table = torch.stack([h, h * (j + 0.5), h * (j**2 + j + 1 / 3)], dim=1).cumsum(0)
    table = torch.cat([table.new_zeros(1, 3), table], dim=0)

    def F(u: torch.Tensor) -> list[torch.Tensor]:  # u = i + t: prefix to bin i, then h_i·∫_i^{i+t} x^k dx
        i = u.floor().clamp(0, B - 1)
        il = i.long()
        t = u - i
        P, hi = table[il], h[il]
        return [
            P[..., 0] + hi * t,
            P[..., 1] + hi * t * (i + t / 2),
            P[..., 2] + hi * t * (i * i + i * t + t * t / 3),
        ]

    s = starts.to(torch.float64)[:, None]
    dw = (ends - starts + 1).to(torch.float64)[:, None] / dst_bins  # destination width, source-bin units
    d = torch.arange(dst_bins + 1, dtype=torch.float64, device=dev)[None, :]
    edges = torch.cat([torch.zeros_like(s), s + d * dw, torch.full_like(s, float(B))], dim=1)
    F0, F1, F2 = (v.diff(dim=1) for v in F(edges))
    centres = s + (torch.arange(dst_bins, dtype=torch.float64, device=dev)[None, :] + 0.5) * dw
    centres = torch.cat([centres[:, :1], centres, centres[:, -1:]], dim=1)  # clipped mass → end centres
    per_bin = F2 - 2 * centres * F1 + centres**2 * F0
    errors = per_bin.sum(1) * bin_width**2
    return torch.where(dw[:, 0] * bin_width > 0, errors, torch.zeros_like(errors))


def l2_search(hist: torch.Tensor, data_min: float, data_max: float, dst_bins: int) -> tuple[float, float]:
    """torch.ao's ``_non_linear_param_search`` on ``hist`` (a grid on [data_min, data_max])."""
    B = hist.numel()
    bin_width = (data_max - data_min) / B
    states = greedy_path(hist.detach().cpu().to(torch.float64).numpy())
    max_chunk = max(1, 2**18 // (dst_bins + 3))  # bounds memory: states × (dst_bins + 3) numbers
    start, end = 0, B - 1
    previous = float("inf")
    k, size = 0, 16  # the search usually stops within a few states: grow the chunks geometrically
    while k < len(states):
        chunk = torch.tensor(states[k : k + size], dtype=torch.int64, device=hist.device)
        errors = l2_errors(hist, bin_width, chunk[:, 0], chunk[:, 1], dst_bins).cpu()
        prev = torch.cat([torch.tensor([previous], dtype=torch.float64), errors[:-1]])
        worse = (errors > prev).nonzero()
        if worse.numel():  # torch.ao stops at the first state worse than the one before
            stop = int(worse[0])
            if stop > 0:
                start, end = states[k + stop - 1]
            break
        start, end = states[k + len(errors) - 1]
        previous = float(errors[-1])
        k, size = k + len(errors), min(2 * size, max_chunk)
    return data_min + bin_width * start, data_min + bin_width * (end + 1)


class L2Observer(HistogramObserver):
    """torch.ao's HistogramObserver search on a 2048-bin histogram over [min, max].

    A symmetric spec gets (−T, T), T = max(−lo, hi), which is what torch.ao's qparams do with the
    searched range; ``bits`` sets the 2^bits destination bins (torch.ao: 2^8 for qint8/quint8).
    """

    name = "l2"
    centered = False
    merge = "torch_ao"  # re-bin exactly as torch.ao does, so that the greedy search sees the same histogram

    def __init__(self, bins: int = 2048, symmetric: bool = False, bits: int = 8) -> None:
        super().__init__(bins=bins, symmetric=symmetric, bits=bits)

    def _stream_range(self, extrema: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = extrema
        if self.hist.counts is None:
            return lo, hi
        return torch.minimum(lo, self.hist.data_min), torch.maximum(hi, self.hist.data_max)

    def _valid(self, extrema: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """False when the stream's span max − min would overflow float32 (torch.ao's re-bin and this
        histogram over [min, max] compute it in float32): the batch is then refused, state unchanged."""
        lo, hi = self._stream_range(extrema)
        return torch.isfinite(hi - lo)

    def _refuse(self, extrema: tuple[torch.Tensor, torch.Tensor]) -> None:
        lo, hi = self._stream_range(extrema)
        raise ValueError(
            f"x: the l2 observer's range max − min = {float(hi) - float(lo):.4g} would exceed float32's "
            f"largest value {torch.finfo(torch.float32).max:.4g}; use minmax or a centered histogram "
            "observer (percentile, entropy, mse) for such values"
        )

    def _search(self, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hist
        lo, hi = l2_search(h.counts, float(h.lo), float(h.hi), 2**spec.bits)
        lo, hi = torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64)
        if spec.symmetric:
            t = torch.maximum(-lo, hi)
            return -t, t
        return lo, hi
