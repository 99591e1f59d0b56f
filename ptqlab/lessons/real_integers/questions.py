"""Lab 09's self-check questions and recap. The three original questions keep their wording
(``QUESTIONS``) and gain an explanation per option; the numeric and the
predict-then-move answers, and every number in the recap, are computed here by ptqlab."""

from __future__ import annotations

import math

from ptqlab.core.fixed_point import INT32_MAX
from ptqlab.core.metrics import sqnr_db
from ptqlab.core.packed_file import bits_per_weight, payload_nbytes
from ptqlab.core.packing import byte_table
from ptqlab.core.spec import PerGroup, QuantSpec
from ptqlab.labkit.questions import Question
from ptqlab.lessons.real_integers.numbers import (
    lab_tensor,
    round_trips,
    weight_row_codes,
)

PACKED_SHAPE = (1024, 4096)  # (out, in): a transformer-sized Linear
PACKED_SPEC = QuantSpec(4, granularity=PerGroup(128, axis=1))  # symmetric: no zero points stored
STRADDLE_BITS = 3

WHY = {
    "q1": {
        "Yes, easily": "No: the worst case is K·255·128 = {worst:,}, below int32's {int_max:,}.",
        "No, it cannot": "Right: the worst case K·255·128 = {worst:,} ≈ 2^{log2:.1f} "
        "leaves about {spare:.0f} bits of headroom below 2^31.",
        "Only without a bias": "No: the bias adds one int32 term; the products set the worst case, "
        "K·255·128 = {worst:,}, far below int32's {int_max:,}.",
    },
    "q2": {
        "Floats are less accurate": "No: float32 is accurate enough; the point is the hardware.",
        "Integer-only hardware has no float multiplier": "Right: M0 · 2^−n is one integer multiply and a "
        "shift, which every integer unit has (and it is exact to the bit on every platform).",
        "To save memory": "No: one float per layer costs nothing; the point is the arithmetic unit.",
    },
    "q3": {
        "fp8 e4m3: it has more range": "No: with a per-tensor scale range is free; what matters is how "
        "densely the points cover the bulk of the values.",
        "int8: its 256 evenly spaced points cover the values more densely": "Right: e4m3 has 3 mantissa "
        "bits, so its step grows with the magnitude and most of its 256 codes sit on tiny values. Measured "
        "on the MLP's fc2 weights (table above): int8 {int8:.1f} dB, fp8 e4m3 {e4m3:.1f} dB SQNR.",
        "They are identical": "No: measured on the MLP's fc2 weights, int8 {int8:.1f} dB, e4m3 {e4m3:.1f} dB.",
    },
}


def _numbers() -> dict:
    """What the explanations quote: the overflow bound, and int8 vs fp8 e4m3 SQNR on fc2's weights."""
    worst, w = 4096 * 255 * 128, lab_tensor("weight")
    trips = round_trips(w)
    return {"worst": worst, "int_max": INT32_MAX, "log2": math.log2(worst), "spare": math.log2(INT32_MAX / worst),
            "int8": sqnr_db(w, trips["int8"]), "e4m3": sqnr_db(w, trips["fp8_e4m3"])}  # fmt: skip


def original_questions() -> list[Question]:
    numbers = _numbers()
    questions = []
    for key, (prompt, options, right) in QUESTIONS.items():
        why = {o: WHY[key][o].format(**numbers) for o in options}
        questions.append(Question(prompt, right, why[right], options=why))
    return questions


def first_straddling_code(bits: int = STRADDLE_BITS) -> int:
    """The index of the first code whose bits land in two bytes (from the lab's own byte table)."""
    seen: dict[int, int] = {}
    for row in byte_table(weight_row_codes(bits, 8), bits):
        for index, _, _ in row["codes"]:
            seen[index] = seen.get(index, 0) + 1
    return min(i for i, count in seen.items() if count > 1)


def lab09_questions() -> list[Question]:
    """The three originals, the bytes of a packed int4 matrix, and predict-then-move on the bits slider."""
    out, k = PACKED_SHAPE
    nbytes = payload_nbytes(PACKED_SHAPE, PACKED_SPEC, scale_bits=16)
    codes, groups = out * k // 2, out * (k // 128)
    bytes_question = Question(
        f"*Numeric.* A ({out}, {k}) weight matrix is stored as symmetric **4-bit** codes, packed two per "
        "byte, with one **fp16** scale per group of **128** inputs (no zero points). How many bytes?",
        nbytes,
        f"codes: {out}·{k}·4/8 = {codes:,} bytes; scales: {out}·{k // 128} groups · 2 bytes = "
        f"{2 * groups:,}; total **{nbytes:,}** bytes = "
        f"{bits_per_weight(PACKED_SHAPE, PACKED_SPEC, 16):.3f} bits per weight.",
        rel_tol=1e-6,
        hint="Codes take 4 bits each; add one 2-byte scale per group of 128.",
    )
    first = first_straddling_code()
    predict = Question(
        f"*Predict, then move.* Set **bits per code** to {STRADDLE_BITS}. Which code (0, 1, 2, …) is the "
        "first whose bits are split across two bytes? Answer, then look at the byte table.",
        first,
        f"Code i takes bits [{STRADDLE_BITS}i, {STRADDLE_BITS}i + {STRADDLE_BITS}): code {first} covers bits "
        f"{STRADDLE_BITS * first}–{STRADDLE_BITS * first + STRADDLE_BITS - 1}, across the boundary at bit 8 "
        f"— the table shows code {first} in byte 0 and byte 1.",
        rel_tol=0.0,
        hint="Code i occupies bits 3i to 3i + 2; where is the first byte boundary?",
    )
    return [*original_questions(), bytes_question, predict]


QUESTIONS = {
    "q1": (
        "An int8 layer with 4096 inputs, uint8 activations up to 255 and int8 weights: can its int32 "
        "accumulator overflow?",
        ["Yes, easily", "No, it cannot", "Only without a bias"],
        "No, it cannot",
    ),
    "q2": (
        "Why does M = s_x·s_w/s_y become M0·2^−n instead of staying a float?",
        ["Floats are less accurate", "Integer-only hardware has no float multiplier", "To save memory"],
        "Integer-only hardware has no float multiplier",
    ),
    "q3": (
        "fp8 e4m3 and int8 both take 8 bits. On a bell-shaped weight tensor, which has the smaller error?",
        [
            "fp8 e4m3: it has more range",
            "int8: its 256 evenly spaced points cover the values more densely",
            "They are identical",
        ],
        "int8: its 256 evenly spaced points cover the values more densely",
    ),
}
