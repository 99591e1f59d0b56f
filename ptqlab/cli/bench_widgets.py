"""``ptqlab bench widgets``: what one drag of the ClippingExplorer costs, at a large tensor size.

ptqlab bench widgets [--numel 10000000] [--drags 50]

Builds the explorer on ``numel`` heavy-tailed floats (construction time and the growth of the process's
peak memory), then moves the range ``drags`` times with ``set_range`` and prints the median and p90 per
drag. Above ``EXACT_LIMIT`` elements the numbers are estimates from the one-time summary.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from ptqlab.widgets import ClippingExplorer
from ptqlab.widgets.clipping import EXACT_LIMIT


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="ptqlab bench widgets", description=__doc__.split("\n\n")[0])
    p.add_argument("--numel", type=int, default=10_000_000)
    p.add_argument("--drags", type=int, default=50)
    args = p.parse_args(argv)
    if args.numel < 2 or args.drags < 1:
        p.error("--numel must be >= 2 and --drags >= 1")
    gen = torch.Generator().manual_seed(0)
    x = torch.empty(args.numel)
    for chunk in x.split(1 << 20):  # in place, chunk by chunk: the peak before construction is x itself
        chunk.normal_(generator=gen).div_(torch.rand(chunk.numel(), generator=gen).clamp_min_(0.05))
    before = _peak_mib()
    t0 = time.perf_counter()
    w = ClippingExplorer(x)
    build_s = time.perf_counter() - t0
    lo, hi = float(x.min()), float(x.max())
    times = []
    for k in range(args.drags):
        f = (k + 1) / (args.drags + 1)
        t0 = time.perf_counter()
        w.set_range(lo * f, hi * (1 - f / 2))
        times.append(time.perf_counter() - t0)
    times.sort()
    mode = "exact error_split per drag" if args.numel <= EXACT_LIMIT else "estimates from the summary"
    print(
        f"ClippingExplorer on {args.numel:,} floats ({x.numel() * 4 / 2**20:.0f} MiB), {mode}; "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"  construction: {build_s * 1e3:.0f} ms, peak memory +{max(_peak_mib() - before, 0):.0f} MiB")
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    print(f"  per drag (set_range): median {statistics.median(times) * 1e3:.2f} ms, p90 {p90 * 1e3:.2f} ms")
    return 0
