"""The labs' coding exercises: the reference solution passes, each typical mistake gets its own message on
every one of 20 seeds, and an endless loop is stopped by the time limit. The mistakes are judged in this
process (``compare_X``, the judge ``check_X`` runs on the contained runner's results); a few checks go
through the runner end to end (a child process: a few seconds each)."""

import math

import pytest

from ptqlab import labkit
from ptqlab.labkit import questions, runner
from ptqlab.lessons.affine_map import exercise as ea
from ptqlab.lessons.schemes import exercise as es
from ptqlab.lessons.sensitivity import exercise as esens

MISTAKE_SEEDS = range(20)


def named_on_every_seed(compare, source: str, message: str, *args) -> None:
    for seed in MISTAKE_SEEDS:
        verdict = compare(source, seed, *args)
        assert verdict.ok is False and message in verdict.message, (seed, verdict.message)


AFFINE_ROUND = "torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)"
AFFINE_MISTAKES = [
    ("qmin - round(lo / scale)", "qmin - lo / scale", "a float"),
    (
        "2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)\n    return",
        "2 ** (bits - 1)) if signed else (0, 2**bits)\n    return",
        "qmax is off by one: your codes stop at",
    ),
    (AFFINE_ROUND, "(torch.round(x / scale) + zero_point)", "clamp after adding the zero point"),
    (
        AFFINE_ROUND,
        "torch.clamp(torch.floor(x / scale) + zero_point, qmin, qmax)",
        "first mismatching element, index",
    ),
    ("(hi - lo) / (qmax - qmin)", "(hi - lo) / (qmax - qmin + 1)", "you divided by 2^bits"),
    (
        "(x_q.float() - zero_point) * scale",
        "x_q.float() * scale - zero_point",
        "**dequantize:** first mismatching element",
    ),
]


def test_affine_reference_solution_passes_and_the_runner_agrees_with_the_in_process_judge():
    verdict = ea.check_affine(ea.AFFINE_SOLUTION, seed=3)
    assert verdict.ok is True and "All correct" in verdict.message
    assert verdict == ea.compare_affine(ea.AFFINE_SOLUTION, seed=3)
    wrong = ea.AFFINE_SOLUTION.replace(AFFINE_ROUND, "(torch.round(x / scale) + zero_point)")
    verdict = ea.check_affine(wrong, seed=3)
    assert verdict.ok is False and verdict == ea.compare_affine(wrong, seed=3)


@pytest.mark.parametrize("old,new,message", AFFINE_MISTAKES, ids=range(len(AFFINE_MISTAKES)))
def test_affine_mistakes_are_named(old, new, message):
    assert old in ea.AFFINE_SOLUTION
    named_on_every_seed(ea.compare_affine, ea.AFFINE_SOLUTION.replace(old, new), message)


def test_affine_starter_is_told_to_fill_in_the_blanks():
    named_on_every_seed(ea.compare_affine, ea.AFFINE_STARTER, "fill in every `...`")


def test_no_affine_case_holds_a_tie_so_torch_round_of_x_over_scale_is_never_told_a_tie_rule():
    """Lab 01 teaches round(x / scale) without a tie rule; ptqlab computes round(x · (1/scale)). Every x
    is >= 0.05 of a step from a tie in float64 and float32 alike, and min′/scale >= 0.01 from one."""
    for seed in range(50):
        for case in ea.seeded_cases(seed)[0]:
            scale = float(case.qparams.scale)
            for t in (
                case.x.double() / scale,
                case.x / case.qparams.scale,
                case.x * (1 / case.qparams.scale),
            ):
                assert ((t - t.floor() - 0.5).abs() > 0.049).all()
            zero = min(case.lo, 0.0) / scale
            assert zero == 0.0 or abs(zero - math.floor(zero) - 0.5) > 0.01
    # the old tie hint is gone: a wrong answer is told the off-by-one rule, never "torch.round rounds half to even"
    floor = ea.AFFINE_SOLUTION.replace("torch.round(x / scale)", "torch.floor(x / scale)")
    for seed in range(20):
        assert "half to even" not in ea.compare_affine(floor, seed).message


def test_an_endless_loop_is_stopped_by_the_time_limit():
    verdict = ea.check_affine(
        "def choose_qparams(*a):\n    while True:\n        pass\n", seed=0, time_limit_s=0.5
    )
    assert verdict.ok is False and "time limit" in verdict.message


def test_errors_name_the_line_of_the_students_code():
    verdict = ea.check_affine("x = 1\ndef choose_qparams(*a):\n    return 1 / 0\n", seed=0)
    assert "line 3: ZeroDivisionError" in verdict.message
    verdict = ea.check_affine("def choose_qparams(*a)\n    pass\n", seed=0)
    assert "line 1: SyntaxError" in verdict.message


def test_student_code_cannot_touch_the_parent_process():
    verdict = ea.check_affine("import torch\ntorch.round = None\n" + ea.AFFINE_SOLUTION, seed=0)
    assert "TypeError" in verdict.message  # its own torch broke, not ours
    assert ea.check_affine(ea.AFFINE_SOLUTION, seed=0).ok is True


SCALE_MISTAKES = [
    ("amax(dim=1) / ((qmax - qmin) / 2)", "amax(dim=1) / qmax", "narrow range"),
    ("amax(dim=1) / ((qmax - qmin) / 2)", "amax(dim=1) / (qmax - qmin)", "asymmetric step count"),
    (
        "w.abs().amax(dim=1) / ((qmax - qmin) / 2)",
        "w.abs().amax(dim=0) / ((qmax - qmin) / 2)",
        "reduce over dim 1",
    ),
    (
        "w.abs().amax(dim=1) / ((qmax - qmin) / 2)",
        "w.abs().max().expand(w.shape[0]) / ((qmax - qmin) / 2)",
        "per-tensor",
    ),
    ("groups.abs().amax(dim=2)", "groups.amax(dim=2)", "first mismatching element"),
]


def test_scales_reference_solution_passes():
    assert es.check_scales(es.SCALES_SOLUTION, seed=5).ok is True


@pytest.mark.parametrize("old,new,message", SCALE_MISTAKES, ids=range(len(SCALE_MISTAKES)))
def test_scale_mistakes_are_named(old, new, message):
    assert old in es.SCALES_SOLUTION
    named_on_every_seed(es.compare_scales, es.SCALES_SOLUTION.replace(old, new), message)


def test_every_drawn_k_is_a_multiple_of_every_group_size():
    """Lab 03's groups tile a row (ptqlab's PerGroup refuses a ragged one), so the checker never asks for one."""
    for seed in range(200):
        for w, _, g, _, per_group in es.seeded_cases(seed):
            assert w.shape[1] % g == 0 and per_group.shape == (w.shape[0], w.shape[1] // g)


MEASURED = (["conv1", "conv2", "fc"], {"conv1": 0.5, "conv2": 0.9, "fc": 0.9}, 0.95)
SENSITIVITY_MISTAKES = [
    ("baseline - accuracy_with_only(name)", "accuracy_with_only(name) - baseline", "wrong sign"),
    ("baseline - accuracy_with_only(name)", "accuracy_with_only(name)", "is the accuracy itself"),
    ("reverse=True", "reverse=False", "ranking is reversed"),
    ("for name in layers:", "for name in layers[:2]:", "loop over every name"),
]


def test_sensitivity_reference_solution_passes_on_random_and_measured_tables():
    verdict = esens.check_sensitivity(esens.SENSITIVITY_SOLUTION, MEASURED, seed=7)
    assert verdict.ok is True and "conv1 45.0" in verdict.message  # ties (conv2, fc) may come in any order


@pytest.mark.parametrize("old,new,message", SENSITIVITY_MISTAKES, ids=range(len(SENSITIVITY_MISTAKES)))
def test_sensitivity_mistakes_are_named(old, new, message):
    assert old in esens.SENSITIVITY_SOLUTION
    source = esens.SENSITIVITY_SOLUTION.replace(old, new)
    named_on_every_seed(esens.compare_sensitivity, source, message, MEASURED)


def test_self_check_helpers():
    assert questions.check_number("", 1.0)[0] is None
    assert questions.check_number("abc", 1.0)[0] is None
    assert questions.check_number("0.2334", 0.233333, rel_tol=0.01) == (True, "Correct: 0.233333.")
    ok, text = questions.check_number("−0.5", 0.25)
    assert ok is False and "too low" in text
    why = {"a": "because a", "b": "because b"}
    assert questions.check_choice(None, "a", why)[0] is None
    assert questions.check_choice("b", "a", why) == (False, "Not this one. because b")
    with pytest.raises(ValueError, match="choice 'c'"):
        questions.check_choice("c", "a", why)
    assert (
        labkit.Checks([], ea.EXERCISES).verdict(0, "anything", clicks=0) is None
    )  # nothing runs until the button is pressed


def test_bad_arguments():
    with pytest.raises(TypeError, match="source"):
        runner.run_student_code(None, [])
    with pytest.raises(ValueError, match="time_limit_s"):
        runner.run_student_code("", [], time_limit_s=0)


def test_a_busy_server_is_blamed_not_the_student():
    """At the wall-clock backstop the CPU limit has not stopped the code: mostly ready-but-waiting is a busy
    server ("busy", press again), mostly asleep is the student's sleep or input ("timeout")."""
    from ptqlab.labkit.exercise import not_ok

    status, why = runner.overrun_verdict(cpu=0.4, waited=10.0, wall=12.0, limit=3.0)
    assert status == "busy" and "not your code's fault" in why and "press **Check my code** again" in why
    assert not_ok(status, why).message.startswith("**The server was busy.**")
    status, why = runner.overrun_verdict(
        cpu=2.8, waited=8.5, wall=12.0, limit=3.0
    )  # near its limit, not at it
    assert status == "busy" and "used 2.8 s of its 3 s" in why and "endless loop" in why
    status, why = runner.overrun_verdict(cpu=0.01, waited=0.01, wall=12.0, limit=3.0)
    assert status == "timeout" and "waited (sleep" in why
    assert not_ok(status, why).message.startswith("**Time limit.**")


def test_every_prompt_prints_the_runners_limit():
    """No prompt types a number of seconds: each says {time_limit}, filled from runner.TIME_LIMIT_S."""
    import re

    from ptqlab.labkit.exercise import LIMIT_PLACEHOLDER
    from ptqlab.lessons.beyond_rtn import exercise as ebias
    from ptqlab.lessons.calibration import exercise as ec
    from ptqlab.lessons.full_model import exercise as efm
    from ptqlab.lessons.ptq_vs_qat import exercise as eqat
    from ptqlab.lessons.real_integers import exercise as eri

    modules = (ea, ec, es, efm, esens, ebias, eqat, eri)
    for exercise in (e for m in modules for e in m.EXERCISES):
        raw = exercise.prompt([]) if callable(exercise.prompt) else exercise.prompt
        assert LIMIT_PLACEHOLDER in raw and not re.search(r"\d\s?s\b", raw.replace(LIMIT_PLACEHOLDER, "")), (
            raw
        )
        assert f"({runner.TIME_LIMIT_S:g} s limit)" in exercise.prompt_markdown(
            **({"rows": []} if callable(exercise.prompt) else {})
        )
