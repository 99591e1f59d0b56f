"""SmoothQuant + sensitivity-guided fp32 layers, lowered through pt2e (X86InductorQuantizer + inductor).

    1. SmoothQuant every Linear:  y = (x / s)(W · s)ᵀ,  s_j = max|X_j|^α / max|W_:,j|^(1−α)   (exact in fp32)
    2. rank the Linear layers by how much dynamic int8 of that layer alone lowers the output cosine, and keep
       the worst in fp32, one at a time, until the (fast, fbgemm) dynamic int8 proxy meets ``target_cosine``
    3. pt2e static int8 on the rest (``set_module_name_qconfig(kept, None)``), compiled with freezing

MiniLM at sequence 32: per-tensor int8 of the FFN down-projections (GELU outputs with outlier channels) costs
most of the cosine; SmoothQuant and two fp32 layers bring it above 0.999 while 34 of 36 Linear stay int8.
"""

from __future__ import annotations

import torch

from ptqlab.backends.base import QuantizedResult, Recipe
from ptqlab.backends.pt2e import apply_pt2e, pt2e_availability
from ptqlab.backends.smoothquant import flat_output, output_cosine, smooth_and_select


def _shapes(args: tuple) -> list:
    return [tuple(a.shape) if isinstance(a, torch.Tensor) else None for a in args]


def _apply_pt2e_sq(
    model, args, batches, *, observer, kw, device, alpha=0.75, target_cosine=0.999, max_fp32_fraction=0.34
) -> QuantizedResult:
    with torch.inference_mode():
        reference = [flat_output(model(*b)) for b in batches]
    _, kept, proxy_cos, sq_notes = smooth_and_select(
        model,
        batches,
        device=device,
        alpha=alpha,
        target_cosine=target_cosine,
        max_fp32_fraction=max_fp32_fraction,
    )
    result = apply_pt2e(
        model, args, batches, observer=observer, kw=kw, device=device, keep_fp32=kept, name="pt2e-x86-int8-sq"
    )
    notes = [sq_notes[0]]
    if kept:
        notes.append(
            f"kept in fp32 (chosen with dynamic int8 as a proxy, cosine {proxy_cos:.5f}): {', '.join(kept)}"
        )
    notes += result.notes
    # the compiled graph is specialized to args' shapes: check the batches of that shape only
    idx = [i for i, b in enumerate(batches) if _shapes(b) == _shapes(args)]
    if idx:
        cos = output_cosine(result.model, [batches[i] for i in idx], [reference[i] for i in idx])
        verdict = "meets" if cos >= target_cosine else "misses"
        notes.append(
            f"calibration-set output cosine vs fp32: {cos:.5f} ({verdict} the target {target_cosine})"
        )
    result.notes = notes
    return result


PT2E_X86_SQ = Recipe(
    "pt2e-x86-int8-sq",
    "pt2e X86 + SmoothQuant (+fp32 where sensitive)",
    "pt2e + inductor",
    8,
    "SmoothQuant α=0.75, static int8 via X86InductorQuantizer + compile; layers that alone break a 0.999 "
    "output cosine stay fp32",
    _apply_pt2e_sq,
    pt2e_availability,
    calibrates=True,
    compiles=True,
)
