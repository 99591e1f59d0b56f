"""Run one marimo notebook headless and report every cell error; used by tests/test_labs.py.

    python tests/_lab_runner.py labs/01_affine_map.py

How marimo 0.25.2 reports errors here (marimo/_runtime/app/script_runner.py): ``app.run()`` executes the
cells in dependency order and *raises* the first user exception (re-raised from its cell, so the traceback
points into the notebook); ``mo.stop`` is not an error (its output is kept, descendants are skipped).
Outputs are not rendered by ``app.run()`` — the server renders them later and shows a formatter failure as
an error in the page — so this runner also formats every output with marimo's own ``try_format`` and
fails on a formatter traceback, and on an output that is itself an exception object.

Exit status 0 and a last stdout line ``LAB-OK <ran>/<cells>`` when clean; 1 with the problems on stderr.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")


def main(path: str) -> int:
    spec = importlib.util.spec_from_file_location("lab_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.app
    try:
        outputs, _defs = app.run()
    except BaseException:  # a cell raised: marimo re-raises it from the cell
        print(f"LAB-ERROR {path}: a cell raised\n{traceback.format_exc()}", file=sys.stderr)
        return 1

    from marimo._output.formatting import try_format

    problems = []
    for i, output in enumerate(outputs):
        if isinstance(output, BaseException):
            problems.append(f"output {i} is an exception object: {output!r}")
            continue
        formatted = try_format(output)
        if formatted.traceback:
            problems.append(f"output {i} ({type(output).__name__}) fails to render:\n{formatted.traceback}")
    if problems:
        print(f"LAB-ERROR {path}:\n" + "\n".join(problems), file=sys.stderr)
        return 1
    try:  # informational: cells skipped by mo.stop produce no output
        n_cells = len(list(app._cell_manager.valid_cell_ids()))
    except Exception:
        n_cells = -1
    print(f"LAB-OK {len(outputs)}/{n_cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
