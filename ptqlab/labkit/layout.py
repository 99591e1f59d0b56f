"""Layout shared by every lab: a control beside its "Try this" prompt, and marimo's progress bar."""

from __future__ import annotations

import contextlib

import marimo as mo

from ptqlab.core.progress import StepClock


def with_hint(control, hint: str):
    """``control`` on the left, the italic *Try this:* ``hint`` (markdown) on the right."""
    return mo.hstack([control, mo.md(f"*Try this:* {hint}")], widths=[1, 2], align="center", gap=2)


def marimo_progress(title: str):
    """A progress convention for ``ptqlab.core.progress.track``: marimo's bar inside a running notebook, none
    elsewhere (a script or a test). The bar names each item as it finishes with its own time, the elapsed
    time and an ETA (``StepClock``), and is removed when the loop ends: the results replace it."""
    if not mo.running_in_notebook():
        return None

    def bar(items):
        clock = StepClock(max(len(items), 1))
        with mo.status.progress_bar(
            total=max(len(items), 1), title=title, remove_on_exit=True, show_rate=False, show_eta=False
        ) as b:
            for item in items:
                yield item
                b.update(subtitle=clock.tick("" if isinstance(item, int) else str(item)))

    return bar


@contextlib.contextmanager
def timed_bar(total: int, title: str):
    """``with timed_bar(n, title) as step: ... step(desc)``: marimo's bar with each step's time, the elapsed
    time and an ETA, removed when the block ends; outside a notebook ``step`` does nothing."""
    if not mo.running_in_notebook():
        yield lambda desc="": None
        return
    clock = StepClock(max(total, 1))
    with mo.status.progress_bar(
        total=max(total, 1), title=title, remove_on_exit=True, show_rate=False, show_eta=False
    ) as b:
        yield lambda desc="": b.update(subtitle=clock.tick(desc))
