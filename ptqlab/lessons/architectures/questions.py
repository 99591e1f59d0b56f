"""Lab 11's self-checks. The numeric answers are computed by ptqlab (BatchNorm folding, a per-tensor grid);
the MobileNetV2 question's right option is whatever the lab measured on the trained model."""

from __future__ import annotations

import torch
from torch import nn

from ptqlab.labkit.questions import Question
from ptqlab.ptq.folding import fold_bn_into
from ptqlab.ptq.vit_activations import log2_quantize

FOLD = {"w_max": 0.4, "gamma": 3.0, "var": 0.0899, "eps": 1e-4}  # sqrt(var + eps) = 0.3
LEVELS = {"wide": 2.0, "narrow": 0.02}
SOFTMAX_P = 0.003


def folded_max_weight() -> float:
    """max |W'| of a one-channel conv with max |W| = FOLD["w_max"] after folding FOLD's BatchNorm."""
    conv, bn = nn.Conv2d(1, 1, 1, bias=False), nn.BatchNorm2d(1, eps=FOLD["eps"]).eval()
    with torch.no_grad():
        conv.weight.fill_(FOLD["w_max"])
        bn.weight.fill_(FOLD["gamma"])
        bn.running_var.fill_(FOLD["var"])
    fold_bn_into(conv, bn)
    return float(conv.weight.abs().max())


def narrow_channel_levels() -> float:
    """Positive int8 levels the narrow channel spans under one symmetric per-tensor scale Δ = max r / 127."""
    return LEVELS["narrow"] / (LEVELS["wide"] / 127)


def collapse_question(per_tensor: float, per_channel: float, ratio: float) -> Question:
    """Predict, then read: did per-tensor W8A8 collapse on the trained MobileNetV2-style model?"""
    collapsed = per_channel - per_tensor > 0.05
    yes, no = "Yes: it loses more than 5 points", "No: it stays within 5 points of per-channel"
    why_measured = (
        f"measured here: per-tensor {100 * per_tensor:.2f} %, per-channel {100 * per_channel:.2f} %; the "
        f"folded depthwise ranges span only {ratio:.1f}×"
    )
    options = {
        yes: ("Right" if collapsed else "No") + f": {why_measured}.",
        no: ("Right" if not collapsed else "No") + f": {why_measured}.",
        "It cannot be known without ImageNet": "No: the lab measured it on this model; what it cannot say "
        "is how ImageNet's MobileNetV2 behaves (its spread is much wider).",
    }
    return Question(
        "*Predict, then read section 2.* On the trained MobileNetV2-style model, does per-tensor int8 (W8A8) "
        "collapse the way Nagel et al. report for ImageNet's MobileNetV2?",
        yes if collapsed else no,
        options[yes if collapsed else no],
        options=options,
    )


def lab11_questions(per_tensor: float, per_channel: float, ratio: float) -> list[Question]:
    """Four self-checks: folding arithmetic, per-tensor levels, the measured collapse, softmax's grid."""
    w = folded_max_weight()
    levels = narrow_channel_levels()
    p_hat = float(log2_quantize(torch.tensor([SOFTMAX_P]), 8)[0])
    uniform_step = 1 / 255
    return [
        Question(
            f"*Numeric.* A conv channel has max |W| = {FOLD['w_max']}; its BatchNorm has γ = {FOLD['gamma']}, "
            f"σ² = {FOLD['var']}, ε = {FOLD['eps']:g}. What is max |W'| after folding?",
            w,
            f"s = γ / sqrt(σ² + ε) = {FOLD['gamma']} / {(FOLD['var'] + FOLD['eps']) ** 0.5:.3g} = "
            f"{FOLD['gamma'] / (FOLD['var'] + FOLD['eps']) ** 0.5:.4g}, so max |W'| = {w:.4g}: folding can "
            "multiply a channel's range by a lot, which is how depthwise channels end up uneven.",
            hint="s = γ / sqrt(σ² + ε) multiplies every weight of the channel.",
        ),
        Question(
            f"*Numeric.* In one depthwise layer the widest channel has r = max|W_c| = {LEVELS['wide']}, the "
            f"narrowest {LEVELS['narrow']}. With one symmetric int8 scale Δ = {LEVELS['wide']} / 127, how many "
            "positive levels does the narrowest channel span (r / Δ)?",
            levels,
            f"Δ = {LEVELS['wide'] / 127:.4g}; {LEVELS['narrow']} / Δ = {levels:.2f}: its weights round to "
            "−1, 0 or +1 steps — the channel is destroyed. Per-channel scales give it all 127 levels.",
            rel_tol=0.02,
            hint="r / Δ = 127 · r_narrow / r_wide.",
        ),
        collapse_question(per_tensor, per_channel, ratio),
        Question(
            f"A softmax output p = {SOFTMAX_P} is quantized to 8 bits. Which grid keeps it (roughly)?",
            "log2: p̂ = 2^−round(−log₂ p)",
            f"log2 gives p̂ = {p_hat:.4g} (within a factor √2); a uniform grid over [0, 1] has step "
            f"{uniform_step:.4f}, so p rounds to {round(SOFTMAX_P / uniform_step) * uniform_step:.4g}. Engines "
            "here run neither on softmax: they keep it in float.",
            options={
                "uniform over [0, 1], 256 levels": f"No: the step is 1/255 ≈ {uniform_step:.4f}, so "
                f"{SOFTMAX_P} rounds to {round(SOFTMAX_P / uniform_step) * uniform_step:.4g}.",
                "log2: p̂ = 2^−round(−log₂ p)": f"Right: p̂ = {p_hat:.4g}; log2 keeps relative precision for "
                "small probabilities (PTQ4ViT, FQ-ViT).",
                "either: both have 256 codes": "No: the same number of codes, placed very differently.",
            },
        ),
    ]
