"""Lab 04's prose: every speedup it states is one that was measured."""

import re

import pytest

from ptqlab.backends.hardware import hardware_facts
from ptqlab.bench.run import BenchRow
from ptqlab.lessons.full_model.numbers import (
    LabMeasurement,
    hardware_markdown,
    measurement_markdown,
    narrate,
    steps_for,
)


def _row(variant, family, bits, ms, speedup, attained):
    return BenchRow(
        "mlp",
        1,
        variant,
        variant,
        variant,
        family,
        bits,
        False,
        True,
        median_ms=ms,
        p10_ms=ms * 0.9,
        p90_ms=ms * 1.2,
        repeats=10,
        speedup=speedup,
        size_bytes=int(4e6 * bits / 32),
        weight_bytes=int(4e6 * bits / 32),
        floor_ms=0.3 * bits / 32,
        attained=attained,
        quality={"accuracy": 0.97},
    )


def _measurement(rows):
    return LabMeasurement("mlp", "digits MLP", 1, 10, "minmax", rows, hardware_facts("cpu"), 13.4e9)


def test_narration_states_only_measured_speedups_and_names_the_slow_ones():
    rows = [
        _row("fp32", "baseline", 32, 1.0, 1.0, 0.3),
        _row("ao-dynamic-int8", "torch.ao (x86/fbgemm)", 8, 0.4, 2.5, 0.19),
        _row("torchao-int8-dynamic", "torchao", 8, 3.2, 0.3125, 0.02),
    ]
    text = narrate(_measurement(rows))
    stated = set(re.findall(r"(\d+\.\d\d)×", text))
    measured = {f"{r.speedup:.2f}" for r in rows}
    assert stated and stated <= measured
    assert "**ao-dynamic-int8**" in text and "Slower than fp32 here:** torchao-int8-dynamic (0.31×)" in text
    assert "not memory-bound" in text  # fp32 at 30 % of its floor


def test_tables_and_progress_total():
    rows = [_row("fp32", "baseline", 32, 1.0, 1.0, 0.8)]
    rows.append(
        BenchRow(
            "mlp",
            1,
            "pt2e-x86-int8",
            "pt2e-x86-int8",
            "pt2e",
            "pt2e + inductor",
            8,
            True,
            False,
            reason="torch.compile failed",
        )
    )
    m = _measurement(rows)
    assert "unavailable: torch.compile failed" in measurement_markdown(m)
    assert "memory-bound" in narrate(m)
    assert "13.4 GB/s" in hardware_markdown(m.facts, m.bandwidth)
    assert steps_for(["ao-dynamic-int8"], [], repeats=10, warmup=2) == 2 * 13


def test_measure_rejects_bad_threads_and_thread_choices_cover_the_current_setting():
    import torch

    from ptqlab.lessons.full_model.numbers import measure, thread_choices

    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            measure("mlp", [], 1, threads=bad)
    options, current = thread_choices()
    assert options[current] == torch.get_num_threads() and options["1"] == 1
