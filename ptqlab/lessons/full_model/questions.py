"""Lab 04's self-checks: every expected answer comes from ptqlab — the recipe registry, the memory-bound MLP's
parameter count, this machine's measured bandwidth and the quick default measurement the page shows.
"""

from __future__ import annotations

import torch

from ptqlab.backends import RECIPES
from ptqlab.labkit.questions import Question
from ptqlab.lessons.full_model.numbers import bandwidth_now, quick_measurement
from ptqlab.models.membound import memory_bound_mlp

CHOICES = ("ao-dynamic-int8", "ao-static-int8", "torchao-int4-weight-only")
YES, NO = "yes, at least one is faster", "no, every one is slower"


def membound_fp32_bytes() -> int:
    """Bytes of the 268 MB MLP's fp32 parameters, counted on the meta device (nothing is allocated)."""
    with torch.device("meta"):
        model = memory_bound_mlp()
    return sum(p.numel() * p.element_size() for p in model.parameters())


def lab04_questions() -> list[Question]:
    """Choose the static recipe, predict-then-press the 268 MB floor, the int8 bytes, read the quick default."""
    why = {
        name: f"{name}: {RECIPES[name].description}"
        + (" — it needs calibration batches." if RECIPES[name].calibrates else " — no calibration.")
        for name in CHOICES
    }
    static = [n for n in CHOICES if RECIPES[n].calibrates]
    fp32_bytes = membound_fp32_bytes()
    bandwidth = bandwidth_now()
    floor_ms = fp32_bytes / bandwidth * 1e3
    quick = quick_measurement()
    others = [r for r in quick.available() if r.variant != "fp32"]
    faster = [f"{r.variant} {r.speedup:.2f}×" for r in others]
    return [
        Question(
            "Which of these recipes takes its activation ranges from **your calibrator** (so the calibrator "
            "dropdown changes its result)?",
            static[0],
            " ".join(why.values()),
            options=why,
        ),
        Question(
            f"*Predict, then press.* The memory-bound MLP streams **{fp32_bytes / 1e6:.1f} MB** of fp32 weights per "
            f"forward, and this machine reads memory at **{bandwidth / 1e9:.1f} GB/s** (measured). What is the "
            "fastest a batch-1 fp32 forward can be, in ms? Then pick that model, batch 1, press the button and "
            "compare with the roofline.",
            floor_ms,
            f"{fp32_bytes / 1e6:.1f} MB ÷ {bandwidth / 1e9:.1f} GB/s = **{floor_ms:.1f} ms**: no kernel can stream "
            "the weights faster than memory delivers them.",
            rel_tol=0.02,
            hint="time = bytes / bandwidth (MB ÷ GB/s gives ms).",
        ),
        Question(
            "Stored as int8 (one byte per weight, scales ignored), how many MB would those weights take?",
            fp32_bytes / 4 / 1e6,
            f"{fp32_bytes / 1e6:.1f} MB ÷ 4 = **{fp32_bytes / 4e6:.1f} MB**: at batch 1 a memory-bound forward can "
            "at best get 4× faster.",
            rel_tol=0.01,
        ),
        Question(
            "*Read the quick default above* (digits MLP, batch 64): is any quantized variant faster than fp32 "
            "on this machine?",
            YES if any(r.speedup > 1.0 for r in others) else NO,
            f"Measured: {', '.join(faster)} fp32's speed. The MLP's weights are small: per-call overheads "
            "decide, not bytes.",
            options={YES: "Read the speedup column.", NO: "Read the speedup column."},
        ),
    ]
