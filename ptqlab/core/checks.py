"""Argument checks shared by the whole package: each raises a TypeError/ValueError that names the argument."""

from __future__ import annotations

import torch


def float_tensor(x, name: str = "x", *, allow_empty: bool = False) -> torch.Tensor:
    """Return ``x`` if it is a finite, non-empty floating-point tensor; otherwise raise naming ``name``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    not_meta(x, name)
    if x.numel() == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): there is nothing to quantize")
    if x.numel() and not all_finite(x):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise ValueError(f"{name} contains non-finite values ({n_nan} NaN, {n_inf} Inf)")
    return x


def all_finite(x: torch.Tensor) -> bool:
    """True when no element is NaN or ±Inf: one min/max pass (NaN propagates through both), ~20× cheaper
    than materialising ``isfinite(x)`` on a large tensor. ``x`` must be non-empty."""
    lo, hi = torch.aminmax(x.detach())
    return bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))


FLOAT32_MAX = float(torch.finfo(torch.float32).max)
FLOAT32_TINY = float(torch.finfo(torch.float32).tiny)  # smallest normal float32, 1.18e-38


def not_meta(x: torch.Tensor, name: str) -> None:
    """Refuse a tensor without data (device 'meta'), naming ``name``."""
    if x.device.type == "meta":
        raise ValueError(f"{name} is a meta tensor (shape only, no data): pass a tensor with values")


def fits_float32(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``x`` (finite, checked) as float32, refusing finite values beyond float32's range (±3.4e38)."""
    float_tensor(x, name)
    if x.dtype in (torch.float64,) and x.numel() and float(x.detach().abs().max()) > FLOAT32_MAX:
        raise ValueError(
            f"{name} has finite values up to {float(x.detach().abs().max()):.3g}, beyond float32's range "
            f"(±{FLOAT32_MAX:.4g}): quantization works in float32"
        )
    return x.detach().to(torch.float32)


def as_float_tensor(value, name: str) -> torch.Tensor:
    """Python number or tensor -> finite float32 tensor, raising naming ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or tensor, got bool")
    if isinstance(value, int | float):
        value = torch.tensor(float(value), dtype=torch.float64)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a number or a torch.Tensor, got {type(value).__name__}")
    not_meta(value, name)
    if value.dtype == torch.bool:
        raise TypeError(f"{name} must be a number or a numeric tensor, got a bool tensor")
    if not value.is_floating_point():
        value = value.to(torch.float32)
    return fits_float32(value, name)


def same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}")
