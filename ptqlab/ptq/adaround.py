"""AdaRound (Nagel et al., 2020, "Up or Down? Adaptive Rounding for Post-Training Quantization"): learn,
per weight, whether to round down or up, so that the layer's *output* is reconstructed best.

With RTN's scale s and zero point z fixed per block:  W̃ = s · (clamp(⌊W/s⌋ + h(V) + z, qmin, qmax) − z),
h(V) = clip(σ(V)(ζ − γ) + γ, 0, 1) (rectified sigmoid, ζ = 1.1, γ = −0.1), V initialised so that
h(V) = W/s − ⌊W/s⌋. Objective, on the layer's calibration input rows X (from the model quantized so far):
    min_V  mean_rows ‖X Wᵀ − X W̃ᵀ‖²  +  λ Σ (1 − |2h(V) − 1|^β),   λ = 0.01,
β annealed from 20 to 2 after a 20 % warm-up without the regulariser; Adam. At the end h is rounded to
{0, 1}, so every integer code is ⌊W/s⌋ or ⌊W/s⌋ + 1 (clamped to the grid).

Guards: a loss that overflows float32 (calibration inputs beyond ~1e19) or a NaN option makes the rounding
variables non-finite: that raises a ValueError naming the layer. A layer whose AdaRound output error on its
calibration rows ends above RTN's (λ is fixed, so on inputs scaled far from ~1 the regulariser stops
mattering) keeps RTN's rounding, and the notes say so.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ptqlab.core.affine import qparams_for
from ptqlab.core.spec import QuantSpec
from ptqlab.ptq.layer_data import layer_output, relative_mse, rtn
from ptqlab.ptq.layerwise import input_source, quantize_sequentially

ZETA, GAMMA = 1.1, -0.1


def rectified_sigmoid(v: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def per_element_qparams(w: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """RTN's (scale, zero_point) broadcast to every element of the (out, in) matrix ``w``."""
    qp = qparams_for(w, spec)
    block = spec.block_shape(w.shape)
    scale = qp.scale.repeat_interleave(block[0], 0).repeat_interleave(block[1], 1)
    zp = qp.zero_point.float().repeat_interleave(block[0], 0).repeat_interleave(block[1], 1)
    return scale, zp


def _beta(it: int, iters: int, warmup: float, beta: tuple[float, float]) -> float | None:
    start = int(warmup * iters)
    if it < start:
        return None
    progress = (it - start) / max(iters - start, 1)
    return beta[1] + (beta[0] - beta[1]) * max(0.0, 1.0 - progress)


def adaround_layer(
    w: torch.Tensor,
    rows: torch.Tensor,
    spec: QuantSpec,
    *,
    iters: int = 1000,
    lr: float = 1e-2,
    reg: float = 0.01,
    batch_size: int = 1024,
    warmup: float = 0.2,
    beta: tuple[float, float] = (20.0, 2.0),
    seed: int = 0,
    name: str = "layer",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(dequantized W̃, up mask: 1 where the weight was rounded up) for one (out, in) matrix."""
    check_options(iters=iters, lr=lr, reg=reg, batch_size=batch_size, warmup=warmup, beta=beta)
    scale, zp = per_element_qparams(w, spec)
    floor = torch.floor(w / scale)
    frac = (w / scale - floor).clamp(1e-4, 1 - 1e-4)
    v = torch.log((frac - GAMMA) / (ZETA - frac)).requires_grad_(True)  # σ(V)(ζ−γ)+γ = frac
    target = rows @ w.T
    opt = torch.optim.Adam([v], lr=lr)
    g = torch.Generator().manual_seed(seed)
    lo, hi = float(spec.qmin), float(spec.qmax)
    with torch.enable_grad():
        for it in range(iters):
            idx = torch.randint(0, len(rows), (min(batch_size, len(rows)),), generator=g)
            h = rectified_sigmoid(v)
            w_soft = scale * (torch.clamp(floor + h + zp, lo, hi) - zp)
            loss = (rows[idx] @ w_soft.T - target[idx]).pow(2).sum(1).mean()
            b = _beta(it, iters, warmup, beta)
            if b is not None:
                loss = loss + reg * (1 - (2 * h - 1).abs().pow(b)).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    if not bool(torch.isfinite(v).all()):
        raise ValueError(
            f"adaround: the optimisation of layer {name!r} diverged (non-finite loss: its calibration inputs reach "
            f"{float(rows.abs().max()):.3g}, and squared errors must stay below float32's 3.4e38); rescale the data"
        )
    up = (v.detach() >= 0).float()
    w_q = scale * (torch.clamp(floor + up + zp, lo, hi) - zp)
    return w_q, up


def check_options(*, iters, lr, reg, batch_size, warmup, beta) -> None:
    """ValueError/TypeError naming the first AdaRound option out of its bounds."""
    for opt, value in (("iters", iters), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{opt} must be a positive int, got {value!r}")
    for opt, value, low in (("lr", lr, 0.0), ("reg", reg, None), ("warmup", warmup, None)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{opt} must be a finite number, got {value!r}")
        if (low is not None and value <= low) or (low is None and value < 0):
            raise ValueError(f"{opt} must be {'> 0' if low is not None else '>= 0'}, got {value!r}")
    if warmup >= 1:
        raise ValueError(f"warmup must lie in [0, 1), got {warmup!r}")
    if not (isinstance(beta, tuple) and len(beta) == 2 and all(_positive(b) for b in beta)):
        raise ValueError(f"beta must be a pair of finite numbers > 0 (start, end), got {beta!r}")


def _positive(b) -> bool:
    return not isinstance(b, bool) and isinstance(b, int | float) and math.isfinite(b) and b > 0


def integer_codes(w: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(⌊W/s⌋ + z, ⌊W/s⌋ + 1 + z) clamped to the grid: the only codes AdaRound may output, per element."""
    scale, zp = per_element_qparams(w, spec)
    floor = torch.floor(w / scale) + zp
    return floor.clamp(spec.qmin, spec.qmax), (floor + 1).clamp(spec.qmin, spec.qmax)


def run_adaround(
    model: nn.Module,
    batches: list,
    names: list[str],
    spec: QuantSpec,
    *,
    progress=None,
    iters: int = 1000,
    lr: float = 1e-2,
    reg: float = 0.01,
    batch_size: int = 1024,
    max_rows: int = 8192,
    seed: int = 0,
    sequential: bool | None = None,
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """AdaRound every named layer of ``model`` in place, sequentially; (layer errors, notes)."""
    flipped, kept_rtn = {}, []
    check_options(iters=iters, lr=lr, reg=reg, batch_size=batch_size, warmup=0.2, beta=(20.0, 2.0))

    def step(case):
        w = case.w
        w_q, up = adaround_layer(
            w, case.rows, spec, iters=iters, lr=lr, reg=reg, batch_size=batch_size, seed=seed, name=case.name
        )
        scale, _ = per_element_qparams(w, spec)
        nearest_up = (w / scale - torch.floor(w / scale)) >= 0.5
        flipped[case.name] = float((up.bool() != nearest_up).float().mean())
        reference, w_rtn = layer_output(case.rows, w, None), rtn(w, spec)
        ours = relative_mse(reference, layer_output(case.rows, w_q, None))
        if ours > relative_mse(reference, layer_output(case.rows, w_rtn, None)):
            kept_rtn.append(case.name)
            return w_rtn, case.b
        return w_q, case.b

    errors = quantize_sequentially(
        model,
        batches,
        names,
        step,
        spec=spec,
        max_rows=max_rows,
        progress=progress,
        title="AdaRound",
        sequential=sequential,
    )
    share = ", ".join(f"{n}: {100 * f:.1f} %" for n, f in list(flipped.items())[:6])
    notes = [f"AdaRound: {iters} Adam steps per layer, λ={reg}; rounded against nearest: {share}"]
    if kept_rtn:
        notes.append(f"AdaRound ended above RTN's output error on {', '.join(kept_rtn)}: RTN's rounding kept")
    return errors, notes + [input_source(sequential, len(names))]


__all__ = ["adaround_layer", "integer_codes", "rectified_sigmoid", "run_adaround"]
