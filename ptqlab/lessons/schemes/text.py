"""What lab 03 says: tables and sentences filled from the values ``ptqlab.lessons.schemes`` measures.

Bits per weight count what an engine stores per block: a scale of the metadata dtype (torchao and the
int4 CPU kernels keep bf16/fp16 scales) and, for asymmetric blocks only, a zero point of the same width
(torchao's group-wise layout); a symmetric block's zero point is implied and costs nothing.
"""

from __future__ import annotations

import torch

from ptqlab.core.affine import choose_qparams
from ptqlab.core.spec import QuantSpec
from ptqlab.labkit.models import LABELS
from ptqlab.lessons.schemes.numbers import (
    SchemeResult,
    activation_symmetry,
    default_layer,
    effective_bits,
    lab_activation_accuracy,
    lab_folding,
    lab_granularities,
    lab_post_relu,
    lab_weight_matrices,
)

METADATA_BITS = {"fp16": 16, "bf16": 16, "fp32": 32}


def bits_per_weight(spec: QuantSpec, shape: tuple[int, ...], metadata: str = "fp16") -> float:
    """b + blocks · (scale bits + zero-point bits if asymmetric) / elements."""
    if metadata not in METADATA_BITS:
        raise ValueError(f"metadata must be one of {sorted(METADATA_BITS)}, got {metadata!r}")
    return spec.bits_per_element(shape, scale_bits=METADATA_BITS[metadata])


def granularity_markdown(
    results: dict[str, SchemeResult], row_length: int, requested_group: int, metadata: str = "fp16"
) -> str:
    """The table under the granularity figure: SQNR, worst channel, bits per weight with metadata."""
    any_result = next(iter(results.values()))
    shape = tuple(any_result.w_hat.shape)
    cost = {k: bits_per_weight(r.spec, shape, metadata) for k, r in results.items()}
    rows = "\n".join(
        f"| {k} | {r.sqnr_db:.1f} | {float(r.channel_sqnr_db.min()):.1f} | {cost[k]:.3f} |"
        for k, r in results.items()
    )
    zero = "no zero point (symmetric)" if any_result.spec.symmetric else f"a {metadata} zero point"
    g = results["per-group"].spec.granularity.group_size
    return (
        f"| granularity | SQNR (dB) | worst channel (dB) | bits per weight (codes + a {metadata} scale, {zero}, per block) |\n"
        f"|---|---|---|---|\n{rows}\n\n"
        f"Group size used: **{g}** (the largest divisor of K = {row_length} not above {requested_group}). "
        f"Per-group pays for its accuracy with {cost['per-group'] - any_result.spec.bits:.3f} extra bits per "
        f"weight of metadata; per-channel with {cost['per-channel'] - any_result.spec.bits:.4f}."
    )


def outlier_sentence(bits: int = 4) -> str:
    """MiniLM's default layer: how much wider its widest channel is than the median one, and what per-tensor
    and per-channel give at W``bits`` (symmetric, the lab's default group 32)."""
    layer = default_layer("minilm")
    w = lab_weight_matrices("minilm", False)[layer]
    amax = w.abs().amax(1)
    ratio = float(amax.max() / amax.median())
    r = lab_granularities("minilm", False, layer, bits=bits, group_size=32, symmetric=True)
    return (
        f"MiniLM's `{layer}` shows the same effect without BatchNorm: its widest output channel has "
        f"max|w| {ratio:.0f}× the median channel's, and per-tensor W{bits} reaches an SQNR of "
        f"{r['per-tensor'].sqnr_db:.1f} dB against {r['per-channel'].sqnr_db:.1f} dB per channel."
    )


def folding_summary(name: str, low_bits: tuple[int, ...] = (2, 3)) -> str:
    """BatchNorm factor spread, and at each low width: per-tensor with BN kept / folded, per-channel folded,
    with a verdict on whether per-channel scales win back what folding cost (read from the measurement)."""
    points, fp32, factors = lab_folding(name)
    ratios = [float(s.max() / s.min()) for s in factors.values()]
    at = {(p.bits, p.granularity, p.folded): 100 * p.accuracy for p in points}
    parts = [
        f"**{LABELS[name]}** (fp32 {100 * fp32:.1f} %): BatchNorm factors differ by "
        f"{min(ratios):.1f}–{max(ratios):.1f}× across the channels of a layer."
    ]
    for b in low_bits:
        kept, folded, pc = (
            at[(b, "per-tensor", False)],
            at[(b, "per-tensor", True)],
            at[(b, "per-channel", True)],
        )
        verdict = (
            "per-channel scales win it back"
            if pc >= kept - 0.3
            else "per-channel scales do **not** win it back at this width"
        )
        if folded >= kept - 0.3:
            verdict = "folding costs per-tensor nothing here"
        parts.append(
            f"W{b}: per-tensor {kept:.1f} % with BN kept → {folded:.1f} % folded; per-channel on the folded "
            f"weights {pc:.1f} %: {verdict}."
        )
    return " ".join(parts)


def activation_markdown(bits: int) -> str:
    """The table under the activation figure: codes used, effective bits, SQNR, whole-model accuracy."""
    results = activation_symmetry(lab_post_relu(), bits)
    accuracy, fp32 = lab_activation_accuracy(bits)
    rows = "\n".join(
        f"| {k} | {r.codes_used} of {r.spec.levels} | {effective_bits(r.codes_used):.2f} | {r.sqnr_db:.1f} "
        f"| {100 * accuracy[k]:.1f} |"
        for k, r in results.items()
    )
    return (
        f"| scheme | codes used | effective bits | SQNR of this tensor (dB) | MLP accuracy, every layer input "
        f"at A{bits} (%) |\n|---|---|---|---|---|\n{rows}\n\n"
        f"fp32 accuracy: {100 * fp32:.1f} %. Activation ranges calibrated (min/max) on 256 training images; "
        "weights kept in float to isolate the activation scheme."
    )


def activation_gap(bits: int) -> float:
    """Accuracy points the asymmetric uint scheme leads the symmetric int scheme by at A``bits``."""
    accuracy, _ = lab_activation_accuracy(bits)
    values = list(accuracy.values())  # ACT_SCHEMES order: symmetric, asymmetric
    return 100 * (values[1] - values[0])


def scale_of(max_abs: float, bits: int, narrow: bool = False) -> float:
    """A symmetric signed scale for max|w| = ``max_abs`` (full range divides by 2^(b−1) − ½, narrow by 2^(b−1) − 1)."""
    spec = QuantSpec(bits=bits, narrow_range=narrow)
    return float(choose_qparams(torch.tensor(-max_abs), torch.tensor(max_abs), spec).scale)


def fold_switch_note(name: str, folded: bool) -> str:
    """What the fold switch does on this model: said outright when there is nothing to fold."""
    from ptqlab.lessons.schemes.numbers import batchnorm_count

    n = batchnorm_count(name)
    if n == 0:
        return (
            f"*{LABELS[name]} has no BatchNorm layer: the fold switch has nothing to fold and changes nothing "
            "here — pick a digits model to see it act.*"
        )
    state = "folded into the weights below" if folded else "kept (switch on to fold them)"
    return f"*{LABELS[name]} has {n} BatchNorm layer{'s' if n > 1 else ''}: {state}.*"
