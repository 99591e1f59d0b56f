"""Expected quantization error versus clipping threshold, for every candidate at once, from a histogram.

Symmetric grid on a histogram of |x| (B bins of width w over [0, A]); candidate thresholds T_i = i·w,
i = 1..B; the grid has ``steps`` = qmax − qmin intervals over [−T, T], so its step is Δ_i = 2·T_i / steps.
Values are taken as uniform inside each bin (bin j: centre c_j = (j + ½)·w). Per element (divide by N):

    rounding(i) = N_inside(i) · Δ_i² / 12                                 (uniform rounding-error model)
    clipping(i) = Σ_{j ≥ i} n_j · [(c_j − T_i)² + w²/12]                  (exact for uniform-in-bin mass)
    total(i)    = rounding(i) + clipping(i)

Two-sided grid [e_a, e_b] on a signed histogram (edges e_k = lo + k·w), Δ = (e_b − e_a) / steps:

    rounding(a, b) = (n_a + … + n_{b−1}) · Δ² / 12
    clipping(a, b) = Σ_{j < a} n_j [(e_a − c_j)² + w²/12] + Σ_{j ≥ b} n_j [(c_j − e_b)² + w²/12]

Each sum is a prefix sum of n, n·(j+½), n·(j+½)² (in bin units), so every candidate costs O(1) after
one O(B) pass: no loop over candidates. Rounding error is the Δ²/12 model (Bennett); it overestimates
for mass sitting exactly on grid points (e.g. the zeros after a ReLU), which the histogram cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ThresholdError:
    """Per-candidate expected squared error per element (float64 tensors of equal length)."""

    thresholds: torch.Tensor
    rounding: torch.Tensor
    clipping: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.rounding + self.clipping

    def best(self) -> int:
        """Index of the candidate with the least total error (the first one on ties)."""
        return int(torch.argmin(self.total))


class _Moments:
    """Prefix sums of p_j, p_j·(j+½), p_j·(j+½)² with p = n / N (bin units, float64)."""

    def __init__(self, counts: torch.Tensor) -> None:
        n = counts.to(torch.float64)
        total = n.sum()
        p = n / torch.where(total > 0, total, torch.ones_like(total))
        c = torch.arange(n.numel(), dtype=torch.float64, device=n.device) + 0.5
        zero = p.new_zeros(1)
        self.P0, self.P1, self.P2 = (torch.cat([zero, (p * c**k).cumsum(0)]) for k in range(3))

    def below(self, a: torch.Tensor) -> torch.Tensor:
        """Σ_{j<a} p_j (a − c_j)² + p_j/12, in bin² units."""
        a_f = a.to(torch.float64)
        P0, P1, P2 = self.P0[a], self.P1[a], self.P2[a]
        return (a_f**2 * P0 - 2 * a_f * P1 + P2 + P0 / 12).clamp_min(0.0)

    def above(self, b: torch.Tensor) -> torch.Tensor:
        """Σ_{j≥b} p_j (c_j − b)² + p_j/12, in bin² units."""
        b_f = b.to(torch.float64)
        Q0, Q1, Q2 = (P[-1] - P[b] for P in (self.P0, self.P1, self.P2))
        return (Q2 - 2 * b_f * Q1 + b_f**2 * Q0 + Q0 / 12).clamp_min(0.0)

    def inside(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.P0[b] - self.P0[a]


def threshold_error(abs_counts: torch.Tensor, width, steps: int) -> ThresholdError:
    """Rounding, clipping and total error for every threshold T_i = i·width, i = 1..B (symmetric grid)."""
    _check_steps(steps)
    m = _Moments(abs_counts)
    w = torch.as_tensor(width, dtype=torch.float64, device=abs_counts.device)
    i = torch.arange(1, abs_counts.numel() + 1, device=abs_counts.device)
    delta = 2 * i.to(torch.float64) * w / steps
    rounding = m.inside(torch.zeros_like(i), i) * delta**2 / 12
    clipping = m.above(i) * w**2
    return ThresholdError(thresholds=i.to(torch.float64) * w, rounding=rounding, clipping=clipping)


def range_error(
    counts: torch.Tensor,
    width,
    steps: int,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    moments: _Moments | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rounding, clipping) per element for the grids [e_a, e_b] (a < b edge indices, broadcast)."""
    _check_steps(steps)
    m = _Moments(counts) if moments is None else moments
    w = torch.as_tensor(width, dtype=torch.float64, device=counts.device)
    delta = (b - a).to(torch.float64) * w / steps
    rounding = m.inside(a, b) * delta**2 / 12
    clipping = (m.below(a) + m.above(b)) * w**2
    return rounding, clipping


def best_two_sided(
    counts: torch.Tensor, width, steps: int, zero_edge: int, max_rounds: int = 64
) -> tuple[int, int]:
    """Edges (a, b), a ≤ zero_edge ≤ b, a < b, minimising rounding + clipping, by coordinate descent.

    Each round minimises over all b for the current a, then over all a for that b (each one vectorised
    over ~B candidates); it stops when neither moves. The grid must contain zero (affine grids do).
    """
    B = counts.numel()
    m = _Moments(counts)
    dev = counts.device
    a, b = 0, B
    for _ in range(max_rounds):
        bs = torch.arange(max(zero_edge, a + 1), B + 1, device=dev)
        r, c = range_error(counts, width, steps, torch.full_like(bs, a), bs, moments=m)
        new_b = int(bs[torch.argmin(r + c)])
        as_ = torch.arange(0, min(zero_edge, new_b - 1) + 1, device=dev)
        r, c = range_error(counts, width, steps, as_, torch.full_like(as_, new_b), moments=m)
        new_a = int(as_[torch.argmin(r + c)])
        if (new_a, new_b) == (a, b):
            break
        a, b = new_a, new_b
    return a, b


def _check_steps(steps: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps (qmax - qmin) must be a positive int, got {steps!r}")
