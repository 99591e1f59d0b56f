"""Honest timing: warm-up, many repeats, variants interleaved round-robin in one process, robust statistics.

Why interleave: on a shared machine the background load drifts over seconds; timing variant A for 10 s and
then variant B for 10 s attributes the drift to the variants. Round-robin (A B C, B C A, C A B, ...) spreads it
evenly, so the *ratio* between variants stays honest even when the absolute numbers are noisy.

Statistics: the median (robust to the occasional preempted run) and the p10/p90 spread, with percentiles by
linear interpolation between order statistics: p = q·(n−1) → x[⌊p⌋] + (p−⌊p⌋)·(x[⌊p⌋+1] − x[⌊p⌋])
(numpy's default "linear" method).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class TimingStats:
    median_s: float
    p10_s: float
    p90_s: float
    mean_s: float
    min_s: float
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


def percentile(sorted_times: Sequence[float], q: float) -> float:
    """The q-quantile (0 ≤ q ≤ 1) of already-sorted numbers by linear interpolation."""
    if not sorted_times:
        raise ValueError("sorted_times is empty")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must lie in [0, 1], got {q}")
    pos = q * (len(sorted_times) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_times) - 1)
    return sorted_times[lo] + (pos - lo) * (sorted_times[hi] - sorted_times[lo])


def summarize(times: Sequence[float]) -> TimingStats:
    """Median, p10, p90, mean and minimum of a list of durations (seconds)."""
    if len(times) == 0:
        raise ValueError("times is empty: nothing was measured")
    if any(not math.isfinite(t) or t < 0 for t in times):
        raise ValueError("times must be finite and non-negative")
    s = sorted(float(t) for t in times)
    return TimingStats(
        median_s=percentile(s, 0.5),
        p10_s=percentile(s, 0.1),
        p90_s=percentile(s, 0.9),
        mean_s=sum(s) / len(s),
        min_s=s[0],
        n=len(s),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def repeats_within_budget(first_call_s: float, repeats: int, budget_s: float | None, minimum: int = 3) -> int:
    """How many timed repeats fit in ``budget_s`` when one call takes ``first_call_s`` (never below ``minimum``)."""
    if budget_s is None or first_call_s <= 0:
        return repeats
    return max(min(minimum, repeats), min(repeats, int(budget_s // first_call_s)))


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    repeats: int = 20,
    warmup: int = 3,
    budget_s: float | None = None,
    device: str | torch.device = "cpu",
    on_step: Callable[[str], None] | None = None,
) -> dict[str, TimingStats]:
    """Time zero-argument callables round-robin under ``torch.inference_mode``.

    Every variant gets ``warmup`` untimed calls, then ``repeats`` timed ones, one per round, with the start of
    the round rotating so no variant always runs first. A variant whose warm-up call is slower than
    ``budget_s / repeats`` is timed fewer times (see ``repeats_within_budget``; its ``n`` says how many).
    ``on_step(name)`` is called after every call (for a progress bar).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    device = torch.device(device)
    names = list(fns)
    if not names:
        return {}
    planned: dict[str, int] = {}
    times: dict[str, list[float]] = {n: [] for n in names}
    with torch.inference_mode():
        for name in names:
            first = 0.0
            for _ in range(max(warmup, 1)):
                _sync(device)
                t0 = time.perf_counter()
                fns[name]()
                _sync(device)
                first = time.perf_counter() - t0
                if on_step:
                    on_step(name)
            planned[name] = repeats_within_budget(first, repeats, budget_s)
        for r in range(repeats):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                if len(times[name]) >= planned[name]:
                    continue
                _sync(device)
                t0 = time.perf_counter()
                fns[name]()
                _sync(device)
                times[name].append(time.perf_counter() - t0)
                if on_step:
                    on_step(name)
    return {n: summarize(times[n]) for n in names}


def measure_read_bandwidth(
    nbytes: int = 1 << 30, repeats: int = 7, device: str | torch.device = "cpu"
) -> tuple[float, TimingStats]:
    """Read bandwidth (bytes/s): ``nbytes`` / fastest time to stream an ``nbytes`` float32 tensor once.

    Two streaming kernels run interleaved — ``x.sum()`` and a matrix-vector product ``X·v`` over the same
    bytes (exactly what a batch-1 Linear does) — and the faster one counts: on some CPUs the reduction is
    not vectorized well enough to saturate memory, the GEMV is. The tensor should be far larger than the
    last-level cache, so every byte comes from DRAM, like a large model's weights at batch 1. The *fastest* run
    is used: the roofline is a best case, and on a shared machine slower runs measure the neighbours.
    """
    device = torch.device(device)
    cols = 4096
    rows = max(nbytes // (4 * cols), 1)
    x = torch.ones(rows, cols, dtype=torch.float32, device=device)
    v = torch.ones(cols, dtype=torch.float32, device=device)
    stats = time_interleaved(
        {"sum": x.sum, "gemv": lambda: torch.mv(x, v)}, repeats=repeats, warmup=1, device=device
    )
    best = min(stats.values(), key=lambda s: s.min_s)
    return 4 * rows * cols / best.min_s, best
