"""SmoothQuant + sensitivity-guided mixed precision on torch.ao's dynamic int8 (fbgemm) kernels.

The SmoothQuant math itself lives in ``ptqlab.ptq.smoothquant`` (one implementation, re-exported here).

Transformers (MiniLM included) have a few activation channels 10-100× larger than the rest; one per-tensor
activation scale must cover them and crushes every other channel to a handful of int8 levels. SmoothQuant
(Xiao et al., 2023) moves that difficulty into the weights, exactly — for each Linear y = x Wᵀ:

    s_j = max|X_j|^α / max|W_:,j|^(1−α)          (per input channel j; max|X_j| measured on calibration data)
    y  = (x / s) (W · s)ᵀ                          (identical in real arithmetic)

so x/s has flatter channels and W·s absorbs the range (weights are per-channel quantized, they cope).
If the int8 model still misses ``target_cosine`` (mean cosine to the fp32 outputs on the calibration batches),
the layers whose quantization alone hurts most are kept in fp32, worst first, up to ``max_fp32_fraction``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ptqlab.backends.base import QuantizedResult, Recipe, exact_linear_modules
from ptqlab.backends.torch_ao import dynamic_availability, quantize_dynamic_int8
from ptqlab.ptq.smoothquant import SmoothedInput, channel_absmax, smooth_linears, smoothing_scale


def flat_output(out) -> torch.Tensor:
    """All floating tensors of a model output (tensor, tuple, dict) as one float32 vector."""
    if isinstance(out, torch.Tensor):
        return out.detach().float().reshape(-1) if out.is_floating_point() else torch.zeros(0)
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, tuple | list):
        parts = [flat_output(o) for o in out]
        return torch.cat(parts) if parts else torch.zeros(0)
    return torch.zeros(0)


def output_cosine(model: nn.Module, batches: list[tuple], reference: list[torch.Tensor]) -> float:
    """Mean over batches of cos(flat outputs, fp32 flat outputs)."""
    with torch.inference_mode():
        cos = [
            F.cosine_similarity(flat_output(model(*b)), r, dim=0).item()
            for b, r in zip(batches, reference, strict=True)
        ]
    return sum(cos) / len(cos)


def smooth_and_select(
    model, batches, *, device, alpha=0.75, target_cosine=0.999, max_fp32_fraction=0.34
) -> tuple[nn.Module, list[str], float, list[str]]:
    """SmoothQuant ``model`` in place, then keep the most harmful Linear layers fp32 until dynamic int8 meets
    ``target_cosine`` on the calibration batches. Returns (dynamic int8 model, kept layer names (the
    SmoothedInput wrappers), its calibration cosine, notes)."""
    with torch.inference_mode():
        reference = [flat_output(model(*b)) for b in batches]
    names = [
        n for n, _ in exact_linear_modules(model) if n
    ]  # a bare Linear as the whole model cannot be wrapped
    smooth_linears(model, channel_absmax(model, names, batches), alpha)
    smoothed = {n + ".inner" for n in names}
    qmodel, notes = quantize_dynamic_int8(model, device)
    cos = output_cosine(qmodel, batches, reference)
    notes.insert(
        0,
        f"SmoothQuant α={alpha} on {len(names)} Linear (x/s, W·s; max|X_j| from {len(batches)} calibration batch(es))",
    )
    kept: list[str] = []
    if cos < target_cosine and len(names) > 1:
        harm = {}
        for n in smoothed:
            alone, _ = quantize_dynamic_int8(model, device, {n})
            harm[n] = 1.0 - output_cosine(alone, batches, reference)
        for n in sorted(harm, key=harm.get, reverse=True)[: int(max_fp32_fraction * len(names))]:
            kept.append(n)
            qmodel, _ = quantize_dynamic_int8(model, device, smoothed - set(kept))
            cos = output_cosine(qmodel, batches, reference)
            if cos >= target_cosine:
                break
    kept = [k.removesuffix(".inner") for k in kept]
    if kept:
        notes.append(f"kept in fp32 (most sensitive, one at a time): {', '.join(kept)}")
    return qmodel, kept, cos, notes


def _apply_sq(
    model, args, batches, *, observer, kw, device, alpha=0.75, target_cosine=0.999, max_fp32_fraction=0.34
):
    qmodel, _, cos, notes = smooth_and_select(
        model,
        batches,
        device=device,
        alpha=alpha,
        target_cosine=target_cosine,
        max_fp32_fraction=max_fp32_fraction,
    )
    verdict = "meets" if cos >= target_cosine else "misses"
    notes.append(f"calibration-set output cosine vs fp32: {cos:.5f} ({verdict} the target {target_cosine})")
    return QuantizedResult(qmodel, "ao-dynamic-int8-sq", notes)


AO_DYNAMIC_SQ = Recipe(
    "ao-dynamic-int8-sq",
    "torch.ao dynamic + SmoothQuant (+fp32 where sensitive)",
    "torch.ao (x86/fbgemm)",
    8,
    "SmoothQuant α=0.75, dynamic int8 on fbgemm; layers that alone break a 0.999 output cosine stay fp32",
    _apply_sq,
    dynamic_availability,
    calibrates=True,
)

__all__ = [
    "AO_DYNAMIC_SQ",
    "SmoothedInput",
    "channel_absmax",
    "flat_output",
    "output_cosine",
    "smooth_and_select",
    "smooth_linears",
    "smoothing_scale",
]
