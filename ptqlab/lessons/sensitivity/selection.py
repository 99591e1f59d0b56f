"""Lab 05: where the choice of calibration samples *does* matter — a pool with a few glitched images.

On the clean digits pool every selection method lands within a few test images (lab 05's negative control,
``lessons.sensitivity.lab_calibration_points``). Real pools are rarely clean: a preprocessing bug or a sensor
glitch leaves a few inputs far outside the normal range. Here ``GLITCH_SHARE`` of the pool's images are
overexposed (pixels × ``GLITCH_GAIN``: digits lie in [0, 1], these reach the gain). Min/max calibration
stretches every activation range to fit a glitched image if one is in the set, and the grid's steps grow
for all the normal inputs. How often a method picks a glitch is measured, not assumed: random picks them at
about their share; k-means (SelectQ-style coverage) gives an isolated region of feature space its own
centroid, so it tends to pick them; a percentile observer clips part of what a glitch adds.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from ptqlab.core.spec import QuantSpec
from ptqlab.labkit.layout import marimo_progress
from ptqlab.labkit.models import lab_model
from ptqlab.lessons.sensitivity.numbers import (
    CalibrationPoint,
    accuracy_vs_calibration,
    calibration_spread,
    test_images,
)
from ptqlab.models import digits_split

GLITCH_SHARE = 0.02  # of the pool
GLITCH_GAIN = 6.0  # an overexposed image: every pixel × 6
SIZES = (4, 16, 64)
SEEDS = (0, 1, 2)
METHODS = ("random", "stratified", "kmeans")
ACT_SPEC = QuantSpec(bits=4, signed=False, symmetric=False)  # the negative control's W8A4
OBSERVERS = {"minmax": None, "percentile": {"p": 99.9, "symmetric": False}}


def with_glitches(
    x: torch.Tensor, share: float = GLITCH_SHARE, gain: float = GLITCH_GAIN, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(a copy of the pool ``x`` with ``round(share · N)`` random samples multiplied by ``gain``, their indices)."""
    if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[0] == 0:
        raise ValueError("x must be a non-empty tensor of samples (N, ...)")
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share!r}")
    count = round(share * x.shape[0])
    glitched = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:count]
    pool = x.clone()
    pool[glitched] = pool[glitched] * gain
    return pool, glitched.sort().values


@functools.cache
def lab_glitched_pool() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits training images with ``GLITCH_SHARE`` of them overexposed, and which ones."""
    return with_glitches(digits_split().x_train)


@functools.cache
def lab_glitch_points(observer: str) -> list[CalibrationPoint]:
    """The negative control's study (digits CNN, W8 per-channel, A4 asymmetric) on the glitched pool; every
    observer calibrates with the same sample sets (selected once, for min/max)."""
    if observer not in OBSERVERS:
        raise ValueError(f"observer must be one of {sorted(OBSERVERS)}, got {observer!r}")
    data = digits_split()
    pool, _ = lab_glitched_pool()
    return accuracy_vs_calibration(
        lab_model("cnn"),
        pool,
        data.y_train,
        data.x_test,
        data.y_test,
        sizes=SIZES,
        seeds=SEEDS,
        methods=METHODS,
        act_spec=ACT_SPEC,
        observer=observer,
        observer_kwargs=OBSERVERS[observer],
        progress=marimo_progress(f"Calibrating {len(SIZES) * len(SEEDS) * len(METHODS)} CNNs ({observer})"),
        same_sets_as=() if observer == "minmax" else lab_glitch_points("minmax"),
    )


def glitch_picks(points: Sequence[CalibrationPoint], glitched: torch.Tensor) -> dict[tuple[str, int], int]:
    """(method, n) -> how many of the points' calibration sets hold at least one ``glitched`` sample."""
    bad = set(glitched.tolist())
    picks: dict[tuple[str, int], int] = {}
    for p in points:
        picks[(p.method, p.size)] = picks.get((p.method, p.size), 0) + bool(bad & set(p.indices))
    return picks


def lab_glitch_picks() -> dict[tuple[str, int], int]:
    """``glitch_picks`` of the sets ``lab_glitch_points`` calibrated with."""
    return glitch_picks(lab_glitch_points("minmax"), lab_glitched_pool()[1])


def _cell(spread: dict[str, dict[int, tuple[float, float, float]]], method: str, n: int) -> str:
    mean, low, high = spread[method][n]
    return f"{100 * mean:.1f} ({100 * low:.1f}–{100 * high:.1f})"


def glitch_table(
    clean: Sequence[CalibrationPoint],
    minmax: Sequence[CalibrationPoint],
    percentile: Sequence[CalibrationPoint],
    picks: dict[tuple[str, int], int],
) -> str:
    """Markdown: per method and n, test accuracy (mean, min–max over seeds) on the clean pool and on the
    glitched one (min/max and percentile), and how many sets held a glitched image."""
    spreads = [calibration_spread(points) for points in (clean, minmax, percentile)]
    lines = [
        "| selection | n | clean pool, min/max (%) | glitched pool, min/max (%) | glitched pool, "
        "percentile 99.9 (%) | sets with a glitched image |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method in METHODS:
        for n in SIZES:
            cells = " | ".join(_cell(spread, method, n) for spread in spreads)
            lines.append(f"| {method} | {n} | {cells} | {picks[(method, n)]} of {len(SEEDS)} |")
    return "\n".join(lines)


def glitch_note(
    clean: Sequence[CalibrationPoint],
    minmax: Sequence[CalibrationPoint],
    percentile: Sequence[CalibrationPoint],
    picks: dict[tuple[str, int], int],
) -> str:
    """What the table shows, every number read from it."""
    clean_low, clean_high = min(p.accuracy for p in clean), max(p.accuracy for p in clean)
    worst = min(minmax, key=lambda p: p.accuracy)
    by_method = {m: [p.accuracy for p in minmax if p.method == m] for m in METHODS}
    mean = {m: sum(v) / len(v) for m, v in by_method.items()}
    picked = {m: sum(picks[(m, n)] for n in SIZES) for m in METHODS}
    sets = len(SIZES) * len(SEEDS)
    most, least = max(METHODS, key=mean.get), min(METHODS, key=mean.get)
    pct_mean = {m: sum(p.accuracy for p in percentile if p.method == m) / len(by_method[m]) for m in METHODS}
    return (
        f"**Where selection matters.** On the clean pool all runs lie within "
        f"{round((clean_high - clean_low) * test_images())} test images ({100 * clean_low:.1f}–{100 * clean_high:.1f} %). "
        f"With {100 * GLITCH_SHARE:g} % of the pool overexposed, the worst run falls to {100 * worst.accuracy:.1f} % "
        f"({worst.method}, n = {worst.size}). Averaged over sizes and seeds with min/max, **{most}** keeps "
        f"{100 * mean[most]:.1f} % and **{least}** drops to {100 * mean[least]:.1f} %; a glitched image was in "
        + ", ".join(f"{picked[m]} of {sets} {m} sets" for m in METHODS)
        + ". One glitched image is enough: min/max stretches each activation range to fit it, and every "
        "normal input is then rounded on a coarser grid. A larger set is *more* likely to contain one: a random "
        f"set of n holds at least one with probability 1 − (1 − {100 * GLITCH_SHARE:g} %)ⁿ, "
        + ", ".join(f"{100 * (1 - (1 - GLITCH_SHARE) ** n):.0f} % at n = {n}" for n in SIZES)
        + ". "
        "A 99.9th-percentile observer clips part of the glitch (means: "
        + ", ".join(f"{m} {100 * pct_mean[m]:.1f} %" for m in METHODS)
        + "). In practice: look at the pool before calibrating (its per-sample range is one number per image), "
        "drop what is not a real input, and prefer a clipping calibrator when you cannot."
    )


def glitch_figure_title() -> str:
    return (
        f"digits CNN, W8A4, {GLITCH_SHARE:.0%} of the pool overexposed ×{GLITCH_GAIN:g}: min/max calibration"
    )
