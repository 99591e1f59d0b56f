"""Empirical bias correction (Nagel et al., 2019, "Data-Free Quantization Through Weight Equalization and
Bias Correction", §4.2): remove the mean shift that rounding the weights puts on every output channel.

Quantizing W to W̃ shifts output c's mean by E[W̃x − Wx]_c. Empirical update, per layer in model order:
    b̃ = b − (W̃ E[x̃] − W E[x])
with E[x] the mean input row of the float model and E[x̃] that of the model quantized so far, both over
every calibration row, so the mean of each output channel on the calibration data matches the float
model's exactly (the error the earlier layers left behind included). Weights are plain RTN.
"""

from __future__ import annotations

import torch
from torch import nn

from ptqlab.core.spec import QuantSpec
from ptqlab.ptq.layer_data import capture_rows, rtn
from ptqlab.ptq.layerwise import input_source, quantize_sequentially


def run_bias_correction(
    model: nn.Module,
    batches: list,
    names: list[str],
    spec: QuantSpec,
    *,
    progress=None,
    max_rows: int = 8192,
    sequential: bool | None = None,
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """RTN + empirical bias correction on every named layer of ``model`` in place; (layer errors, notes)."""
    float_means = capture_rows(model, batches, names, max_rows=1).means

    def step(case):
        w_q = rtn(case.w, spec)
        shift = w_q @ case.mean - case.w @ float_means[case.name]
        return w_q, case.b - shift

    errors = quantize_sequentially(
        model,
        batches,
        names,
        step,
        spec=spec,
        max_rows=max_rows,
        progress=progress,
        title="Bias correction",
        sequential=sequential,
    )
    note = f"bias correction: b ← b − (W̃E[x̃] − WE[x]) over {len(batches)} calibration batch(es)"
    return errors, [note, input_source(sequential, len(names))]


def mean_output_shift(model_a: nn.Module, model_b: nn.Module, batches: list, name: str) -> torch.Tensor:
    """Per-channel mean of (layer output in model_b − layer output in model_a) over the calibration batches."""
    outs = []
    for m in (model_a, model_b):
        layer = dict(m.named_modules())[name]
        mean = capture_rows(m, batches, [name], max_rows=1).means[name]
        w = layer.weight.detach().flatten(1).float()
        b = layer.bias.detach().float() if layer.bias is not None else torch.zeros(w.shape[0])
        outs.append(w @ mean + b)
    return outs[1] - outs[0]
