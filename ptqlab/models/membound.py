"""A memory-bound MLP: random Linear(width, width) layers whose forward at batch 1 streams every weight once."""

from __future__ import annotations

import torch
from torch import nn


def memory_bound_mlp(width: int = 4096, depth: int = 4, seed: int = 0) -> nn.Sequential:
    """``depth`` random Linear(width, width) layers with ReLU between: at batch 1, a memory-bandwidth benchmark.

    fp32 weights: depth · width² · 4 bytes (268 MB for the default 4 × 4096²).
    """
    for arg, value in (("width", width), ("depth", depth)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    layers: list[nn.Module] = []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for i in range(depth):
            layers.append(nn.Linear(width, width))
            if i < depth - 1:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()
