"""SmoothQuant (Xiao et al., 2022, "SmoothQuant: Accurate and Efficient Post-Training Quantization for Large
Language Models"): move the quantization difficulty of outlier activation channels into the weights.

Transformers (MiniLM included) have a few activation channels 10-100× larger than the rest; one per-tensor
activation scale must cover them and crushes every other channel to a handful of int8 levels. For each
Linear y = x Wᵀ (and each Conv2d, per input channel), exactly:

    s_j = max|X_j|^α / max|W_:,j|^(1−α)          (per input channel j; max|X_j| measured on calibration data)
    y  = (x / s) (W · s)ᵀ                          (identical in real arithmetic)

so x/s has flatter channels and W·s absorbs the range (weights are per-channel quantized, they cope).
α = 0.5 is the paper's default (0.75-0.85 for harder models). The 1/s stays an explicit input scale
(``SmoothedInput``); a deployment folds it into the previous LayerNorm or Linear. One implementation:
the ``ao-dynamic-int8-sq`` and pt2e backend recipes import it from here.
"""

from __future__ import annotations

import torch
from torch import nn

from ptqlab.core.affine import choose_qparams, fake_quantize
from ptqlab.core.spec import QuantSpec
from ptqlab.ptq.dynamic_act import check_act_mode, dynamic_fake_quantize
from ptqlab.ptq.layer_data import bias_of, layer_output, relative_mse, rtn, set_weight_matrix, weight_matrix
from ptqlab.ptq.measure import check_layer_input, eval_mode, run_named


class SmoothedInput(nn.Module):
    """inner(x · inv_scale): the 1/s half of SmoothQuant (or AWQ), in front of a layer whose weight holds s."""

    def __init__(self, inner: nn.Module, inv_scale: torch.Tensor):
        super().__init__()
        self.inner = inner
        self.register_buffer("inv_scale", inv_scale)

    def forward(self, x):
        return self.inner(x * self.inv_scale)


def _channel_view(x: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """(rows, channels): a Conv2d input (N, C, H, W) as N·H·W rows of C; anything else by its last dim."""
    if isinstance(layer, nn.Conv2d):
        return x.transpose(1, -1).reshape(-1, x.shape[1])
    return x.reshape(-1, x.shape[-1])


def channel_absmax(model: nn.Module, names: list[str], batches: list, run=None) -> dict[str, torch.Tensor]:
    """max|X_j| over every calibration row, per input channel j, for each named Linear/Conv2d.

    Each batch is fed as ``run(model, batch)`` (default ``model(*batch)``), in eval mode (every module's flag
    restored after); inputs are checked as ``calibrate`` checks them and a failure names the batch and layer.
    """
    modules = dict(model.named_modules())
    amax: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(module, args):
            check_layer_input(module, args[0] if args else None, name)
            x = _channel_view(args[0].detach(), module).abs().amax(0).float()
            amax[name] = x if name not in amax else torch.maximum(amax[name], x)

        return record

    handles = [modules[n].register_forward_pre_hook(hook(n)) for n in names]
    try:
        with torch.inference_mode(), eval_mode(model):
            for i, batch in enumerate(batches):
                run_named(model, batch, i, call=run or _positional)
    finally:
        for h in handles:
            h.remove()
    return amax


def _positional(model: nn.Module, batch):
    return model(*batch)


def weight_input_absmax(weight: torch.Tensor) -> torch.Tensor:
    """max|W_:,j| per input channel j (over outputs and, for a conv, kernel taps)."""
    w = weight.detach().abs()
    return w.amax(dim=[d for d in range(w.dim()) if d != 1]).float()


def smoothing_scale(
    act_absmax: torch.Tensor, weight: torch.Tensor, alpha: float, floor: float = 0.01
) -> torch.Tensor:
    """s_j = max|X_j|^α / max|W_:,j|^(1−α).

    max|X_j| is floored at ``floor`` · max_j max|X_j|: a channel that was (almost) zero in every calibration
    batch — a blank border pixel — would otherwise get s_j ≈ 0, and the first non-zero value it sees later
    is multiplied by 1/s_j ≈ 10⁵, blowing up the per-tensor activation range of the whole batch.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"floor must lie in [0, 1), got {floor}")
    act = act_absmax.float().clamp(min=max(floor * float(act_absmax.max()), 1e-5))
    w_absmax = weight_input_absmax(weight).clamp(min=1e-5)
    return act**alpha / w_absmax ** (1.0 - alpha)


def wrap_input_scale(model: nn.Module, name: str, s: torch.Tensor) -> None:
    """Replace layer ``name`` by SmoothedInput(layer, 1/s) (1/s shaped (C, 1, 1) for a Conv2d)."""
    modules = dict(model.named_modules())
    layer = modules[name]
    inv = (1.0 / s).to(layer.weight.dtype)
    if isinstance(layer, nn.Conv2d):
        inv = inv.reshape(-1, 1, 1)
    parent, _, child = name.rpartition(".")
    setattr(modules[parent] if parent else model, child, SmoothedInput(layer, inv))


def smooth_linears(
    model: nn.Module, amax: dict[str, torch.Tensor], alpha: float, floor: float = 0.01
) -> None:
    """Replace each layer named in ``amax`` by SmoothedInput(layer with W·s, 1/s) — the same function."""
    modules = dict(model.named_modules())
    for name, act in amax.items():
        layer = modules[name]
        s = smoothing_scale(act, layer.weight, alpha, floor)
        shape = (1, -1) + (1,) * (layer.weight.dim() - 2)
        with torch.no_grad():
            layer.weight.mul_(s.reshape(shape).to(layer.weight.dtype))
        wrap_input_scale(model, name, s)


ALPHA_GRID = tuple(i / 10 for i in range(11))  # α = "search" tries these


def act_fake_quant(x: torch.Tensor, act_spec: QuantSpec | None, act_mode: str, static_range=None):
    """x as the quantized layer will see it: static per-tensor (``static_range`` (lo, hi) from calibration),
    dynamic per-tensor or per-token (``dynamic_act``), or x itself when act_spec is None."""
    if act_spec is None:
        return x
    if act_mode == "static":
        return fake_quantize(x, choose_qparams(*static_range, act_spec), act_spec)
    return dynamic_fake_quantize(x, act_spec, act_mode == "per-token")


@torch.no_grad()
def search_alpha(w, rows, bias, amax, *, spec, act_spec, act_mode, floor: float = 0.01, sample: int = 512):
    """(α*, s*, losses): the α of ALPHA_GRID whose smoothing s(α) (from the channel maxima ``amax``) gives the
    smallest W·A-quantized output error ‖X Wᵀ − A(X/s) Q(W·s)ᵀ‖² / ‖X Wᵀ‖² on ``sample`` rows
    (A: act_fake_quant; a static range is min/max of X/s over all ``rows``)."""
    x = rows[:sample]
    reference = layer_output(x, w, bias)
    best, losses = None, []
    for alpha in ALPHA_GRID:
        s = smoothing_scale(amax, w, alpha, floor)
        scaled = rows / s
        static = (scaled.min(), scaled.max()) if act_mode == "static" else None
        out = layer_output(act_fake_quant(x / s, act_spec, act_mode, static), rtn(w * s, spec), bias)
        losses.append(relative_mse(reference, out))
        if best is None or losses[-1] < best[2]:
            best = (alpha, s, losses[-1])
    return best[0], best[1], losses


def run_smoothquant(
    model: nn.Module,
    batches: list,
    names: list[str],
    spec: QuantSpec,
    *,
    progress=None,
    alpha: float | str = 0.5,
    floor: float = 0.01,
    act_spec: QuantSpec | None = None,
    act_mode: str = "static",
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """SmoothQuant every named layer in place, then RTN its weights W·s with ``spec``; (layer errors, notes).

    ``alpha="search"``: per layer, the α of ALPHA_GRID minimizing the W8A8 output error (``search_alpha``,
    activations as ``act_spec``/``act_mode`` will quantize them). Layer errors are weight-only (activation
    fake-quant is added afterwards by the caller).
    """
    from ptqlab.core.progress import track
    from ptqlab.ptq.calibrate import run_batch
    from ptqlab.ptq.layer_data import capture_rows

    if alpha != "search" and not isinstance(alpha, int | float) or isinstance(alpha, bool):
        raise ValueError(f"alpha must be a number in [0, 1] or 'search', got {alpha!r}")
    check_act_mode(act_mode)
    modules = dict(model.named_modules())
    amax = channel_absmax(model, names, batches, run=run_batch)
    rows = capture_rows(model, batches, names, max_rows=4096).rows
    errors, chosen = {}, {}
    for name in track(names, progress, "SmoothQuant"):
        layer = modules[name]
        w, b = weight_matrix(layer), bias_of(layer)
        if alpha == "search" and isinstance(layer, nn.Linear):
            chosen[name], s, _ = search_alpha(
                w, rows[name], b, amax[name], spec=spec, act_spec=act_spec, act_mode=act_mode, floor=floor
            )
        else:
            chosen[name], s = (
                alpha,
                smoothing_scale(amax[name], layer.weight, 0.5 if alpha == "search" else alpha, floor),
            )
        s_rows = s.repeat_interleave(layer.weight[0, 0].numel())
        w_q = rtn(w * s_rows, spec)
        reference = layer_output(rows[name], w, b)
        errors[name] = (
            relative_mse(reference, layer_output(rows[name], rtn(w, spec), b)),
            relative_mse(reference, layer_output(rows[name] / s_rows, w_q, b)),
        )
        set_weight_matrix(layer, w_q)
        wrap_input_scale(model, name, s)
    if alpha == "search":
        values = sorted(set(chosen.values()))
        return errors, [
            f"SmoothQuant α searched per layer on {ALPHA_GRID[0]}…{ALPHA_GRID[-1]}: chose {values}"
        ]
    return errors, [f"SmoothQuant α={alpha}: x/s, W·s with s_j = max|X_j|^α / max|W_j|^(1−α)"]
