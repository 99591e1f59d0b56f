"""Smoke test of ``ptqlab bench labs`` (a benchmark, not a timed test): one lab, one move per slider,
and the table has a row per slider with a measured figure time. No assertion on speed."""

import pytest
from browser_support import require_browser

from ptqlab.cli import bench_labs, main

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_summary_and_table_format():
    assert bench_labs.summary([None, None]) == "—"
    assert bench_labs.summary([100.0, 300.0, 200.0, None]) == "200 / 300"
    moves = [{"figure": 10.0, "number": None, "settled": 12.0}]
    assert "| 01_x | bits | 10 / 10 | — | 12 / 12 |" in bench_labs.table([("01_x", "bits", moves)])


def test_bad_arguments_exit_non_zero(capsys):
    assert main.main(["bench", "labs", "no_such_lab"]) == 2
    assert "no lab matches 'no_such_lab'" in capsys.readouterr().err
    assert main.main(["bench", "labs", "--repeats", "0"]) == 2


def test_bench_labs_measures_every_slider_of_lab01(capsys):
    require_browser()
    assert main.main(["bench", "labs", "01_affine", "--repeats", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 01_affine_map")]
    assert [r.split("|")[2].strip() for r in rows] == ["bits", "clipping range min", "clipping range max"]
    assert all(r.split("|")[3].strip() != "—" for r in rows)  # every slider redrew the figure
