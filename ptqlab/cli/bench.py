"""``ptqlab bench accuracy`` and ``ptqlab bench observers``: argument parsing and printing only."""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from ptqlab.bench.accuracy import digits_table, minilm_table
from ptqlab.bench.observers import observers_table, time_observers

BYTES_PER_ELEMENT = 16  # the float32 batch and the observers' working copies (abs, histogram indices, …)


def physical_memory() -> int | None:
    """Bytes of RAM (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def accuracy(argv: list[str]) -> int:
    """Print the digits models' and MiniLM's accuracy under the standard simulated schemes."""
    parser = argparse.ArgumentParser(
        prog="ptqlab bench accuracy", description="accuracy of the real models under simulated PTQ"
    )
    parser.add_argument("--no-minilm", action="store_true", help="digits models only")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print("\n".join(digits_table()))
    if not args.no_minilm:
        print()
        print("\n".join(minilm_table()))
    print(f"\n({time.perf_counter() - start:.1f} s)")
    return 0


def observers(argv: list[str]) -> int:
    """Print observe()/range() timings per observer beside torch.ao's."""
    parser = argparse.ArgumentParser(
        prog="ptqlab bench observers", description="observe() and range() per observer vs torch.ao"
    )
    parser.add_argument("--numel", type=int, default=1_000_000, help="elements per batch (default 1M)")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.numel < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("--numel and --repeats must be >= 1, --warmup >= 0")
    need, have = args.numel * BYTES_PER_ELEMENT, physical_memory()
    if have and need > have:
        print(
            f"ptqlab bench observers: --numel {args.numel} needs about {need / 2**30:.1f} GiB, "
            f"more than this machine's {have / 2**30:.1f} GiB",
            file=sys.stderr,
        )
        return 2
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPU(s), "
        f"load average {load:.2f}; median of {args.repeats} interleaved repeats after {args.warmup} warm-up"
    )
    print(
        observers_table(
            time_observers(numel=args.numel, repeats=args.repeats, warmup=args.warmup), args.numel
        )
    )
    return 0
