"""The ``ptqlab`` command: open the labs in the browser, or run a benchmark.

ptqlab                       serve every lab (a gallery) with ``marimo run`` on 127.0.0.1 and open it
ptqlab labs [--port N] [--headless] [LAB]
ptqlab bench NAME [...]      run a benchmark and print its table (``ptqlab bench --list``)
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

# name -> ("module:function", one-line help). Each function takes the remaining argv and returns an exit code.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "observers": (
        "ptqlab.cli.bench:observers",
        "observe() and range() per observer vs torch.ao (1M floats)",
    ),
    "accuracy": (
        "ptqlab.cli.bench:accuracy",
        "accuracy / embedding cosine of the real models under simulated PTQ",
    ),
    "labs": ("ptqlab.cli.bench_labs:main", "labs 01/03/05/06: ms from slider to figure, in Chromium"),
    "models": (
        "ptqlab.cli.bench_models:main",
        "every PTQ recipe on digits MLP/CNN, MiniLM, a memory-bound MLP: speed, size, quality",
    ),
}


def labs_dir() -> Path:
    """The folder of marimo labs: ``labs/`` of a checkout (editable install), else the copy that a
    wheel ships as the package data ``ptqlab/labs/``."""
    checkout = Path(__file__).resolve().parents[2] / "labs"
    if (checkout / "01_affine_map.py").is_file():
        return checkout
    installed = Path(str(resources.files("ptqlab") / "labs"))
    if (installed / "01_affine_map.py").is_file():
        return installed
    raise FileNotFoundError("could not find the labs: reinstall ptqlab (`pip install .` ships them)")


def serve_labs_command(lab: str | None, port: int, headless: bool) -> list[str]:
    target = labs_dir() if lab is None else _find_lab(lab)
    cmd = [sys.executable, "-m", "marimo", "run", str(target), "--host", "127.0.0.1", "--port", str(port)]
    if headless:
        cmd.append("--headless")
    return cmd


def _find_lab(lab: str) -> Path:
    candidates = sorted(p for p in labs_dir().glob("*.py") if lab in p.stem)
    if not candidates:
        names = ", ".join(p.stem for p in sorted(labs_dir().glob("[0-9]*.py")))
        raise SystemExit(f"no lab matches {lab!r}; labs: {names}")
    return candidates[0]


def _labs(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ptqlab labs", description="Serve the labs with marimo.")
    parser.add_argument("lab", nargs="?", help="part of a lab's file name (default: all labs, as a gallery)")
    parser.add_argument("--port", type=int, default=2718)
    parser.add_argument("--headless", action="store_true", help="do not open a browser")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return subprocess.call(serve_labs_command(args.lab, args.port, args.headless), env=env)


def _bench(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "--list"}:
        print("usage: ptqlab bench NAME [options]\n\nbenchmarks:")
        for name, (_, text) in sorted(BENCHMARKS.items()):
            print(f"  {name:<12} {text}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}; choose from: {', '.join(sorted(BENCHMARKS))}", file=sys.stderr)
        return 2
    module, func = BENCHMARKS[name][0].split(":")
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return _labs([])
    command, rest = argv[0], argv[1:]
    if command == "labs":
        return _labs(rest)
    if command == "bench":
        return _bench(rest)
    if command in {"-h", "--help"}:
        print(__doc__)
        return 0
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
