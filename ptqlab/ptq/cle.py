"""Cross-layer equalization (Nagel et al., 2019, "Data-Free Quantization Through Weight Equalization and
Bias Correction", §4.1): rescale consecutive layers so that every channel uses the same share of its
per-tensor (or per-channel) weight range, without changing the float function.

For y = W2 · relu(W1 x + b1) + b2 and a positive diagonal S, relu(S⁻¹z) = S⁻¹ relu(z) (also through
max-pool and dropout), so W1 ← S⁻¹W1, b1 ← S⁻¹b1, W2 ← W2 S computes the same y. With r1_i = max|row i
of W1| and r2_i = max|input channel i of W2|, s_i = sqrt(r1_i / r2_i) makes both ranges sqrt(r1_i r2_i).
BatchNorm is folded first (the caller's copy); pairs Linear→Linear and Conv2d→Conv2d inside an
nn.Sequential, separated only by ReLU/Identity/Dropout/MaxPool, are swept until the ranges stop moving.

Depthwise convolutions (groups = in = out channels, MobileNetV2's 3×3) pair both ways: as the first layer
(one output channel per row, as any conv) and as the second, where input channel i is weight row i, so
W2 S scales row i by s_i (r2_i = max|W2[i]|). Inverted residuals need nothing special: the pairs live
inside the block's Sequential, and the skip add is never crossed (its two inputs would need the same S).
ReLU6 is NOT scale-equivariant (min(max(z/s, 0), 6) ≠ min(max(z, 0), 6)/s), so it stops a chain unless
``relu6="replace"``, which first swaps every ReLU6 for a ReLU, as Nagel et al. (2019, §5) do for
MobileNetV2 — that changes the float model wherever an activation exceeded 6 (measure it).
"""

from __future__ import annotations

import torch
from torch import nn

from ptqlab.core.spec import QuantSpec
from ptqlab.ptq.layer_data import (
    bias_of,
    capture_rows,
    layer_output,
    relative_mse,
    rtn,
    set_weight_matrix,
    weight_matrix,
)

PASSTHROUGH = (nn.ReLU, nn.Identity, nn.Dropout, nn.MaxPool2d)
RELU6_MODES = ("barrier", "replace")


def is_depthwise(layer: nn.Module) -> bool:
    """A Conv2d with one filter per input channel: groups = in_channels = out_channels > 1."""
    return (
        isinstance(layer, nn.Conv2d)
        and layer.groups > 1
        and layer.groups == layer.in_channels == layer.out_channels
    )


def replace_relu6(model: nn.Module) -> int:
    """In place: every nn.ReLU6 becomes an nn.ReLU (Nagel et al. 2019, §5); returns how many."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.ReLU6:
                setattr(parent, name, nn.ReLU(inplace=child.inplace))
                swapped += 1
    return swapped


def _joinable(a: nn.Module, b: nn.Module) -> bool:
    """Can S flow from ``a``'s output channels into ``b``'s input channels?"""
    if type(b) is not type(a):
        return False
    if is_depthwise(b):
        return b.in_channels == a.weight.shape[0]
    return b.weight.shape[1] == a.weight.shape[0] and getattr(b, "groups", 1) == 1


def equalizable_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(first, second) layer names of every chain Linear→Linear / Conv2d→Conv2d (depthwise included) that
    CLE can rescale."""
    pairs = []
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        join = (prefix + ".") if prefix else ""
        for i, (a_name, a) in enumerate(children):
            if not isinstance(a, nn.Linear | nn.Conv2d):
                continue
            j = i + 1
            while j < len(children) and isinstance(children[j][1], PASSTHROUGH):
                j += 1
            if j < len(children) and _joinable(a, children[j][1]):
                pairs.append((join + a_name, join + children[j][0]))
    return pairs


def output_ranges(layer: nn.Module) -> torch.Tensor:
    """r1_i = max |W[i]| per output channel."""
    return layer.weight.detach().abs().flatten(1).amax(1).float()


def input_ranges(layer: nn.Module) -> torch.Tensor:
    """r2_i = max |W[:, i]| per input channel (over outputs and kernel taps); row i for a depthwise conv."""
    if is_depthwise(layer):
        return output_ranges(layer)
    w = layer.weight.detach().abs()
    return w.amax(dim=[d for d in range(w.dim()) if d != 1]).float()


@torch.no_grad()
def equalize_pair(first: nn.Module, second: nn.Module) -> torch.Tensor:
    """In place: W1 ← S⁻¹W1, b1 ← S⁻¹b1, W2 ← W2 S with s_i = sqrt(r1_i / r2_i); returns s."""
    r1, r2 = output_ranges(first), input_ranges(second)
    alive = (r1 > 0) & (r2 > 0)
    s = torch.where(alive, torch.sqrt(r1 / r2.clamp(min=1e-30)), torch.ones_like(r1))
    shape1 = (-1,) + (1,) * (first.weight.dim() - 1)
    if is_depthwise(second):
        shape2 = (-1,) + (1,) * (second.weight.dim() - 1)
    else:
        shape2 = (1, -1) + (1,) * (second.weight.dim() - 2)
    first.weight.div_(s.reshape(shape1).to(first.weight.dtype))
    if first.bias is not None:
        first.bias.div_(s.to(first.bias.dtype))
    second.weight.mul_(s.reshape(shape2).to(second.weight.dtype))
    return s


def equalize(
    model: nn.Module, *, max_sweeps: int = 20, tol: float = 1e-6, relu6: str = "barrier"
) -> tuple[list[tuple[str, str]], int]:
    """Sweep every equalizable pair of ``model`` (in place) until max |log s| < tol; (pairs, sweeps run).
    ``relu6="replace"`` swaps ReLU6 for ReLU first (see the module docstring); "barrier" leaves it."""
    if relu6 not in RELU6_MODES:
        raise ValueError(f"relu6 must be one of {RELU6_MODES}, got {relu6!r}")
    if relu6 == "replace":
        replace_relu6(model)
    modules = dict(model.named_modules())
    pairs = equalizable_pairs(model)
    sweeps = 0
    while sweeps < max_sweeps:
        sweeps += 1
        change = 0.0
        for a, b in pairs:
            s = equalize_pair(modules[a], modules[b])
            change = max(change, float(s.log().abs().max()))
        if change < tol:
            break
    return pairs, sweeps


def run_cle(
    model: nn.Module,
    batches: list,
    names: list[str],
    spec: QuantSpec,
    *,
    progress=None,
    max_sweeps: int = 20,
    max_rows: int = 4096,
    relu6: str = "barrier",
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """CLE on ``model`` in place, then RTN of every named layer; (layer errors, notes).

    A layer's errors compare RTN of the original weights on the original inputs with RTN of the equalized
    weights on the equalized inputs (relative errors, so the per-channel rescaling does not bias them).
    """
    modules = dict(model.named_modules())
    before = capture_rows(model, batches, names, max_rows=max_rows).rows
    weights_before = {n: (weight_matrix(modules[n]), bias_of(modules[n])) for n in names}
    for p in model.parameters():
        p.requires_grad_(False)
    pairs, sweeps = equalize(model, max_sweeps=max_sweeps, relu6=relu6)
    after = capture_rows(model, batches, names, max_rows=max_rows).rows
    errors = {}
    for name in names:
        layer = modules[name]
        w0, b0 = weights_before[name]
        w, b = weight_matrix(layer), bias_of(layer)
        w_q = rtn(w, spec)
        errors[name] = (
            relative_mse(layer_output(before[name], w0, b0), layer_output(before[name], rtn(w0, spec), b0)),
            relative_mse(layer_output(after[name], w, b), layer_output(after[name], w_q, b)),
        )
        set_weight_matrix(layer, w_q)
    if pairs:
        note = f"CLE: {len(pairs)} pair(s) equalized in {sweeps} sweep(s): " + ", ".join(
            f"{a}→{b}" for a, b in pairs
        )
        note += "; ReLU6 replaced by ReLU first" if relu6 == "replace" else ""
    else:
        note = "CLE: no Linear→Linear or Conv→Conv pair joined by ReLU here: the result is plain RTN"
    return errors, [note]
