"""Lab 08's lessons: the decision framework's branches, the algorithm registry (present, absent, refusing),
RTN rows against a direct simulate, the tables and the LAWA verdict, the CLI, and the lab's extremes."""

import types

import pytest
import torch
from lab_support import run_with_values

import ptqlab.models.cache as cache_module
from ptqlab.bench import dynamics_table as training_dynamics
from ptqlab.bench import ptq_vs_qat
from ptqlab.bench.ptq_vs_qat import Row, tutorial_check
from ptqlab.lessons.ptq_vs_qat.decision import recommend
from ptqlab.ptq import qat
from ptqlab.ptq.training_dynamics import DynamicsStudy

FP32 = 0.99
ROWS = [
    Row("cnn", "PTQ RTN", 2, 0.40, 0.02, 256, False, 0),
    Row("cnn", "PTQ + gptq", 2, 0.95, 0.5, 256, False, 0),
    Row("cnn", "QAT", 2, 0.985, 12.0, 1437, True, 11496),
    Row("cnn", "PTQ RTN", 4, 0.985, 0.02, 256, False, 0),
    Row("cnn", "QAT", 4, 0.99, 10.0, 1437, True, 11496),
]
LABELLED, UNLABELLED, NONE = (
    "the labelled training set (1437 images)",
    "256 unlabelled images",
    "no data at all",
)


def test_ptq_when_it_meets_the_floor():
    answer = recommend(ROWS, FP32, bits=4, time_budget_s=100, data=LABELLED, max_drop=1.0)
    assert answer.branch == "ptq" and answer.choice.method == "PTQ RTN"


def test_qat_when_only_fine_tuning_meets_the_floor():
    answer = recommend(ROWS, FP32, bits=2, time_budget_s=100, data=LABELLED, max_drop=1.0)
    assert answer.branch == "qat" and answer.choice.method == "QAT"
    assert "98.50 %" in answer.markdown and "-0.50 points" in answer.markdown


def test_floor_not_met_names_the_best_feasible_and_what_would_meet_it():
    answer = recommend(ROWS, FP32, bits=2, time_budget_s=1, data=UNLABELLED, max_drop=1.0)
    assert answer.branch == "floor-not-met" and answer.choice.method == "PTQ + gptq"
    assert "Relaxing the constraints: **QAT**" in answer.markdown
    zero = recommend(ROWS, FP32, bits=2, time_budget_s=1000, data=LABELLED, max_drop=0.0)
    assert zero.branch == "floor-not-met" and "raise the bits" in zero.markdown


def test_nothing_fits_without_data_or_rows():
    answer = recommend(ROWS, FP32, bits=2, time_budget_s=1000, data=NONE, max_drop=10)
    assert answer.choice is None and "calibration images" in answer.markdown
    assert recommend(ROWS, FP32, bits=3, time_budget_s=1, data=NONE, max_drop=1).branch == "nothing-fits"
    with pytest.raises(ValueError, match="data"):
        recommend(ROWS, FP32, bits=2, time_budget_s=1, data="lots", max_drop=1)


def test_tutorial_check_and_table_markdown():
    text = tutorial_check(ROWS, FP32)
    assert "W2A8: best PTQ (PTQ + gptq) loses 4.00 points, QAT loses 0.50 points in 12.0 s" in text
    cached = ROWS[2]._replace(from_cache=True)
    failed = Row("cnn", "PTQ + cle", 2, None, 0.0, 256, False, 0, note="no pairs")
    table = ptq_vs_qat.table_markdown([ROWS[0], cached, failed], FP32)
    assert "| cnn | W2A8 | QAT | 98.50 % | -0.50 | 12.00 s (cache) | 1437 labelled | 11,496 |" in table
    assert "| cnn | W2A8 | PTQ + cle | — % | — |" in table


def test_the_registry_is_the_ptq_algorithms():
    from ptqlab.ptq import algorithms

    assert ptq_vs_qat.available_algorithms()["names"] == algorithms.ALGORITHMS
    assert "gptq" in ptq_vs_qat.registry_note() and "rtn" not in ptq_vs_qat.registry_note()


def _fake_registry(monkeypatch):
    from ptqlab.ptq.simulate import simulate

    calls = []

    def run_algorithm(name, model, *, weight_spec, calibration, act_spec=None, progress=None, **options):
        calls.append((name, weight_spec, act_spec, len(calibration)))
        if name == "cle":
            raise TypeError("cle: no Linear-ReLU-Linear chain")
        quantized = simulate(model, weight_spec, act_spec, calibration=calibration)
        return types.SimpleNamespace(model=quantized, seconds=0.25, notes=["fake"], layer_errors={})

    module = types.ModuleType("ptqlab.ptq.algorithms")
    module.ALGORITHMS = ("rtn", "cle", "gptq")
    module.run_algorithm = run_algorithm
    monkeypatch.setattr(ptq_vs_qat, "ptq_algorithms", module)
    return calls


@pytest.mark.slow
def test_rows_use_the_registry_and_rtn_is_simulate(monkeypatch):
    from ptqlab.models import digits_mlp, digits_split
    from ptqlab.ptq.simulate import evaluate_accuracy, simulate

    calls = _fake_registry(monkeypatch)
    rows = ptq_vs_qat.comparison_rows("mlp", bits=(2,), with_qat=False)
    assert [r.method for r in rows] == ["PTQ RTN", "PTQ + cle", "PTQ + gptq"]
    assert [c[0] for c in calls] == ["cle", "gptq"] and all(c[3] == 256 for c in calls)
    data = digits_split()
    direct = simulate(
        digits_mlp(progress=False), qat.weight_spec(2), qat.A8, calibration=data.x_train[:256], fold_bn=True
    )
    expected = evaluate_accuracy(direct, data.x_test, data.y_test)
    assert rows[0].accuracy == expected
    assert rows[2].accuracy == expected  # the fake algorithm is RTN on the folded model: same number
    assert rows[2].seconds == 0.25 and rows[2].backward_passes == 0 and rows[2].note == "fake"
    assert rows[1].accuracy is None and "no Linear-ReLU-Linear" in rows[1].note


def _study(gains_w2: list[float]) -> DynamicsStudy:
    base = [0.50, 0.60, 0.70]
    acc = {}
    for variant, shift in (("standard", [0, 0, 0]), ("lawa", gains_w2), ("cooldown", [0, 0, 0])):
        acc[variant] = {
            g: {
                b: [x + (s if b == 2 else 0.0) for x, s in zip(base, shift, strict=True)]
                for b in (32, 4, 3, 2)
            }
            for g in ("per-channel", "per-tensor")
        }
    return DynamicsStudy(
        "cnn", (0, 1, 2), acc, {"one-cycle": [1.0, 2.0, 3.0], "cooldown": [2.0, 2.0, 2.0]}, True
    )


def test_lawa_verdict_needs_the_range_and_every_seed():
    held = training_dynamics.lawa_verdict(_study([0.03, 0.03, 0.03]))
    assert (
        "holds at W2 only" in held
        and "W2: +3.00 ± 0.00 points (within the tutorial's +2–5; every seed" in held
    )
    mixed = training_dynamics.lawa_verdict(_study([0.10, -0.01, 0.00]))
    assert "does not hold at any bit width" in mixed and "not every seed gained" in mixed
    table = training_dynamics.dynamics_markdown(_study([0.03, 0.03, 0.03]))
    assert "| LAWA (last 10 epochs) | 60.00 ± 10.00 (50.0–70.0) |" in table
    assert "| *gain of lawa (points)* | +0.00 ± 0.00 | +0.00 ± 0.00 | +0.00 ± 0.00 | +3.00 ± 0.00 |" in table
    seconds = training_dynamics.seconds_markdown(_study([0, 0, 0]))
    assert "2.0 s, cooldown run 2.0 s (read from the disk cache" in seconds


def test_cli_lists_the_benchmark():
    from ptqlab.cli.main import BENCHMARKS

    assert BENCHMARKS["algorithms"][0] == "ptqlab.cli.bench_algorithms:main"


def _short_everything(monkeypatch, tmp_path):
    """1-epoch recipes, two seeds, a temporary cache, and two fast algorithms (the real run_algorithm)."""
    from ptqlab.ptq import algorithms

    fast = types.SimpleNamespace(
        ALGORITHMS=("rtn", "bias_correction"), run_algorithm=algorithms.run_algorithm
    )
    monkeypatch.setattr(ptq_vs_qat, "ptq_algorithms", fast)
    monkeypatch.setattr(cache_module, "cache_dir", lambda: tmp_path)
    short = {"epochs": 1, "lr": 3e-4, "weight_decay": 1e-4, "batch_size": 64}
    monkeypatch.setattr(qat, "QAT_RECIPES", {"mlp": short, "cnn": short})
    monkeypatch.setattr(training_dynamics, "DYNAMICS_SEEDS", (0, 1))
    monkeypatch.setattr(
        training_dynamics, "DYNAMICS_RECIPES", {"mlp": {**short, "lr": 3e-3}, "cnn": {**short, "lr": 3e-3}}
    )


@pytest.mark.slow
def test_cli_prints_both_tables_and_marks_the_cache(monkeypatch, tmp_path, capsys):
    from ptqlab.cli.main import main

    _short_everything(monkeypatch, tmp_path)
    assert main(["bench", "algorithms", "--models", "mlp"]) == 0
    first = capsys.readouterr().out
    assert "| mlp | W2A8 | QAT |" in first and "(cache)" not in first
    assert "Training dynamics, digits mlp" in first and "LAWA on the digits mlp" in first
    assert main(["bench", "algorithms", "--models", "mlp"]) == 0
    second = capsys.readouterr().out
    assert "(cache)" in second and "read from the disk cache" in second


@pytest.mark.slow
@pytest.mark.parametrize(
    "model,bits,budget,data,drop,granularity",
    [
        ("cnn", 2, 0.1, NONE, 0.0, "per-tensor"),
        ("mlp", 4, 1000, LABELLED, 10.0, "per-channel"),
    ],
)
def test_lab08_extremes_without_pressing(model, bits, budget, data, drop, granularity, monkeypatch, tmp_path):
    monkeypatch.setattr(cache_module, "cache_dir", lambda: tmp_path)  # nothing cached: nothing trains
    values = dict(
        model_picker=model,
        qat_button=False,
        bits_picker=bits,
        time_budget=budget,
        data_picker=data,
        max_drop=drop,
        granularity_picker=granularity,
        dynamics_button=False,
    )
    text = run_with_values("08_ptq_vs_qat", values).text
    assert "QAT rows are not measured yet" in text and "Not measured yet for the digits" in text
    assert list(tmp_path.iterdir()) == []
    if data == NONE:
        assert "calibration images" in text
    else:
        assert "Use <strong>PTQ RTN</strong>" in text or "Use **PTQ RTN**" in text or "PTQ RTN" in text


@pytest.mark.slow
def test_lab08_with_both_buttons_pressed(monkeypatch, tmp_path):
    _short_everything(monkeypatch, tmp_path)
    values = dict(
        qat_button=True,
        dynamics_button=True,
        granularity_picker="per-tensor",
        model_picker="mlp",
        bits_picker=2,
        max_drop=10.0,
    )
    text = run_with_values("08_ptq_vs_qat", values).text
    assert "Every row measured just now" in text
    assert "QAT" in text and "LAWA on the digits mlp" in text
    assert (
        len(list(tmp_path.glob("qat_mlp_*.pt"))) == 3 and len(list(tmp_path.glob("dynamics_mlp_*.pt"))) == 2
    )
    torch.manual_seed(0)
