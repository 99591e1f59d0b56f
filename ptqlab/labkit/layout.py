"""Layout shared by every lab: a control beside its "Try this" prompt, the goals and recap blocks, and
marimo's progress bar."""

from __future__ import annotations

from collections.abc import Sequence

import marimo as mo


def with_hint(control, hint: str):
    """``control`` on the left, the italic *Try this:* ``hint`` (markdown) on the right."""
    return mo.hstack([control, mo.md(f"*Try this:* {hint}")], widths=[1, 2], align="center", gap=2)


def marimo_progress(title: str):
    """A progress convention for ``ptqlab.core.progress.track``: marimo's bar inside a running notebook,
    none elsewhere (a script or a test)."""
    if not mo.running_in_notebook():
        return None
    return lambda items: mo.status.progress_bar(items, title=title)


GOALS_HEADING = "**After this lab you can**"


def goals_markdown(goals: Sequence[str]) -> str:
    """Every lab's goals block: one heading, the goals numbered."""
    return GOALS_HEADING + "\n\n" + "\n".join(f"{i}. {goal}" for i, goal in enumerate(goals, start=1))


def recap_markdown(points: Sequence[str], next_step: str = "") -> str:
    """Every lab's recap block: one heading, the points as bullets, then what comes next."""
    body = "## Recap\n\n" + "\n".join(f"- {point}" for point in points)
    return body + (f"\n\n{next_step}" if next_step else "")
