"""Lab 05's sentences and tables, built from what the lab measured."""

from __future__ import annotations

from collections.abc import Sequence

from ptqlab.lessons.sensitivity.numbers import CalibrationPoint, layer_sizes, test_images
from ptqlab.ptq.sensitivity import (
    MixedPrecisionResult,
    SensitivityReport,
)


def sensitivity_note(report: SensitivityReport, name: str) -> str:
    """fp32 accuracy, the three layers that lose the most at 2 bits, the first layer's facts for this model,
    and what a negative drop means when one is measured."""
    top = report.ranking(2)[:3]
    sizes = layer_sizes(name)
    first = report.layers[0]
    weights, fan_in = sizes[first]
    smallest = min(report.layers, key=lambda n: sizes[n][0])
    place = (
        "tops the list"
        if top[0] == first
        else f"ranks {report.ranking(2).index(first) + 1} of {len(report.layers)}"
    )
    cheap = (
        "the fewest of any layer, so keeping it wide is cheap"
        if smallest == first
        else f"so keeping it wide costs more than keeping {smallest} ({sizes[smallest][0]:,} weights)"
    )
    text = (
        f"fp32 accuracy {100 * report.baseline:.2f} %. Most sensitive at 2 bits: "
        + ", ".join(f"**{n}** ({100 * report.drop(n, 2):.1f} points)" for n in top)
        + f". The first layer, **{first}**, {place} at W2: each output sums {fan_in} inputs, and it has "
        f"{weights:,} weights, {cheap}."
    )
    negative = [(n, b) for n in report.layers for b in report.bits if report.drop(n, b) < 0]
    if negative:
        n, b = min(negative, key=lambda nb: report.drop(*nb))
        images = round(-report.drop(n, b) * test_images())
        text += (
            f" A negative drop ({n} at W{b}: {100 * report.drop(n, b):+.2f} points, {images} more test "
            f"image{'s' if images != 1 else ''} right) is not a better model: rounding noise happened to "
            f"flip borderline images the right way; one image is {100 / test_images():.2f} points."
        )
    return text


def measured_table(report: SensitivityReport, bits: int = 2) -> tuple[list[str], dict[str, float], float]:
    """(layers, accuracy with only that layer at ``bits``, baseline): the lab's real table for the exercise."""
    return (
        list(report.layers),
        {n: report.baseline - report.drop(n, bits) for n in report.layers},
        report.baseline,
    )


def budget_markdown(result: MixedPrecisionResult, budget_kib: float) -> str:
    """The configuration chosen for a budget (KiB), its size and accuracy, and the uniform widths."""
    chosen = result.for_budget(budget_kib * 1024)
    if chosen is None:
        return "No configuration on the greedy path fits this budget."
    bits = " | ".join(f"{n}: **W{b}**" for n, b in chosen.bits.items())
    uniform = ", ".join(
        f"all W{b}: {p.size_bytes / 1024:.1f} KiB, {100 * p.metric:.1f} %"
        for b, p in zip(result.choices, result.uniform, strict=True)
    )
    images = round((chosen.metric - result.float_metric) * test_images())
    noise = (
        f" That is {images:+d} test image{'s' if abs(images) != 1 else ''} against fp32, within the noise of a "
        f"{test_images()}-image test set (one image = {100 / test_images():.2f} points): quantization did not improve the model."
        if images > 0
        else ""
    )
    return (
        f"**Chosen:** {bits}\n\n"
        f"Size **{chosen.size_bytes / 1024:.1f} KiB** ({result.float_size_bytes / chosen.size_bytes:.1f}× "
        f"smaller than fp32's {result.float_size_bytes / 1024:.1f} KiB), test accuracy "
        f"**{100 * chosen.metric:.2f} %** (fp32 {100 * result.float_metric:.2f} %).{noise}\n\n"
        f"Uniform widths for comparison: {uniform}."
    )


def calibration_note(points: Sequence[CalibrationPoint]) -> str:
    """The spread of all runs, read as a negative control: on digits the selection method cannot matter."""
    worst, best = min(p.accuracy for p in points), max(p.accuracy for p in points)
    images = round((best - worst) * test_images())
    return (
        f"**A negative control.** All {len(points)} runs lie between {100 * worst:.1f} % and {100 * best:.1f} % "
        f"({images} test images apart). On 8×8 digits every image spans nearly the same pixel range, so "
        "min/max ranges settle within a few images, and here no selection method does better than random: this "
        "flat result is what the study must show when nothing is at stake. Selection matters when "
        "activations have rare large values (language models, detection heads) that a small random set can "
        "miss; lab 02's outlier slider shows what a missed outlier does to the range."
    )
