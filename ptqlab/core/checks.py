"""Argument checks shared by the whole package: each raises a TypeError/ValueError that names the argument."""

from __future__ import annotations

import torch


def float_tensor(x, name: str = "x", *, allow_empty: bool = False) -> torch.Tensor:
    """Return ``x`` if it is a finite, non-empty floating-point tensor; otherwise raise naming ``name``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.numel() == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): there is nothing to quantize")
    if not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise ValueError(f"{name} contains non-finite values ({n_nan} NaN, {n_inf} Inf)")
    return x


def as_float_tensor(value, name: str) -> torch.Tensor:
    """Python number or tensor -> finite float32 tensor, raising naming ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or tensor, got bool")
    if isinstance(value, int | float):
        value = torch.tensor(float(value), dtype=torch.float32)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a number or a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        value = value.to(torch.float32)
    return float_tensor(value, name).to(torch.float32)


def same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}")
