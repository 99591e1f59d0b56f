"""AWQ, activation-aware weight quantization (Lin et al., 2023, "AWQ: Activation-aware Weight
Quantization for LLM Compression and Acceleration"): protect the weights that meet large activations by
scaling them up before rounding, and the activations down by the same factor.

Per layer, with x̄_j = mean |x_j| over the calibration rows (per input channel j):
    s(α) = x̄^α,  normalised  s ← s / sqrt(max s · min s),   α ∈ {0, 1/n, …, (n−1)/n}  (n = 20)
    α* = argmin_α ‖X Wᵀ − (X diag(s)⁻¹) Q(W diag(s))ᵀ‖²       (Q: group-wise RTN)
Then the clipping search: each weight block's [min, max] shrunk by the ratio (1 down to 0.55) that
minimizes its share of the output error. The layer becomes Q(W diag(s*)) applied to x / s* (``SmoothedInput``; a deployment folds 1/s* into the
previous LayerNorm or Linear). For a Conv2d, s is per input channel, shared by its kh·kw taps.
Same grid and normalisation as torchao's ``prototype.awq.AWQObserver`` and the authors' llm-awq.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ptqlab.core.affine import choose_qparams, fake_quantize, min_max
from ptqlab.core.spec import PerTensor, QuantSpec
from ptqlab.ptq.blockwise import blockwise_rows
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
from ptqlab.ptq.smoothquant import wrap_input_scale


def taps(layer: nn.Module) -> int:
    """Rows per input channel in the matrix view: kh·kw for a Conv2d, 1 for a Linear."""
    return layer.weight[0, 0].numel()


@torch.no_grad()
def awq_scales(
    w: torch.Tensor,
    rows: torch.Tensor,
    bias: torch.Tensor | None,
    spec: QuantSpec,
    *,
    grid: int = 20,
    taps: int = 1,
    gram: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float, list[float]]:
    """(per-input-channel scales s*, α*, loss for every α on the grid); see the module docstring.

    ``gram`` = XᵀX of ``rows`` (``gram_matrix``) gives the same loss without a pass over the rows per α:
    X Wᵀ − (X/s) Q(W·s)ᵀ = X Δᵀ with Δ = W − Q(W·s)/s, so ‖·‖² = Σ_o Δ_o (XᵀX) Δ_oᵀ."""
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise ValueError(f"grid must be a positive int, got {grid!r}")
    x_mean = rows.abs().mean(0)
    if not bool(torch.isfinite(x_mean).all()):  # the float32 sum of inputs beyond ~1e35 overflows
        x_mean = rows.abs().double().mean(0).float()
    x_mean = x_mean.reshape(-1, taps).mean(1)
    reference = layer_output(rows, w, bias) if gram is None else None
    best, losses = None, []
    for i in range(grid):
        alpha = i / grid
        s = x_mean.pow(alpha).clamp(min=1e-4)
        s = s / (s.max() * s.min()).sqrt()
        s_rows = s.repeat_interleave(taps)
        if gram is not None:
            delta = (w - rtn(w * s_rows, spec) / s_rows).to(gram.dtype)
            losses.append(float(((delta @ gram) * delta).sum()) / (len(rows) * w.shape[0]))
        else:
            out = layer_output(rows / s_rows, rtn(w * s_rows, spec), bias)
            losses.append(_mean_square(reference - out))
        if best is None or losses[-1] < best[2]:
            best = (s, alpha, losses[-1])
    return best[0], best[1], losses


@torch.no_grad()
def clip_search(
    w: torch.Tensor, rows: torch.Tensor, spec: QuantSpec, *, steps: int = 10, gram: torch.Tensor | None = None
) -> torch.Tensor:
    """AWQ's clipping search: per weight block, shrink its [min, max] by r ∈ {1, 1 − 1/(2·steps), …, 0.55}
    and keep the r minimizing that block's share of the output error ‖X_B (W_B − Q_r(W_B))ᵀ‖²; returns Q(W).
    With ``gram`` (XᵀX of the rows) that error is d_B X_Bᵀ X_B d_Bᵀ, from the diagonal blocks of XᵀX."""
    if isinstance(spec.granularity, PerTensor):
        return rtn(w, spec)
    lo, hi = min_max(w, spec)
    size = spec.block_shape(w.shape)[1]
    x = rows.reshape(len(rows), -1, size) if gram is None else None
    blocks = None
    if gram is not None:
        g = gram.reshape(-1, size, gram.shape[0] // size, size)
        blocks = torch.stack([g[i, :, i, :] for i in range(g.shape[0])])  # (groups, size, size)
    best_err, best_lo, best_hi = None, lo, hi
    for i in range(steps):
        r = 1.0 - i / (2 * steps)
        w_q = fake_quantize(w, choose_qparams(lo * r, hi * r, spec), spec)
        diff = (w - w_q).reshape(w.shape[0], -1, size)
        if blocks is None:
            err = _block_errors(x, diff)
        else:
            d = diff.to(blocks.dtype)
            err = torch.einsum("ogk,gkl,ogl->og", d, blocks, d)
        if best_err is None:
            best_err = err
            continue
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_lo, best_hi = torch.where(better, lo * r, best_lo), torch.where(better, hi * r, best_hi)
    return fake_quantize(w, choose_qparams(best_lo, best_hi, spec), spec)


def gram_matrix(rows: torch.Tensor) -> torch.Tensor:
    """XᵀX of the rows, float32 (float64 where float32 overflows)."""
    x = rows.float()
    g = x.T @ x
    return g if bool(torch.isfinite(g).all()) else rows.double().T @ rows.double()


def _block_errors(x: torch.Tensor, diff: torch.Tensor) -> torch.Tensor:
    """(out, blocks): Σ_rows (X_B · d_B)² for every output row and input block (float64 if float32 overflows)."""
    err = torch.einsum("ngk,ogk->nog", x, diff).pow(2).sum(0)
    if not bool(torch.isfinite(err).all()):
        err = torch.einsum("ngk,ogk->nog", x.double(), diff.double()).pow(2).sum(0)
    return err


def _mean_square(d: torch.Tensor) -> float:
    """mean(d²), in float64 when float32's squares overflow (inputs beyond ~1e19)."""
    value = float(d.pow(2).mean())
    return value if math.isfinite(value) else float(d.double().pow(2).mean())


def run_awq(
    model: nn.Module,
    batches: list,
    names: list[str],
    spec: QuantSpec,
    *,
    progress=None,
    grid: int = 20,
    max_rows: int = 2048,
    clip: bool = True,
    sequential: bool | str = False,
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """AWQ on every named layer of ``model`` in place; (layer errors, notes).

    ``sequential``: False = every layer's inputs from the float model in one pass; "blocks" = one pass per
    repeated block (``layer_data.layer_blocks``) from the model quantized so far; True = one pass per layer."""
    from ptqlab.core.progress import track

    if sequential not in (False, True, "blocks"):
        raise ValueError(f"sequential must be True, False or 'blocks', got {sequential!r}")
    modules = dict(model.named_modules())
    for name in names:
        check_group_divides(name, weight_matrix(modules[name]), spec)
    if sequential == "blocks":
        blocks = blockwise_rows(model, batches, names, max_rows=max_rows, progress=progress, title="AWQ")
    else:
        groups = [names] if sequential is False else [[n] for n in names]
        blocks = (
            (g, capture_rows(model, batches, g, max_rows=max_rows).rows)
            for g in track(groups, progress, "AWQ")
        )
    errors, alphas = {}, {}
    for group, rows in blocks:
        for name in group:
            errors[name], alphas[name] = _awq_layer(
                model, name, modules[name], rows.pop(name), spec, grid, clip
            )
    summary = ", ".join(f"{n}: {a:.2f}" for n, a in list(alphas.items())[:6])
    more = " …" if len(alphas) > 6 else ""
    source = {False: "from the float model", "blocks": "block by block from the model quantized so far"}
    return errors, [
        f"AWQ: α chosen per layer on a grid of {grid} ({summary}{more}); 1/s kept as an input scale; "
        f"layer inputs {source.get(sequential, 'layer by layer from the model quantized so far')}"
    ]


def _awq_layer(model, name, layer, rows, spec, grid, clip) -> tuple[tuple[float, float], float]:
    """Scale search, clipping and RTN of one layer, in place; ((RTN error, AWQ error), α*)."""
    w, b = weight_matrix(layer), bias_of(layer)
    linear = taps(layer) == 1
    gram = gram_matrix(rows) if linear else None
    s, alpha, _ = awq_scales(w, rows, b, spec, grid=grid, taps=taps(layer), gram=gram)
    s_rows = s.repeat_interleave(taps(layer))
    if clip and linear:  # X/s has the Gram matrix diag(1/s) XᵀX diag(1/s)
        w_q = clip_search(w * s_rows, rows / s_rows, spec, gram=gram / s[:, None] / s[None, :])
    elif clip:
        w_q = clip_search(w * s_rows, rows[:1024] / s_rows, spec)
    else:
        w_q = rtn(w * s_rows, spec)
    reference = layer_output(rows, w, b)
    error = (
        relative_mse(reference, layer_output(rows, rtn(w, spec), b)),
        relative_mse(reference, layer_output(rows / s_rows, w_q, b)),
    )
    set_weight_matrix(layer, w_q)
    wrap_input_scale(model, name, s)
    return error, alpha
