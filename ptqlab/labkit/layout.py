"""Layout shared by every lab: a control beside its "Try this" prompt, and marimo's progress bar."""

from __future__ import annotations

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
