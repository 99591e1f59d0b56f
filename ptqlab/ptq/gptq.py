"""GPTQ (Frantar et al., 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
Transformers", Algorithm 1): quantize W one column at a time and push each column's error onto the
columns not yet quantized, where the calibration inputs say it hurts least.

Objective, per layer:  min_Ŵ ‖X Wᵀ − X Ŵᵀ‖²  with X the layer's calibration input rows.
Hessian  H = 2 XᵀX / n  (in × in), dampened  H += λ I,  λ = damp · mean(diag H)  (damp = 0.01);
dead inputs (H_ii = 0) get H_ii = 1 and W[:, i] = 0.
U = upper Cholesky factor of H⁻¹. For column i:  q_i = quant(w_i);  e_i = (w_i − q_i) / U_ii;
    W[:, j] −= e_i · U_ij  for later columns j of the current block of B columns,
and after each block the accumulated errors update every later column at once (lazy batch update).
Options: ``clip`` — each row's range per group (or channel) by the reference's shrink search
(``range_search``: min Σ|w − q|^2.4 over shrunk ranges) instead of min/max; act-order (columns by decreasing H_ii; groups then use qparams fixed from the original W, the
"static groups" convention), per-group qparams computed when the sweep reaches the group's first column
(from the updated weights), per-channel/per-tensor qparams fixed from W before the sweep.

torchao's ``prototype.gptq`` implements the same loop but asserts a CUDA device (and int4 needs mslk), so
the tests check this module against an independent, unblocked OBS-style reference instead.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ptqlab.core.affine import QParams, qparams_for
from ptqlab.core.spec import PerGroup, PerTensor, QuantSpec
from ptqlab.ptq.blockwise import blockwise_rows
from ptqlab.ptq.layer_data import (
    bias_of,
    check_group_divides,
    set_weight_matrix,
    slice_qparams,
    weight_matrix,
)
from ptqlab.ptq.layerwise import LayerCase, errors_vs_rtn, input_source, quantize_sequentially
from ptqlab.ptq.range_search import shrink_search_qparams


class GPTQResult(NamedTuple):
    weight: torch.Tensor  # the dequantized GPTQ weight (out, in), original column order
    damping: float  # the λ finally used
    notes: list[str]


def hessian(rows: torch.Tensor) -> torch.Tensor:
    """H = 2 XᵀX / n (accumulated in float32, returned as float64; in float64 when float32 overflows)."""
    x = rows.float()
    h = (2.0 * (x.T @ x) / max(len(x), 1)).double()
    if not bool(torch.isfinite(h).all()):  # inputs beyond ~1e19: their squares overflow float32
        x = rows.double()
        h = 2.0 * (x.T @ x) / max(len(x), 1)
    return h


def inverse_cholesky(h: torch.Tensor, damp: float, name: str) -> tuple[torch.Tensor, float, list[str]]:
    """Upper Cholesky factor of (H + λI)⁻¹; λ grows ×10 (up to damp = 1) while H + λI is not positive definite."""
    notes = []
    mean_diag = float(torch.diag(h).mean())
    eye = torch.eye(len(h), dtype=h.dtype)
    factor = damp
    while True:
        lam = factor * mean_diag
        chol, info = torch.linalg.cholesky_ex(h + lam * eye)
        if int(info) == 0:
            inv = torch.cholesky_solve(
                torch.eye(len(h), dtype=h.dtype), chol
            )  # cholesky_inverse is ~15× slower on CPU
            upper, info = torch.linalg.cholesky_ex(inv, upper=True)
            if int(info) == 0:
                break
        if factor >= 1.0:
            raise ValueError(
                f"calibration: the Hessian of layer {name!r} stays singular even dampened with "
                f"λ = {lam:.3g} (damp={factor}); give more (or more varied) calibration data"
            )
        factor = min(factor * 10, 1.0)
        notes.append(f"{name}: Hessian not positive definite, dampened to damp={factor:g}")
    return upper, lam, notes


def _row_qparams(w: torch.Tensor, spec: QuantSpec, clip: bool) -> QParams:
    """Per-row qparams of a column slice: its min/max, or with ``clip`` the shrink search of
    ``range_search`` (the GPTQ reference's ``mse=True``)."""
    return shrink_search_qparams(w, spec) if clip else slice_qparams(w, spec)


def _static_qparams(w: torch.Tensor, spec: QuantSpec, clip: bool):
    """Per-column (scale, zero_point) columns fixed before the sweep (per-tensor, per-channel, static groups)."""
    g = spec.granularity
    if isinstance(g, PerGroup):
        scales, zps = [], []
        for start in range(0, w.shape[1], g.group_size):
            qp = _row_qparams(w[:, start : start + g.group_size], spec, clip)
            scales += [qp.scale] * g.group_size
            zps += [qp.zero_point] * g.group_size
        return torch.cat(scales, 1), torch.cat(zps, 1)
    if isinstance(g, PerTensor):
        qp = slice_qparams(w, spec, qparams_for(w, spec))
    else:
        qp = _row_qparams(w, spec, clip)
    return qp.scale.expand(-1, w.shape[1]), qp.zero_point.expand(-1, w.shape[1])


def fake_quantize_column(col: torch.Tensor, qparams: QParams, spec: QuantSpec) -> torch.Tensor:
    """core.affine's quantize + dequantize, x̂ = (clamp(round(x · (1/s)) + z, qmin, qmax) − z) · s in float32,
    inlined without argument checks: it runs once per column (tested against torch's fake-quant)."""
    scale = qparams.scale.reshape(-1)
    zp = qparams.zero_point.reshape(-1).to(torch.float32)
    q = (torch.round(col.to(torch.float32) * (1.0 / scale)) + zp).clamp(spec.qmin, spec.qmax)
    return ((q - zp) * scale).to(col.dtype)


def _sweep(w, u, spec: QuantSpec, block_size: int, static, clip: bool = False) -> torch.Tensor:
    """The blocked column sweep of Algorithm 1 (``static``: per-column (scale, zp), or None for dynamic groups
    whose qparams come from ``_row_qparams(…, clip)``)."""
    dynamic_groups = static is None
    if not dynamic_groups:
        scale, zp = static
    q = torch.zeros_like(w)
    columns = w.shape[1]
    for b0 in range(0, columns, block_size):
        b1 = min(b0 + block_size, columns)
        block, err = w[:, b0:b1].clone(), torch.zeros(w.shape[0], b1 - b0, dtype=w.dtype)
        for k in range(b1 - b0):
            i = b0 + k
            if dynamic_groups and i % spec.granularity.group_size == 0:
                group_qp = _row_qparams(_current_group(w, block, err, u, b0, k, spec).float(), spec, clip)
            col_qp = group_qp if dynamic_groups else QParams(scale[:, i : i + 1], zp[:, i : i + 1])
            q[:, i] = fake_quantize_column(block[:, k], col_qp, spec)
            e = (block[:, k] - q[:, i]) / u[i, i]
            block[:, k:] -= e[:, None] * u[i, i:b1][None, :]
            err[:, k] = e
        w[:, b1:] -= err @ u[b0:b1, b1:]
    return q


def _current_group(w, block, err, u, b0: int, k: int, spec: QuantSpec) -> torch.Tensor:
    """The group starting at column b0 + k as it stands now: in-block columns already updated, later
    columns with the current block's pending (lazy) error updates applied."""
    size = spec.granularity.group_size
    inside = block[:, k : k + size]
    b1 = b0 + block.shape[1]
    need = size - inside.shape[1]
    if need <= 0:
        return inside
    tail = w[:, b1 : b1 + need] - err[:, :k] @ u[b0 : b0 + k, b1 : b1 + need]
    return torch.cat([inside, tail], 1)


@torch.no_grad()
def gptq_quantize(
    weight: torch.Tensor,
    h: torch.Tensor,
    spec: QuantSpec,
    *,
    block_size: int = 128,
    act_order: bool = False,
    damp: float = 0.01,
    clip: bool = False,
    name: str = "layer",
) -> GPTQResult:
    """GPTQ of one (out, in) weight matrix given its Hessian ``h`` (see the module docstring)."""
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if not (isinstance(damp, int | float) and 0 < damp <= 1):
        raise ValueError(f"damp must lie in (0, 1], got {damp!r}")
    if not isinstance(clip, bool):
        raise TypeError(f"clip must be True or False, got {clip!r}")
    w = weight.detach().double().clone()
    h = h.double().clone()
    notes = []
    dead = torch.diag(h) == 0
    if bool(dead.any()):
        h[dead, dead] = 1.0
        w[:, dead] = 0.0
        notes.append(f"{name}: {int(dead.sum())} dead input(s) (never active in calibration) set to 0")
    groups = isinstance(spec.granularity, PerGroup)
    dynamic_groups = groups and not act_order
    if not dynamic_groups:
        scale, zp = _static_qparams(w.float(), spec, clip)
    perm = torch.argsort(torch.diag(h), descending=True) if act_order else torch.arange(w.shape[1])
    w, h = w[:, perm], h[perm][:, perm]
    if not dynamic_groups:
        scale, zp = scale[:, perm], zp[:, perm]
    u, lam, damp_notes = inverse_cholesky(h, damp, name)
    notes += damp_notes
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of tiny per-column ops: thread hand-offs cost more than they give
    try:
        q = _sweep(w, u, spec, block_size, None if dynamic_groups else (scale, zp), clip)
    finally:
        torch.set_num_threads(threads)
    out = torch.empty_like(q)
    out[:, perm] = q
    return GPTQResult(out.float(), lam, notes)


def run_gptq(
    model,
    batches: list,
    names: list[str],
    spec: QuantSpec,
    *,
    progress=None,
    block_size: int = 128,
    act_order: bool = False,
    damp: float = 0.01,
    clip: bool = False,
    max_rows: int = 16384,
    sequential: bool | str | None = None,
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """GPTQ on every named layer of ``model`` in place, sequentially; returns (layer errors, notes).

    ``sequential``: True = each layer's inputs from the model quantized so far (one partial forward per
    layer), False = every input from the float model in one pass, "blocks" = one pass per repeated block
    (``layer_data.layer_blocks``: a decoder layer's 7 Linears) from the model quantized so far, as the GPTQ
    reference quantizes an LLM; None = True up to 12 layers, else False."""
    if sequential not in (None, True, False, "blocks"):
        raise ValueError(f"sequential must be True, False, None or 'blocks', got {sequential!r}")
    on = {True: "on", False: "off"}
    notes = [f"GPTQ: block {block_size}, damp {damp}, act-order {on[act_order]}, range search {on[clip]}"]
    last: list = [None, None]  # (rows, H): q/k/v (gate/up) read the same input, one Hessian serves them
    options = {"block_size": block_size, "act_order": act_order, "damp": damp, "clip": clip}

    def step(case):
        if last[0] is None or last[0].shape != case.rows.shape or not torch.equal(last[0], case.rows):
            last[:] = [case.rows, hessian(case.rows)]
        result = gptq_quantize(case.w, last[1], spec, name=case.name, **options)
        notes.extend(result.notes)
        return result.weight, case.b

    if sequential == "blocks":
        errors = _run_blocks(model, batches, names, step, spec, max_rows, progress, last)
        source = "layer inputs from the model quantized so far, block by block (sequential='blocks')"
    else:
        errors = quantize_sequentially(
            model,
            batches,
            names,
            step,
            spec=spec,
            max_rows=max_rows,
            progress=progress,
            title="GPTQ",
            sequential=sequential,
        )
        source = input_source(sequential, len(names))
    notes.insert(1, source)
    return errors, notes


def _run_blocks(
    model, batches, names, step, spec, max_rows, progress, last
) -> dict[str, tuple[float, float]]:
    """``step`` on every layer, block by block (``blockwise.blockwise_rows``); name -> (RTN, GPTQ) errors,
    from the Hessian ``last[1]`` that ``step`` built for the layer (the rows' Gram matrix, up to a factor)."""
    modules = dict(model.named_modules())
    for name in names:
        check_group_divides(name, weight_matrix(modules[name]), spec)
    errors = {}
    for group, rows in blockwise_rows(
        model, batches, names, max_rows=max_rows, progress=progress, title="GPTQ"
    ):
        for name in group:
            layer, x = modules[name], rows.pop(name)
            w, b = weight_matrix(layer), bias_of(layer)
            w_new, b_new = step(LayerCase(name, layer, w, b, x, None))
            errors[name] = errors_vs_rtn(x, w, b, w_new, b_new, spec=spec, gram=last[1])
            set_weight_matrix(layer, w_new)
    return errors
