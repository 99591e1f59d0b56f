"""The issue-10 goals for the PTQ algorithms, measured (not timed tests):

    python -m ptqlab.bench.algorithm_goals digits            # digits CNN W2 per-channel, MLP W2 per-tensor
    python -m ptqlab.bench.algorithm_goals minilm 4 rtn gptq awq   # MiniLM W4 group-128 (bits, algorithms)

Digits: calibrated on the 1437 training images, accuracy on the 360 test images. MiniLM: calibrated on the
even-indexed half of the 320 sentences, scored on the odd half (cosine to fp32 embeddings, nearest-neighbour
agreement). Each line gives wall and CPU seconds of the algorithm and the 1-minute load average, since the
machine may be shared.
"""

from __future__ import annotations

import os
import sys
import time

from ptqlab.core.spec import PerChannel, PerGroup, PerTensor, QuantSpec
from ptqlab.models import digits_cnn, digits_mlp, digits_split, load_minilm, sentences
from ptqlab.ptq.algorithms import ALGORITHMS, run_algorithm
from ptqlab.ptq.simulate import embedding_agreement, evaluate_accuracy


def _timed(name, model, spec, calibration, options):
    cpu = time.process_time()
    run = run_algorithm(name, model, weight_spec=spec, calibration=calibration, **options)
    return run, time.process_time() - cpu


def digits_lines(algorithms=ALGORITHMS) -> list[str]:
    data = digits_split()
    lines = []
    cases = (("cnn", digits_cnn, PerChannel(0)), ("mlp", digits_mlp, PerTensor()))
    for label, load, grain in cases:
        model, spec = load(progress=False), QuantSpec(bits=2, granularity=grain)
        fp32 = evaluate_accuracy(model, data.x_test, data.y_test)
        lines.append(f"digits {label} fp32 {100 * fp32:.1f} %   spec: {spec}")
        for name in algorithms:
            run, cpu = _timed(name, model, spec, data.x_train, {})
            acc = evaluate_accuracy(run.model, data.x_test, data.y_test)
            lines.append(
                f"  {label} W2 {name:<16} acc {100 * acc:5.1f} %   wall {run.seconds:6.1f} s  cpu {cpu:6.1f} s"
                f"  load {os.getloadavg()[0]:.1f}"
            )
    return lines


def minilm_lines(bits: int, algorithms=("rtn", "gptq", "awq"), options=None) -> list[str]:
    model, text = load_minilm(), sentences()
    calibration, held = model.batches(text[::2], 32), text[1::2]
    reference = model.encode(held)
    spec = QuantSpec(bits=bits, granularity=PerGroup(128))
    lines = [f"MiniLM W{bits} group-128 ({spec}); calibrate on 160 sentences, score on the other 160"]
    for name in algorithms:
        run, cpu = _timed(name, model, spec, calibration, (options or {}).get(name, {}))
        a = embedding_agreement(reference, run.model.encode(held))
        lines.append(
            f"  W{bits} {name:<16} cos {a.mean_cosine:.4f} (min {a.min_cosine:.4f})  NN {100 * a.neighbour_agreement:5.1f} %"
            f"   wall {run.seconds:6.1f} s  cpu {cpu:6.1f} s  load {os.getloadavg()[0]:.1f}"
        )
    return lines


if __name__ == "__main__":
    args = sys.argv[1:] or ["digits"]
    if args[0] == "digits":
        out = digits_lines(tuple(args[1:]) or ALGORITHMS)
    else:
        out = minilm_lines(
            int(args[1]), tuple(args[2:]) or ("rtn", "gptq", "awq"), {"adaround": {"iters": 200}}
        )
    for line in out:
        print(line, flush=True)
