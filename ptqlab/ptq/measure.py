"""Running a model for measurement: every path that calibrates, captures or evaluates goes through here.

    with eval_mode(model):                      # every module in eval; on exit each module's own flag back
        run_named(model, batch, i)              # a failure names the batch and the layer it happened in
    check_layer_input(layer, x, name)           # what every hook that reads a layer's input calls first

``eval_mode`` restores the train/eval flag of *every* module, not just the root's: a BatchNorm kept in eval
inside a model in train mode stays in eval. Calibration runs in eval mode (dropout off, BatchNorm on its
running statistics), so ranges do not depend on the RNG state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ptqlab.core import checks


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` with every module in eval mode; each module's train/eval flag restored on exit."""
    flags = [(m, m.training) for m in model.modules()]
    for module, _ in flags:  # the flags themselves: an exported (pt2e) graph refuses .eval()
        module.training = False
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training


def refuse(kind: type[Exception], layer: str, message: str) -> Exception:
    """An exception that remembers the layer it is about (``run_named`` reads it)."""
    error = kind(message)
    error.layer = layer
    return error


def check_layer_input(module: nn.Module, x, name: str) -> None:
    """The one check of a captured layer input: a non-empty, finite float tensor of the layer's dtype and width."""
    what = f"the input of layer {name!r}"
    if not isinstance(x, torch.Tensor):
        raise refuse(TypeError, name, f"{what} must be a tensor, got {type(x).__name__}")
    weight = getattr(module, "weight", None)
    if not x.is_floating_point():
        raise refuse(TypeError, name, f"{what} is {x.dtype}: calibration data must be floating point")
    if isinstance(weight, torch.Tensor) and weight.is_floating_point() and x.dtype != weight.dtype:
        raise refuse(
            TypeError, name, f"{what} is {x.dtype} but its weight is {weight.dtype}: give {weight.dtype} data"
        )
    if x.numel() == 0:
        raise refuse(ValueError, name, f"{what} is empty (shape {tuple(x.shape)})")
    width, expected = _width(module, x)
    if expected is not None and width != expected:
        raise refuse(ValueError, name, f"{what} has width {width}, the layer expects {expected}")
    if not checks.all_finite(x):
        nan, inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        raise refuse(
            ValueError,
            name,
            f"{what} contains non-finite values ({nan} NaN, {inf} Inf): NaN/Inf in the data, or values "
            "that overflow float32 in the layers before it",
        )


def _width(module: nn.Module, x: torch.Tensor) -> tuple[int | None, int | None]:
    if isinstance(module, nn.Linear):
        return (x.shape[-1] if x.dim() else None), module.in_features
    if isinstance(module, nn.Conv1d | nn.Conv2d) and x.dim() >= 2:
        return x.shape[-(module.weight.dim() - 1)], module.in_channels
    return None, None


def run_batch(model: nn.Module, batch):
    """One forward: ``model(**batch)`` for a dict, ``model(batch[0])`` for an (x, y) pair, else ``model(batch)``."""
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, tuple | list):
        return model(batch[0])
    return model(batch)


def run_named(model: nn.Module, batch, index: int, label: str = "calibration batch", call=run_batch):
    """``run_batch``, turning a failure inside the forward (wrong shape or dtype, NaN activations) into a
    ValueError that names the batch and the layer it happened in (found by re-running the failing batch
    with layer hooks: the successful path carries no extra hooks). ``call(model, batch)`` runs the forward."""
    try:
        return call(model, batch)
    except (RuntimeError, ValueError, TypeError) as error:
        first = batch[0] if isinstance(batch, tuple | list) else batch
        what = f"shape {tuple(first.shape)}, {first.dtype}" if isinstance(first, torch.Tensor) else "dict"
        layer = getattr(error, "layer", None) or failing_layer(model, batch, call)
        where = f" in layer {layer!r}" if layer else ""
        raise ValueError(f"{label} {index} ({what}) failed{where}: {error}") from error


def failing_layer(model: nn.Module, batch, call=run_batch) -> str | None:
    """The name of the last module entered when ``batch`` fails in ``model`` (None if it does not fail)."""
    entered: list[str] = []
    handles = [
        m.register_forward_pre_hook(lambda *_, _n=n: entered.append(_n))
        for n, m in model.named_modules()
        if n
    ]
    try:
        call(model, batch)
    except (RuntimeError, ValueError, TypeError):
        return entered[-1] if entered else None
    finally:
        for h in handles:
            h.remove()
    return None
