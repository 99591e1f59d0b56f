"""Run a lab in-process with chosen widget values (injected through ``app.run(defs=...)``).

Used by the slider-extreme tests: the cells that consume a widget only read ``.value``, so a stand-in
object replaces the UI element, and every output is rendered with marimo's own formatter so that an
output which fails to render fails the test.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple

from marimo._output.formatting import try_format

ROOT = Path(__file__).resolve().parent.parent


class Widget:
    """Stands in for a marimo UI element: the consuming cells only read ``.value``."""

    def __init__(self, value):
        self.value = value


def checked_code(*sources: str, pressed: bool = True) -> dict:
    """The value of a lab's ``check_controls`` with ``sources`` in its exercises' editors and (if ``pressed``) each check
    button clicked once; the self-check answers are left blank."""
    return {"answers": [], "editors": list(sources), "checks": [int(pressed)] * len(sources)}


class LabRun(NamedTuple):
    text: str  # every rendered output, joined
    outputs: list
    defs: dict


def run_with_values(lab: str, values: dict) -> LabRun:
    """Execute ``labs/<lab>.py`` with ``values`` as its widgets' values; assert no output fails to render."""
    spec = importlib.util.spec_from_file_location(f"{lab}_extremes", ROOT / "labs" / f"{lab}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outputs, defs = module.app.run(defs={k: Widget(v) for k, v in values.items()})
    rendered = [try_format(o) for o in outputs]
    assert not [r.traceback for r in rendered if r.traceback]
    return LabRun(" ".join(str(r.data) for r in rendered), outputs, defs)
