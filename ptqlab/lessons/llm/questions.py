"""Lab 10's self-checks; every expected answer is computed by ptqlab (the GGUF block layouts, llama.cpp's
Q8_0 rounding on a concrete block, the decode roofline of the lab's model, the measured Q4_1 facts)."""

from __future__ import annotations

import torch

from ptqlab.core.gguf_formats import FORMATS, block_codes
from ptqlab.labkit.questions import Question

ROOFLINE_BANDWIDTH_GBS = 20.0  # a round number for the question (the lab measures its own)
TIE_D = 0.125  # a power of two: x / d is exact, so the tie is a real tie
TIE_X = -0.3125


def q4_1_bits_question() -> Question:
    f = FORMATS["Q4_1"]
    return Question(
        "*Numeric.* A GGUF **Q4_1** block holds 32 weights as 4-bit codes plus an fp16 scale $d$ and an fp16 "
        "offset $m$. How many bits per weight does the file spend?",
        f.bits_per_weight,
        f"codes 32 · 4 = 128 bits, d and m 2 · 16 = 32 bits: {f.block_bytes} bytes per block, "
        f"8 · {f.block_bytes} / 32 = **{f.bits_per_weight:g}** bits per weight.",
        rel_tol=1e-6,
        hint="Add the two fp16 numbers per block to the 32 codes, then divide by 32.",
    )


def tie_question() -> Question:
    block = torch.zeros(1, 32)
    block[0, 0], block[0, 1] = 127 * TIE_D, TIE_X
    code = int(block_codes(block, "Q8_0")[0][0, 1])
    return Question(
        f"*Numeric.* A Q8_0 block's largest weight is {127 * TIE_D:g}, so $d = {TIE_D:g}$. Which int8 code "
        f"does the weight {TIE_X:g} get?",
        code,
        f"{TIE_X:g} / {TIE_D:g} = {TIE_X / TIE_D:g}, an exact tie. llama.cpp rounds half **away from zero**: "
        f"**{code}** (torch.round, half to even, would give {int(torch.round(torch.tensor(TIE_X / TIE_D)))}).",
        rel_tol=0.0,
        hint="Divide, then round a tie away from zero.",
    )


def roofline_question(fp32_weight_bytes: int) -> Question:
    tokens = ROOFLINE_BANDWIDTH_GBS * 1e9 / fp32_weight_bytes
    return Question(
        f"*Numeric.* Decoding one token at batch 1 reads every weight once: {fp32_weight_bytes / 1e6:.0f} MB "
        f"for this model in fp32 (the tied 49,152 × 576 head included). With {ROOFLINE_BANDWIDTH_GBS:g} GB/s of "
        "memory bandwidth, at most how many tokens per second?",
        tokens,
        f"{ROOFLINE_BANDWIDTH_GBS:g}e9 / {fp32_weight_bytes:,} = **{tokens:.1f}** tokens/s. At 4 bits the same "
        "bandwidth allows about 8× more: that is the whole case for int4 on a CPU or a phone.",
        rel_tol=0.05,
        hint="tokens/s = bytes per second ÷ bytes per token.",
    )


def q5_1_question(facts: dict) -> Question:
    moved = facts["changed"]["GGUF Q5_1 (5 bits, another grid)"] / facts["weights"]
    worse = facts["relative_mse"]["GGUF Q5_1 (5 bits, another grid)"] > 0
    options = {
        "Nothing: 5 bits hold every 4-bit value": f"No: Q5_1's step is (max − min)/31, Q4_1's (max − min)/15; "
        f"their points meet only at the ends — {moved:.1%} of the weights moved.",
        "It gets worse: the 4-bit values are not on the 5-bit grid": f"Right: {moved:.1%} of the weights "
        "moved by up to half a Q5_1 step, on top of the Q4_1 error already in the file.",
        "It gets better: more bits, less error": "No: the error to the *original* training weights is "
        "already fixed in the file; re-quantizing can only add error to the published weights.",
    }
    right = list(options)[1] if worse else list(options)[0]
    return Question(
        "The published SmolLM2 weights are Q4_1. You re-quantize them to **Q5_1** (one more bit per weight). "
        "What happens to the model?",
        right,
        options[right],
        options=options,
    )


def lab10_questions(facts: dict, fp32_weight_bytes: int) -> list[Question]:
    return [q4_1_bits_question(), q5_1_question(facts), tie_question(), roofline_question(fp32_weight_bytes)]
