"""The training-dynamics table: standard, LAWA and LR-cooldown training, 3 seeds, RTN accuracy at W4/W3/W2."""

from __future__ import annotations

from ptqlab.ptq.training_dynamics import (
    ROBUSTNESS_BITS,
    VARIANTS,
    DynamicsStudy,
    dynamics_study,
    paired_gain,
    spread,
    study_is_cached,
)

DYNAMICS_SEEDS = (0, 1, 2)


DYNAMICS_RECIPES: dict[str, dict] = {}  # model -> recipe override (tests shorten training); empty = shipped


TUTORIAL_GAIN = (2.0, 5.0)  # "Weight Averaging (LAWA): +2-5 % accuracy" (PTQ robustness)


LABELS = {
    "standard": "standard (one-cycle)",
    "lawa": "LAWA (last 10 epochs)",
    "cooldown": "warm-up–stable–cooldown",
}


def is_cached(name: str) -> bool:
    return study_is_cached(name, DYNAMICS_SEEDS, DYNAMICS_RECIPES.get(name))


def study(name: str, progress=None) -> DynamicsStudy:
    """The three variants × DYNAMICS_SEEDS of digits ``name`` (trains what the disk cache lacks)."""
    return dynamics_study(name, DYNAMICS_SEEDS, DYNAMICS_RECIPES.get(name), progress)


def _fmt(values: list[float]) -> str:
    s = spread(values)
    return f"{s.mean:.2f} ± {s.std:.2f} ({s.low:.1f}–{s.high:.1f})"


def dynamics_markdown(result: DynamicsStudy, granularity: str = "per-channel") -> str:
    """Accuracy (%) per variant at fp32 and RTN W4/W3/W2, then each variant's paired gain over standard."""
    cols = (32, *ROBUSTNESS_BITS)
    head = "| training | " + " | ".join("fp32" if b == 32 else f"W{b} RTN" for b in cols) + " |\n"
    head += "|---|" + "---:|" * len(cols) + "\n"
    rows = [
        f"| {LABELS[v]} | " + " | ".join(_fmt(result.accuracy[v][granularity][b]) for b in cols) + " |"
        for v in VARIANTS
    ]
    for v in VARIANTS[1:]:
        gains = [paired_gain(result, v, b, granularity) for b in cols]
        cells = " | ".join(f"{g.mean:+.2f} ± {g.std:.2f}" for g in gains)
        rows.append(f"| *gain of {v} (points)* | {cells} |")
    n = len(result.seeds)
    note = (
        f"\n\n*{result.model}, {granularity} weights, BatchNorm folded, {n} seeds: mean ± std (min–max), %.*"
    )
    return head + "\n".join(rows) + note


def lawa_verdict(result: DynamicsStudy, granularity: str = "per-channel") -> str:
    """Does "+2–5 % PTQ robustness" hold for LAWA here? One sentence per bit width, from the paired gains."""
    lo, hi = TUTORIAL_GAIN
    parts = []
    for bits in ROBUSTNESS_BITS:
        g = paired_gain(result, "lawa", bits, granularity)
        if lo <= g.mean <= hi:
            verdict = "within the tutorial's +2–5"
        elif g.mean > hi:
            verdict = "above +5"
        elif g.mean < 0:
            verdict = "a loss, not a gain"
        else:
            verdict = "below +2"
        consistent = "every seed gained" if g.low > 0 else "not every seed gained"
        parts.append(f"W{bits}: {g.mean:+.2f} ± {g.std:.2f} points ({verdict}; {consistent})")
    held = [b for b in ROBUSTNESS_BITS if _holds(paired_gain(result, "lawa", b, granularity))]
    head = f"holds at {', '.join(f'W{b}' for b in held)} only" if held else "does not hold at any bit width"
    if len(held) == len(ROBUSTNESS_BITS):
        head = "holds at every bit width"
    intro = f"**LAWA on the digits {result.model} ({granularity}): the +2–5 % claim {head}**"
    return (
        intro
        + " (a gain holds when its mean is in +2–5 points and every seed gained). "
        + "; ".join(parts)
        + "."
    )


def _holds(gain) -> bool:
    return TUTORIAL_GAIN[0] <= gain.mean <= TUTORIAL_GAIN[1] and gain.low > 0


def seconds_markdown(result: DynamicsStudy) -> str:
    """Mean training seconds per seed and schedule, and whether they were read from the cache."""
    one, cool = (sum(result.seconds[k]) / len(result.seconds[k]) for k in ("one-cycle", "cooldown"))
    origin = " (read from the disk cache: measured when first trained)" if result.from_cache else ""
    return f"Training time per seed: one-cycle run (standard + LAWA) {one:.1f} s, cooldown run {cool:.1f} s{origin}."
