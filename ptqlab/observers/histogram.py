"""A streaming histogram with a fixed number of bins over a range that only grows.

Bin k covers [lo + k·w, lo + (k+1)·w), w = (hi − lo) / B; the last bin also holds x = hi. Two layouts:

* ``centered=True``  the range is [−A, A], A = max |x| seen so far, with an even number B of bins. Folding
  the two halves gives the histogram of |x| over [0, A] with B/2 bins *exactly* (the edges coincide), so
  one histogram serves both symmetric searches (on |x|, TensorRT's layout) and two-sided ones.
* ``centered=False`` the range is [min x, max x] (torch.ao's HistogramObserver layout).

When a batch widens the range, the old counts are re-binned onto the new, wider grid by evaluating their
piecewise-linear CDF (mass spread uniformly inside each old bin) at the new edges, then differencing:

    C_new(e) = C_old(edge j) + frac · n_j,   u = (e − lo_old) / w_old,  j = ⌊u⌋,  frac = u − j

Deterministic, mass-preserving, O(B), and the identity when the range did not change (u is then exactly
an integer, so the counts come back bit for bit). Memory is the B counts plus four scalars whatever the
number of batches. The bin index is float32 arithmetic, except that where the span hi − lo overflows
float32 (|lo| + |hi| > 3.4e38) the factor B / span is computed in float64: ranges near float32's limits
keep all their bins instead of collapsing into one. The update runs on the tensors' device with no host read-back; counts are float64
(exact integers up to 2^53, fractional after a re-bin).
"""

from __future__ import annotations

import torch

from ptqlab.core import checks
from ptqlab.core.spec import PerTensor, QuantSpec
from ptqlab.observers.base import Observer


class StreamingHistogram:
    """``add(x, lo, hi)`` batch after batch (lo/hi: the batch's min and max, 0-d tensors)."""

    def __init__(self, bins: int = 4096, centered: bool = True, merge: str = "linear") -> None:
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise ValueError(f"bins must be an int >= 2, got {bins!r}")
        if merge not in MERGES:
            raise ValueError(f"merge must be one of {sorted(MERGES)}, got {merge!r}")
        self.merge = merge
        if centered and bins % 2:
            raise ValueError(f"a centered histogram needs an even number of bins, got {bins}")
        self.bins = bins
        self.centered = bool(centered)
        self.counts: torch.Tensor | None = None  # (bins,) float64
        self.lo: torch.Tensor | None = None  # grid range, float32 0-d
        self.hi: torch.Tensor | None = None
        self.data_min: torch.Tensor | None = None  # exact running min / max of the data, float32 0-d
        self.data_max: torch.Tensor | None = None

    @classmethod
    def of(cls, x: torch.Tensor, bins: int = 4096, centered: bool = True) -> StreamingHistogram:
        """The histogram of one tensor."""
        h = cls(bins, centered)
        x = checks.fits_float32(x, "x")
        h.add(x, *torch.aminmax(x))
        return h

    # ----------------------------------------------------------------------------------------------------
    def add(
        self, x: torch.Tensor, batch_min: torch.Tensor, batch_max: torch.Tensor, grew: bool | None = None
    ) -> None:
        """Add a batch. ``grew=False`` promises the batch lies inside the data range seen so far (the
        re-bin is then skipped); ``None`` (unknown) re-bins branch-free, an identity if nothing grew."""
        if self.counts is None:
            data_min, data_max = batch_min, batch_max
        else:
            data_min, data_max = (
                torch.minimum(self.data_min, batch_min),
                torch.maximum(self.data_max, batch_max),
            )
        if self.centered:
            a = torch.maximum(-data_min, data_max).clamp_min(0.0)
            lo, hi = -a, a
        else:
            lo, hi = data_min, data_max
        counts = self._bin(x, lo, hi)
        if self.counts is not None:
            counts += (
                self.counts if grew is False else MERGES[self.merge](self.counts, self.lo, self.hi, lo, hi)
            )
        self.counts, self.lo, self.hi, self.data_min, self.data_max = counts, lo, hi, data_min, data_max

    def _bin(self, x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """Counts of x on the grid [lo, hi] (float64); the index is ⌊(x − lo)·B/(hi − lo)⌋."""
        B = self.bins
        span = hi - lo  # float32; where it overflows (|lo| + |hi| > 3.4e38), B / span is taken in float64
        wide = (B / (hi.double() - lo.double())).float()
        scale = torch.where(torch.isfinite(span), B / span, wide)
        scale = torch.where(span > 0, scale, torch.zeros_like(span))
        if self.centered:  # lo = −A: the offset is exactly B/2, so x = 0 lands on the edge of bin B/2
            u = torch.addcmul(torch.full((), B / 2, dtype=torch.float32, device=x.device), x, scale)
        else:
            u = torch.sub(x, lo).mul_(scale)
        # u ∈ (−1, B·(1 + ε)]: truncation toward zero is ⌊u⌋ here, and x = hi gives B (folded below).
        if x.is_cuda:  # bincount on CUDA reads the max back to size its output; index_add_ does not
            idx = u.to(torch.int32).reshape(-1)
            counts = torch.zeros(B + 1, dtype=torch.float64, device=x.device)
            counts.index_add_(
                0, idx, torch.ones((), dtype=torch.float64, device=x.device).expand(idx.numel())
            )
        else:
            idx = u.to(torch.int16 if B < 32767 else torch.int32).reshape(-1)
            counts = torch.bincount(idx, minlength=B + 1).to(torch.float64)
        return torch.cat([counts[: B - 1], counts[B - 1 : B + 1].sum().reshape(1)])

    # ----------------------------------------------------------------------------------------------------
    @property
    def width(self) -> torch.Tensor:
        """Bin width (float64 0-d tensor)."""
        return (self.hi.double() - self.lo.double()) / self.bins

    def edges(self) -> torch.Tensor:
        """The B + 1 bin edges (float64)."""
        k = torch.arange(self.bins + 1, dtype=torch.float64, device=self.counts.device)
        return self.lo.double() + k * self.width

    def total(self) -> torch.Tensor:
        return self.counts.sum()

    def abs_counts(self) -> torch.Tensor:
        """Histogram of |x| over [0, A] with B/2 bins (centered layout only): the two halves folded."""
        if not self.centered:
            raise ValueError("abs_counts() needs a centered histogram (StreamingHistogram(centered=True))")
        half = self.bins // 2
        return self.counts[half:] + self.counts[:half].flip(0)

    def abs_width(self) -> torch.Tensor:
        """Bin width of ``abs_counts()``: A / (B/2), the same as ``width``."""
        return self.width


def rebin(
    counts: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, new_lo: torch.Tensor, new_hi: torch.Tensor
) -> torch.Tensor:
    """Re-bin ``counts`` (a grid on [lo, hi]) onto the same number of bins on [new_lo, new_hi] ⊇ [lo, hi].

    Mass inside an old bin is taken as uniform; an old zero-width range is a point mass at ``lo``.
    Branch-free (no host read-back): the degenerate cases are selected with ``torch.where``.
    """
    B = counts.numel()
    lo, hi, new_lo, new_hi = (t.double() for t in (lo, hi, new_lo, new_hi))
    span, new_span = hi - lo, new_hi - new_lo
    k = torch.arange(B + 1, dtype=torch.float64, device=counts.device)
    safe_span = torch.where(span > 0, span, torch.ones_like(span))
    # u_k = position of new edge k in old-bin units; exactly k when the range is unchanged.
    u = (new_lo - lo) * (B / safe_span) + k * (new_span / safe_span)
    j = u.floor().clamp(0, B - 1)
    frac = (u - j).clamp(0.0, 1.0)
    cdf = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    jl = j.long()
    new_cdf = cdf[jl] + frac * counts[jl]
    total = cdf[-1]
    point_mass = torch.where(new_lo + k * (new_span / B) > lo, total, torch.zeros_like(total))
    new_cdf = torch.where(span > 0, new_cdf, point_mass)
    new_cdf = torch.cat([new_cdf.new_zeros(1), new_cdf[1:B], total.reshape(1)])
    rebinned = new_cdf.diff().clamp_min(0.0)
    return torch.where((new_lo == lo) & (new_hi == hi), counts, rebinned)


def rebin_torch_ao(
    counts: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, new_lo: torch.Tensor, new_hi: torch.Tensor
) -> torch.Tensor:
    """torch.ao's merge (torch 2.13 ``HistogramObserver._upscale_histogram``): split every old bin into
    16 equal parts, put each part at its midpoint, and add it to the new bin holding that midpoint."""
    B, up = counts.numel(), 16
    dev = counts.device
    fine = counts.repeat_interleave(up) / up
    span = (hi - lo).to(torch.float32)
    mids = _linspace(lo, hi, B * up + 1)[:-1] + 0.5 * (span / (B * up))
    assign = torch.bucketize(mids, _linspace(new_lo, new_hi, B + 1), right=True) - 1
    merged = torch.zeros(B, dtype=counts.dtype, device=dev).index_add_(0, assign.clamp(0, B - 1), fine)
    point = torch.bucketize(lo.reshape(1), _linspace(new_lo, new_hi, B + 1), right=True).clamp(1, B) - 1
    point_mass = torch.zeros(B, dtype=counts.dtype, device=dev).index_add_(0, point, counts.sum().reshape(1))
    merged = torch.where(span > 0, merged, point_mass)
    return torch.where((new_lo == lo) & (new_hi == hi), counts, merged)


def _linspace(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """``torch.linspace`` with 0-d tensor ends, computed on their device without reading them back."""
    start, end = start.to(torch.float32), end.to(torch.float32)
    step = (end - start) / (steps - 1)
    i = torch.arange(steps, device=start.device, dtype=torch.float32)
    return torch.where(i < steps // 2, start + step * i, end - step * (steps - 1 - i))


MERGES = {"linear": rebin, "torch_ao": rebin_torch_ao}


class HistogramObserver(Observer):
    """Base of the histogram observers (per-tensor): a streaming histogram plus a search in ``_search``.

    ``symmetric`` and ``bits`` are the defaults that ``range()`` searches for; ``range_for(spec)`` and
    ``qparams(spec)`` search for ``spec`` instead (its bits and symmetry), from the same histogram:
    symmetric specs get (−T, T), asymmetric ones a two-sided (lo, hi). ``bins`` is the number of bins of
    the |x| histogram (TensorRT's 2048); the centered signed grid has twice as many.
    """

    name = "histogram"
    centered = True
    merge = "linear"

    def __init__(self, bins: int = 2048, symmetric: bool = True, bits: int = 8) -> None:
        if isinstance(bins, bool) or not isinstance(bins, int) or not 8 <= bins <= 16384:
            raise ValueError(f"bins must be an int in [8, 16384], got {bins!r}")
        if not isinstance(symmetric, bool):
            raise TypeError(f"symmetric must be a bool, got {type(symmetric).__name__}")
        QuantSpec(bits=bits)  # validates bits
        super().__init__()
        self.bins, self.symmetric, self.bits = bins, symmetric, bits
        self.hist = StreamingHistogram(2 * bins if self.centered else bins, self.centered, self.merge)

    def _config(self) -> dict:
        return {"bins": self.bins, "symmetric": self.symmetric, "bits": self.bits}

    def _hint(self, extrema: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor | None:
        if self.hist.counts is None:
            return None
        return (extrema[0] < self.hist.data_min) | (extrema[1] > self.hist.data_max)  # did the range grow?

    def _update(
        self, x: torch.Tensor, extrema: tuple[torch.Tensor, torch.Tensor], grew: bool | None = None
    ) -> None:
        self.hist.add(x, *extrema, grew=grew)

    def _range(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.range_for(QuantSpec(bits=self.bits, symmetric=self.symmetric))

    def range_for(self, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(spec, QuantSpec):
            raise TypeError(f"spec must be a QuantSpec, got {type(spec).__name__}")
        if not isinstance(spec.granularity, PerTensor):
            raise ValueError(f"{type(self).__name__} is per-tensor; got a spec with {spec.granularity}")
        self._require_data()
        lo, hi = self._search(spec)
        dev = self.hist.counts.device
        return (
            torch.as_tensor(lo, device=dev).to(torch.float32).reshape(()),
            torch.as_tensor(hi, device=dev).to(torch.float32).reshape(()),
        )

    def _search(self, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _symmetric_or_clipped(self, t: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
        """(−T, T) for a symmetric spec; else (max(−T, min), min(T, max)) (ONNX Runtime's convention)."""
        t = t.to(torch.float64)
        if spec.symmetric:
            return -t, t
        return torch.maximum(-t, self.hist.data_min.double()), torch.minimum(t, self.hist.data_max.double())
