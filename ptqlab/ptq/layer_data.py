"""What the layer-wise PTQ algorithms share: a layer as a matrix, its calibration inputs as rows, RTN.

Every supported layer is seen as y = X Wᵀ + b with W of shape (out, in):
  * ``nn.Linear``: W is the weight, X the input with all leading dims flattened (tokens or samples);
  * ``nn.Conv2d`` (groups=1, zero padding): W = weight.flatten(1) (out, in·kh·kw) and X the im2col patches
    (``F.unfold``), one row per output position — the convolution is exactly this matrix product.
Rows are captured with forward pre-hooks; ``max_rows`` keeps a seeded random subset per batch, the same
subset for the same shapes (so a float and a quantized copy of a model see the same rows).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ptqlab.core.affine import QParams, fake_quantize, qparams_for
from ptqlab.core.spec import PerChannel, PerGroup, PerTensor, QuantSpec
from ptqlab.ptq.calibrate import as_batches
from ptqlab.ptq.measure import check_layer_input, eval_mode, run_named

ALGORITHM_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv2d)


class StopForward(Exception):
    """Raised by a capture hook once every wanted layer has been seen: the rest of the forward is skipped."""


def supported(layer: nn.Module) -> bool:
    """A Linear, or a Conv2d with groups=1 and zero padding."""
    if isinstance(layer, nn.Conv2d):
        return layer.groups == 1 and layer.padding_mode == "zeros"
    return isinstance(layer, nn.Linear)


def check_layer(name: str, layer: nn.Module) -> None:
    """TypeError unless ``layer`` is a Linear or an ungrouped, zero-padded Conv2d."""
    if not isinstance(layer, ALGORITHM_LAYERS):
        raise TypeError(
            f"layer {name!r} is a {type(layer).__name__}; the algorithms support Linear and Conv2d"
        )
    if isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.padding_mode != "zeros"):
        raise TypeError(f"layer {name!r}: only Conv2d with groups=1 and zero padding is supported")


def algorithm_layers(model: nn.Module, layers: Iterable[str] | None, skip: Iterable[str]) -> list[str]:
    """Names of the layers to quantize, in model order: ``layers`` (checked) or every supported one, minus ``skip``."""
    modules = dict(model.named_modules())
    if isinstance(layers, str) or isinstance(skip, str):
        raise TypeError("layers and skip must be collections of layer names, not a single str")
    skip = set(skip)
    unknown = [n for n in skip if n not in modules]
    if unknown:
        raise ValueError(f"skip names no layer: {unknown}")
    if layers is None:
        names = [n for n, m in modules.items() if supported(m)]  # others are skipped (and reported)
    else:
        wanted = set(layers)
        missing = [n for n in wanted if n not in modules]
        if missing:
            raise ValueError(f"layers names no layer: {missing}")
        names = [n for n in modules if n in wanted]
    names = [n for n in names if n not in skip]
    for n in names:
        check_layer(n, modules[n])
    if not names:
        raise ValueError("no Linear/Conv2d layer left to quantize (check layers and skip)")
    return names


def layer_blocks(names: list[str]) -> list[list[str]]:
    """``names`` cut into consecutive runs that share their repeated block: the name up to its last numeric
    component (``model.layers.3.mlp.up_proj`` -> ``model.layers.3``, ``encoder.layer.0.attention.self.query``
    -> ``encoder.layer.0``); a name without one (``fc1``, ``features.3``'s own conv) is a block of its own.
    What "block by block" means for a transformer (a ModuleList of identical layers) without naming it."""
    blocks: list[list[str]] = []
    last = None
    for name in names:
        parts = name.split(".")
        index = max((i for i, p in enumerate(parts[:-1]) if p.isdigit()), default=None)
        key = ".".join(parts[: index + 1]) if index is not None else name
        if key != last or not blocks:
            blocks.append([])
        blocks[-1].append(name)
        last = key
    return blocks


def weight_matrix(layer: nn.Module) -> torch.Tensor:
    """W as (out, in·kh·kw), float32, detached copy."""
    return layer.weight.detach().flatten(1).to(torch.float32).clone()


@torch.no_grad()
def set_weight_matrix(layer: nn.Module, w: torch.Tensor, bias: torch.Tensor | None = None) -> None:
    """Write a (out, in·kh·kw) matrix (and optionally a bias) back into ``layer``."""
    layer.weight = nn.Parameter(w.reshape(layer.weight.shape).to(layer.weight.dtype), requires_grad=False)
    if bias is not None:
        layer.bias = nn.Parameter(bias.to(layer.weight.dtype), requires_grad=False)


def bias_of(layer: nn.Module) -> torch.Tensor:
    out = layer.weight.shape[0]
    return layer.bias.detach().float().clone() if layer.bias is not None else torch.zeros(out)


def input_rows(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's input as rows of X in y = X Wᵀ + b (im2col patches for a Conv2d)."""
    x = x.detach().float()
    if isinstance(layer, nn.Conv2d):
        patches = F.unfold(x, layer.kernel_size, layer.dilation, layer.padding, layer.stride)
        return patches.transpose(1, 2).reshape(-1, patches.shape[1])
    return x.reshape(-1, x.shape[-1])


def layer_output(rows: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    y = rows @ w.T
    return y + bias if bias is not None else y


def relative_mse(reference: torch.Tensor, test: torch.Tensor) -> float:
    """‖Y − Ŷ‖² / ‖Y‖²: the output error of a layer, comparable across layers and scalings."""
    ref = reference.double()
    return float((ref - test.double()).pow(2).sum() / ref.pow(2).sum().clamp(min=1e-30))


class Captured(NamedTuple):
    """Per layer: a row sample of its inputs, and the mean row over every calibration row (not a sample)."""

    rows: dict[str, torch.Tensor]
    means: dict[str, torch.Tensor]


@torch.no_grad()
def capture_rows(
    model: nn.Module, batches: list, names: list[str], *, max_rows: int = 8192, seed: int = 0
) -> Captured:
    """Input rows of each named layer (≤ ceil(max_rows / len(batches)) per batch) and their exact mean.

    Runs in eval mode (every module's flag restored after) and checks every captured input as ``calibrate``
    does (``measure.check_layer_input``); a failure names the calibration batch and the layer.
    The forward stops at the last wanted layer (``StopForward``), so capturing early layers is cheap.
    """
    batches = as_batches(batches)
    modules = dict(model.named_modules())
    per_batch = max(1, math.ceil(max_rows / len(batches)))
    rows: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    sums: dict[str, list] = {n: [0.0, 0] for n in names}
    seen: set[str] = set()

    def hook(name):
        def record(module, args):
            check_layer_input(module, args[0] if args else None, name)
            r = input_rows(module, args[0])
            sums[name][0] = sums[name][0] + r.double().sum(0)
            sums[name][1] += len(r)
            if len(r) > per_batch:
                g = torch.Generator().manual_seed(seed + len(rows[name]))
                r = r[torch.randperm(len(r), generator=g)[:per_batch]]
            rows[name].append(r)
            seen.add(name)
            if len(seen) == len(names):
                raise StopForward

        return record

    handles = [modules[n].register_forward_pre_hook(hook(n)) for n in names]
    try:
        with eval_mode(model):
            for i, batch in enumerate(batches):
                seen.clear()
                try:
                    run_named(model, batch, i)
                except StopForward:  # not a RuntimeError/ValueError/TypeError: run_named lets it through
                    pass
    finally:
        for h in handles:
            h.remove()
    means = {n: (total / count).float() for n, (total, count) in sums.items()}
    return Captured({n: torch.cat(r) for n, r in rows.items()}, means)


def check_weight_spec(spec: QuantSpec) -> None:
    """The weight grids the algorithms handle: per-tensor, per-channel(axis=0), per-group along the input."""
    if not isinstance(spec, QuantSpec):
        raise TypeError(f"weight_spec must be a QuantSpec, got {type(spec).__name__}")
    g = spec.granularity
    if isinstance(g, PerChannel) and g.axis != 0:
        raise ValueError(f"weight_spec: per-channel weights need axis=0 (output channels), got axis={g.axis}")
    if isinstance(g, PerGroup) and g.axis not in (-1, 1):
        raise ValueError(
            f"weight_spec: groups must run along the input dimension (axis=-1), got axis={g.axis}"
        )


def check_group_divides(name: str, w: torch.Tensor, spec: QuantSpec) -> None:
    g = spec.granularity
    if isinstance(g, PerGroup) and w.shape[1] % g.group_size:
        raise ValueError(
            f"weight_spec: group_size={g.group_size} does not divide layer {name!r}'s input dimension {w.shape[1]}"
        )


def row_spec(spec: QuantSpec) -> QuantSpec:
    """The same grid with one (scale, zero_point) per row: how a column slice of W is quantized."""
    return spec.with_(granularity=PerChannel(0))


def slice_qparams(w: torch.Tensor, spec: QuantSpec, full: QParams | None = None) -> QParams:
    """Per-row qparams for a column slice of W: min/max of the slice, or the per-tensor ``full`` expanded."""
    if isinstance(spec.granularity, PerTensor):
        assert full is not None
        rows = w.shape[0]
        return QParams(
            full.scale.reshape(1, 1).expand(rows, 1), full.zero_point.reshape(1, 1).expand(rows, 1)
        )
    return qparams_for(w, row_spec(spec))


def rtn(w: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Round-to-nearest of a (out, in) matrix with min/max qparams per block — what ``simulate`` does."""
    return fake_quantize(w, qparams_for(w, spec), spec)
