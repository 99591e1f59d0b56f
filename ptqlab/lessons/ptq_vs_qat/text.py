"""Lab 08's recap and sentences, built from the measured comparison."""

from __future__ import annotations

from ptqlab.bench.dynamics_table import DYNAMICS_SEEDS
from ptqlab.bench.ptq_vs_qat import drop_points
from ptqlab.lessons.ptq_vs_qat.numbers import LabComparison


def recap_markdown(comparison: LabComparison) -> str:
    """Four or five bullets; the numbers are the measured rows'."""
    rows, fp32 = comparison.rows, comparison.fp32
    low = min(r.bits for r in rows)
    rtn = next(r for r in rows if r.method == "PTQ RTN" and r.bits == low)
    qat = next((r for r in rows if r.method == "QAT" and r.bits == low), None)
    lines = [
        "## Recap",
        "",
        f"* PTQ rounds a trained model after a few forward passes: at W{low}A8 RTN scored "
        f"{100 * rtn.accuracy:.2f} % against fp32's {100 * fp32:.2f} % ({drop_points(rtn, fp32):.2f} points lost), "
        f"in {rtn.seconds:.2f} s.",
        (
            f"* QAT fine-tunes through the rounding: at W{low}A8 it scored {100 * qat.accuracy:.2f} % after "
            f"{qat.backward_passes:,} backward passes and {qat.seconds:.1f} s, on labelled data."
            if qat is not None and qat.accuracy is not None
            else "* QAT fine-tunes through the rounding on labelled data: press the button to measure what it wins "
            "back and what it costs here."
        ),
        "* The straight-through estimator passes the gradient where the code round(x/s) + z lies in "
        "[qmin, qmax] and blocks it where the clamp cut the value off; the code decides, not x against the "
        "float range.",
        "* Choose from your constraints: the fastest measured method that fits your time, data and accuracy "
        "floor. QAT needs the labelled training set and backward passes; PTQ a few hundred unlabelled images "
        "and forward passes only.",
        "* A training recipe helps quantization only when its gain exceeds the spread between seeds.",
    ]
    return "\n".join(lines)


def not_measured_markdown(name: str) -> str:
    return (
        f"*Not measured yet for the digits {name}: press the button. It trains {2 * len(DYNAMICS_SEEDS)} models "
        "from scratch (one one-cycle run gives both standard and LAWA, one cooldown run per seed); the bar "
        "shows the elapsed time and an estimate of the time left, the table below the training seconds it "
        "measured. Then it comes from the disk cache.*"
    )
