"""The house rules, parsed from the source with ``ast``: layers import only downward, no cycles, core
imports torch and the standard library only, marimo stays in labkit/ and lessons/ (public names only),
no lab package imports another, cli/bench import no lesson,
no private names cross modules, modules and functions stay small, labs hold no computation, and the
README's lab → module table is what the labs import."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ptqlab"
LABS = sorted((ROOT / "labs").glob("[0-9][0-9]_*.py"))

# layer -> the layers it may import (besides itself). The order of the table is the order of the house.
BELOW: dict[str, set[str]] = {
    "core": set(),
    "observers": {"core"},
    "models": {"core"},
    "widgets": {"core", "observers"},
    "ptq": {"core", "observers", "models"},
    "backends": {"core", "observers", "models", "ptq"},
    "bench": {"core", "observers", "models", "ptq", "backends"},
    "labkit": {"core", "observers", "models", "ptq", "backends", "bench", "widgets"},
    "lessons": {"core", "observers", "models", "ptq", "backends", "bench", "widgets", "labkit"},
    "cli": {"core", "observers", "models", "ptq", "backends", "bench", "widgets", "labkit"},
}
# core's third-party imports: torch, and tqdm, imported lazily only when a caller asks for a progress bar
CORE_THIRD_PARTY = {"torch", "tqdm"}
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every import, at any depth, absolute form."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names], node.lineno))
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "ptqlab" and len(parts) > 1 and parts[1] in BELOW else None


def internal_targets(module: str, names: list[str]) -> set[str]:
    """The ptqlab modules an import statement loads: ``from ptqlab.x import y`` loads ptqlab.x.y if a module."""
    if not module.startswith("ptqlab"):
        return set()
    targets = {module}
    targets |= {f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES}
    return targets


def test_every_module_lives_in_a_layer():
    loose = [m for m in MODULES if m != "ptqlab" and layer_of(m) is None]
    assert not loose, f"modules outside every layer folder: {loose}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    mine = layer_of(module)
    for target, names, line in imports(MODULES[module]):
        for t in internal_targets(target, names):
            theirs = layer_of(t)
            if mine is None or theirs is None or theirs == mine:
                continue
            assert theirs in BELOW[mine], f"{module}:{line} imports {t} ({mine} may not import {theirs})"


LAB_PACKAGES = sorted({m.split(".")[2] for m in MODULES if m.startswith("ptqlab.lessons.")})
LAB_ROLES = {"numbers", "text", "questions", "exercise", "figures"}


def lab_package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["ptqlab", "lessons"] else None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if lab_package_of(m)))
def test_no_lab_package_imports_another(module):
    mine = lab_package_of(module)
    for target, names, line in imports(MODULES[module]):
        for t in internal_targets(target, names):
            theirs = lab_package_of(t)
            assert theirs in (None, mine), f"{module}:{line} imports {t}: lab packages stand alone"


def test_lessons_holds_one_folder_per_lab_and_nothing_else():
    top = {m for m in MODULES if m.startswith("ptqlab.lessons.") and m.count(".") == 2}
    assert top == {f"ptqlab.lessons.{lab}" for lab in LAB_PACKAGES}, "only lab packages under lessons/"
    for lab in LAB_PACKAGES:
        roles = {m.rsplit(".", 1)[1] for m in MODULES if m.startswith(f"ptqlab.lessons.{lab}.")}
        # lab 06 shows lab 01's exercise again, so it has no exercise of its own
        expected = LAB_ROLES - ({"exercise", "figures"} if lab == "direct_manipulation" else set())
        assert expected <= roles, f"ptqlab.lessons.{lab} lacks {sorted(expected - roles)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) in ("cli", "bench", "labkit")))
def test_cli_bench_and_labkit_import_no_lesson(module):
    for target, names, line in imports(MODULES[module]):
        for t in internal_targets(target, names):
            assert layer_of(t) != "lessons", f"{module}:{line} imports the lesson {t}"


def test_no_import_cycle():
    graph = {m: set() for m in MODULES}
    for m, path in MODULES.items():
        for target, names, _ in imports(path):
            graph[m] |= {t for t in internal_targets(target, names) if t in MODULES and t != m}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                cycle = stack[stack.index(n) :] + [n]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if n not in state:
                visit(n, [*stack, n])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) == "core"))
def test_core_imports_torch_and_the_standard_library_only(module):
    for target, _, line in imports(MODULES[module]):
        top = target.split(".")[0]
        allowed = top in sys.stdlib_module_names or top in CORE_THIRD_PARTY or top in ("ptqlab", "__future__")
        assert allowed, f"{module}:{line} imports {target}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_marimo_only_in_labkit_and_lessons_and_never_private(module):
    for target, names, line in imports(MODULES[module]):
        if target.split(".")[0] != "marimo":
            continue
        assert layer_of(module) in ("labkit", "lessons"), f"{module}:{line} imports marimo"
        private = [p for p in target.split(".") + names if p.startswith("_")]
        assert not private, f"{module}:{line} imports marimo's private {private}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_crosses_modules(module):
    for target, names, line in imports(MODULES[module]):
        if target.startswith("ptqlab"):
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{module}:{line} imports private {private} from {target}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_functions_stay_small(module):
    source = MODULES[module].read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{module} has more than {MAX_MODULE_LINES} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{module}.{node.name} has {length} lines"


def test_every_folder_is_a_listed_package():
    text = (ROOT / "pyproject.toml").read_text()  # (tomllib is 3.11+, the package supports 3.10)
    block = text[text.index("[tool.setuptools]") :].split("]\n\n")[0]
    listed = set(re.findall(r'"(ptqlab[\w.]*)"', block))
    folders = {module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert folders | {"ptqlab.labs"} == listed


# ---- labs are wiring: prose, controls, calls into ptqlab ----------------------------------------------

COMPUTATION = (
    ast.For,
    ast.While,
    ast.ListComp,
    ast.DictComp,
    ast.SetComp,
    ast.GeneratorExp,
    ast.FunctionDef,
    ast.Lambda,
)
ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult)


def lab_cells(path: Path) -> list[ast.FunctionDef]:
    return [
        node
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef)
        and any(ast.unparse(d).startswith("app.cell") for d in node.decorator_list)
    ]


def computation_in(cell: ast.FunctionDef) -> list[str]:
    """Loops, comprehensions, inner functions and arithmetic on values (string building is fine)."""
    found = []
    for node in (n for stmt in cell.body for n in ast.walk(stmt)):
        if isinstance(node, COMPUTATION):
            found.append(f"line {node.lineno}: {type(node).__name__}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ARITHMETIC):
            is_text = any(isinstance(side, ast.Constant | ast.JoinedStr) for side in (node.left, node.right))
            if not is_text:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_lab_cells_hold_no_computation(lab):
    found = [f for cell in lab_cells(lab) for f in computation_in(cell)]
    assert not found, f"{lab.name}: move into ptqlab.lessons: {found}"


def lab_imports(lab: Path) -> set[str]:
    out = set()
    for target, names, _ in imports(lab):
        if target.startswith("ptqlab."):
            out |= {f"{target}.{n}" if f"{target}.{n}" in MODULES else target for n in names}
    return out


def readme_rows() -> dict[str, set[str]]:
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*`(\d\d_\w+)`\s*\|.*\|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = set(re.findall(r"`(ptqlab[\w.]*)`", m.group(2)))
    return rows


def test_readme_lab_table_matches_the_labs_imports():
    rows = readme_rows()
    assert set(rows) == {lab.stem for lab in LABS}
    for lab in LABS:
        assert rows[lab.stem] == lab_imports(lab), lab.stem


MAX_POSITIONAL = 5  # "about four": a public function takes keywords after this many positional parameters


@pytest.mark.parametrize("module", sorted(MODULES))
def test_public_functions_take_keywords_after_a_few_positionals(module):
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            positional = [
                a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")
            ]
            assert len(positional) <= MAX_POSITIONAL, f"{module}.{node.name}: {positional}"
