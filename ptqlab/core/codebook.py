"""Non-uniform grids: a k-means codebook per tensor, and NF4 (QLoRA's 4-bit normal float).

k-means (Han et al. 2016, "Deep Compression"): store b-bit indices into a codebook of k = 2^b float centroids
c_0 < … < c_{k−1}; x̂_i = c[idx_i]. Lloyd's algorithm minimizes Σ (x_i − c[idx_i])²:

    assign   idx_i = argmin_j |x_i − c_j|        (1-D: compare with the midpoints between sorted centroids)
    update   c_j = mean{x_i : idx_i = j}         (an empty cluster keeps its centroid)

Neither step can increase the MSE; the loop runs until the centroids stop moving (a fixed point of Lloyd's
iteration, in float32) or ``iterations`` (a cap, default 1000) is reached: ``Codebook.iterations`` says how
many ran and ``converged`` whether the fixed point was reached. Sums are taken in float64, so finite data
up to float32's limit (±3.4e38) gives finite centroids. Started from the k levels of the linear (asymmetric min-max) grid, whose
nearest-level assignment *is* linear quantization, k-means therefore never ends worse than linear at the same
number of levels. ``init="random"`` starts from k distinct data values drawn with a seeded generator.
Bits per weight, the codebook counted: b + k · 16 / n (fp16 centroids). Hardware needs a table lookup
(a gather) before every multiply-add — no integer GEMM, so codebooks save storage and bandwidth, not math.

NF4 (Dettmers et al. 2023, "QLoRA"): 16 values at quantiles of N(0, 1), normalized to [−1, 1], with an
exact 0: 8 positive values Φ⁻¹(linspace(δ, ½, 9)[:-1]), 7 negative −Φ⁻¹(linspace(δ, ½, 8)[:-1]), δ = 0.9677083,
divided by the largest. Each block of 64 weights stores its absmax (fp32): x̂ = absmax · NF4[idx],
4 + 32/64 = 4.5 bits per weight (QLoRA's double quantization brings the scale cost down to ≈ 0.127 bits).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ptqlab.core import checks
from ptqlab.core.affine import fake_quantize, integer_grid, qparams_for
from ptqlab.core.spec import QuantSpec

NF4_OFFSET = 0.9677083
MAX_ITERATIONS = 1000


class Codebook(NamedTuple):
    centroids: torch.Tensor  # (k,) float32, sorted
    indices: torch.Tensor  # int64, x's shape
    iterations: int = 0  # Lloyd iterations run
    converged: bool = True  # the centroids reached a fixed point within the cap

    def dequantize(self) -> torch.Tensor:
        return self.centroids[self.indices]


def nearest(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid (sorted centroids; a tie goes to the lower one)."""
    midpoints = (centroids[1:] + centroids[:-1]) / 2
    return torch.searchsorted(midpoints, x.contiguous(), right=False)


def linear_levels(x: torch.Tensor, bits: int) -> torch.Tensor:
    """The 2^bits levels of the asymmetric min-max linear grid (ptqlab's affine quantizer) for x."""
    spec = QuantSpec(bits, signed=False, symmetric=False)
    return integer_grid(qparams_for(x, spec), spec).reshape(-1).float()


def linear_quantize(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Linear quantization with the same number of levels (asymmetric, per tensor, min-max)."""
    spec = QuantSpec(bits, signed=False, symmetric=False)
    return fake_quantize(x, qparams_for(x, spec), spec)


def kmeans_quantize(
    x: torch.Tensor, bits: int, *, seed: int = 0, iterations: int = MAX_ITERATIONS, init: str = "linear"
) -> Codebook:
    """A 2^bits-entry codebook for x by Lloyd's algorithm to convergence (deterministic for a given seed)."""
    x = checks.fits_float32(x, "x")
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an int in [2, 8], got {bits!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    flat = x.detach().reshape(-1)
    k = 2**bits
    if init == "linear":
        centroids = linear_levels(flat, bits)
    elif init == "random":
        values = torch.unique(flat)
        pick = torch.randperm(len(values), generator=torch.Generator().manual_seed(seed))[:k]
        centroids = values[pick]
    else:
        raise ValueError(f"init must be 'linear' or 'random', got {init!r}")
    centroids, flat64 = torch.sort(centroids).values, flat.double()
    converged, done = False, 0
    while done < iterations and not converged:
        idx = nearest(flat, centroids)
        sums = torch.zeros(len(centroids), dtype=torch.float64).index_add_(0, idx, flat64)
        counts = torch.bincount(idx, minlength=len(centroids)).double()
        updated = torch.where(counts > 0, sums / counts.clamp(min=1), centroids.double()).float()
        updated = torch.sort(updated).values
        converged, centroids, done = torch.equal(updated, centroids), updated, done + 1
    return Codebook(centroids, nearest(flat, centroids).reshape(x.shape), done, converged)


def codebook_bits_per_weight(numel: int, bits: int, centroid_bits: int = 16) -> float:
    """b + 2^b · centroid_bits / n."""
    return bits + 2**bits * centroid_bits / numel


def normal_float_codebook(offset: float = NF4_OFFSET) -> torch.Tensor:
    """NF4's 16 values, derived step for step as bitsandbytes' ``create_normal_map``: probabilities from a
    float32 linspace, Φ⁻¹ in float64, then float32 values divided by the largest."""
    positive = torch.special.ndtri(torch.linspace(offset, 0.5, 9)[:-1].double())
    negative = -torch.special.ndtri(torch.linspace(offset, 0.5, 8)[:-1].double())
    values = torch.sort(torch.cat([positive, torch.zeros(1, dtype=torch.float64), negative]).float()).values
    return values / values.max()


def nf4_quantize(x: torch.Tensor, block_size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(indices, absmax per block, x̂): blocks of ``block_size`` consecutive values (flattened), each scaled
    by its absmax and rounded to the nearest NF4 value."""
    x = checks.float_tensor(x, "x")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if x.numel() % block_size:
        raise ValueError(f"block_size={block_size} does not divide the {x.numel()} elements of x")
    blocks = x.detach().reshape(-1, block_size).float()
    absmax = blocks.abs().amax(dim=1, keepdim=True)
    safe = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    table = normal_float_codebook()
    idx = nearest(blocks / safe, table)
    return idx.reshape(x.shape), absmax.reshape(-1), (table[idx] * absmax).reshape(x.shape)
