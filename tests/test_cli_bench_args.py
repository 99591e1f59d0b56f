"""``ptqlab bench models``/``observers``: bad arguments are one line and a non-zero exit before anything runs;
a finished measurement is never lost to an unwritable output; recipes on a missing device say so."""

import argparse
import subprocess
import sys

import pytest
import torch

from ptqlab.backends import RECIPES, RecipeUnavailable
from ptqlab.cli import bench, bench_models

NO_CUDA = not torch.cuda.is_available()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--observer", "nope"], "unknown --observer 'nope'"),
        (["--device", "nope"], "unknown device 'nope'"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--threads", "-1"], "--threads must be >= 1"),
        (["--batch", "abc"], "expected positive integers"),
        (["--batch", "0"], "expected positive integers"),
        (["--warmup", "-1"], "--warmup must be >= 0"),
        (["--repeats", "0"], "--repeats must be >= 1"),
        (["--budget", "nan"], "--budget must be a positive number"),
        (["--budget", "-3"], "--budget must be a positive number"),
        (["--bandwidth-mib", "-1"], "--bandwidth-mib must be >= 1"),
        (["--json", "/nonexistent/x.json"], "--json: cannot write under /nonexistent (no such folder)"),
        (["--charts", "/proc/x"], "--charts: cannot write under /proc"),
    ],
)
def test_bad_arguments_are_one_line_before_running(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        bench_models.parse(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1] and "Traceback" not in err


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line(capsys):
    with pytest.raises(SystemExit):
        bench_models.parse(["--device", "cuda"])
    assert "CUDA is not available here" in capsys.readouterr().err


def test_paths_that_can_be_written_pass(tmp_path):
    args = bench_models.parse(["--json", str(tmp_path / "r.json"), "--charts", str(tmp_path / "new" / "c")])
    assert args.batch == [1, 64] and args.json_path.endswith("r.json")
    assert bench_models.writable_target(str(tmp_path), is_dir=False) == f"{tmp_path} is a folder"


def test_failed_write_at_the_end_keeps_the_results(tmp_path, capsys):
    gone = tmp_path / "gone"
    gone.mkdir()
    args = argparse.Namespace(json_path=str(gone / "r.json"), charts_dir=None)
    gone.rmdir()  # deleted while the benchmark ran
    assert bench_models._write_outputs(args, {"rows": []}, [], 1e9) == 1
    err = capsys.readouterr().err
    assert "could not write --json" in err and "the table above has the results" in err


def test_observers_benchmark_bad_threads_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        bench.observers(["--threads", "0"])
    assert e.value.code == 2 and "--threads must be >= 1" in capsys.readouterr().err


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipes_on_cuda_without_cuda_are_unavailable_not_assertion_errors(name):
    model = torch.nn.Sequential(torch.nn.Linear(8, 8))
    ok, reason = RECIPES[name].availability(model, "cuda")
    assert not ok and reason  # the recipe's own reason (e.g. CPU only), else "CUDA is not available here"
    assert "AssertionError" not in reason
    with pytest.raises(RecipeUnavailable, match=name):
        RECIPES[name].apply(model, torch.randn(2, 8), device="cuda")
    if RECIPES[name].family == "baseline":
        assert "CUDA is not available here" in reason
    ok, reason = RECIPES[name].availability(model, "nope")
    assert not ok and "not a torch device" in reason


def test_cli_process_prints_no_traceback():
    r = subprocess.run(
        [sys.executable, "-m", "ptqlab.cli.main", "bench", "models", "--observer", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "unknown --observer" in r.stderr


def test_bench_llm_row_beside_the_seed_reports_delta_speedups_and_bytes_ratio():
    import math

    from ptqlab.bench.llm_schemes import SchemeRow
    from ptqlab.bench.llm_speed import SpeedRow
    from ptqlab.cli.bench_llm import _our_row
    from ptqlab.ptq.llm_eval import LMScore
    from tests.llm_support import tiny_llama

    model = tiny_llama(32, 64)
    ref, w8 = LMScore(20.0, 3.0, 100), SchemeRow("rtn-w8", "RTN W8", LMScore(20.5, 3.02, 100), 1.0)

    def speed(name, tps, note=""):
        return SpeedRow(name, 1.0, 0.0, tps, 0.0, 1, 1.0, 1.0, note)

    rows = [speed("fp32 eager", 10.0), speed("ORT int8 dynamic", 35.0), speed("ORT int4 MatMulNBits", 50.0),
            speed("torchao int4 weight-only", math.nan, "not run: X")]  # fmt: skip
    row = _our_row(model, ref, w8, rows)
    assert row["delta_ppl"] == 0.5 and row["int8_speedup"] == 3.5 and row["int8_engine"] == "ORT int8 dynamic"
    assert row["int4_speedup"] == 5.0 and 3.5 < row["weights_read_ratio"] <= 4.0
    bare = _our_row(model, ref, None, [])  # no W8 row, no speed table (--no-speed)
    assert set(bare) == {"model", "fp_ppl", "weights_read_ratio"}
