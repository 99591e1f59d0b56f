"""Lab 07's self-check questions and recap: every expected answer and every number in a prompt, an answer or
the recap is computed here by ptqlab (or read from the comparison the lab just measured), never typed in.
"""

from __future__ import annotations

import functools

import torch

from ptqlab.core.affine import QParams, fake_quantize
from ptqlab.core.spec import QuantSpec
from ptqlab.labkit.models import digits_test_accuracy, lab_model
from ptqlab.labkit.questions import Question
from ptqlab.lessons.beyond_rtn.numbers import weight_spec
from ptqlab.models import digits_split
from ptqlab.ptq.algorithms import run_algorithm
from ptqlab.ptq.cle import equalize
from ptqlab.ptq.folding import fold_batchnorm

GPTQ_OPTIONS = {
    "It rounds every weight to the nearest grid point, just more carefully": "No — that is RTN. GPTQ moves "
    "later columns to absorb each column's rounding error, so some weights end up more than half a step "
    "from their float value.",
    "It lets the weights still to be quantized absorb each column's rounding error, weighted by the inverse "
    "Hessian of the calibration inputs": "Right: the objective is the layer's output error ‖XWᵀ − XŴᵀ‖², "
    "not the weight error, so individual weights may move further while the output gets closer.",
    "It scales salient activation channels down before quantizing": "No — that is AWQ (and SmoothQuant "
    "moves activation outliers into the weights).",
}
GPTQ_RIGHT = list(GPTQ_OPTIONS)[1]

# the tiny layer of the numeric question: 2 outputs, 2 inputs, a grid step of 0.25
TINY_W = ((0.30, -0.55), (0.80, 0.10))
TINY_BIAS = (0.10, -0.20)
TINY_X_MEAN = (2.0, 1.0)
TINY_SCALE = 0.25


def tiny_example() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W, W̃ on the 4-bit grid of step 0.25, the corrected bias b − (W̃ − W)·E[x])."""
    w, spec = torch.tensor(TINY_W), QuantSpec(bits=4)
    w_q = fake_quantize(w, QParams(torch.tensor(TINY_SCALE), torch.tensor(0, dtype=torch.int32)), spec)
    return w, w_q, torch.tensor(TINY_BIAS) - (w_q - w) @ torch.tensor(TINY_X_MEAN)


@functools.cache
def cle_float_change() -> float:
    """max |Δ logit| between the folded digits CNN and its CLE-equalized copy (float, before any rounding)."""
    folded = fold_batchnorm(lab_model("cnn"))
    x = digits_split().x_test
    with torch.inference_mode():
        before = folded(x)
    equalize(folded)
    with torch.inference_mode():
        return float((folded(x) - before).abs().max())


WITHIN, SOME, MANY = "within 1 point of fp32", "2 to 10 points below fp32", "more than 10 points below fp32"


@functools.cache
def rtn_at_8_bits() -> tuple[float, float]:
    """(RTN's, fp32's) test accuracy of the digits CNN at W8 per-channel — the row the bits slider's far end
    shows (``compare``'s RTN row), computed without its progress bars."""
    model = lab_model("cnn")
    run = run_algorithm("rtn", model, weight_spec=weight_spec(8, "per-channel", 128), calibration=None)
    return digits_test_accuracy(run.model), digits_test_accuracy(model)


def gap_band(points: float) -> str:
    return WITHIN if points <= 1 else SOME if points <= 10 else MANY


def _bias_question() -> Question:
    w, w_q, corrected = tiny_example()
    shift = (w_q - w)[0] @ torch.tensor(TINY_X_MEAN)
    return Question(
        f"*Numeric.* A layer's first output channel has weights W = {list(TINY_W[0])}, bias "
        f"b = {TINY_BIAS[0]}, and its inputs average E[x] = {list(TINY_X_MEAN)}. RTN on a grid of step "
        f"{TINY_SCALE} rounds the weights to W̃ = {[round(v, 4) for v in w_q[0].tolist()]}. "
        "What is the corrected bias b − (W̃ − W)·E[x]?",
        float(corrected[0]),
        f"W̃ − W = {[round(v, 4) for v in (w_q - w)[0].tolist()]}, so the mean output moved by "
        f"(W̃ − W)·E[x] = {float(shift):.4g}; the corrected bias is {TINY_BIAS[0]} − ({float(shift):.4g}) = "
        f"**{float(corrected[0]):.4g}**.",
        rel_tol=0.005,
        hint="First the change rounding made, W̃ − W, then its dot product with E[x].",
    )


def _cle_question() -> Question:
    change = cle_float_change()
    same = (
        f"CLE only rescales: W₁ → S⁻¹W₁, W₂ → W₂S, and ReLU(s·x) = s·ReLU(x) for s > 0. On the digits CNN "
        f"the equalized float model's logits differ from the original's by at most {change:.1e} (float "
        "rounding). Only the ranges change, so the grid fits better."
    )
    return Question(
        "*Choose the algorithm.* Which one leaves the **float** model's function unchanged, and only makes "
        "the weights easier to put on the grid?",
        "CLE",
        same,
        options={
            "bias correction": "No: it changes the bias on purpose, to cancel the mean shift that rounding "
            "adds — the function moves.",
            "CLE": "Correct. " + same,
            "AdaRound": "No: it chooses up or down per weight — that is a change of the weights themselves.",
            "GPTQ": "No: it rewrites the weights still to be quantized to absorb each column's error.",
        },
    )


def _predict_question() -> Question:
    rtn, fp32 = rtn_at_8_bits()
    points = 100 * (fp32 - rtn)
    band = gap_band(points)
    answer = (
        f"Measured: RTN at W8 per-channel gives {100 * rtn:.1f} % against fp32's {100 * fp32:.1f} %, {abs(points):.1f} points apart: 256 levels per channel leave the "
        "algorithms nothing to rescue."
    )
    return Question(
        "*Predict, then move.* Keep the digits CNN and per-channel; slide **weight bits** to 8 and press "
        "Run. How far below fp32 will plain RTN be?",
        band,
        answer,
        options={b: ("Correct. " if b == band else "Not this one. ") + answer for b in (WITHIN, SOME, MANY)},
    )


def lab07_questions() -> list[Question]:
    """GPTQ's objective, a numeric bias correction, choose-the-algorithm (CLE), predict-then-move (W8)."""
    gptq = Question(
        "GPTQ's weights are often *further* from the float weights than RTN's (top right of the figure). "
        "Why is its output error still lower?",
        GPTQ_RIGHT,
        GPTQ_OPTIONS[GPTQ_RIGHT],
        options=GPTQ_OPTIONS,
    )
    return [gptq, _bias_question(), _cle_question(), _predict_question()]
