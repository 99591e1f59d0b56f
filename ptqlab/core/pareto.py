"""The Pareto front of (cost, value) pairs: the points no other point beats on both counts.

A point is kept when every cheaper-or-equal point has a strictly lower value. Sorting by (cost, −value)
and keeping each point that raises the best value so far finds them in O(n log n). Points with a NaN
cost or value are never on the front.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def pareto_front(items: Iterable[T], *, cost: Callable[[T], float], value: Callable[[T], float]) -> list[T]:
    """The items on the front (lower ``cost`` and higher ``value`` are better), sorted by cost."""
    scored = [(float(cost(i)), float(value(i)), n, i) for n, i in enumerate(items)]
    scored = [s for s in scored if not (math.isnan(s[0]) or math.isnan(s[1]))]
    front: list[T] = []
    best = -math.inf
    for _, v, _, item in sorted(scored, key=lambda s: (s[0], -s[1], s[2])):
        if v > best:
            front.append(item)
            best = v
    return front
