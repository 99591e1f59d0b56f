"""Lab 02's self-checks: every expected answer computed from the lab's own measurements."""

from __future__ import annotations

from ptqlab.labkit.questions import Question
from ptqlab.lessons.calibration.numbers import best, lab_grid
from ptqlab.lessons.calibration.text import DEFAULT_DATA, by_name, measured_results

MINMAX_WINS, MINMAX_LOSES = "min/max becomes the best (or ties it)", "min/max stays behind"


def lab02_questions() -> list[Question]:
    """Choose the calibrator, the symmetric grid's top (numeric), predict 4 → 8 bits, choose the ReLU loser."""
    body, size, share, _ = DEFAULT_DATA
    at4 = by_name(measured_results(body, size, share, 4, True))
    at8 = measured_results(body, size, share, 8, True)
    relu = by_name(measured_results("relu", size, share, 8, False))
    spec4 = lab_grid(4, True)
    t = max(-at4["minmax"].lo, at4["minmax"].hi)
    top = at4["minmax"].grid_hi
    winner4 = best(list(at4.values())).name
    mm8 = by_name(at8)["minmax"].sqnr_db
    best8 = best(at8)
    why4 = {n: f"{n}: {r.sqnr_db:.2f} dB." for n, r in at4.items()}
    relu_why = {n: f"{n}: {r.sqnr_db:.2f} dB." for n, r in relu.items()}
    relu_worst = min(relu.values(), key=lambda r: r.sqnr_db).name
    gap8 = best8.sqnr_db - mm8
    return [
        Question(
            "*Choose the calibrator.* With the sliders at their start (Gaussian, outliers 20σ at "
            f"{share:g} %, 4 bits, symmetric), which calibrator gets the best SQNR? Pick, then read the table.",
            winner4,
            " ".join(why4.values()) + " At 4 bits the step is coarse: clipping the rare outliers pays.",
            options=why4,
        ),
        Question(
            f"min/max observed max|x| = {t:.3f}. On the **4-bit symmetric** grid (qmin = {spec4.qmin}, qmax = "
            f"{spec4.qmax}, s = T / ((qmax − qmin)/2)), what is the largest value the grid can represent?",
            top,
            f"s = {t:.3f} / 7.5 = {t / 7.5:.4f}; the top code 7 stands for 7·s = **{top:.3f}**, so the observed "
            "max is clipped by part of a step.",
            rel_tol=0.002,
            hint="The top code is qmax = 7, not 7.5.",
        ),
        Question(
            "*Predict, then move.* Keep the data and move **bits from 4 to 8**. What happens to min/max?",
            MINMAX_WINS if gap8 < 0.5 else MINMAX_LOSES,
            f"At 8 bits min/max gets {mm8:.2f} dB, the best ({best8.name}) {best8.sqnr_db:.2f} dB: the grid is fine "
            "enough to keep the outliers, and clipping them now costs more than it saves.",
            options={MINMAX_WINS: "Move the slider and read the bold row.", MINMAX_LOSES: "Move the slider."},
        ),
        Question(
            "*Choose the calibrator.* Switch the body to **relu** and the grid to **asymmetric**, 8 bits. Which "
            "calibrator is now clearly the **worst**?",
            relu_worst,
            " ".join(relu_why.values()) + " Entropy's first |x| bin holds half the data (the zeros).",
            options=relu_why,
        ),
    ]
