"""Time one observe() and one range() per observer, beside torch.ao's (``ptqlab bench observers``).

Every contender sees the same batches (float32, ``numel`` elements, a few draws of different scale so
that ranges are realistic), timed with ``timing.time_interleaved``: warm-up, then rounds that call every
contender once in a rotated order, so background load hits all of them alike. torch.ao's "range()" is
``calculate_qparams()`` (its search + qparams).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ptqlab.bench.timing import TimingStats, time_interleaved
from ptqlab.observers import OBSERVERS, make_observer


@dataclass(frozen=True)
class ObserverTiming:
    name: str
    observe: TimingStats
    range: TimingStats


def _contenders() -> dict[str, tuple[Callable, Callable]]:
    """name -> (observe(x), range()) of a fresh observer: ptqlab's registry, then torch.ao's."""
    out: dict[str, tuple[Callable, Callable]] = {}
    for name in OBSERVERS:
        obs = make_observer(name)
        out[name] = (obs.observe, obs.range)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated
        try:
            from torch.ao.quantization import HistogramObserver, MinMaxObserver
        except ImportError:  # pragma: no cover - torch without torch.ao
            return out
        for label, cls in (("torch.ao Histogram", HistogramObserver), ("torch.ao MinMax", MinMaxObserver)):
            obs = cls()
            out[label] = (obs.forward, obs.calculate_qparams)
    return out


def _per_channel_view(x: torch.Tensor) -> torch.Tensor:
    channels = next(c for c in (1000, 100, 10, 1) if x.numel() % c == 0)
    return x.reshape(channels, -1)


def time_observers(
    *, numel: int = 1_000_000, repeats: int = 15, warmup: int = 3, seed: int = 0
) -> list[ObserverTiming]:
    """observe() on ``numel`` float32 values and range() afterwards, per contender, interleaved."""
    if numel < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"numel and repeats must be >= 1, warmup >= 0; got {numel}, {repeats}, {warmup}")
    gen = torch.Generator().manual_seed(seed)
    batches = [torch.randn(numel, generator=gen) * s for s in (1.0, 1.1, 0.9, 1.05)]
    contenders = _contenders()
    observe_calls = {}
    for name, (observe, _) in contenders.items():
        shaped = [_per_channel_view(b) if name == "per_channel" else b for b in batches]
        stream = itertools.cycle(shaped)
        observe_calls[name] = lambda observe=observe, stream=stream: observe(next(stream))
    observe_stats = time_interleaved(observe_calls, repeats=repeats, warmup=warmup)
    range_stats = time_interleaved({n: c[1] for n, c in contenders.items()}, repeats=repeats, warmup=1)
    return [ObserverTiming(n, observe_stats[n], range_stats[n]) for n in contenders]


def observers_table(rows: list[ObserverTiming], numel: int) -> str:
    """One line per contender: observe() median ms (p10–p90), speed-up vs torch.ao Histogram, range() ms."""
    ref = next((r.observe.median_s for r in rows if r.name == "torch.ao Histogram"), None)
    lines = [
        f"observe(): one batch of {numel:,} float32 values; range(): the search (torch.ao: calculate_qparams)",
        f"{'observer':<20} {'observe ms':>10} {'(p10-p90)':>15} {'vs torch.ao Hist':>17} {'range ms':>9}",
    ]
    for r in rows:
        o = r.observe
        speedup = f"{ref / o.median_s:.2f}x" if ref else "-"
        spread = f"({1e3 * o.p10_s:.2f}-{1e3 * o.p90_s:.2f})"
        lines.append(
            f"{r.name:<20} {1e3 * o.median_s:>10.3f} {spread:>15} {speedup:>17} {1e3 * r.range.median_s:>9.3f}"
        )
    return "\n".join(lines)
