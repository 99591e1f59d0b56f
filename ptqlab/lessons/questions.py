"""The self-check questions of labs 01, 03, 05 and 06: every expected answer and every number in a prompt or
an explanation is computed by ptqlab here (or measured by the lab's lesson module), never typed in.
"""

from __future__ import annotations

from ptqlab.core.affine import choose_qparams
from ptqlab.core.spec import PerGroup, QuantSpec
from ptqlab.lessons.affine_map import affine_curve, fmt, per_tensor_spec
from ptqlab.lessons.direct_manipulation import (
    EXPLORER_SPEC,
    STAIRCASE_DEFAULT,
    calibrator_sqnr,
    heavy_tailed_activations,
    pulled_in_sqnr,
)
from ptqlab.lessons.exercises import Question
from ptqlab.lessons.schemes import default_layer, lab_granularities
from ptqlab.lessons.schemes_text import activation_gap, bits_per_weight, scale_of
from ptqlab.lessons.sensitivity import (
    budget_slider_range,
    lab_mixed_precision,
    lab_sensitivity,
    test_images,
)

GROWS, SHRINKS, SAME = "the scale grows", "the scale shrinks", "the scale stays the same"


def lab01_questions(bits: int = 4, lo: float = -1.0, hi: float = 2.5) -> list[Question]:
    """Predict-then-move (symmetric switch), a numeric scale, choose where the error can exceed scale/2."""
    asym = affine_curve(per_tensor_spec(bits, True, False), lo, hi, n=2).scale
    sym = affine_curve(per_tensor_spec(bits, True, True), lo, hi, n=2).scale
    moved = GROWS if sym > asym else SHRINKS if sym < asym else SAME
    because = (
        f"asymmetric {fmt(asym)} → symmetric {fmt(sym)}: the symmetric grid must reach −max|x| = "
        f"−{fmt(max(-lo, hi))} as well, so the same {2**bits} codes cover a wider span."
    )
    uint8 = float(choose_qparams(0.0, 6.0, per_tensor_spec(8, False, False)).scale)
    where = {
        "anywhere inside the grid's range": "Inside the grid every x has a grid point within half a step.",
        "only outside the grid's range": "Only clipping can: an x beyond the last grid point is pushed to it.",
        "only near x = 0": "0.0 is exactly on the grid: its error is 0.",
    }
    return [
        Question(
            f"*Predict, then move.* Set **{bits} bits, min = {fmt(lo)}, max = {fmt(hi)}**, symmetric off. "
            "What happens to the scale when you switch symmetric **on**? Answer, then flip the switch.",
            moved,
            because,
            options={GROWS: because, SHRINKS: because, SAME: because},
        ),
        Question(
            "An **8-bit unsigned** asymmetric grid is calibrated on the range **[0, 6]** (a ReLU6 output). "
            "What is its scale? Work it out by hand (the formula is above).",
            uint8,
            f"scale = (6 − 0) / (255 − 0) = **{fmt(uint8)}**; the zero point is 0.",
            rel_tol=0.001,
            hint="scale = (max′ − min′) / (qmax − qmin).",
        ),
        Question(
            "Where can the error |x̂ − x| be **larger than scale/2**? Look at the error plot to check.",
            "only outside the grid's range",
            "Rounding moves x by at most half a step; clipping has no bound (the red ramps).",
            options=where,
        ),
    ]


PER_TENSOR, PER_CHANNEL, PER_GROUP = "per-tensor", "per-channel", "per-group (g = 32)"


def lab03_questions() -> list[Question]:
    """Choose the granularity, bits per weight with fp16 metadata, the symmetric scale, predict A6."""
    layer = default_layer("minilm")
    r = lab_granularities("minilm", False, layer, bits=4, group_size=32, symmetric=True)
    shape = tuple(r["per-tensor"].w_hat.shape)
    cost = {k: bits_per_weight(v.spec, shape, "fp16") for k, v in r.items()}
    measured = {k: f"{v.sqnr_db:.1f} dB at {cost[k]:.3f} bits per weight" for k, v in r.items()}
    why = {
        PER_TENSOR: f"Per-tensor: {measured['per-tensor']}: one outlier sets the step for every channel.",
        PER_CHANNEL: f"Per-channel: {measured['per-channel']}: each row gets its own step, for one fp16 scale per row.",
        PER_GROUP: f"Per-group: {measured['per-group']}: better still, but it pays a scale every 32 weights.",
    }
    per_group = bits_per_weight(QuantSpec(bits=4, granularity=PerGroup(32, axis=1)), (64, 256), "fp16")
    gap = activation_gap(6)
    close = "under 1 point" if abs(gap) < 1 else "more than 1 point"
    return [
        Question(
            f"MiniLM's `{layer}` (the default layer) has one outlier channel. At W4, which granularity "
            "removes most of the outlier's damage for the **least metadata**? Pick, then compare the table.",
            PER_CHANNEL,
            " ".join(why.values()),
            options=why,
        ),
        Question(
            "A W4 **symmetric** weight with one **fp16** scale per group of **32** weights: how many bits per weight "
            "does it cost, metadata included?",
            per_group,
            f"4 + 16/32 = **{per_group:g}** bits (a symmetric block stores no zero point).",
            rel_tol=0.001,
            hint="codes + scale bits / group size.",
        ),
        Question(
            "A weight row with max|w| = 0.5 is quantized to **int8 symmetric** the way ptqlab and torch.ao do it. "
            "What is its scale?",
            scale_of(0.5, 8),
            f"0.5 / ((127 − (−128)) / 2) = 0.5 / 127.5 = **{scale_of(0.5, 8):.6g}** (the narrow range would give "
            f"0.5 / 127 = {scale_of(0.5, 8, narrow=True):.6g}).",
            rel_tol=0.001,
        ),
        Question(
            "*Predict, then move.* At A2 the symmetric grid costs the MLP far more than the asymmetric one. At **A6**, how "
            "far apart are the two schemes? Pick, then set activation bits to 6.",
            close,
            f"At A6 the asymmetric scheme leads by {gap:.1f} points: with 2^5 = 32 usable codes the wasted half "
            "of the symmetric grid no longer matters much.",
            options={
                "under 1 point": f"Measured: {gap:.1f} points.",
                "more than 1 point": f"Measured: {gap:.1f} points.",
            },
        ),
    ]


FITS, NOTHING_FITS = "a configuration fits", "no configuration fits"
NOISE, BETTER, BUG = (
    "noise: a few test images flipped the right way",
    "quantizing that layer improves the model",
    "a bug in the measurement",
)


def lab05_questions(name: str, granularity: str) -> list[Question]:
    """Choose the layer to keep wide, one image in points, predict the budget minimum, read a negative drop."""
    report = lab_sensitivity(name, granularity)
    result = lab_mixed_precision(name, granularity)
    start, _, _ = budget_slider_range(result)
    fits = result.for_budget(start * 1024) is not None
    n = test_images()
    drops = {layer: f"{layer}: {100 * report.drop(layer, 2):.1f} points at W2." for layer in report.layers}
    return [
        Question(
            "One layer may stay at 8 bits while the rest go to W2. Which one would you keep wide? Pick, then "
            "read the bar chart.",
            report.ranking(2)[0],
            " ".join(drops.values()),
            options=drops,
        ),
        Question(
            f"The test set has {n} images. How many accuracy points is one image worth?",
            100 / n,
            f"100 / {n} = **{100 / n:.2f}** points: differences of one or two images are noise.",
            rel_tol=0.02,
        ),
        Question(
            f"*Predict, then move.* Drag the budget to its minimum, {start:.1f} KiB. Will the page find a "
            "configuration?",
            FITS if fits else NOTHING_FITS,
            f"The minimum is the all-W2 size rounded up to 0.1 KiB ({result.path[-1].size_bytes / 1024:.2f} KiB), "
            "so all-W2 fits: the page shows it.",
            options={
                FITS: "All-W2 is on the greedy path.",
                NOTHING_FITS: "The slider starts at the all-W2 size.",
            },
        ),
        Question(
            "A layer shows a **negative** drop, e.g. −0.28 points. What does it mean?",
            NOISE,
            f"Quantizing one layer flipped a borderline image the right way; on {n} images that is "
            f"{100 / n:.2f} points, within the noise of this small test set.",
            options={
                NOISE: "Rounding noise, not a better model.",
                BETTER: "A quantized layer is the fp32 layer plus noise; it has no new information.",
                BUG: "The measurement is exact; it is the test set that is small.",
            },
        ),
    ]


RISES, FALLS = "the SQNR rises", "the SQNR falls"


def lab06_questions() -> list[Question]:
    """Predict-then-drag (pull hi in), the staircase's scale, choose the calibrator for a heavy tail."""
    x = heavy_tailed_activations()
    spec = EXPLORER_SPEC
    hi, pulled, minmax = pulled_in_sqnr(x, spec)
    lo0, hi0, bits0 = STAIRCASE_DEFAULT
    staircase = float(choose_qparams(lo0, hi0, QuantSpec(bits=bits0, symmetric=False)).scale)
    sqnr = calibrator_sqnr(x, spec)
    best = max(sqnr, key=sqnr.get)
    measured = ", ".join(f"{n} {v:.1f} dB" for n, v in sqnr.items())
    return [
        Question(
            f"*Predict, then drag.* In the explorer, pull **hi** from the max ({float(x.max()):.1f}) down to "
            f"{hi:.2f} (the 99.9th percentile; 0.1 % of the values are clipped). What happens to the SQNR?",
            RISES if pulled > minmax else FALLS,
            f"min/max {minmax:.2f} dB → {pulled:.2f} dB: "
            + (
                "the finer step for the 99.9 % in range outweighs the clipping error of the few beyond it."
                if pulled > minmax
                else "the clipping error of the few beyond it outweighs the finer step."
            ),
            options={RISES: "Drag it and read the SQNR line.", FALLS: "Drag it and read the SQNR line."},
        ),
        Question(
            f"The staircase opens with lo = {lo0:g}, hi = {hi0:g}, {bits0} bits (asymmetric). What is its scale?",
            staircase,
            f"({hi0:g} − ({lo0:g})) / (2^{bits0} − 1) = **{staircase:.6g}**.",
            rel_tol=0.001,
        ),
        Question(
            f"Choose the calibrator: which range gives this heavy-tailed tensor the best SQNR at {spec.bits} bits?",
            best,
            f"Measured: {measured}. Min/max spends the grid on a handful of huge values.",
            options={n: f"{n}: {v:.1f} dB." for n, v in sqnr.items()},
        ),
    ]
