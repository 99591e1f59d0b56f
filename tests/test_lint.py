"""Static checks that run with the test suite: ruff lint, ruff format, and `marimo check` on every lab."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint_is_clean():
    result = _run("ruff", "check", "ptqlab", "labs", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = _run("ruff", "format", "--check", "ptqlab", "labs", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_marimo_check_every_lab():
    labs = sorted(str(p) for p in (ROOT / "labs").glob("*.py"))
    assert labs, "no labs found"
    result = _run("marimo", "check", "--strict", *labs)
    assert result.returncode == 0, result.stdout + result.stderr
