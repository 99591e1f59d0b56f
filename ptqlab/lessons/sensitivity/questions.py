"""Lab 05's self-checks: every expected answer computed by ptqlab."""

from __future__ import annotations

from ptqlab.labkit.questions import Question
from ptqlab.lessons.sensitivity.numbers import (
    budget_slider_range,
    lab_mixed_precision,
    lab_sensitivity,
    test_images,
)

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
