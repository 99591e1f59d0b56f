"""Observers (calibrators): from a stream of activations to a clipping range [lo, hi]."""

from ptqlab.observers.base import MinMaxObserver, Observer

OBSERVERS: dict[str, type[Observer]] = {
    MinMaxObserver.name: MinMaxObserver,
}


def make_observer(name: str, **kwargs) -> Observer:
    """Build a registered observer by name, e.g. ``make_observer("percentile", p=99.9)``."""
    if name not in OBSERVERS:
        raise ValueError(f"unknown observer {name!r}; choose from {sorted(OBSERVERS)}")
    return OBSERVERS[name](**kwargs)


__all__ = ["OBSERVERS", "MinMaxObserver", "Observer", "make_observer"]
