"""Lab 05's coding exercise: the one-layer-at-a-time sensitivity loop,

    drop(ℓ) = baseline − accuracy(only layer ℓ quantized),   ranked from the largest drop down,

checked against a fresh random accuracy table and against the lab's own measured table
(see ``ptqlab.labkit.exercise``).
"""

from __future__ import annotations

import math

import torch

from ptqlab.labkit.exercise import Exercise, Verdict, contained, in_process, judged, not_ok, seeded
from ptqlab.labkit.runner import TIME_LIMIT_S

SENSITIVITY_STARTER = '''\
def sensitivity(layers, accuracy_with_only, baseline):
    """layers: layer names. accuracy_with_only(name) quantizes ONLY that layer and returns the test
    accuracy (a fraction). Return {name: accuracy drop} and the names ranked, largest drop first."""
    drops = {}
    ...
    ranking = ...
    return drops, ranking
'''

SENSITIVITY_SOLUTION = """\
def sensitivity(layers, accuracy_with_only, baseline):
    drops = {}
    for name in layers:
        drops[name] = baseline - accuracy_with_only(name)
    ranking = sorted(drops, key=drops.get, reverse=True)
    return drops, ranking
"""


def random_table(generator: torch.Generator) -> tuple[list[str], dict[str, float], float]:
    """(layer names, accuracy with only that layer quantized, fp32 baseline) with distinct accuracies."""
    n = int(torch.randint(4, 8, (), generator=generator))
    names = [f"layer{i}" for i in torch.randperm(n, generator=generator).tolist()]
    baseline = 0.9 + 0.1 * float(torch.rand((), generator=generator))
    accuracies = torch.rand(n, generator=generator).mul(0.5).add(0.45).tolist()
    return names, {name: round(a, 4) for name, a in zip(names, accuracies, strict=True)}, round(baseline, 4)


seeded_table = seeded(random_table)  # by seed (see ``seeded``)


def _number(value) -> float | None:
    """``value`` as a float if it is one number (a Python number or a one-element tensor), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        return float(value.reshape(()))
    return None


def _problem(result, names: list[str], table: dict[str, float], baseline: float) -> str | None:
    if not (isinstance(result, tuple | list) and len(result) == 2 and isinstance(result[0], dict)):
        return "return the pair (drops, ranking): a dict {name: drop} and a list of names."
    drops, ranking = result
    missing = [n for n in names if n not in drops]
    if missing:
        return f"`drops` has {len(drops)} of the {len(names)} layers (missing {missing[0]!r}): loop over every name."
    for name in names:
        want, got = baseline - table[name], _number(drops[name])
        if got is None or not math.isfinite(got):
            return f"drops[{name!r}] is {drops[name]!r}, not a number."
        if abs(got - want) <= 1e-9:
            continue
        if abs(got + want) <= 1e-9:
            return f"drops[{name!r}] = {got:.4f} has the wrong sign: drop = baseline − accuracy = {want:.4f}."
        if abs(got - table[name]) <= 1e-9:
            return f"drops[{name!r}] = {got:.4f} is the accuracy itself; the drop is baseline − accuracy = {want:.4f}."
        return f"first wrong drop, {name!r}: expected {baseline:.4f} − {table[name]:.4f} = {want:.4f}, yours is {got:.4f}."
    if not isinstance(ranking, list | tuple) or sorted(map(str, ranking)) != sorted(names):
        shown = list(ranking) if isinstance(ranking, list | tuple) else ranking
        return f"the ranking must list every layer once, got {shown!r}."
    ranked = [baseline - table[str(n)] for n in ranking]
    if any(a < b for a, b in zip(ranked, ranked[1:], strict=False)):
        flipped = all(a <= b for a, b in zip(ranked, ranked[1:], strict=False))
        return (
            "the ranking is reversed: the most sensitive layer (largest drop) comes first."
            if flipped
            else f"the ranking {list(ranking)} is not ordered by drop, largest first."
        )
    return None


def judge_sensitivity(
    run, seed: int | None = None, measured: tuple[list[str], dict[str, float], float] | None = None
) -> Verdict:
    """Lab 05's exercise on a fresh random table, then on ``measured`` (the lab's real one) if given. Layers
    whose drops are equal may come in either order."""
    tables = [seeded_table(seed)] + ([measured] if measured is not None else [])
    calls = [("sensitivity", (names, ("__lookup__", table), baseline)) for names, table, baseline in tables]
    status, results = run(calls)
    if (bad := not_ok(status, results)) is not None:
        return bad
    for (names, table, baseline), result in zip(tables, results, strict=True):
        if (problem := _problem(result, names, table, baseline)) is not None:
            return Verdict(False, problem)
    drops, ranking = results[-1]
    shown = ", ".join(f"{n} {100 * _number(drops[str(n)]):.1f}" for n in ranking[:3])
    return Verdict(True, f"**All correct.** Your loop on the last table ranks: {shown} (points of drop) …")


def check_sensitivity(
    source: str,
    measured: tuple[list[str], dict[str, float], float] | None = None,
    seed: int | None = None,
    time_limit_s: float = TIME_LIMIT_S,
) -> Verdict:
    """The student's ``source`` judged in the contained runner (what "Check my code" does)."""
    return judged(judge_sensitivity, contained(source, time_limit_s), seed, measured)


def compare_sensitivity(
    candidate, seed: int | None = None, measured: tuple[list[str], dict[str, float], float] | None = None
) -> Verdict:
    """Trusted ``candidate`` (a function or source, see ``in_process``) judged in this process."""
    return judged(judge_sensitivity, in_process(candidate), seed, measured)


EXERCISES = (
    Exercise(
        "Coding exercise: the sensitivity loop",
        "Write the loop behind the bar chart: quantize one layer at a time (the lab gives you "
        "`accuracy_with_only(name)`), record the drop from the fp32 baseline, rank the layers. "
        "**Check my code** runs it in a separate process ({time_limit} limit) on a fresh random table, then on "
        "this model's measured W2 table.",
        SENSITIVITY_STARTER,
        SENSITIVITY_SOLUTION,
        check_sensitivity,
        editor_height=220,
        check_context=("measured",),
    ),
)
