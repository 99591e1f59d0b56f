"""The squared error of the actual quantization grid, for many candidate ranges at once, from a histogram.

A candidate range [lo, hi] gives (scale s, zero point z) = ``choose_qparams(lo, hi, spec)``; in grid units
u = x / s + z, fake-quantizing x costs s²·e(u) with

    e(u) = (u − qmin)²          u < qmin                         (clipped below)
           (u − round(u))²      qmin ≤ u ≤ qmax                  (rounded to the nearest level)
           (u − qmax)²          u > qmax                         (clipped above)

Mass is taken as uniform inside each histogram bin [u_a, u_b], so a bin costs the exact mean of e over it:
(E(u_b) − E(u_a)) / (u_b − u_a), from closed-form integrals — ∫(u − q)² = (u − q)³/3 for the clipped
parts and, for the rounding part, the sawtooth integral

    S(u) = ∫_{−½}^{u} (t − round(t))² dt = k/12 + (f³ + ⅛)/3,   k = round(u), f = u − k.

Unlike the Δ²/12 model (``threshold_error``), this sees where the grid's levels actually fall: a spike on
a level (the zeros after a ReLU) costs nothing, a 2-bit grid with 4 levels rounds what it rounds. The only
approximation left is the histogram itself (mass uniform inside a bin of width A/B).

Cost: K candidates × n non-empty bins, evaluated in chunks of candidates; the search (``best_range``)
keeps K·n small with a coarse-to-fine search: a coarse sweep over every candidate range, then every
candidate near the best coarse one (and, for a two-sided range, coordinate descent at full resolution).
"""

from __future__ import annotations

import torch

from ptqlab.core.affine import choose_qparams
from ptqlab.core.spec import QuantSpec

MAX_SCORED_BINS = 512  # above this many non-empty bins, neighbours are merged (in pairs, from zero out)
COARSE = 128  # coarse candidates for a symmetric range (T)
COARSE_2D = 24  # coarse candidates per end of a two-sided range (all pairs are tried)
CHUNK = 64  # candidates per vectorised block (K·n float64 temporaries of ~CHUNK·MAX_SCORED_BINS)


def _sawtooth_integral(u: torch.Tensor) -> torch.Tensor:
    k = torch.round(u)  # any nearest integer will do: S is continuous where f = ±½
    f = u - k
    return k / 12 + (f**3 + 0.125) / 3


def _square_integral(a: torch.Tensor, b: torch.Tensor, q: float) -> torch.Tensor:
    """∫_a^b (u − q)² du for a ≤ b, in the cancellation-free form (b − a)·(da² + da·db + db²)/3."""
    da, db = a - q, b - q
    return (b - a) * (da * da + da * db + db * db) / 3


def grid_error(
    counts: torch.Tensor, edge0, width, lo: torch.Tensor, hi: torch.Tensor, *, spec: QuantSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rounding, clipping) squared error per element of every candidate range [lo_k, hi_k] (float64, (K,)).

    ``counts`` is a histogram whose bin j covers [edge0 + j·width, edge0 + (j+1)·width).
    """
    n = counts.detach().to(torch.float64).flatten()
    total = n.sum()
    j = (n > 0).nonzero().flatten()
    p = n[j] / total.clamp_min(1.0)
    w = float(width)
    left = float(edge0) + j.to(torch.float64) * w
    lo, hi = lo.to(torch.float64).reshape(-1), hi.to(torch.float64).reshape(-1)
    if w <= 0 or p.numel() == 0:
        return lo.new_zeros(lo.shape), lo.new_zeros(lo.shape)
    qp = choose_qparams(lo.to(torch.float32), hi.to(torch.float32), spec)
    scale, zp = qp.scale.to(torch.float64), qp.zero_point.to(torch.float64)
    qmin, qmax = float(spec.qmin), float(spec.qmax)
    rounding, clipping = [], []
    for s in range(0, lo.numel(), CHUNK):
        sc, z = scale[s : s + CHUNK, None], zp[s : s + CHUNK, None]
        ua, ub = left / sc + z, (left + w) / sc + z
        clip = _square_integral(ua.clamp(max=qmin), ub.clamp(max=qmin), qmin)
        clip += _square_integral(ua.clamp(min=qmax), ub.clamp(min=qmax), qmax)
        inside = _sawtooth_integral(ub.clamp(qmin, qmax)) - _sawtooth_integral(ua.clamp(qmin, qmax))
        weight = p * sc**3 / w  # the mean over the bin (du = w / s), times s² to go back to x units
        rounding.append((inside * weight).sum(1))
        clipping.append((clip * weight).sum(1))
    return torch.cat(rounding), torch.cat(clipping)


def scoring_histogram(counts: torch.Tensor, zero_edge: int) -> tuple[torch.Tensor, int]:
    """(counts, factor): neighbouring bins merged in groups of ``factor`` (a power of two dividing both
    ``zero_edge`` and the number of bins, so 0 stays an edge) until at most MAX_SCORED_BINS are non-empty."""
    factor, B = 1, counts.numel()
    while (
        int((counts.reshape(-1, factor).sum(1) > 0).sum()) > MAX_SCORED_BINS
        and B % (2 * factor) == 0
        and zero_edge % (2 * factor) == 0
    ):
        factor *= 2
    return counts.reshape(-1, factor).sum(1), factor


def _window(best: int, stride: int, first: int, last: int) -> torch.Tensor:
    """Edges within two strides of ``best``, a quarter stride apart (every edge once stride < 4)."""
    step = max(1, stride // 4)
    return torch.arange(max(first, best - 2 * stride), min(last, best + 2 * stride) + 1, step)


def _coarse(first: int, last: int, stride: int) -> torch.Tensor:
    return torch.unique(torch.cat([torch.arange(first, last + 1, stride), torch.tensor([last])]))


def best_range(
    counts: torch.Tensor, edge0, width, spec: QuantSpec, *, zero_edge: int, data_range: tuple
) -> tuple[float, float]:
    """The range (lo, hi) with the least grid error; candidates are bin edges e_k = edge0 + k·width.

    Symmetric spec: (−e_b, e_b) for the edges right of ``zero_edge`` (the edge at 0). Asymmetric: (e_a, e_b)
    with a ≤ zero_edge ≤ b, a < b, clamped to ``data_range`` (the data's min and max). A coarse sweep
    (COARSE edges, or COARSE_2D per end and all their pairs) is refined around its best a quarter stride at a time, then by
    coordinate descent over single edges.
    """
    scored, factor = scoring_histogram(counts, zero_edge)
    B, w0, z = counts.numel(), float(width), zero_edge
    d_lo, d_hi = min(float(data_range[0]), 0.0), max(float(data_range[1]), 0.0)
    if spec.symmetric:  # (−T, T) is never clamped: both ends are one threshold
        d_lo, d_hi = -float("inf"), float("inf")

    def edge(k: torch.Tensor) -> torch.Tensor:
        return float(edge0) + k.to(torch.float64) * w0

    def argmin(a: torch.Tensor, b: torch.Tensor) -> tuple[int, int]:
        a, b = (g.flatten() for g in torch.meshgrid(a, b, indexing="ij"))
        a, b = (a, b) if not spec.symmetric else (2 * z - b, b)  # symmetric: b's mirror edge
        keep = a < b
        a, b = a[keep], b[keep]
        r, c = grid_error(
            scored, edge0, w0 * factor, edge(a).clamp(min=d_lo), edge(b).clamp(max=d_hi), spec=spec
        )
        i = int(torch.argmin(r + c))
        return int(a[i]), int(b[i])

    per_side = COARSE if spec.symmetric else COARSE_2D
    s_a, s_b = max(1, z // per_side), max(1, (B - z) // per_side)
    a, b = argmin(_coarse(0, z, s_a) if not spec.symmetric else torch.tensor([0]), _coarse(z, B, s_b))
    while max(s_a, s_b) > 1:
        a_cand = _window(a, s_a, 0, z) if not spec.symmetric else torch.tensor([0])
        a, b = argmin(a_cand, _window(b, s_b, z, B))
        s_a, s_b = max(1, s_a // 4), max(1, s_b // 4)
    for _ in range(0 if spec.symmetric else 4):  # coordinate descent, one end at a time
        moved = argmin(torch.tensor([a]), _window(b, 4, z, B))
        moved = argmin(_window(a, 4, 0, z), torch.tensor([moved[1]]))
        if moved == (a, b):
            break
        a, b = moved
    return float(edge(torch.tensor(a)).clamp(min=d_lo)), float(edge(torch.tensor(b)).clamp(max=d_hi))
