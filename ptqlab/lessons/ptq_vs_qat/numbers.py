"""Lab 08's numbers: the measured PTQ-vs-QAT table and the decision framework built on it.

Every row deploys the same way: the digits model with BatchNorm folded, weights int<b> symmetric per output
channel, layer inputs A8 (uint8, asymmetric, per tensor, min/max on the first 256 training images).
  * PTQ RTN        ``simulate`` on the fp32 model (time = calibration + rounding).
  * PTQ + <alg>    ``ptqlab.ptq.algorithms.run_algorithm`` when that module exists (its own ``seconds``).
  * QAT            ``ptqlab.ptq.qat``: 8 epochs of fake-quantized fine-tuning, then the same ``simulate``.
Data needed: PTQ reads 256 unlabelled images; QAT reads the 1437 labelled training images, every epoch.
Backward passes: images passed backward through the whole network (QAT: epochs × 1437; PTQ RTN: 0).
"""

from __future__ import annotations

from typing import NamedTuple

from ptqlab.backends.quiet import silence_torchao_import_noise
from ptqlab.bench.dynamics_table import DYNAMICS_SEEDS, is_cached, study
from ptqlab.bench.ptq_vs_qat import Row, comparison_rows, fp32_accuracy, qat_cached
from ptqlab.ptq import qat as qat_module
from ptqlab.ptq.training_dynamics import (
    DynamicsStudy,
)

silence_torchao_import_noise()  # QAT imports torchao


class LabComparison(NamedTuple):
    rows: list[Row]
    fp32: float
    with_qat: bool
    status: str


def lab_comparison(name: str, run: bool) -> LabComparison:
    """Lab 08's table for digits ``name``: QAT rows when the button was pressed or they are cached."""
    from ptqlab.labkit.layout import marimo_progress

    with_qat = bool(run) or qat_cached(name)
    rows = comparison_rows(
        name,
        with_qat=with_qat,
        with_algorithms=bool(run),
        progress=marimo_progress(f"PTQ algorithms and QAT fine-tuning, digits {name}"),
    )
    if not run:
        status = (
            "PTQ-algorithm rows are measured when you press the button (AdaRound takes the longest)."
            if with_qat
            else f"QAT rows are not measured yet: press the button ({qat_module.QAT_RECIPES[name]['epochs']} epochs of "
            "fine-tuning per bit width, then cached; the time is measured and shown in the table); the "
            "PTQ-algorithm rows are measured then too."
        )
    elif any(r.from_cache for r in rows):
        status = "QAT rows read from the disk cache: their times are those measured when they were trained."
    else:
        status = "Every row measured just now."
    return LabComparison(rows, fp32_accuracy(name), with_qat, status)


def self_check(comparison: LabComparison) -> dict:
    """Questions with answers filled from the measured rows (markdown), for an accordion."""
    import marimo as mo

    rows, fp32 = comparison.rows, comparison.fp32
    rtn = {r.bits: r for r in rows if r.method == "PTQ RTN"}
    qat = {r.bits: r for r in rows if r.method == "QAT"}
    low = min(rtn)
    answer_low = f"RTN at W{low}A8 scores {100 * rtn[low].accuracy:.2f} % against {100 * fp32:.2f} % in fp32"
    if low in qat:
        answer_low += f"; QAT recovers {100 * qat[low].accuracy:.2f} % after {qat[low].backward_passes:,} backward passes"
    cost = (
        f"QAT at W{low}A8 took {qat[low].seconds:.1f} s and {qat[low].images} labelled images; RTN "
        f"{rtn[low].seconds:.2f} s and {rtn[low].images} unlabelled ones."
        if low in qat
        else "Press the QAT button to measure it."
    )
    return {
        f"1. How much does plain PTQ lose at W{low}, and what does QAT win back?": mo.md(answer_low + "."),
        "2. What does QAT cost that PTQ does not?": mo.md(
            cost + " QAT also needs the training pipeline (labels, augmentation, an optimizer); PTQ only "
            "forward passes."
        ),
        "3. Why is the QAT row deployed through the same `simulate` call as the PTQ rows?": mo.md(
            "So that the only difference between the rows is the weights: same folding, same weight grid "
            "(torchao's fake quantizer is bit-identical to `quantize_weight`), same A8 calibration."
        ),
    }


def lab_study(name: str, run: bool) -> DynamicsStudy | None:
    """The study when the button was pressed or every seed is cached, else None (nothing is trained)."""
    from ptqlab.labkit.layout import marimo_progress

    if not (run or is_cached(name)):
        return None
    return study(
        name, progress=marimo_progress(f"Training digits {name}: 3 variants × {len(DYNAMICS_SEEDS)} seeds")
    )
