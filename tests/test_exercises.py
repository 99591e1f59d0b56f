"""The labs' coding exercises: the reference solution passes, each typical mistake gets its own message,
and an endless loop is stopped by the time limit. Student code runs in a child process (a few seconds)."""

import pytest

from ptqlab import labkit
from ptqlab.labkit import questions, runner
from ptqlab.lessons.affine_map import exercise as ea
from ptqlab.lessons.schemes import exercise as es
from ptqlab.lessons.sensitivity import exercise as esens

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


def test_affine_reference_solution_passes():
    verdict = ea.check_affine(ea.AFFINE_SOLUTION, seed=3)
    assert verdict.ok is True and "All correct" in verdict.message


@pytest.mark.parametrize("old,new,message", AFFINE_MISTAKES, ids=range(len(AFFINE_MISTAKES)))
def test_affine_mistakes_are_named(old, new, message):
    assert old in ea.AFFINE_SOLUTION
    verdict = ea.check_affine(ea.AFFINE_SOLUTION.replace(old, new), seed=3)
    assert verdict.ok is False and message in verdict.message, verdict.message


def test_affine_starter_is_told_to_fill_in_the_blanks():
    verdict = ea.check_affine(ea.AFFINE_STARTER, seed=3)
    assert verdict.ok is False and "fill in every `...`" in verdict.message


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
    verdict = es.check_scales(es.SCALES_SOLUTION.replace(old, new), seed=5)
    assert verdict.ok is False and message in verdict.message, verdict.message


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
    verdict = esens.check_sensitivity(esens.SENSITIVITY_SOLUTION.replace(old, new), MEASURED, seed=7)
    assert verdict.ok is False and message in verdict.message, verdict.message


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
