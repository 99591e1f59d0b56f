"""Every exercise checker on 1,000 seeds: its reference solution and (at least) two independently written
correct answers pass on every seed, and no hostile answer (None, ..., NaN, ±inf, 3e38, strings, complex,
empty or wrongly shaped tensors, an exception) makes a checker raise or pass.

The checkers' comparison runs in this process (``compare_X``: the same judge ``check_X`` runs on the
contained runner's results), with each seed's cases drawn once and shared by the answers
(``labkit.exercise.seeded``). The alternative answers are written the way students write them: another
rounding rule away from ties, float32 instead of float64, loops instead of reductions, a ragged-group-aware
slice, torch's own fake-quant autograd, numpy's percentile...
"""

from __future__ import annotations

import math

import pytest
import torch

from ptqlab.labkit.exercise import CHECKER_FAILED, in_process, judged
from ptqlab.lessons.affine_map import exercise as affine
from ptqlab.lessons.beyond_rtn import exercise as bias
from ptqlab.lessons.beyond_rtn import smoothquant_exercise as smooth
from ptqlab.lessons.calibration import exercise as percentile
from ptqlab.lessons.full_model import exercise as dynamic
from ptqlab.lessons.ptq_vs_qat import exercise as ste
from ptqlab.lessons.real_integers import exercise as requant
from ptqlab.lessons.schemes import exercise as scales
from ptqlab.lessons.sensitivity import exercise as sensitivity

SEEDS = range(1000)

AFFINE_HALF_UP = """\
def choose_qparams(lo, hi, bits, signed):
    qmin = -(2 ** (bits - 1)) if signed else 0
    qmax = qmin + 2**bits - 1
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (qmax - qmin)
    zero_point = torch.clamp(qmin - torch.round(torch.tensor(lo) / scale), qmin, qmax)
    return scale, int(zero_point)


def quantize(x, scale, zero_point, bits, signed):
    qmin = -(2 ** (bits - 1)) if signed else 0
    qmax = qmin + 2**bits - 1
    q = torch.floor(x / scale + 0.5) + zero_point  # round half up: the same code away from ties
    return q.clamp(qmin, qmax).to(torch.int64)


def dequantize(x_q, scale, zero_point):
    return x_q * scale - zero_point * scale
"""

AFFINE_FLOAT32_RECIPROCAL = """\
def grid(bits, signed):
    levels = 2**bits
    return (-levels // 2, levels // 2 - 1) if signed else (0, levels - 1)


def choose_qparams(lo, hi, bits, signed):
    qmin, qmax = grid(bits, signed)
    lo = torch.tensor(min(lo, 0.0), dtype=torch.float32)
    hi = torch.tensor(max(hi, 0.0), dtype=torch.float32)
    scale = (hi - lo) / (qmax - qmin)
    zero_point = (qmin - torch.round(lo / scale)).clamp(qmin, qmax).int()
    return scale, zero_point


def quantize(x, scale, zero_point, bits, signed):
    qmin, qmax = grid(bits, signed)
    q = torch.round(x * (1.0 / scale)).int() + zero_point  # ptqlab's x * (1/scale)
    return torch.where(q < qmin, qmin, torch.where(q > qmax, qmax, q))


def dequantize(x_q, scale, zero_point):
    return (x_q.double() - zero_point) * scale
"""

PERCENTILE_FLOAT32 = """\
def percentile_threshold(x, p):
    return torch.quantile(x.abs(), p / 100).item()
"""

PERCENTILE_SORT_AND_INTERPOLATE = """\
def percentile_threshold(x, p):
    ranked = torch.sort(x.abs()).values
    position = (len(ranked) - 1) * p / 100
    i = int(position)
    if i + 1 >= len(ranked):
        return ranked[-1]
    return ranked[i] + (position - i) * (ranked[i + 1] - ranked[i])
"""

PERCENTILE_NUMPY = """\
import numpy as np


def percentile_threshold(x, p):
    return np.percentile(np.abs(x.numpy()), p)
"""

SCALES_RAGGED_AWARE = """\
def per_channel_scales(w, bits):
    qmax = 2 ** (bits - 1) - 1
    qmin = -qmax - 1
    return torch.stack([row.abs().max() for row in w]) * 2 / (qmax - qmin)


def per_group_scales(w, bits, group_size):
    half = (2**bits - 1) / 2
    columns = [w[:, j : j + group_size].abs().amax(dim=1) for j in range(0, w.shape[1], group_size)]
    return torch.stack(columns, dim=1) / half
"""

SCALES_UNFOLD_FLOAT64 = """\
def per_channel_scales(w, bits):
    amax = torch.maximum(-w.min(dim=1).values, w.max(dim=1).values)
    return (amax.double() / ((2**bits - 1) / 2)).unsqueeze(1)


def per_group_scales(w, bits, group_size):
    blocks = w.unfold(1, group_size, group_size)
    amax = torch.maximum(-blocks.amin(-1), blocks.amax(-1))
    return (2 * amax.double() / (2**bits - 1))
"""

DYNAMIC_EINSUM_EPS = """\
def quantize_rows(x):
    s_x = x.abs().max(dim=1, keepdim=True).values.clamp_min(torch.finfo(torch.float32).eps) / 127
    return (x / s_x).round().clamp(-127, 127).to(torch.int8), s_x.squeeze(1)


def int_matmul(x_q, w_q):
    return torch.einsum("bk,ok->bo", x_q.double(), w_q.double()).long()  # exact below 2**53


def dynamic_int8_linear(x, w_q, w_scale, bias):
    x_q, s_x = quantize_rows(x)
    y = int_matmul(x_q, w_q).float() * s_x[:, None] * w_scale
    return y if bias is None else y + bias
"""

DYNAMIC_ROW_LOOP = """\
def quantize_rows(x):
    rows, scales = [], []
    for row in x:
        top = float(row.abs().max())
        s = top / 127 if top > 0 else 1.0
        rows.append(torch.clamp(torch.round(row * (1 / s)), -127, 127))
        scales.append(s)
    return torch.stack(rows).to(torch.int16), torch.tensor(scales, dtype=torch.float64)


def int_matmul(x_q, w_q):
    return torch.matmul(x_q.to(torch.int32), w_q.to(torch.int32).t())  # int32, as the kernels


def dynamic_int8_linear(x, w_q, w_scale, bias):
    x_q, s_x = quantize_rows(x)
    y = int_matmul(x_q, w_q).double() * s_x.unsqueeze(1) * w_scale.double().unsqueeze(0)
    if bias is not None:
        y += bias.double()
    return y
"""

SENSITIVITY_ITEMS = """\
def sensitivity(layers, accuracy_with_only, baseline):
    accuracies = {name: accuracy_with_only(name) for name in layers}
    drops = {name: baseline - a for name, a in accuracies.items()}
    ranking = [name for name, _ in sorted(drops.items(), key=lambda kv: -kv[1])]
    return drops, ranking
"""

SENSITIVITY_BY_ACCURACY = """\
def sensitivity(layers, accuracy_with_only, baseline):
    drops = dict(zip(layers, [baseline - accuracy_with_only(n) for n in layers]))
    ranking = sorted(layers, key=accuracy_with_only)  # lowest accuracy = largest drop
    return drops, tuple(ranking)
"""

BIAS_DIFFERENCE = """\
def corrected_bias(w, w_q, bias, x_mean):
    return (bias if bias is not None else 0.0) - (w_q @ x_mean - w @ x_mean)
"""

BIAS_FLOAT64_SUM = """\
def corrected_bias(w, w_q, bias, x_mean):
    shift = ((w_q - w).double() * x_mean.double()).sum(dim=1)
    b = torch.zeros(w.shape[0], dtype=torch.float64) if bias is None else bias.double()
    return (b - shift).float()
"""

SMOOTH_LOGS = """\
def smoothing_factor(x, w, alpha):
    x_max, w_max = x.abs().max(dim=0).values, w.abs().max(dim=0).values
    return torch.exp(alpha * torch.log(x_max) - (1 - alpha) * torch.log(w_max))
"""

SMOOTH_COLUMN_LOOP = """\
def smoothing_factor(x, w, alpha):
    s = []
    for j in range(x.shape[1]):
        x_max, w_max = float(x[:, j].abs().max()), float(w[:, j].abs().max())
        s.append(x_max**alpha / w_max ** (1 - alpha))
    return torch.tensor(s, dtype=torch.float64)
"""

STE_TORCH_AUTOGRAD = """\
def fake_quant_forward(x, scale, zero_point, qmin, qmax):
    return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)


def fake_quant_backward(x, scale, zero_point, qmin, qmax, grad_out):
    x = x.clone().requires_grad_(True)
    torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax).backward(grad_out)
    return x.grad
"""

STE_RECIPROCAL_MASK = """\
def codes(x, scale, zero_point):
    return torch.round(x * (1.0 / scale)) + zero_point


def fake_quant_forward(x, scale, zero_point, qmin, qmax):
    return (codes(x, scale, zero_point).clamp(qmin, qmax) - zero_point) * scale


def fake_quant_backward(x, scale, zero_point, qmin, qmax, grad_out):
    q = codes(x, scale, zero_point)
    return grad_out * ((q >= qmin) & (q <= qmax)).to(grad_out.dtype)
"""

REQUANT_FRACTION = """\
from fractions import Fraction


def requantize(acc, m0, shift, zero_point):
    rounded = math.floor(Fraction(acc * m0, 2**shift) + Fraction(1, 2))
    return min(255, max(0, zero_point + rounded))
"""

REQUANT_DIVMOD = """\
def requantize(acc, m0, shift, zero_point):
    q, r = divmod(acc * m0, 1 << shift)
    if 2 * r >= 1 << shift:  # half or more: up (ties toward +infinity)
        q += 1
    return max(0, min(255, q + zero_point))
"""

# checker id -> (compare, [reference, correct answer, correct answer, ...])
CHECKERS = {
    "01 affine": (affine.compare_affine, [affine.AFFINE_SOLUTION, AFFINE_HALF_UP, AFFINE_FLOAT32_RECIPROCAL]),
    "02 percentile": (
        percentile.compare_percentile,
        [
            percentile.PERCENTILE_SOLUTION,
            PERCENTILE_FLOAT32,
            PERCENTILE_SORT_AND_INTERPOLATE,
            PERCENTILE_NUMPY,
        ],
    ),
    "03 scales": (
        scales.compare_scales,
        [scales.SCALES_SOLUTION, SCALES_RAGGED_AWARE, SCALES_UNFOLD_FLOAT64],
    ),
    "04 dynamic": (
        dynamic.compare_dynamic_linear,
        [dynamic.DYNAMIC_SOLUTION, DYNAMIC_EINSUM_EPS, DYNAMIC_ROW_LOOP],
    ),
    "05 sensitivity": (
        sensitivity.compare_sensitivity,
        [sensitivity.SENSITIVITY_SOLUTION, SENSITIVITY_ITEMS, SENSITIVITY_BY_ACCURACY],
    ),
    "07 bias": (bias.compare_bias_correction, [bias.BIAS_SOLUTION, BIAS_DIFFERENCE, BIAS_FLOAT64_SUM]),
    "07 smoothquant": (smooth.compare_smoothing, [smooth.SMOOTH_SOLUTION, SMOOTH_LOGS, SMOOTH_COLUMN_LOOP]),
    "08 ste": (ste.compare_ste, [ste.STE_SOLUTION, STE_TORCH_AUTOGRAD, STE_RECIPROCAL_MASK]),
    "09 requantize": (requant.compare, [requant.REFERENCE, REQUANT_FRACTION, REQUANT_DIVMOD]),
}


def functions(source: str) -> dict:
    """The functions ``source`` defines, executed once here (trusted test code), as a student's would be."""
    namespace = {"__name__": "exercise", "torch": torch, "math": math}
    exec(compile(source, "<answer>", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small tensors: one thread is faster than waking a pool (and the contained child uses one too)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("checker", list(CHECKERS))
def test_every_correct_answer_passes_on_1000_seeds(checker):
    compare, sources = CHECKERS[checker]
    answers = [functions(source) for source in sources]
    failed = []
    for seed in SEEDS:
        for k, answer in enumerate(answers):
            verdict = compare(answer, seed)
            if verdict.ok is not True:
                failed.append((seed, k, verdict.message))
    assert not failed, f"{len(failed)} failures, first: {failed[:3]}"


def test_the_sensitivity_answers_pass_on_measured_tables_with_ties():
    measured = (["conv1", "conv2", "fc"], {"conv1": 0.5, "conv2": 0.9, "fc": 0.9}, 0.95)
    for source in CHECKERS["05 sensitivity"][1]:
        for seed in range(20):
            assert sensitivity.compare_sensitivity(functions(source), seed, measured).ok is True


HOSTILE = [
    None,
    ...,
    "3 s",
    {"a": 1},
    (torch.tensor(1.0),),
    float("nan"),
    float("inf"),
    -float("inf"),
    3e38,
    torch.tensor([]),
    torch.full((7, 5), float("nan")),
    torch.full((3,), 3e38),
    torch.tensor([1 + 2j]),
    torch.ones(2, dtype=torch.bool),
    torch.zeros(1, 2, 3, dtype=torch.int8),
    (torch.ones(3), torch.ones(3)),
    (torch.tensor([float("nan")] * 4), torch.tensor([float("inf")] * 4)),
    ({"x": float("nan")}, ["x"]),
]


def _raises(*args):
    raise RuntimeError("boom")


@pytest.mark.parametrize("checker", list(CHECKERS))
def test_a_hostile_answer_gets_a_verdict_never_an_exception(checker):
    compare = CHECKERS[checker][0]
    for value in HOSTILE:
        for seed in range(2):
            verdict = compare(lambda *args, value=value: value, seed)
            assert verdict.ok is False and CHECKER_FAILED not in verdict.message, (value, verdict.message)
    verdict = compare(_raises, 0)
    assert verdict.ok is False and "RuntimeError: boom" in verdict.message


def test_a_checker_that_raises_blames_ptqlab_not_the_student():
    def broken(run, seed):
        raise ZeroDivisionError("a bug")

    verdict = judged(broken, in_process(lambda: 1), 0)
    assert (
        verdict.ok is False and CHECKER_FAILED in verdict.message and "ZeroDivisionError" in verdict.message
    )


def test_in_process_calls_see_what_the_runner_would_send_back():
    """``wire.copy`` (used in process) rebuilds what a JSON round trip rebuilds: plain types, tuples, dicts,
    tensors of each dtype (a bfloat16 stays bfloat16), stand-ins for other objects; and a candidate that
    changes its argument in place does not change the checker's case."""
    from ptqlab.labkit import wire

    values = [
        1,
        2.5,
        "s",
        None,
        True,
        ...,
        (1, (2.0, "x")),
        [torch.arange(3), {"a": torch.ones(2, dtype=torch.bfloat16)}],
        torch.tensor([1.5, float("nan")]),
        torch.ones(2, 3, dtype=torch.int8),
        torch.zeros(2, requires_grad=True),
        object(),
    ]
    for value in values:
        copied, sent = wire.copy(value), wire.loads(wire.dumps(value))
        assert repr(copied) == repr(sent) and type(copied).__name__ == type(sent).__name__, (copied, sent)
    x = torch.ones(3)
    status, (result,) = in_process(lambda t: t.mul_(2))([("f", (x,))])
    assert status == "ok" and torch.equal(x, torch.ones(3)) and torch.equal(result, 2 * torch.ones(3))
