"""The measured PTQ-vs-QAT table: RTN, each PTQ algorithm and QAT on the digits models at W4/W3/W2 A8."""

from __future__ import annotations

import functools
import time
from typing import NamedTuple

from torch import nn

from ptqlab.models import digits_cnn, digits_mlp
from ptqlab.models.data import digits_split
from ptqlab.ptq import algorithms as ptq_algorithms
from ptqlab.ptq.folding import fold_batchnorm
from ptqlab.ptq.qat import A8, CALIBRATION_IMAGES, qat_digits_model, qat_is_cached, weight_spec
from ptqlab.ptq.simulate import evaluate_accuracy, simulate

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


@functools.cache
def trained_digits(name: str) -> nn.Module:
    """The trained digits ``"mlp"`` or ``"cnn"`` (loaded once per process; shared: do not modify it)."""
    if name not in ("mlp", "cnn"):
        raise ValueError(f"name must be 'mlp' or 'cnn', got {name!r}")
    return {"mlp": digits_mlp, "cnn": digits_cnn}[name]()


def fp32_accuracy(name: str) -> float:
    data = digits_split()
    return evaluate_accuracy(trained_digits(name), data.x_test, data.y_test)


def rtn_row(name: str, bits: int) -> Row:
    """PTQ round-to-nearest: fold BN, calibrate A8 ranges, round the weights; timed (after a warm-up call)."""
    data = digits_split()
    for _ in range(2):  # the first call pays one-off costs (imports, allocator): time the second
        start = time.perf_counter()
        quantized = simulate(
            trained_digits(name),
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
    data = digits_split()
    folded: nn.Module = fold_batchnorm(trained_digits(name))
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


def drop_points(row: Row, fp32: float) -> float:
    return 100 * (fp32 - row.accuracy)


def tutorial_check(rows: list[Row], fp32: float) -> str:
    """The tutorial's claims (PTQ loses 1–3 %, QAT < 1 %, PTQ struggles at ≤ 4 bits) against the rows."""
    lines = []
    for bits in sorted({r.bits for r in rows}, reverse=True):
        at = [r for r in rows if r.bits == bits and r.accuracy is not None]
        ptq = [r for r in at if r.method != "QAT"]
        qat = [r for r in at if r.method == "QAT"]
        best_ptq = max(ptq, key=lambda r: r.accuracy) if ptq else None
        parts = []
        if best_ptq is not None:
            parts.append(f"best PTQ ({best_ptq.method}) loses {drop_points(best_ptq, fp32):.2f} points")
        if qat:
            parts.append(f"QAT loses {drop_points(qat[0], fp32):.2f} points in {qat[0].seconds:.1f} s")
        lines.append(f"- W{bits}A8: " + ", ".join(parts))
    return "\n".join(lines)
