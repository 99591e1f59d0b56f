"""``ptqlab bench observers``: time one observe() and one range() per observer, beside torch.ao's.

Every contender sees the same batches (float32, ``--numel`` elements, a few different draws so that
ranges are realistic), in the same run. After a warm-up, the repeats are *interleaved* (each round times
every contender once, in an order rotated each round so that none always meets a cold or warm cache)
so that load from other processes hits all of them alike; the table shows the median and the spread
(min–max). torch.ao's "range()" is ``calculate_qparams()`` (its search + qparams).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from dataclasses import dataclass

import torch

from ptqlab.observers import OBSERVERS, make_observer


@dataclass
class Row:
    name: str
    observe_ms: list[float]
    range_ms: list[float]

    @property
    def observe(self) -> float:
        return statistics.median(self.observe_ms)

    @property
    def range(self) -> float:
        return statistics.median(self.range_ms)


def _contenders() -> dict[str, tuple[object, object, object]]:
    """name -> (observer, observe(x), range()) callables."""
    out = {}
    for name in OBSERVERS:
        obs = make_observer(name)
        out[name] = (obs, obs.observe, obs.range)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated
        try:
            from torch.ao.quantization import HistogramObserver, MinMaxObserver
        except ImportError:  # pragma: no cover - torch without torch.ao
            return out
        for label, cls in (("torch.ao Histogram", HistogramObserver), ("torch.ao MinMax", MinMaxObserver)):
            obs = cls()
            out[label] = (obs, obs.forward, obs.calculate_qparams)
    return out


def _per_channel_view(x: torch.Tensor) -> torch.Tensor:
    for channels in (1000, 100, 10, 1):
        if x.numel() % channels == 0:
            return x.reshape(channels, -1)
    return x  # pragma: no cover


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1e3


def run(numel: int = 1_000_000, repeats: int = 15, warmup: int = 3, seed: int = 0) -> list[Row]:
    gen = torch.Generator().manual_seed(seed)
    batches = [torch.randn(numel, generator=gen) * s for s in (1.0, 1.1, 0.9, 1.05)]
    contenders = _contenders()
    rows = {name: Row(name, [], []) for name in contenders}
    names = list(contenders)
    for r in range(warmup + repeats):
        x = batches[r % len(batches)]
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate: no one always goes first
        for name in order:
            observe = contenders[name][1]
            t = _timed(observe, _per_channel_view(x) if name == "per_channel" else x)
            if r >= warmup:
                rows[name].observe_ms.append(t)
    for r in range(max(1, repeats)):
        for name, (_, _, search) in contenders.items():
            t = _timed(search)
            if r > 0 or repeats == 1:
                rows[name].range_ms.append(t)
    return list(rows.values())


def format_table(rows: list[Row], numel: int) -> str:
    ref = next((r.observe for r in rows if r.name == "torch.ao Histogram"), None)
    lines = [
        f"observe(): one batch of {numel:,} float32 values; range(): the search (torch.ao: calculate_qparams)",
        f"{'observer':<20} {'observe ms':>10} {'(min-max)':>15} {'vs torch.ao Hist':>17} {'range ms':>9}",
    ]
    for r in rows:
        speedup = f"{ref / r.observe:.2f}x" if ref else "-"
        spread = f"({min(r.observe_ms):.2f}-{max(r.observe_ms):.2f})"
        lines.append(f"{r.name:<20} {r.observe:>10.3f} {spread:>15} {speedup:>17} {r.range:>9.3f}")
    return "\n".join(lines)


def lab_render_ms(repeats: int = 5) -> dict[str, float]:
    """Median ms of lab 02's work after a slider move: a new data setting (uncached calibration of 8
    and of 64 batches), and a bits / p / grid change (searches + evaluation, building both figures,
    and rendering them as marimo does: PNG at twice the figure dpi with a tight bounding box)."""
    import io

    from ptqlab import plots_calibration as pc
    from ptqlab.observers import compare as oc
    from ptqlab.spec import QuantSpec

    def render(fig) -> None:
        try:
            from marimo._output.mpl import _render_figure_mimebundle

            _render_figure_mimebundle(fig.canvas)
        except ImportError:  # pragma: no cover - marimo absent
            fig.savefig(io.BytesIO(), format="png", dpi=2 * fig.dpi, bbox_inches="tight")

    times: dict[str, list[float]] = {"calibrate 8 batches": [], "calibrate 64 batches": [], "re-render": []}
    for r in range(repeats):
        for n in (8, 64):
            start = time.perf_counter()
            oc.synthetic_calibration.__wrapped__("gaussian", 20.0, 0.0001 * (1 + r), n)
            times[f"calibrate {n} batches"].append((time.perf_counter() - start) * 1e3)
        stats, x_eval = oc.synthetic_calibration("gaussian", 20.0, 0.0001, 8)
        symmetric = r % 2 == 0
        start = time.perf_counter()
        spec = QuantSpec(bits=4 + r, signed=symmetric, symmetric=symmetric)
        results = oc.compare_observers(stats, x_eval, spec, p=99.99)
        render(pc.ranges_figure(stats, results))
        render(pc.error_curve_figure(oc.error_curve(stats, spec), results, symmetric))
        pc.results_markdown(results)
        times["re-render"].append((time.perf_counter() - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ptqlab bench observers", description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=1_000_000, help="elements per batch (default 1M)")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--lab", action="store_true", help="also time lab 02's work after a slider move")
    args = parser.parse_args(argv)
    if args.numel < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("--numel and --repeats must be >= 1, --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPU(s), "
        f"load average {load:.2f}; median of {args.repeats} interleaved repeats after {args.warmup} warm-up"
    )
    rows = run(args.numel, args.repeats, args.warmup)
    print(format_table(rows, args.numel))
    if args.lab:
        print("\nlab 02 after a slider move (median ms):")
        for name, ms in lab_render_ms().items():
            print(f"  {name:<22} {ms:8.1f}")
    return 0
