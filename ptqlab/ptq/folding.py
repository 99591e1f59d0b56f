"""BatchNorm folding: merge an eval-mode BatchNorm into the Linear/Conv right before it.

In eval mode BatchNorm is a per-channel affine map, so for z = W x + b followed by BN:

    y = γ · (z - μ) / sqrt(σ² + ε) + β = (s ⊙ W) x + (s · (b - μ) + β),     s = γ / sqrt(σ² + ε)

i.e. W' = s ⊙ W (row c of W, output channel c, scaled by s_c) and b' = s · (b - μ) + β. The BN becomes
an Identity. The folded weights are what an inference engine actually quantizes: channels whose s_c is
large get large weights, channels with small s_c small ones — per-tensor ranges then fit no channel well.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

FOLDABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def foldable_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(layer, batchnorm) names where a BatchNorm directly follows a Linear/Conv inside an nn.Sequential."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    pairs = []
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (a_name, a), (b_name, b) in zip(children, children[1:], strict=False):
            if isinstance(a, FOLDABLE) and isinstance(b, BATCHNORMS) and b.num_features == a.weight.shape[0]:
                join = (prefix + ".") if prefix else ""
                pairs.append((join + a_name, join + b_name))
    return pairs


@torch.no_grad()
def bn_scale_factors(model: nn.Module) -> dict[str, torch.Tensor]:
    """s = γ / sqrt(σ² + ε) of every foldable BatchNorm: the factor folding multiplies each channel's weights by."""
    modules = dict(model.named_modules())
    factors = {}
    for _, bn_name in foldable_pairs(model):
        bn = modules[bn_name]
        gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
        factors[bn_name] = (gamma / torch.sqrt(bn.running_var + bn.eps)).detach().float()
    return factors


@torch.no_grad()
def fold_bn_into(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """In place: W ← s ⊙ W, b ← s · (b - μ) + β with s = γ / sqrt(σ² + ε)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics (track_running_stats=False)")
    var = bn.running_var.to(torch.float64) + bn.eps
    if not bool((var > 0).all() & torch.isfinite(var).all()):
        bad = torch.nonzero(~((var > 0) & torch.isfinite(var))).flatten().tolist()[:8]
        raise ValueError(
            f"running_var + eps must be positive and finite to fold (eps={bn.eps}); channels {bad} are not: "
            "1/sqrt(σ² + ε) would be infinite"
        )
    inv_std = torch.rsqrt(var)
    gamma = bn.weight.to(torch.float64) if bn.weight is not None else torch.ones_like(inv_std)
    beta = bn.bias.to(torch.float64) if bn.bias is not None else torch.zeros_like(inv_std)
    s = gamma * inv_std
    w = layer.weight.to(torch.float64)
    b = layer.bias.to(torch.float64) if layer.bias is not None else torch.zeros_like(s)
    shape = (-1,) + (1,) * (w.dim() - 1)
    layer.weight = nn.Parameter((w * s.reshape(shape)).to(layer.weight.dtype), requires_grad=False)
    layer.bias = nn.Parameter(
        (s * (b - bn.running_mean.to(torch.float64)) + beta).to(layer.weight.dtype), requires_grad=False
    )


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every foldable BatchNorm merged into its layer (BN → Identity).

    The copy computes the same function as the original in eval mode (to float rounding); the original is
    untouched. BatchNorms that do not directly follow a Linear/Conv in an nn.Sequential are left in place.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    folded = copy.deepcopy(model).eval()
    modules = dict(folded.named_modules())
    for layer_name, bn_name in foldable_pairs(folded):
        try:
            fold_bn_into(modules[layer_name], modules[bn_name])
        except ValueError as error:
            raise ValueError(f"cannot fold BatchNorm {bn_name!r} into {layer_name!r}: {error}") from error
        parent_name, _, child = bn_name.rpartition(".")
        setattr(modules[parent_name] if parent_name else folded, child, nn.Identity())
    return folded
