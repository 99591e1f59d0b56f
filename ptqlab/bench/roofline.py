"""The memory roofline of a forward pass.

At batch 1 a large model does ~2 FLOPs per weight it reads, far below what the cores can compute per byte of
DRAM traffic, so the forward is *memory-bound*: every weight must stream from memory once, and

    t_floor = weight_bytes / bandwidth            (the fastest a memory-bound forward can possibly be)
    attained = t_floor / t_measured               (1.0 = running at the memory limit; >1 = weights were cached)
    speedup ceiling of a recipe = bytes_fp32 / bytes_recipe   (4× for int8, ~8× for int4, 2× for bf16)

A batch of B rows reuses each weight B times, so at large batch the same bytes feed B× the arithmetic and
the forward becomes compute-bound: there the speedup comes from faster int8 arithmetic, not fewer bytes.
"""

from __future__ import annotations


def _positive(value: float, name: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return float(value)


def memory_floor_s(weight_bytes: float, bandwidth_bytes_per_s: float) -> float:
    """t_floor = weight_bytes / bandwidth (seconds)."""
    return _positive(weight_bytes, "weight_bytes") / _positive(bandwidth_bytes_per_s, "bandwidth_bytes_per_s")


def attained_fraction(floor_s: float, measured_s: float) -> float:
    """t_floor / t_measured: how close a forward gets to the memory limit (1.0 = at the limit)."""
    return _positive(floor_s, "floor_s") / _positive(measured_s, "measured_s")
