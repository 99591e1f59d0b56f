"""Lab 03's self-checks: every expected answer computed by ptqlab."""

from __future__ import annotations

from ptqlab.core.spec import PerGroup, QuantSpec
from ptqlab.labkit.questions import Question
from ptqlab.lessons.schemes.numbers import default_layer, lab_granularities
from ptqlab.lessons.schemes.text import activation_gap, bits_per_weight, scale_of

PER_TENSOR, PER_CHANNEL, PER_GROUP = "per-tensor", "per-channel", "per-group (g = 32)"


def lab03_questions() -> list[Question]:
    """Choose the granularity, bits per weight with fp16 metadata, the symmetric scale, predict A6."""
    layer = default_layer("minilm")
    r = lab_granularities("minilm", False, layer, bits=4, group_size=32, symmetric=True)
    shape = tuple(r["per-tensor"].w_hat.shape)
    cost = {k: bits_per_weight(v.spec, shape, "fp16") for k, v in r.items()}
    measured = {k: f"{v.sqnr_db:.1f} dB at {cost[k]:.3f} bits per weight" for k, v in r.items()}
    why = {
        PER_TENSOR: f"Per-tensor: {measured['per-tensor']}: one outlier sets the step for every channel.",
        PER_CHANNEL: f"Per-channel: {measured['per-channel']}: each row gets its own step, for one fp16 scale per row.",
        PER_GROUP: f"Per-group: {measured['per-group']}: better still, but it pays a scale every 32 weights.",
    }
    per_group = bits_per_weight(QuantSpec(bits=4, granularity=PerGroup(32, axis=1)), (64, 256), "fp16")
    gap = activation_gap(6)
    close = "under 1 point" if abs(gap) < 1 else "more than 1 point"
    return [
        Question(
            f"MiniLM's `{layer}` (the default layer) has one outlier channel. At W4, which granularity "
            "removes most of the outlier's damage for the **least metadata**? Pick, then compare the table.",
            PER_CHANNEL,
            " ".join(why.values()),
            options=why,
        ),
        Question(
            "A W4 **symmetric** weight with one **fp16** scale per group of **32** weights: how many bits per weight "
            "does it cost, metadata included?",
            per_group,
            f"4 + 16/32 = **{per_group:g}** bits (a symmetric block stores no zero point).",
            rel_tol=0.001,
            hint="codes + scale bits / group size.",
        ),
        Question(
            "A weight row with max|w| = 0.5 is quantized to **int8 symmetric** the way ptqlab and torch.ao do it. "
            "What is its scale?",
            scale_of(0.5, 8),
            f"0.5 / ((127 − (−128)) / 2) = 0.5 / 127.5 = **{scale_of(0.5, 8):.6g}** (the narrow range would give "
            f"0.5 / 127 = {scale_of(0.5, 8, narrow=True):.6g}).",
            rel_tol=0.001,
        ),
        Question(
            "*Predict, then move.* At A2 the symmetric grid costs the MLP far more than the asymmetric one. At **A6**, how "
            "far apart are the two schemes? Pick, then set activation bits to 6.",
            close,
            f"At A6 the asymmetric scheme leads by {gap:.1f} points: with 2^5 = 32 usable codes the wasted half "
            "of the symmetric grid no longer matters much.",
            options={
                "under 1 point": f"Measured: {gap:.1f} points.",
                "more than 1 point": f"Measured: {gap:.1f} points.",
            },
        ),
    ]
