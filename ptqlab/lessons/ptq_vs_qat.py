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

import time
from typing import NamedTuple

from torch import nn

from ptqlab.backends.quiet import silence_torchao_import_noise
from ptqlab.models.data import digits_split
from ptqlab.ptq import algorithms as ptq_algorithms
from ptqlab.ptq import qat as qat_module
from ptqlab.ptq.folding import fold_batchnorm
from ptqlab.ptq.qat import A8, CALIBRATION_IMAGES, qat_digits_model, qat_is_cached, weight_spec
from ptqlab.ptq.simulate import evaluate_accuracy, simulate

silence_torchao_import_noise()  # QAT imports torchao
TABLE_BITS = (4, 3, 2)
# Per-algorithm backward passes when the AlgorithmRun does not report them: the closed-form ones use none;
# AdaRound back-propagates layer by layer through one layer only (not end to end), reported as None here.
BACKWARD_PASSES = {"rtn": 0, "bias_correction": 0, "cle": 0, "gptq": 0, "awq": 0, "smoothquant": 0}


def available_algorithms() -> dict:
    """{"names": ALGORITHMS, "run": run_algorithm} of the PTQ algorithm registry (``ptqlab.ptq.algorithms``)."""
    return {"names": tuple(ptq_algorithms.ALGORITHMS), "run": ptq_algorithms.run_algorithm}


class Row(NamedTuple):
    """One measured way to deploy a digits model at W<bits>A8."""

    model: str
    method: str
    bits: int
    accuracy: float | None  # test accuracy (fraction); None when the method failed on this model
    seconds: float  # time to deploy, from the fp32 model
    images: int  # distinct images read
    labelled: bool  # the images need labels
    backward_passes: int | None  # images × backward passes through the whole network
    from_cache: bool = False
    note: str = ""


def fp32_accuracy(name: str) -> float:
    from ptqlab.lessons.models import lab_model

    data = digits_split()
    return evaluate_accuracy(lab_model(name), data.x_test, data.y_test)


def rtn_row(name: str, bits: int) -> Row:
    """PTQ round-to-nearest: fold BN, calibrate A8 ranges, round the weights; timed (after a warm-up call)."""
    from ptqlab.lessons.models import lab_model

    data = digits_split()
    for _ in range(2):  # the first call pays one-off costs (imports, allocator): time the second
        start = time.perf_counter()
        quantized = simulate(
            lab_model(name),
            weight_spec(bits),
            A8,
            calibration=data.x_train[:CALIBRATION_IMAGES],
            fold_bn=True,
        )
        seconds = time.perf_counter() - start
    accuracy = evaluate_accuracy(quantized, data.x_test, data.y_test)
    return Row(name, "PTQ RTN", bits, accuracy, seconds, CALIBRATION_IMAGES, False, 0)


def algorithm_row(name: str, bits: int, algorithm: str, registry: dict, progress=None) -> Row:
    """PTQ + ``algorithm`` from the registry, on the BatchNorm-folded model; a refusal becomes a note."""
    from ptqlab.lessons.models import lab_model

    data = digits_split()
    folded: nn.Module = fold_batchnorm(lab_model(name))
    calibration = data.x_train[:CALIBRATION_IMAGES]
    try:
        run = registry["run"](
            algorithm,
            folded,
            weight_spec=weight_spec(bits),
            calibration=calibration,
            act_spec=A8,
            progress=progress,
        )
    except (TypeError, ValueError, NotImplementedError) as error:
        return Row(name, f"PTQ + {algorithm}", bits, None, 0.0, CALIBRATION_IMAGES, False, 0, note=str(error))
    backward = getattr(run, "backward_passes", BACKWARD_PASSES.get(algorithm))
    accuracy = evaluate_accuracy(run.model, data.x_test, data.y_test)
    note = "; ".join(run.notes) if isinstance(run.notes, list | tuple) else str(run.notes or "")
    return Row(
        name,
        f"PTQ + {algorithm}",
        bits,
        accuracy,
        run.seconds,
        CALIBRATION_IMAGES,
        False,
        backward,
        note=note,
    )


def qat_row(name: str, bits: int, progress=None) -> Row:
    """QAT at W<bits>A8 (cached on disk after the first run)."""
    _, info = qat_digits_model(name, bits, progress=progress)
    return Row(
        name,
        "QAT",
        bits,
        info["test_accuracy"],
        info["seconds"],
        info["train_images"],
        True,
        info["images_seen"],
        info["from_cache"],
        f"{info['epochs']} epochs, {info['steps']} optimizer steps",
    )


def comparison_rows(
    name: str, bits=TABLE_BITS, *, with_qat: bool = True, with_algorithms: bool = True, progress=None
) -> list[Row]:
    """Every row for digits ``name`` at each of ``bits``: RTN, each registered algorithm, QAT."""
    registry = available_algorithms()
    names = [a for a in registry["names"] if a != "rtn"] if with_algorithms else []
    rows = []
    for b in bits:
        rows.append(rtn_row(name, b))
        for algorithm in names:
            rows.append(algorithm_row(name, b, algorithm, registry, progress))
        if with_qat:
            rows.append(qat_row(name, b, progress))
    return rows


def qat_cached(name: str, bits=TABLE_BITS) -> bool:
    """True when every QAT row of ``name`` is on disk already (the lab then shows it without a button)."""
    return all(qat_is_cached(name, b) for b in bits)


def _cell(value, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def table_markdown(rows: list[Row], fp32: float | None = None) -> str:
    """The rows as a markdown table (accuracy in %, Δ vs fp32 in points; (cache) marks times read from disk)."""
    head = "| model | bits | method | accuracy | Δ fp32 | time to deploy | data needed | backward passes |\n"
    head += "|---|---|---|---:|---:|---:|---|---:|\n"
    lines = []
    for r in rows:
        acc = None if r.accuracy is None else 100 * r.accuracy
        delta = None if acc is None or fp32 is None else acc - 100 * fp32
        data = f"{r.images} {'labelled' if r.labelled else 'unlabelled'}"
        when = f"{r.seconds:.2f} s" + (" (cache)" if r.from_cache else "")
        lines.append(
            f"| {r.model} | W{r.bits}A8 | {r.method} | {_cell(acc, '.2f')} % | {_cell(delta, '+.2f')} | {when} "
            f"| {data} | {_cell(r.backward_passes, ',')} |"
        )
    return head + "\n".join(lines)


def registry_note() -> str:
    """Where the "PTQ + algorithm" rows come from."""
    names = ", ".join(n for n in available_algorithms()["names"] if n != "rtn")
    return (
        f"*PTQ + algorithm rows: {names} from `ptqlab.ptq.algorithms` (lab 07), same spec and calibration.*"
    )


class LabComparison(NamedTuple):
    rows: list[Row]
    fp32: float
    with_qat: bool
    status: str


def lab_comparison(name: str, run: bool) -> LabComparison:
    """Lab 08's table for digits ``name``: QAT rows when the button was pressed or they are cached."""
    from ptqlab.lessons.controls import marimo_progress

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
