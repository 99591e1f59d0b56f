"""Every per-tensor calibrator on the same data, side by side (what lab 02 shows).

    batches = mixture_batches(...)                     # or real activations
    stats = observe_stream(batches)                         # the heavy part: one pass, cache it
    results = compare_observers(stats, x_eval, spec, p=99.99)
    curve = error_curve(stats, spec)                   # the grid's error vs threshold (rounding/clipping)

``calibrate`` observes the stream once into a min/max, a moving average, one centered histogram (shared
by percentile, entropy and MSE) and torch.ao's histogram layout (for L2). ``compare_observers`` then only
runs the searches and quantizes ``x_eval``: cheap enough to rerun on every slider move.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ptqlab.core.affine import choose_qparams, representable_range
from ptqlab.core.metrics import error_split
from ptqlab.core.spec import QuantSpec
from ptqlab.observers import PER_TENSOR, Observer
from ptqlab.observers.entropy import EntropyObserver
from ptqlab.observers.grid_error import grid_error
from ptqlab.observers.l2 import L2Observer
from ptqlab.observers.minmax import MinMaxObserver
from ptqlab.observers.moving_average import MovingAverageMinMaxObserver
from ptqlab.observers.mse import MSEObserver
from ptqlab.observers.percentile import PercentileObserver
from ptqlab.observers.threshold_error import ThresholdError

BODIES = ("gaussian", "uniform", "relu")


def mixture_batches(
    n_batches: int = 8,
    batch_size: int = 8192,
    *,
    outlier_size: float = 20.0,
    outlier_fraction: float = 0.001,
    body: str = "gaussian",
    seed: int = 0,
) -> list[torch.Tensor]:
    """Synthetic activations: a body (N(0,1), U(−√3, √3) or ReLU(N(0,1))) where a share ``outlier_fraction``
    of values is replaced by outliers of random sign and magnitude uniform in [¼, 1]·``outlier_size``
    (positive only for the ReLU body)."""
    if body not in BODIES:
        raise ValueError(f"body must be one of {BODIES}, got {body!r}")
    if not (
        isinstance(n_batches, int) and n_batches >= 1 and isinstance(batch_size, int) and batch_size >= 1
    ):
        raise ValueError("n_batches and batch_size must be positive ints")
    if not 0 <= outlier_fraction <= 1:
        raise ValueError(f"outlier_fraction must lie in [0, 1], got {outlier_fraction}")
    if not outlier_size >= 0:
        raise ValueError(f"outlier_size must be >= 0, got {outlier_size}")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        if body == "uniform":
            x = (torch.rand(batch_size, generator=gen) * 2 - 1) * 3**0.5
        else:
            x = torch.randn(batch_size, generator=gen)
            x = x.clamp_min(0) if body == "relu" else x
        is_outlier = torch.rand(batch_size, generator=gen) < outlier_fraction
        sign = torch.randint(0, 2, (batch_size,), generator=gen).float() * 2 - 1
        sign = sign.abs() if body == "relu" else sign
        magnitude = outlier_size * (0.25 + 0.75 * torch.rand(batch_size, generator=gen))
        out.append(torch.where(is_outlier, sign * magnitude, x))
    return out


@dataclass
class CalibrationStats:
    """What one pass over the calibration stream leaves behind."""

    minmax: MinMaxObserver
    moving_average: MovingAverageMinMaxObserver
    histogram: MSEObserver  # its centered histogram is shared by percentile / entropy / MSE
    l2: L2Observer


def observe_stream(batches, bins: int = 2048) -> CalibrationStats:
    """Observe every batch once into the four streaming states (the expensive step: cache it)."""
    if isinstance(batches, torch.Tensor):
        batches = [batches]
    stats = CalibrationStats(
        MinMaxObserver(), MovingAverageMinMaxObserver(), MSEObserver(bins), L2Observer(bins)
    )
    for x in batches:
        for obs in (stats.minmax, stats.moving_average, stats.histogram, stats.l2):
            obs.observe(x)
    return stats


@functools.lru_cache(maxsize=32)
def synthetic_calibration(
    body: str = "gaussian",
    outlier_size: float = 20.0,
    outlier_fraction: float = 0.001,
    n_batches: int = 8,
    *,
    batch_size: int = 4096,
    eval_size: int = 65536,
    seed: int = 0,
) -> tuple[CalibrationStats, torch.Tensor]:
    """Calibrate on ``n_batches`` synthetic batches and draw an evaluation set from the same mixture
    (another seed). Cached per data setting: moving a bits / p / symmetry slider reuses it."""
    batches = mixture_batches(
        n_batches,
        batch_size,
        outlier_size=outlier_size,
        outlier_fraction=outlier_fraction,
        body=body,
        seed=seed,
    )
    x_eval = torch.cat(
        mixture_batches(
            1,
            eval_size,
            outlier_size=outlier_size,
            outlier_fraction=outlier_fraction,
            body=body,
            seed=seed + 10_000,
        )
    )
    return observe_stream(batches), x_eval


def observers(stats: CalibrationStats, p: float = 99.99) -> dict[str, Observer]:
    """The six per-tensor calibrators, the histogram ones sharing the already observed histogram."""
    shared = {}
    for name, cls, kw in (("percentile", PercentileObserver, {"p": p}), ("entropy", EntropyObserver, {})):
        obs = cls(bins=stats.histogram.bins, **kw)
        obs.hist, obs.batches = stats.histogram.hist, stats.histogram.batches
        shared[name] = obs
    built = {
        "minmax": stats.minmax,
        "moving_average": stats.moving_average,
        "percentile": shared["percentile"],
        "entropy": shared["entropy"],
        "mse": stats.histogram,
        "l2": stats.l2,
    }
    return {name: built[name] for name in PER_TENSOR}  # the registry's order and names


@dataclass(frozen=True)
class ObserverResult:
    name: str
    lo: float
    hi: float
    mse: float
    sqnr_db: float
    rounding_mse: float
    clipping_mse: float
    clipped_fraction: float
    grid_lo: float  # the real interval the integer grid covers: [(qmin − zp)·s, (qmax − zp)·s]
    grid_hi: float


def compare_observers(stats, x_eval: torch.Tensor, spec: QuantSpec, p: float = 99.99) -> list[ObserverResult]:
    """Range, and the error it causes on ``x_eval``, for every calibrator. ``stats``: CalibrationStats or
    batches (then calibrated here)."""
    if not isinstance(stats, CalibrationStats):
        stats = observe_stream(stats)
    results = []
    for name, obs in observers(stats, p).items():
        lo, hi = obs.range_for(spec)
        results.append(score_range(name, lo, hi, x_eval, spec))
    return results


def score_range(name: str, lo, hi, x_eval: torch.Tensor, spec: QuantSpec) -> ObserverResult:
    """The error the range [lo, hi] causes on ``x_eval``: ``error_split(x_eval, choose_qparams(lo, hi, spec),
    spec)``, with the interval the grid then covers. Scores a calibrator's range or one picked by hand."""
    qparams = choose_qparams(lo, hi, spec)
    split = error_split(x_eval, qparams, spec)
    grid_lo, grid_hi = representable_range(qparams, spec)
    return ObserverResult(
        name=name,
        lo=float(lo),
        hi=float(hi),
        mse=split.total_mse,
        sqnr_db=split.sqnr_db,
        rounding_mse=split.rounding_mse,
        clipping_mse=split.clipping_mse,
        clipped_fraction=split.clipped_fraction,
        grid_lo=float(grid_lo),
        grid_hi=float(grid_hi),
    )


def best(results: list[ObserverResult]) -> ObserverResult:
    """The result with the highest SQNR (the first of equals)."""
    return max(results, key=lambda r: r.sqnr_db)


def error_curve(stats: CalibrationStats, spec: QuantSpec, points: int = 400) -> ThresholdError:
    """The squared error per element of the actual grid versus the clipping threshold, from the histogram
    (``grid_error``: each bin's mass rounded to that range's own grid), at ``points`` thresholds.

    Symmetric spec: thresholds T (range (−T, T)). Asymmetric spec: the upper end ``hi`` of the range, with
    the lower end held at the mse calibrator's choice (a slice through the two-sided error surface).
    """
    h = stats.histogram.hist
    top = float(torch.maximum(-h.data_min, h.data_max)) if spec.symmetric else float(h.data_max)
    top = max(top, 0.0)
    t = torch.linspace(top / points, top, points, dtype=torch.float64)
    if spec.symmetric:
        lo = -t
    else:
        lo = torch.full_like(t, float(stats.histogram.range_for(spec)[0]))
    rounding, clipping = grid_error(h.counts, h.lo.double(), h.width, lo, t, spec=spec)
    return ThresholdError(thresholds=t, rounding=rounding, clipping=clipping)


# ---- what lab 02 shows ---------------------------------------------------------------------------------

TIE_DB = 0.005  # SQNR differences below this print as "a tie" (the table shows two decimals)


def lab_grid(bits: int, symmetric: bool) -> QuantSpec:
    """The lab's grid: signed symmetric int, or unsigned asymmetric uint."""
    return QuantSpec(bits=int(bits), signed=symmetric, symmetric=symmetric)


def verdict_markdown(mine: ObserverResult, rivals: list[ObserverResult], spec: QuantSpec) -> str:
    """Your hand-picked range against the best calibrator: SQNR, clipped share (3 significant digits, as the
    widget prints it), and who wins by how much."""
    top = best(rivals)
    gap = mine.sqnr_db - top.sqnr_db
    if abs(gap) < TIE_DB:
        verdict = "a tie"
    elif gap > 0:
        verdict = f"you beat it by {gap:.2f} dB"
    else:
        verdict = f"you are {-gap:.2f} dB behind"
    return (
        f"**Your range** [{mine.lo:.3f}, {mine.hi:.3f}] on `{spec}`: SQNR "
        f'**<span id="ptq-lab02-sqnr">{mine.sqnr_db:.2f} dB</span>**, {100 * mine.clipped_fraction:.3g} % of '
        f"the values clipped. The best calibrator here, **{top.name}** [{top.lo:.3f}, {top.hi:.3f}], gets "
        f"{top.sqnr_db:.2f} dB: {verdict}."
    )
