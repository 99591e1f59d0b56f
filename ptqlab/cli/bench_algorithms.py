"""``ptqlab bench algorithms``: the measured PTQ-vs-QAT table and the training-dynamics table.

QAT fine-tunes and the training-dynamics variants are cached on disk (``$PTQLAB_CACHE``): a cached number
is marked "(cache)" and its time is the one measured when it was built. PTQ rows are measured on every run.
"""

from __future__ import annotations

import argparse
import time

from ptqlab.backends.quiet import silence_torchao_import_noise
from ptqlab.bench import dynamics_table as training_dynamics
from ptqlab.bench import ptq_vs_qat
from ptqlab.bench.ptq_vs_qat import tutorial_check
from ptqlab.ptq.training_dynamics import GRANULARITIES


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="ptqlab bench algorithms",
        description="PTQ (RTN, each algorithm) vs QAT at W4A8/W3A8/W2A8, and LAWA / LR cooldown vs standard",
    )
    parser.add_argument("--models", nargs="+", choices=("mlp", "cnn"), default=["mlp", "cnn"])
    parser.add_argument("--no-dynamics", action="store_true", help="skip the training-dynamics table")
    parser.add_argument("--granularity", choices=sorted(GRANULARITIES), default="per-channel")
    args = parser.parse_args(argv)
    silence_torchao_import_noise()
    start = time.perf_counter()
    print("PTQ vs QAT (BatchNorm folded, int<b> per-channel weights, A8 per-tensor activations)")
    note = ptq_vs_qat.registry_note()
    if note:
        print(note.strip("*"))
    for name in args.models:
        fp32 = ptq_vs_qat.fp32_accuracy(name)
        rows = ptq_vs_qat.comparison_rows(name, progress=True)
        print(f"\ndigits {name}: fp32 {100 * fp32:.2f} %")
        print(ptq_vs_qat.table_markdown(rows, fp32))
        print(tutorial_check(rows, fp32))
    if not args.no_dynamics:
        for name in args.models:
            result = training_dynamics.study(name, progress=True)
            print(f"\nTraining dynamics, digits {name}: RTN accuracy (%) over seeds {result.seeds}")
            print(training_dynamics.dynamics_markdown(result, args.granularity))
            print(training_dynamics.lawa_verdict(result, args.granularity).replace("**", ""))
            print(training_dynamics.seconds_markdown(result))
    print(f"\n({time.perf_counter() - start:.1f} s)")
    return 0
