"""The sequential layer-by-layer loop that GPTQ, AdaRound and bias correction share.

Layers are quantized in model order; each one sees the inputs that the model *as quantized so far*
produces on the calibration batches (so it can compensate the error of the layers before it), as in
GPTQ's and AdaRound's reference implementations. Per layer, the loop records the relative output error
‖Y − Ŷ‖² / ‖Y‖² of plain RTN and of the algorithm on those same inputs (Y: the float weights).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from ptqlab.core.progress import Progress, track
from ptqlab.core.spec import QuantSpec
from ptqlab.ptq.layer_data import (
    bias_of,
    capture_rows,
    check_group_divides,
    layer_output,
    relative_mse,
    rtn,
    set_weight_matrix,
    weight_matrix,
)


class LayerCase(NamedTuple):
    """What a step sees of one layer: the module, W (out, in), b, its input rows and exact mean input row."""

    name: str
    layer: nn.Module
    w: torch.Tensor
    b: torch.Tensor
    rows: torch.Tensor
    mean: torch.Tensor


SEQUENTIAL_UP_TO = 12  # layers; beyond, one float pass (MiniLM's 36 Linears would need 36 partial forwards)


def input_source(sequential: bool | None, layers: int) -> str:
    """A note saying where the layers' calibration inputs came from."""
    if sequential is None:
        sequential = layers <= SEQUENTIAL_UP_TO
    if sequential:
        return "layer inputs from the model quantized so far (sequential)"
    return f"layer inputs from the float model, one pass for all {layers} layers (sequential=False)"


LayerStep = Callable[[LayerCase], tuple]  # -> (quantized W, new bias)


def errors_vs_rtn(
    rows: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor,
    w_new: torch.Tensor,
    b_new: torch.Tensor,
    *,
    spec: QuantSpec,
    gram: torch.Tensor | None = None,
) -> tuple[float, float]:
    """(RTN's, the algorithm's) relative output error against the float layer, on ``rows``.

    With ``gram`` (any positive multiple of XᵀX of the rows, e.g. GPTQ's Hessian) and no biases, the same
    ratio without touching the rows: ‖X Dᵀ‖² / ‖X Wᵀ‖² = tr(D G Dᵀ) / tr(W G Wᵀ), D = W − Ŵ."""
    if gram is not None and b is None and b_new is None:
        g = gram.float()

        def quadratic(m: torch.Tensor) -> torch.Tensor:
            m = m.float()
            return ((m @ g) * m).sum(dtype=torch.float64)

        den = quadratic(w).clamp(min=1e-30)
        return float(quadratic(w - rtn(w, spec)) / den), float(quadratic(w - w_new) / den)
    reference = layer_output(rows, w, b)
    return (
        relative_mse(reference, layer_output(rows, rtn(w, spec), b)),
        relative_mse(reference, layer_output(rows, w_new, b_new)),
    )


@torch.no_grad()
def quantize_sequentially(
    model: nn.Module,
    batches: list,
    names: list[str],
    step: LayerStep,
    *,
    spec: QuantSpec,
    max_rows: int,
    progress: Progress = None,
    title: str = "",
    sequential: bool | None = None,
) -> dict[str, tuple[float, float]]:
    """Run ``step`` on each named layer of ``model`` in order (in place); returns name -> (RTN, step) errors.

    ``sequential=False`` captures every layer's inputs from the float model in one pass (torchao's GPTQ
    default; one forward instead of one per layer); None = sequential up to SEQUENTIAL_UP_TO layers.
    """
    modules = dict(model.named_modules())
    for name in names:
        check_group_divides(name, weight_matrix(modules[name]), spec)
    if sequential is None:
        sequential = len(names) <= SEQUENTIAL_UP_TO
    captured = None if sequential else capture_rows(model, batches, names, max_rows=max_rows)
    errors = {}
    for name in track(names, progress, title):
        layer = modules[name]
        if sequential:
            captured = capture_rows(model, batches, [name], max_rows=max_rows)
        rows, mean = captured.rows.pop(name), captured.means[name]
        w, b = weight_matrix(layer), bias_of(layer)
        w_new, b_new = step(LayerCase(name, layer, w, b, rows, mean))
        errors[name] = errors_vs_rtn(rows, w, b, w_new, b_new, spec=spec)
        set_weight_matrix(layer, w_new, b_new if layer.bias is not None or b_new is not b else None)
    return errors
