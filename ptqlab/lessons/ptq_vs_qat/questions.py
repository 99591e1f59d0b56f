"""Lab 08's self-check questions and recap. Every expected answer is computed: the STE gradients by torch's
fake-quant autograd (``exercises_qat.torch_fake_quant``), QAT's backward passes from its recipe and the training
set, the decision from the measured rows (``ptq_vs_qat_decision.recommend``); the recap's numbers come from the
rows the page shows.
"""

from __future__ import annotations

import torch

from ptqlab.labkit.questions import Question
from ptqlab.lessons.ptq_vs_qat.decision import recommend
from ptqlab.lessons.ptq_vs_qat.exercise import torch_fake_quant
from ptqlab.lessons.ptq_vs_qat.numbers import LabComparison
from ptqlab.models.data import digits_split
from ptqlab.ptq.qat import QAT_RECIPES

STE_GRID = {"scale": 0.1, "zero_point": 0, "qmin": -8, "qmax": 7}  # W4 signed
STE_VALUES = (0.74, 0.76, -0.84, -0.86)
BOUNDARY = {"x": 63.6, "scale": 0.5, "zero_point": 0, "qmin": -128, "qmax": 127}  # int8, hi = 63.5
YES, NO = "yes: grad_out passes", "no: the gradient is 0"
LABELLED = "the labelled training set (1437 images)"
DECISION = {"bits": 2, "time_budget_s": 1000.0, "data": LABELLED, "max_drop": 1.5}


def ste_gradient(values, *, scale: float, zero_point: int, qmin: int, qmax: int) -> torch.Tensor:
    """torch's STE gradient of fake-quant at ``values`` for grad_out = 1."""
    x = torch.tensor(values, dtype=torch.float32)
    return torch_fake_quant(x, scale, zero_point, qmin, qmax, grad_out=torch.ones_like(x))[1]


def qat_backward_passes(name: str) -> int:
    """Images passed backward by QAT: epochs × labelled training images (one pass per image per epoch)."""
    return QAT_RECIPES[name]["epochs"] * len(digits_split().y_train)


def decision_key(comparison: LabComparison) -> tuple[str, str]:
    """(option, the decision's markdown) for the ``DECISION`` constraints on the measured rows."""
    rec = recommend(comparison.rows, comparison.fp32, **DECISION)
    if rec.branch in ("nothing-fits", "floor-not-met"):
        return "nothing meets the floor", rec.markdown
    if rec.choice.method == "QAT":
        return "QAT", rec.markdown
    return ("PTQ RTN" if rec.choice.method == "PTQ RTN" else "a PTQ algorithm"), rec.markdown


def ste_questions() -> list[Question]:
    grads = ste_gradient(STE_VALUES, **STE_GRID)
    codes = [round(v / STE_GRID["scale"], 2) for v in STE_VALUES]
    passing = int((grads != 0).sum())
    b = BOUNDARY
    boundary_grad = float(ste_gradient([b["x"]], **{k: v for k, v in b.items() if k != "x"})[0])
    code = b["x"] / b["scale"]
    return [
        Question(
            f"W4 signed grid [{STE_GRID['qmin']}, {STE_GRID['qmax']}], scale {STE_GRID['scale']}, zero point 0. "
            f"Of the weights {', '.join(f'{v:g}' for v in STE_VALUES)}, how many receive a nonzero gradient "
            "under the STE?",
            passing,
            f"x/s = {', '.join(f'{c:g}' for c in codes)} round to "
            f"{', '.join(str(round(c)) for c in codes)}; the gradient passes where that code lies in "
            f"[{STE_GRID['qmin']}, {STE_GRID['qmax']}]: **{passing}** of them (torch's autograd agrees).",
            rel_tol=0.0,
            hint="round x / scale first, then compare the code with qmin and qmax.",
        ),
        Question(
            f"int8 [−128, 127], scale {b['scale']}, zero point 0: the largest representable value is "
            f"127 · {b['scale']} = {127 * b['scale']:g}. Does x = {b['x']:g} — above it — still get a gradient?",
            YES if boundary_grad != 0 else NO,
            f"x/s = {code:g} rounds to {round(code)}, "
            + ("inside" if boundary_grad else "outside")
            + " the grid, so torch's gradient is "
            f"**{boundary_grad:g}**. The code decides, not x against the float range: values up to half a "
            "step beyond it still round onto qmax.",
            options={YES: "x/s rounds onto the grid.", NO: "x is above 127 · s."},
        ),
    ]


def lab08_questions(comparison: LabComparison, name: str) -> list[Question]:
    """Count the STE's gradients, the float-range boundary, predict QAT's backward passes, predict a decision."""
    recipe, images = QAT_RECIPES[name], len(digits_split().y_train)
    passes = qat_backward_passes(name)
    key, decision = decision_key(comparison)
    measured = any(r.method == "QAT" for r in comparison.rows)
    options = ("PTQ RTN", "a PTQ algorithm", "QAT", "nothing meets the floor")
    return ste_questions() + [
        Question(
            f"*Predict, then press.* QAT fine-tunes for {recipe['epochs']} epochs over the {images} labelled "
            "training images, each image passed backward once per epoch. How many backward passes will its "
            "rows show?" + (" (They are in the table already: predict before you look.)" if measured else ""),
            passes,
            f"{recipe['epochs']} × {images} = **{passes:,}** backward passes; PTQ RTN has 0: it only runs forward "
            "passes.",
            rel_tol=0.0,
        ),
        Question(
            "*Predict, then move the controls:* W2A8, 1000 s to deploy, the labelled training set, at most "
            "1.5 points lost. What does the decision recommend?",
            key,
            decision
            + ("" if measured else " (QAT is not measured yet: press the button and the answer may change.)"),
            options={o: f"The measured rows say: {key}." for o in options},
        ),
    ]
