"""The ``ptqlab`` command: serves the labs with ``marimo run`` bound to 127.0.0.1, finds labs by name."""

import subprocess
import sys
from pathlib import Path

import pytest

from ptqlab.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent


def test_console_script_points_at_main():
    text = (ROOT / "pyproject.toml").read_text()  # (tomllib is 3.11+, the package supports 3.10)
    scripts = text[text.index("[project.scripts]") :].split("\n\n")[0]
    assert 'ptqlab = "ptqlab.cli.main:main"' in scripts


def test_labs_dir_is_the_checkout_labs_folder():
    assert cli.labs_dir() == ROOT / "labs"


def test_the_wheel_ships_the_labs_and_the_data(tmp_path):
    """``pip install .`` (not editable) must serve the labs: they travel as the package data ptqlab/labs/."""
    import zipfile

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    names = set(zipfile.ZipFile(next(tmp_path.glob("ptqlab-*.whl"))).namelist())
    labs = {p.name for p in (ROOT / "labs").glob("[0-9]*.py")}
    assert {f"ptqlab/labs/{n}" for n in labs} <= names
    assert {
        "ptqlab/models/sentences.tsv",
        "ptqlab/widgets/clipping.js",
        "ptqlab/labs/jupyter/affine_staircase.ipynb",
    } <= names
    assert "ptqlab/lessons/calibration/numbers.py" in names and "ptqlab/cli/main.py" in names


def test_gallery_command_serves_the_whole_folder_on_localhost():
    cmd = cli.serve_labs_command(None, 2718, headless=False, token=None)
    assert cmd == [
        sys.executable,
        "-m",
        "ptqlab.cli.serve",
        "run",
        str(ROOT / "labs"),
        "--host",
        "127.0.0.1",
        "--port",
        "2718",
        "--no-token",
    ]


def test_one_lab_headless():
    cmd = cli.serve_labs_command("affine", 4000, headless=True, token="secret")
    assert cmd[:4] == [sys.executable, "-m", "ptqlab.cli.serve", "run"]
    assert cmd[4] == str(ROOT / "labs" / "01_affine_map.py")
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "4000"
    assert cmd[-1] == "--headless" and "--token" in cmd  # a token unless asked otherwise


def test_unknown_lab_lists_the_labs():
    with pytest.raises(SystemExit, match=r"no lab matches 'nope'; labs: .*01_affine_map"):
        cli.serve_labs_command("nope", 2718, headless=True)


@pytest.mark.parametrize(
    "argv,target,headless",
    [
        ([], "labs", False),
        (["labs"], "labs", False),
        (["labs", "01", "--port", "3111", "--headless"], "01_affine_map.py", True),
    ],
)
def test_main_runs_marimo_with_the_checkout_on_pythonpath(monkeypatch, argv, target, headless):
    calls = []

    def fake_run(cmd, env, stdin_text=None):
        calls.append((cmd, env))
        return 0

    monkeypatch.setattr(cli, "run_forwarding_signals", fake_run)
    monkeypatch.setattr(cli, "port_problem", lambda host, port: None)
    assert cli.main(argv) == 0
    ((cmd, env),) = calls
    assert Path(cmd[4]).name == target and "127.0.0.1" in cmd
    assert ("--headless" in cmd) is headless
    assert str(ROOT) in env["PYTHONPATH"].split(":")
    if "--port" in argv:
        assert cmd[cmd.index("--port") + 1] == "3111"


def test_help_bench_list_and_unknown_command(capsys):
    assert cli.main(["--help"]) == 0
    assert "ptqlab labs" in capsys.readouterr().out
    assert cli.main(["bench", "--list"]) == 0
    assert "benchmarks:" in capsys.readouterr().out
    assert cli.main(["bench", "no-such-benchmark"]) == 2
    assert cli.main(["frobnicate"]) == 2


def test_help_does_not_import_torch_and_a_port_in_time_wait_is_free():
    import socket
    import subprocess

    code = "import sys, ptqlab.cli.main as m; m.main(['--help']); assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with socket.create_server(("127.0.0.1", 0)) as server:  # a stopped server leaves TIME_WAIT behind
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()
    client.close()
    assert cli.port_problem("127.0.0.1", port) is None


def test_options_without_a_command_go_to_the_labs(monkeypatch):
    from ptqlab.cli import main as cli_main

    seen = []
    monkeypatch.setattr(cli_main, "_labs", lambda argv: seen.append(argv) or 0)
    assert cli_main.main(["--headless", "--port", "2719"]) == 0
    assert seen == [["--headless", "--port", "2719"]]
