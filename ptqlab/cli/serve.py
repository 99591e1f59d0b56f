"""``python -m ptqlab.cli.serve ARGS`` is ``python -m marimo ARGS`` after importing, once, in this process,
everything the served labs import (torch, ptqlab and the lab's modules), and after starting the code
runner's idle child.

``marimo run`` serves every session as a thread of one process. Opened cold by a class at once, several
session threads imported torch at the same time and broke it for good (pybind11 "cannot initialize type",
"partially initialized module"): here the imports are done before marimo accepts the first session.
"""

from __future__ import annotations

import ast
import importlib
import runpy
import sys
from pathlib import Path


def lab_imports(target: Path) -> list[str]:
    """The modules a lab file (or every lab in a folder) imports, plus torch and ptqlab."""
    files = sorted(target.glob("*.py")) if target.is_dir() else [target]
    names = {"torch", "ptqlab"}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names |= {f"{node.module}.{a.name}" for a in node.names if node.module.startswith("ptqlab")}
    return sorted(names)


def preload(target: Path) -> list[str]:
    """Import what ``target``'s labs import (names that are not modules are skipped); start the runner."""
    done = []
    for name in lab_imports(target):
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        done.append(name)
    from ptqlab.labkit import runner

    runner.prestart()
    return done


def main(argv: list[str]) -> None:
    targets = [Path(a) for a in argv if a.endswith(".py") or Path(a).is_dir()]
    if targets:
        preload(targets[0])
    sys.argv = ["marimo", *argv]
    runpy.run_module("marimo", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
