"""Smoke test of ``ptqlab bench labs`` (a benchmark, not a timed test): one lab, one move per control of
every kind, and the table has a row per control with a measured time and a verdict. No assertion on speed."""

import pytest
from browser_support import require_browser

from ptqlab.cli import bench_labs, main
from ptqlab.cli.lab_controls import KINDS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_summary_table_and_verdict_format():
    assert bench_labs.summary([None, None]) == "—"
    assert bench_labs.summary([100.0, 300.0, 200.0, None]) == "200 / 300"
    moves = [{"figure": 10.0, "number": None, "settled": 12.0}]
    assert "| 01_x | slider | bits | 10 / 10 | — | 12 / 12 | ok |" in bench_labs.table(
        [("01_x", "bits", moves)]
    )
    slow = [{"figure": 300.0, "number": 160.0, "settled": 400.0}] * 3
    assert bench_labs.verdict(slow) == "**misses:** figure 300 > 250 ms, number 160 > 150 ms"
    assert bench_labs.verdict([{"figure": None, "number": 149.0}]) == "ok"
    assert bench_labs.verdict([{"figure": None, "number": None}]) == "no change seen"
    row = bench_labs.table([("03_x", "switch", "fold", slow)]).splitlines()[-1]
    assert row.startswith("| 03_x | switch | fold | 300 / 300 | 160 / 160 |") and "misses" in row


def test_bad_arguments_exit_non_zero(capsys):
    assert main.main(["bench", "labs", "no_such_lab"]) == 2
    assert "no lab matches 'no_such_lab'" in capsys.readouterr().err
    assert main.main(["bench", "labs", "--repeats", "0"]) == 2
    assert main.main(["bench", "labs", "01_affine", "--kinds", "slider,knob"]) == 2
    assert "--kinds must name some of slider, dropdown, switch, drag" in capsys.readouterr().err


def test_bench_labs_moves_every_control_of_lab01(capsys, tmp_path):
    require_browser()
    out = tmp_path / "moves.json"
    assert main.main(["bench", "labs", "01_affine", "--repeats", "1", "--json", str(out)]) == 0
    rows = [
        line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| 01_affine_map")
    ]
    kinds = [r[2].strip() for r in rows]
    assert set(kinds) <= set(KINDS) and "switch" in kinds
    sliders = [r for r in rows if r[2].strip() == "slider"]
    assert [r[3].strip() for r in sliders] == ["bits", "clipping range min", "clipping range max"]
    assert all(r[4].strip() != "—" for r in sliders)  # every slider redrew the figure
    assert all(r[7].strip() for r in rows)  # every control has a verdict
    assert len(__import__("json").loads(out.read_text())) == len(rows)
