"""Lab 04's dynamic int8 Linear and lab 08's straight-through estimator exercises: the reference solution
passes, each typical mistake (a string replace on the solution) gets its own message, the starter is told to
fill in the blanks, and ptqlab's references agree with the independent oracles (torchao + torch._int_mm;
torch's fake-quant autograd)."""

import pytest
import torch

from ptqlab.lessons import exercises_full_model as efm

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
    verdict = efm.check_dynamic_linear(source, seed=3)
    assert verdict.ok is False and message in verdict.message, verdict.message


def test_dynamic_starter_is_told_to_fill_in_the_blanks():
    verdict = efm.check_dynamic_linear(efm.DYNAMIC_STARTER, seed=3)
    assert verdict.ok is False and "fill in every `...`" in verdict.message


def test_clamping_to_128_with_the_right_scale_is_harmless():
    """With s = max|x| / 127 no code exceeds 127, so a ±128 clamp changes nothing: it is not flagged."""
    assert efm.check_dynamic_linear(SOLUTION.replace("-127, 127", "-128, 128"), seed=3).ok is True


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


def test_the_prompt_names_the_measured_dynamic_speedup():
    from ptqlab.bench.run import BenchRow

    row = BenchRow("mlp", 64, "ao-dynamic-int8", "ao-dynamic-int8", "", "", 8, False, True, speedup=0.8123)
    assert "`ao-dynamic-int8` ran at **0.81×** fp32" in efm.exercise_prompt([row])
    assert "press the button to time one" in efm.exercise_prompt([])
