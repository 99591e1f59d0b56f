"""Every notebook under labs/ runs headless with its default widget values, and no cell raises or renders
an error. Each lab runs in its own subprocess (tests/_lab_runner.py) with a timeout, so one lab's imports,
threads or matplotlib state cannot leak into another's. Labs are globbed at collection time, so a new
labs/*.py is covered without touching this file.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lab_support import run_with_values

from ptqlab.labkit.vega import Chart

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "tests" / "_lab_runner.py"
LABS = sorted((ROOT / "labs").glob("*.py"))
TIMEOUT_S = 180  # a lab must run in well under a minute; this is the hang guard


def run_lab(path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg", OMP_WAIT_POLICY="PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(RUNNER), str(path)],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def test_there_are_labs():
    assert any(p.name == "01_affine_map.py" for p in LABS)


@pytest.mark.parametrize("lab", LABS, ids=[p.stem for p in LABS])
def test_lab_runs_headless_without_errors(lab):
    result = run_lab(lab)
    assert result.returncode == 0, f"{lab.name} failed headless:\n{result.stderr[-6000:]}"
    assert result.stdout.strip().splitlines()[-1].startswith("LAB-OK")


# ---------------------------------------------------------------------------------------------------------
# The harness itself: a broken notebook must FAIL it
# ---------------------------------------------------------------------------------------------------------

HEADER = 'import marimo\n\napp = marimo.App(width="medium")\n\n\n@app.cell\ndef _():\n    import marimo as mo\n    return (mo,)\n'
FOOTER = '\n\nif __name__ == "__main__":\n    app.run()\n'


def _notebook(tmp_path: Path, body: str, name: str = "broken.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "\n\n" + textwrap.dedent(body).strip("\n") + FOOTER)
    return path


def test_harness_fails_on_a_cell_that_raises(tmp_path):
    path = _notebook(
        tmp_path,
        """
        @app.cell
        def _(mo):
            denominator = 0
            mo.md("fine so far")
            return (denominator,)


        @app.cell
        def _(denominator):
            ratio = 1 / denominator
            return (ratio,)
        """,
    )
    result = run_lab(path)
    assert result.returncode == 1
    assert "LAB-ERROR" in result.stderr and "ZeroDivisionError" in result.stderr
    assert "ratio = 1 / denominator" in result.stderr  # the traceback points into the notebook's cell


def test_harness_fails_on_an_output_that_cannot_render(tmp_path):
    path = _notebook(
        tmp_path,
        """
        @app.cell
        def _():
            class Unrenderable:
                def _mime_(self):
                    raise RuntimeError("formatter exploded")

            Unrenderable()
            return
        """,
    )
    result = run_lab(path)
    assert result.returncode == 1
    assert "fails to render" in result.stderr and "formatter exploded" in result.stderr


def test_harness_fails_on_an_exception_shown_as_output(tmp_path):
    path = _notebook(
        tmp_path,
        """
        @app.cell
        def _():
            ValueError("swallowed and displayed")
            return
        """,
    )
    result = run_lab(path)
    assert result.returncode == 1 and "is an exception object" in result.stderr


def test_harness_accepts_mo_stop(tmp_path):
    """mo.stop is a lab's deliberate, graceful message (e.g. min > max), not an error."""
    path = _notebook(
        tmp_path,
        """
        @app.cell
        def _(mo):
            mo.stop(True, mo.callout(mo.md("min is above max"), kind="warn"))
            value = 1
            return (value,)


        @app.cell
        def _(value):
            value + 1
            return
        """,
        name="stopped.py",
    )
    result = run_lab(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "LAB-OK 2/3"  # the stopped cell's child never ran


# ---------------------------------------------------------------------------------------------------------
# Lab 01 survives every slider extreme (widget values injected through app.run(defs=...))
# ---------------------------------------------------------------------------------------------------------


EXTREMES = [
    (2, -10.0, -10.0, True, True, ""),
    (16, 10.0, 10.0, True, False, "7"),
    (16, 0.0, 0.0, False, True, "x"),
    (2, 0.0, 0.0, False, False, "-3"),
    (2, -10.0, 10.0, True, False, "0"),
    (16, -10.0, 10.0, False, False, "99999"),
    (8, 5.0, -5.0, True, True, ""),  # min > max: a warning, not a traceback
    (9, -0.1, 0.1, True, True, "1"),
]


@pytest.mark.parametrize("bits,lo,hi,signed,symmetric,answer", EXTREMES)
def test_lab01_survives_slider_extremes(bits, lo, hi, signed, symmetric, answer):
    values = {"bits": bits, "lo": lo, "hi": hi, "signed": signed, "symmetric": symmetric, "answer": answer}
    text, outputs, defs = run_with_values("01_affine_map", values)
    if lo > hi:
        assert "is above max" in text and "curve" not in defs
    else:
        charts = [o for o in outputs if isinstance(o, Chart)]  # the figure, drawn by the browser (plots.vega)
        assert defs["curve"].spec.bits == bits and len(charts) == 1
        assert f"{bits}-bit" in json.loads(charts[0].to_json())["vconcat"][0]["title"]


# ---------------------------------------------------------------------------------------------------------
# Lab 02 survives every slider extreme too
# ---------------------------------------------------------------------------------------------------------

SYM, ASYM = "symmetric (int, range [−T, T])", "asymmetric (uint, range [lo, hi])"
LAB02_EXTREMES = [
    # body, outlier size, outlier share %, batches, bits, p, grid
    ("gaussian", 0.0, 0.0, 1, 2, 100.0, SYM),
    ("uniform", 100.0, 5.0, 64, 16, 99.0, ASYM),
    ("relu", 0.0, 0.0, 1, 2, 99.0, ASYM),
    ("relu", 100.0, 0.001, 1, 16, 100.0, SYM),
    ("gaussian", 100.0, 5.0, 64, 2, 99.999, SYM),
]


@pytest.mark.parametrize("body,size,share,batches,bits,p,grid", LAB02_EXTREMES)
def test_lab02_survives_slider_extremes(body, size, share, batches, bits, p, grid):
    import math

    values = {
        "body": body,
        "outlier_size": size,
        "outlier_percent": share,
        "n_batches": batches,
        "bits": bits,
        "p": p,
        "mode": grid,
    }
    _, outputs, defs = run_with_values("02_calibration", values)
    results = defs["results"]
    assert {r.name for r in results} >= {"minmax", "percentile", "entropy", "mse", "l2"}
    charts = [o for o in outputs if isinstance(o, Chart)]  # ranges and error curve, drawn by the browser
    assert len(charts) == 2 and all(c.to_json() for c in charts)  # strict JSON at every extreme
    for r in results:
        assert r.grid_lo <= 0.0 <= r.grid_hi and r.grid_lo < r.grid_hi
        assert not math.isnan(r.sqnr_db)


# ---------------------------------------------------------------------------------------------------------
# Lab 04 with the run button pressed: extreme choices still measure, never crash
# ---------------------------------------------------------------------------------------------------------

LAB04_EXTREMES = [
    # model, calibrator, recipes (None = all), batch, repeats, threads
    ("cnn", "per_channel", [], 1, 5, 1),
    ("mlp", "entropy", None, 64, 5, 2),
    ("cnn", "l2", None, 1, 5, 1),
]


@pytest.mark.parametrize("model,observer,recipes,batch,repeats,threads", LAB04_EXTREMES)
def test_lab04_run_button_survives_extremes(model, observer, recipes, batch, repeats, threads):
    import torch

    from ptqlab.backends import RECIPES

    recipes = list(RECIPES) if recipes is None else recipes
    values = {
        "model_picker": model,
        "observer_picker": observer,
        "recipe_picker": recipes,
        "batch_picker": batch,
        "repeats_slider": repeats,
        "threads_picker": threads,
        "run_button": True,
    }
    before = torch.get_num_threads()
    defs = run_with_values("04_full_model_ptq", values).defs
    result = defs["result"]
    assert defs["origin"] == "your settings"
    assert (result.model, result.batch, result.repeats, result.observer) == (model, batch, repeats, observer)
    assert result.facts.torch_threads == threads and torch.get_num_threads() == before  # restored
    assert {"fp32", *recipes} <= {row.recipe for row in result.rows}
    for row in result.rows:  # every recipe was either measured or says why it could not run
        assert (row.available and row.median_ms > 0) or (not row.available and row.reason), row


# ---- issue 23: the UI defects, each checked where it is decided (no browser needed) ----------------------

KATEX_FUNCTIONS = r"min|max|log|ln|exp|sin|cos|lim|sup|inf|det|arg"  # operators: no argument to take


@pytest.mark.parametrize(
    "path", LABS + sorted((ROOT / "ptqlab" / "lessons").glob("*/*.py")), ids=lambda p: p.name
)
def test_no_function_as_a_bare_sub_or_superscript(path):
    """KaTeX refuses ``q_\\min`` ("Got function '\\min' with no arguments as subscript") and shows it as raw
    red LaTeX; ``q_{\\min}`` renders."""
    import re

    bad = re.findall(rf"[_^]\\(?:{KATEX_FUNCTIONS})\b", path.read_text())
    assert bad == [], f"{path.name}: brace these sub/superscripts: {bad}"


def test_progress_bars_go_away_and_tell_the_time(monkeypatch):
    import marimo as mo

    from ptqlab.labkit import layout

    made = []

    class Bar:
        def __init__(self, **kw):
            made.append(kw | {"subtitles": []})

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def update(self, subtitle=None):
            made[-1]["subtitles"].append(subtitle)

    monkeypatch.setattr(mo, "running_in_notebook", lambda: True)
    monkeypatch.setattr(mo.status, "progress_bar", Bar)
    assert list(layout.marimo_progress("t")(["gptq", "awq"])) == ["gptq", "awq"]
    with layout.timed_bar(3, "recipes") as step:
        step("fp32")
    assert [m["remove_on_exit"] for m in made] == [True, True]
    assert made[0]["subtitles"][0].startswith("gptq (") and "1/2" in made[0]["subtitles"][0]
    assert "s elapsed · about" in made[1]["subtitles"][0]


def test_lab07_draws_only_panels_with_something_to_show():
    import torch

    from ptqlab.lessons.beyond_rtn.figures import weight_panels, weights_figure
    from ptqlab.lessons.beyond_rtn.numbers import WeightViews

    one_channel = (torch.ones(1), torch.ones(1))
    views = WeightViews("conv1", None, (torch.ones(3), torch.ones(3)), one_channel, None, True, True)
    shown, absent = weight_panels(views)
    assert shown == ["gptq"]
    assert absent == [
        "AdaRound was not run (add it and press the button)",
        "AWQ: conv1 has no per-channel scale to compare (one input channel, or none)",
        "CLE: no equalizable pair starts at conv1",
    ]
    assert len([ax for ax in weights_figure(views).axes if ax.get_visible()]) == 1
    assert weights_figure(WeightViews("x", None, None, None, None)) is None


def test_lab07_default_layer_has_more_than_one_input_channel():
    from types import SimpleNamespace

    from ptqlab.lessons.beyond_rtn import numbers

    errors = {"conv1": 0.1, "conv2": 0.1, "fc1": 0.1}  # the rtn run's per-layer errors name the layers
    comparison = SimpleNamespace(model="cnn", runs={"rtn": SimpleNamespace(layer_errors=errors)})
    assert numbers.default_layer(comparison) == "conv2"  # conv1 sees one input channel: AWQ has one point


def test_lab03_fold_switch_says_when_it_cannot_apply(monkeypatch):
    from ptqlab.lessons.schemes import numbers
    from ptqlab.lessons.schemes.text import fold_switch_note

    real = numbers.batchnorm_count
    monkeypatch.setattr(numbers, "batchnorm_count", lambda name: 0 if name == "minilm" else real(name))
    assert real("cnn") == 3 and real("mlp") == 3
    assert "no BatchNorm layer: the fold switch has nothing to fold" in fold_switch_note("minilm", True)
    assert "BatchNorm layers: folded into the weights" in fold_switch_note("cnn", True)
    assert "kept (switch on to fold them)" in fold_switch_note("mlp", False)


def test_lab03_histogram_bins_are_even_on_the_symlog_axis():
    import math

    import torch

    from ptqlab.labkit.vega import histogram_rows

    w = torch.cat([torch.randn(4000, generator=torch.Generator().manual_seed(0)) * 0.02, torch.tensor([8.0])])
    bars = histogram_rows(w, 80, symlog=0.02)
    assert sum(b["count"] for b in bars) == w.numel()
    t = lambda x: math.copysign(math.log1p(abs(x) / 0.02), x)  # noqa: E731
    widths = {round(t(b["b"]) - t(b["a"]), 3) for b in bars}
    assert len(widths) == 1  # equal bins in symlog space
    assert sum(b["count"] for b in bars if abs(b["a"]) < 0.1) > 3000  # the bulk is spread over many bins
    assert len([b for b in bars if abs(b["a"]) < 0.1]) > 20
    with pytest.raises(ValueError, match="symlog"):
        histogram_rows(w, 10, symlog=0.0)


def test_lab05_legends_sit_beside_the_data():
    from ptqlab.lessons.sensitivity.figures import sensitivity_figure
    from ptqlab.ptq.sensitivity import SensitivityReport

    layers = ["fc1", "fc2", "fc3"]
    report = SensitivityReport(0.99, {(n, b): 0.9 for n in layers for b in (2, 4, 8)}, layers, (2, 4, 8))
    fig = sensitivity_figure(report, "t")
    fig.canvas.draw()
    ax = fig.axes[0]
    legend, axes_box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= axes_box.x1 - 1  # right of the axes, never on the bars


def test_lab09_self_check_options_do_not_carry_the_answer():
    from ptqlab.lessons.real_integers.questions import QUESTIONS

    _, options, right = QUESTIONS["q1"]
    assert right in options and not any(ch in right for ch in "0123456789^<")
