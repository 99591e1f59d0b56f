"""Lab 05's coding exercise: the one-layer-at-a-time sensitivity loop,

    drop(ℓ) = baseline − accuracy(only layer ℓ quantized),   ranked from the largest drop down,

checked against a fresh random accuracy table and against the lab's own measured table
(see ``ptqlab.labkit.exercise``).
"""

from __future__ import annotations

import math

import torch

from ptqlab.labkit.exercise import Exercise, Verdict, not_ok, seeded_generator
from ptqlab.labkit.runner import TIME_LIMIT_S, run_student_code

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


def _problem(result, names: list[str], table: dict[str, float], baseline: float) -> str | None:
    if not (isinstance(result, tuple | list) and len(result) == 2 and isinstance(result[0], dict)):
        return "return the pair (drops, ranking): a dict {name: drop} and a list of names."
    drops, ranking = result
    missing = [n for n in names if n not in drops]
    if missing:
        return f"`drops` has {len(drops)} of the {len(names)} layers (missing {missing[0]!r}): loop over every name."
    for name in names:
        want, got = baseline - table[name], drops[name]
        if not isinstance(got, int | float) or not math.isfinite(got):
            return f"drops[{name!r}] is {got!r}, not a number."
        if abs(got - want) <= 1e-9:
            continue
        if abs(got + want) <= 1e-9:
            return f"drops[{name!r}] = {got:.4f} has the wrong sign: drop = baseline − accuracy = {want:.4f}."
        if abs(got - table[name]) <= 1e-9:
            return f"drops[{name!r}] = {got:.4f} is the accuracy itself; the drop is baseline − accuracy = {want:.4f}."
        return f"first wrong drop, {name!r}: expected {baseline:.4f} − {table[name]:.4f} = {want:.4f}, yours is {got:.4f}."
    if sorted(map(str, ranking)) != sorted(names):
        return f"the ranking must list every layer once, got {list(ranking)}."
    ranked = [baseline - table[n] for n in ranking]
    if any(a < b for a, b in zip(ranked, ranked[1:], strict=False)):
        flipped = all(a <= b for a, b in zip(ranked, ranked[1:], strict=False))
        return (
            "the ranking is reversed: the most sensitive layer (largest drop) comes first."
            if flipped
            else f"the ranking {list(ranking)} is not ordered by drop, largest first."
        )
    return None


def check_sensitivity(
    source: str,
    measured: tuple[list[str], dict[str, float], float] | None = None,
    seed: int | None = None,
    time_limit_s: float = TIME_LIMIT_S,
) -> Verdict:
    """Lab 05's exercise on a fresh random table, then on ``measured`` (the lab's real one) if given."""
    generator = seeded_generator(seed)
    tables = [random_table(generator)] + ([measured] if measured is not None else [])
    calls = [("sensitivity", (names, ("__lookup__", table), baseline)) for names, table, baseline in tables]
    status, results = run_student_code(source, calls, time_limit_s)
    if (bad := not_ok(status, results)) is not None:
        return bad
    for (names, table, baseline), result in zip(tables, results, strict=True):
        if (problem := _problem(result, names, table, baseline)) is not None:
            return Verdict(False, problem)
    drops, ranking = results[-1]
    shown = ", ".join(f"{n} {100 * drops[n]:.1f}" for n in ranking[:3])
    return Verdict(True, f"**All correct.** Your loop on the last table ranks: {shown} (points of drop) …")


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
