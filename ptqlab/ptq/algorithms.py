"""One entry point for the PTQ algorithms that go beyond round-to-nearest, so "RTN vs X" is one call apart.

    run = run_algorithm("gptq", model, weight_spec=QuantSpec(bits=4, granularity=PerGroup(128)),
                        calibration=batches, act_spec=None, act_order=True)
    run.model            # a fake-quantized copy (the input model is untouched)
    run.layer_errors     # layer -> (RTN, GPTQ) relative output error ‖Y − Ŷ‖² / ‖Y‖² on calibration inputs

Every algorithm works on a copy with BatchNorm folded first (``fold_bn=True``, as engines deploy it), on
every Linear and ungrouped Conv2d (``layers``/``skip`` choose), and with the same min/max grid as
``simulate``: "rtn" here equals ``simulate(model, weight_spec, fold_bn=True)``. With ``act_spec``, the
result is ``simulate(weight-quantized copy, None, act_spec, calibration=...)``: the activation observers see
what the weight-quantized model produces (``simulate`` alone calibrates its float copy).
Options per algorithm (keyword arguments): see each module — gptq (block_size, act_order, damp, max_rows),
awq (grid, max_rows), smoothquant (alpha, floor), cle (max_sweeps), adaround (iters, lr, reg, batch_size,
max_rows, seed), bias_correction (max_rows).
Calibration inputs are checked at every layer (``measure.check_layer_input``: finite, float, the layer's
dtype and width; the error names the batch and the layer), and a result is checked before it is returned:
a non-finite weight, bias or layer error raises a ValueError naming the layer, never returns.
"""

from __future__ import annotations

import copy
import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ptqlab.core.checks import all_finite
from ptqlab.core.progress import track
from ptqlab.core.spec import QuantSpec
from ptqlab.ptq.adaround import run_adaround
from ptqlab.ptq.awq import run_awq
from ptqlab.ptq.bias_correction import run_bias_correction
from ptqlab.ptq.calibrate import as_batches
from ptqlab.ptq.cle import run_cle
from ptqlab.ptq.dynamic_act import attach_dynamic_inputs, check_act_mode
from ptqlab.ptq.folding import fold_batchnorm
from ptqlab.ptq.gptq import run_gptq
from ptqlab.ptq.layer_data import (
    algorithm_layers,
    bias_of,
    capture_rows,
    check_group_divides,
    check_weight_spec,
    layer_output,
    relative_mse,
    rtn,
    set_weight_matrix,
    supported,
    weight_matrix,
)
from ptqlab.ptq.simulate import simulate
from ptqlab.ptq.smoothquant import run_smoothquant


@dataclass
class AlgorithmRun:
    """What ``run_algorithm`` returns."""

    model: nn.Module  # a copy of the input model with fake-quantized (dequantized) weights; input untouched
    seconds: (
        float  # wall time of the algorithm (BN folding, calibration passes and activation observers included)
    )
    notes: list[str] = field(default_factory=list)  # what it did: layers skipped, dampening, chosen α, …
    layer_errors: dict[str, tuple[float, float]] = field(default_factory=dict)  # layer -> (RTN, algorithm)


def run_rtn(model, batches, names, spec, *, progress=None, max_rows: int = 4096):
    """Round-to-nearest with min/max qparams per block: the baseline every algorithm is compared with."""
    modules = dict(model.named_modules())
    for name in names:
        check_group_divides(name, weight_matrix(modules[name]), spec)
    rows = capture_rows(model, batches, names, max_rows=max_rows).rows if batches else {}
    errors = {}
    for name in track(names, progress, "RTN"):
        layer = modules[name]
        w, b = weight_matrix(layer), bias_of(layer)
        w_q = rtn(w, spec)
        if name in rows:
            e = relative_mse(layer_output(rows[name], w, b), layer_output(rows[name], w_q, b))
            errors[name] = (e, e)
        set_weight_matrix(layer, w_q)
    return errors, ["RTN: round to nearest, min/max scale per block"]


def check_finite(model: nn.Module, names: list[str], who: str, when: str, errors: dict | None = None) -> None:
    """ValueError naming the layer unless its weight, bias and (RTN, algorithm) errors are all finite."""
    modules = dict(model.named_modules())
    for layer in names:
        for part in ("weight", "bias"):
            value = getattr(modules[layer], part, None)
            if isinstance(value, torch.Tensor) and value.numel() and not all_finite(value.detach().float()):
                raise ValueError(f"{who}: layer {layer!r} has a non-finite {part} {when} quantization")
        pair = (errors or {}).get(layer, ())
        if not all(math.isfinite(e) for e in pair):
            raise ValueError(f"{who}: the output error of layer {layer!r} is not finite: {pair}")


IMPLEMENTATIONS: dict[str, Callable] = {
    "rtn": run_rtn,
    "bias_correction": run_bias_correction,
    "cle": run_cle,
    "adaround": run_adaround,
    "gptq": run_gptq,
    "awq": run_awq,
    "smoothquant": run_smoothquant,
}
ALGORITHMS: tuple[str, ...] = tuple(IMPLEMENTATIONS)


ACT_OPTIONS = ("act_spec", "act_mode")  # handed to an algorithm that takes them (SmoothQuant's α search)


def _check_options(name: str, options: dict) -> None:
    allowed = [
        p
        for p in inspect.signature(IMPLEMENTATIONS[name]).parameters
        if p not in ("model", "batches", "names", "spec", "progress", *ACT_OPTIONS)
    ]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"{name} has no option {unknown}; its options: {allowed}")


def run_algorithm(
    name: str,
    model: nn.Module,
    *,
    weight_spec: QuantSpec,
    calibration,
    act_spec: QuantSpec | None = None,
    progress=None,
    fold_bn: bool = True,
    layers=None,
    skip=(),
    act_mode: str = "static",
    **options,
) -> AlgorithmRun:
    """Run PTQ algorithm ``name`` (one of ALGORITHMS) on a copy of ``model``; see the module docstring.

    ``act_mode`` (with ``act_spec``): "static" = one calibrated (scale, zp) per layer input (``simulate``),
    "per-tensor" / "per-token" = computed from each input at run time (``dynamic_act``)."""
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"name must be one of {ALGORITHMS}, got {name!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_weight_spec(weight_spec)
    if act_spec is not None and not isinstance(act_spec, QuantSpec):
        raise TypeError(f"act_spec must be a QuantSpec or None, got {type(act_spec).__name__}")
    if calibration is None and (name != "rtn" or act_spec is not None):
        raise ValueError(
            f"calibration: {name} needs calibration data (a tensor of inputs or a list of batches)"
        )
    _check_options(name, options)
    check_act_mode(act_mode)
    if act_mode != "static" and act_spec is None:
        raise ValueError(f"act_mode={act_mode!r} needs an act_spec (the activation grid)")
    batches = as_batches(calibration) if calibration is not None else []
    start = time.perf_counter()
    work = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()
    names = algorithm_layers(work, layers, skip)
    check_finite(work, names, "model", "before")
    takes = inspect.signature(IMPLEMENTATIONS[name]).parameters
    act = {k: v for k, v in (("act_spec", act_spec), ("act_mode", act_mode)) if k in takes}
    errors, notes = IMPLEMENTATIONS[name](
        work, batches, names, weight_spec, progress=progress, **act, **options
    )
    check_finite(work, names, name, "after", errors)
    if act_spec is not None and act_mode != "static":
        attach_dynamic_inputs(work, names, act_spec, act_mode)
        notes.append(f"activations fake-quantized: {act_spec}, dynamic {act_mode} (min/max of each input)")
    elif act_spec is not None:
        work = simulate(work, None, act_spec, calibration=batches)
        notes.append(f"activations fake-quantized: {act_spec} (min/max on the calibration batches)")
    skipped = [
        n for n, m in work.named_modules() if isinstance(m, nn.Conv1d | nn.Conv2d) and not supported(m)
    ]
    if skipped:
        notes.append(f"layers skipped (unsupported type): {', '.join(skipped)}")
    return AlgorithmRun(work, time.perf_counter() - start, notes, errors)


__all__ = ["ALGORITHMS", "AlgorithmRun", "run_algorithm"]
