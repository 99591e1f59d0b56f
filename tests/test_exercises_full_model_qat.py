"""Lab 04's dynamic int8 Linear and lab 08's straight-through estimator exercises: the reference solution
passes (through the contained runner), each typical mistake (a string replace on the solution) gets its own
message on every one of 20 seeds (judged in this process), the starter is told to fill in the blanks, and
ptqlab's references agree with the independent oracles (torchao + torch._int_mm; torch's fake-quant
autograd)."""

import pytest
import torch

from ptqlab.lessons.full_model import exercise as efm

MISTAKE_SEEDS = range(20)


def named_on_every_seed(judge, source: str, message: str) -> None:
    for seed in MISTAKE_SEEDS:
        verdict = judge(source, seed)
        assert verdict.ok is False and message in verdict.message, (seed, verdict.message)


SOLUTION = efm.DYNAMIC_SOLUTION
ROUND = "torch.round(x / s_x[:, None])"
ZERO_GUARD = (
    "    s_x = torch.where(s_x > 0, s_x, torch.ones_like(s_x))  # all-zero row: any s > 0 gives codes 0\n"
)
DYNAMIC_MISTAKES = [
    ([(ROUND, "torch.trunc(x / s_x[:, None])")], "truncated"),
    ([(ROUND, "(x / s_x[:, None])")], "truncated"),  # the int8 cast truncates
    ([(ROUND, "torch.floor(x / s_x[:, None])")], "floored"),
    ([("amax(dim=1)", "amax()"), ("s_x[:, None]", "s_x")], "per-tensor"),
    ([("x.abs().amax(dim=1) / 127", "x.abs().amax().repeat(x.shape[0]) / 127")], "that is per-tensor"),
    ([("w_scale[None, :]", "w_scale[:, None]")], "`w_scale` is applied along the batch axis"),
    ([("s_x[:, None] * w_scale", "s_x[None, :] * w_scale")], "`s_x` is applied along the output axis"),
    ([(" * w_scale[None, :]", "")], "you forgot `w_scale`"),
    ([("y = y + bias", "y = y")], "you forgot the bias"),
    ([("/ 127\n", "/ 128\n"), ("-127, 127", "-128, 128")], "you divided by 128"),  # clamp to ±128
    ([("/ 127\n", "/ 127.5\n")], "you divided by 127.5"),
    ([(ZERO_GUARD, "")], "is all zeros and your scale there is 0"),
    ([("x_q.long() @ w_q.long().T", "x_q.float() @ w_q.float().T")], "33,032,065, yours is 33,032,064"),
    ([("x_q.long() @ w_q.long().T", "x_q @ w_q.T")], "you accumulated in torch.int8"),
    ([("x_q.long() @ w_q.long().T", "x_q.long() @ w_q.long()")], "line 9: RuntimeError: mat1 and mat2"),
]


def test_dynamic_reference_solution_passes():
    verdict = efm.check_dynamic_linear(SOLUTION, seed=3)
    assert verdict.ok is True and "All correct" in verdict.message


@pytest.mark.parametrize("edits,message", DYNAMIC_MISTAKES, ids=range(len(DYNAMIC_MISTAKES)))
def test_dynamic_mistakes_are_named(edits, message):
    source = SOLUTION
    for old, new in edits:
        assert old in source
        source = source.replace(old, new)
    named_on_every_seed(efm.compare_dynamic_linear, source, message)


def test_dynamic_starter_is_told_to_fill_in_the_blanks():
    named_on_every_seed(efm.compare_dynamic_linear, efm.DYNAMIC_STARTER, "fill in every `...`")


def test_clamping_to_128_with_the_right_scale_is_harmless():
    """With s = max|x| / 127 no code exceeds 127, so a ±128 clamp changes nothing: it is not flagged."""
    source = SOLUTION.replace("-127, 127", "-128, 128")
    assert all(efm.compare_dynamic_linear(source, seed).ok is True for seed in MISTAKE_SEEDS)


@pytest.mark.parametrize("seed", range(4))
def test_reference_equals_the_oracles_and_the_built_in_codes(seed):
    generator = torch.Generator().manual_seed(seed)
    square, other = efm.cases(generator)
    for case in square + other:
        o = efm.oracle(**case)
        codes, scales = efm.quantize_rows_reference(case["x"])
        assert torch.equal(codes, o["codes"])  # torchao's quantize_affine, quant range [-127, 127]
        nonzero = case["x"].abs().amax(dim=1) > 0
        assert torch.equal(scales[nonzero], o["scales"][nonzero])
        # the codes the case was built from: x = (code + offset) · s with |offset| <= 0.45
        assert torch.equal(o["acc"].long(), codes.long() @ case["w_q"].long().T)
        y = efm.dynamic_int8_linear_reference(**case)
        assert efm.close(y, o["y"])


def test_the_big_case_overflows_float32_but_not_int32():
    case = efm.big_case(torch.Generator().manual_seed(0))
    acc = efm.oracle(**case)["acc"]
    assert int(acc[0, 0]) == 127 * (2048 * 127 - 1) == 33_032_065
    assert float(torch.tensor(33_032_065, dtype=torch.float32)) != 33_032_065


def _row(recipe, speedup):
    from ptqlab.bench.run import BenchRow

    return BenchRow("mlp", 64, recipe, recipe, "", "", 8, False, True, speedup=speedup)


def test_the_prompt_names_the_measured_dynamic_speedups_and_says_what_they_mean():
    slow = efm.exercise_prompt([_row("ao-dynamic-int8", 1.7), _row("torchao-int8-dynamic", 0.1123)])
    assert "`ao-dynamic-int8` ran at **1.70×** fp32 and `torchao-int8-dynamic` ran at **0.11×** fp32" in slow
    assert "For `torchao-int8-dynamic` that work" in slow and "cost more than" in slow
    fast = efm.exercise_prompt([_row("ao-dynamic-int8", 1.7), _row("fp32", 1.0)])
    assert "saved more than that work cost" in fast and "fp32 ran" not in fast
    assert "press the button to time one" in efm.exercise_prompt([_row("bf16", 0.5)])


# ---- lab 08: the straight-through estimator ------------------------------------------------------------

from ptqlab.lessons.ptq_vs_qat import exercise as eqat  # noqa: E402
from ptqlab.lessons.ptq_vs_qat import questions as ptq_vs_qat_questions  # noqa: E402
from ptqlab.lessons.ptq_vs_qat import text as ptq_vs_qat_text  # noqa: E402

STE = eqat.STE_SOLUTION
MASK = "(q >= qmin) & (q <= qmax)"
GRAD = "torch.where(inside, grad_out, torch.zeros_like(grad_out))"
CODE = "q = torch.round(x / scale) + zero_point  #"
STE_MISTAKES = [
    (GRAD, "torch.zeros_like(grad_out)", "true derivative of round"),
    (GRAD, "grad_out", "forgot the clip mask"),
    (GRAD, "inside.float()", "you returned the mask itself"),
    (MASK, "(q > qmin) & (q < qmax)", "a code equal to qmin or qmax is on the grid"),
    (MASK, "(q >= qmin - 1) & (q <= qmax + 1)", "a code of qmax + 1 or qmin − 1 was clamped"),
    (
        MASK,
        "(x >= (qmin - zero_point) * scale) & (x <= (qmax - zero_point) * scale)",
        "you compared x with the float range",
    ),
    (CODE, "q = torch.floor(x / scale) + zero_point  #", "first mismatching element, index"),
    (
        "torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)",
        "(torch.round(x / scale) + zero_point)",
        "no clamp",
    ),
    ("(q - zero_point) * scale", "q * scale", "subtract the zero point"),
    (
        "torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)",
        "torch.clamp(torch.round(x / scale + zero_point), qmin, qmax)",
        "torch rounds x/s first (half to even)",
    ),
    (CODE, "q = torch.floor(x / scale + 0.5) + zero_point  #", "rounding half up, is the same mask"),
    (
        "torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)",
        "torch.clamp(torch.floor(x / scale + 0.5) + zero_point, qmin, qmax)",
        "you rounded half up",
    ),
]


def test_ste_reference_solution_passes():
    verdict = eqat.check_ste(STE, seed=3)
    assert verdict.ok is True and "All correct" in verdict.message


@pytest.mark.parametrize("old,new,message", STE_MISTAKES, ids=range(len(STE_MISTAKES)))
def test_ste_mistakes_are_named(old, new, message):
    assert old in STE
    named_on_every_seed(eqat.compare_ste, STE.replace(old, new), message)


def test_rounding_after_the_zero_point_is_named_at_an_odd_zero_point():
    source = STE.replace(CODE, "q = torch.round(x / scale + zero_point)  #")
    named_on_every_seed(eqat.compare_ste, source, "you rounded x/s + z")
    named_on_every_seed(eqat.compare_ste, source, "torch rounds x/s first")


def test_ste_starter_is_told_to_fill_in_the_blanks():
    named_on_every_seed(eqat.compare_ste, eqat.STE_STARTER, "fill in every `...`")


def test_torchs_mask_is_decided_on_the_rounded_code_then_the_zero_point():
    """The oracle's semantics, pinned: ties round half to even on x/s, then z is added; q in [qmin, qmax]."""
    ticks = torch.tensor([-129.5, -128.5, -127.5, 126.5, 127.5, 128.5, 127.2, -128.4])
    cases = {0: [0, 1, 1, 1, 0, 0, 1, 1], 1: [0, 0, 1, 1, 1, 0, 1, 1]}
    for z, want in cases.items():
        x = (ticks - z) * 0.25  # x/s + z = ticks, exactly (power-of-two scale)
        grad = eqat.torch_fake_quant(x, 0.25, z, -128, 127, grad_out=torch.ones_like(x))[1]
        assert grad.tolist() == want, z


@pytest.mark.parametrize("seed", range(4))
def test_the_solution_equals_torch_on_every_case(seed):
    from ptqlab.labkit.runner import execute

    for case in eqat.cases(torch.Generator().manual_seed(seed)):
        status, (forward, backward) = execute(
            STE, [("fake_quant_forward", case[:5]), ("fake_quant_backward", case)]
        )
        want_forward, want_backward = eqat.torch_fake_quant(*case[:5], grad_out=case[5])
        assert status == "ok" and torch.equal(forward, want_forward) and torch.equal(backward, want_backward)
        assert (backward == 0).any() and (backward != 0).any()


def test_lab08_ste_questions_are_what_torch_computes():
    count, boundary = ptq_vs_qat_questions.ste_questions()
    # by hand: 0.74/0.1 = 7.4 -> 7 in, 7.6 -> 8 out, -8.4 -> -8 in, -8.6 -> -9 out
    assert count.expected == 2 and "**2**" in count.answer
    assert boundary.expected == ptq_vs_qat_questions.YES  # 63.6 / 0.5 = 127.2 -> 127, on the grid
    assert (
        float(ptq_vs_qat_questions.ste_gradient([63.8], scale=0.5, zero_point=0, qmin=-128, qmax=127)[0]) == 0
    )  # 127.6 -> 128


def _comparison(*rows):
    from ptqlab.bench.ptq_vs_qat import Row
    from ptqlab.lessons.ptq_vs_qat.numbers import LabComparison

    built = [
        Row("cnn", method, 2, acc, seconds, images, labelled, 0)
        for method, acc, seconds, images, labelled in rows
    ]
    return LabComparison(built, 0.99, True, "")


def test_lab08_decision_question_follows_the_measured_rows():
    rtn = ("PTQ RTN", 0.70, 0.05, 256, False)
    qat = ("QAT", 0.985, 12.0, 1437, True)
    algorithm = ("PTQ + gptq", 0.982, 0.8, 256, False)
    assert ptq_vs_qat_questions.decision_key(_comparison(rtn, qat))[0] == "QAT"
    assert ptq_vs_qat_questions.decision_key(_comparison(rtn))[0] == "nothing meets the floor"
    assert ptq_vs_qat_questions.decision_key(_comparison(rtn, qat, algorithm))[0] == "a PTQ algorithm"
    questions = ptq_vs_qat_questions.lab08_questions(_comparison(rtn, qat), "cnn")
    assert 3 <= len(questions) <= 5 and questions[-1].expected == "QAT"
    assert "98.50 %" in questions[-1].answer


def test_lab08_backward_passes_are_what_qat_counts():
    from ptqlab.ptq.qat import QAT_RECIPES, qat_is_cached

    assert ptq_vs_qat_questions.qat_backward_passes("cnn") == QAT_RECIPES["cnn"]["epochs"] * 1437
    if qat_is_cached("cnn", 4):  # the measured row, when this machine has it
        from ptqlab.bench.ptq_vs_qat import qat_row

        assert qat_row("cnn", 4).backward_passes == ptq_vs_qat_questions.qat_backward_passes("cnn")


def test_lab08_recap_numbers_are_the_rows():
    text = ptq_vs_qat_text.recap_markdown(
        _comparison(("PTQ RTN", 0.70, 0.05, 256, False), ("QAT", 0.985, 12.0, 1437, True))
    )
    assert "RTN scored 70.00 % against fp32's 99.00 % (29.00 points lost)" in text
    assert "it scored 98.50 %" in text and text.count("\n* ") == 5
    assert "press the button" in ptq_vs_qat_text.recap_markdown(
        _comparison(("PTQ RTN", 0.70, 0.05, 256, False))
    )


# ---- the labs check what is typed into their editor ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "lab,solution,starter",
    [
        ("04_full_model_ptq", efm.DYNAMIC_SOLUTION, efm.DYNAMIC_STARTER),
        ("08_ptq_vs_qat", eqat.STE_SOLUTION, eqat.STE_STARTER),
    ],
)
def test_the_lab_checks_the_code_in_its_editor(lab, solution, starter):
    from lab_support import checked_code, run_with_values

    text = run_with_values(lab, {"check_controls": checked_code(solution)}).text
    assert "All correct" in text
    text = run_with_values(lab, {"check_controls": checked_code(starter)}).text
    assert "fill in every" in text and "All correct" not in text


# ---- properties: the references equal the oracles on any input ---------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(
    x=st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=24),
    log2_scale=st.integers(-12, 4),
    bits=st.integers(2, 8),
    signed=st.booleans(),
    data=st.data(),
)
def test_ste_solution_equals_torch_autograd_on_any_floats(x, log2_scale, bits, signed, data):
    """Power-of-two scales make x/s exact, so ties are real ties and both sides must agree to the bit."""
    from ptqlab.labkit.runner import execute

    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    zero_point = data.draw(st.integers(qmin, qmax))
    case = (torch.tensor(x), 2.0**log2_scale, zero_point, qmin, qmax, torch.linspace(0.5, 2.0, len(x)))
    status, (forward, backward) = execute(
        STE, [("fake_quant_forward", case[:5]), ("fake_quant_backward", case)]
    )
    want_forward, want_backward = eqat.torch_fake_quant(*case[:5], grad_out=case[5])
    assert status == "ok" and torch.equal(forward, want_forward) and torch.equal(backward, want_backward)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_dynamic_reference_equals_torchao_and_int_mm_on_any_drawn_case(seed):
    square, other = efm.cases(torch.Generator().manual_seed(seed))
    for case in square + other:
        o = efm.oracle(**case)
        codes, _ = efm.quantize_rows_reference(case["x"])
        assert torch.equal(codes, o["codes"])
        assert efm.close(efm.dynamic_int8_linear_reference(**case), o["y"])
