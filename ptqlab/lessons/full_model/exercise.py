"""Lab 04's coding exercise: a dynamic int8 Linear, the scheme of torchao's dynamic int8 recipes:

    s_x[b] = max_k |x[b, k]| / 127                       (per row = per token, at run time; an all-zero row: s > 0)
    x_q    = clamp(round(x / s_x), −127, 127)            (narrow symmetric int8)
    acc    = x_q · w_qᵀ                                  (integers, accumulated exactly: int32 semantics)
    y      = acc · s_x[b] · w_scale[o] + bias[o]

Oracles, independent of ptqlab: the codes and scales come from torchao's ``choose_qparams_affine`` +
``quantize_affine`` (MappingType.SYMMETRIC, one block per row, quant_min −127, quant_max 127, eps = float32 eps:
the arguments torchao's DA8W4 CPU linear quantizes its activations with), the accumulators from
``torch._int_mm`` (int8 × int8 → int32, on this CPU), the output from those in float64. ptqlab's own reference
(``dynamic_int8_linear_reference``) is checked against them on every check. Inputs are built from known codes
plus offsets within ±0.45 of a step, so no rounding tie can make a correct answer look wrong.
"""

from __future__ import annotations

import torch

from ptqlab.labkit.exercise import Exercise, Verdict, judges, not_ok, seeded
from ptqlab.lessons.full_model.mistakes import (
    QMAX,
    acc_problem,
    close,
    codes_problem,
    output_problem,
    scales_problem,
)

DYNAMIC_STARTER = '''\
def quantize_rows(x):
    """x: float32 (batch, in). One symmetric scale per row, s_x = max|x_row| / 127, codes in [-127, 127].
    Return (x_q, s_x): integer codes (batch, in) and scales (batch,). An all-zero row must not give NaN."""
    s_x = ...
    x_q = ...
    return x_q, s_x


def int_matmul(x_q, w_q):
    """x_q (batch, in) and w_q (out, in), int8. acc[b, o] = sum_k x_q[b, k] * w_q[o, k], exactly."""
    ...


def dynamic_int8_linear(x, w_q, w_scale, bias):
    """w_scale (out,), bias (out,) or None. y = acc * s_x (per row) * w_scale (per output) + bias."""
    x_q, s_x = quantize_rows(x)
    acc = int_matmul(x_q, w_q)
    ...
'''

DYNAMIC_SOLUTION = """\
def quantize_rows(x):
    s_x = x.abs().amax(dim=1) / 127
    s_x = torch.where(s_x > 0, s_x, torch.ones_like(s_x))  # all-zero row: any s > 0 gives codes 0
    x_q = torch.clamp(torch.round(x / s_x[:, None]), -127, 127).to(torch.int8)
    return x_q, s_x


def int_matmul(x_q, w_q):
    return x_q.long() @ w_q.long().T  # int64 is exact; float32 is exact only up to 2**24


def dynamic_int8_linear(x, w_q, w_scale, bias):
    x_q, s_x = quantize_rows(x)
    acc = int_matmul(x_q, w_q)
    y = acc.double() * s_x[:, None] * w_scale[None, :]
    if bias is not None:
        y = y + bias
    return y.float()
"""


def quantize_rows_reference(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ptqlab's reference: (int8 codes, per-row scales) of the narrow symmetric per-row scheme above."""
    s_x = x.abs().amax(dim=1) / QMAX
    s_x = torch.where(s_x > 0, s_x, torch.ones_like(s_x))
    return torch.clamp(torch.round(x / s_x[:, None]), -QMAX, QMAX).to(torch.int8), s_x


def dynamic_int8_linear_reference(x, w_q, w_scale, bias=None) -> torch.Tensor:
    """ptqlab's reference y (float32), accumulated in int64 and rescaled in float64."""
    x_q, s_x = quantize_rows_reference(x)
    y = (x_q.long() @ w_q.long().T).double() * s_x.double()[:, None] * w_scale.double()[None, :]
    return (y if bias is None else y + bias.double()).float()


def oracle(x, w_q, w_scale, bias=None) -> dict[str, torch.Tensor]:
    """codes, scales (torchao primitives), acc (torch._int_mm) and y (float64 from those) for one case."""
    from ptqlab.backends.quiet import silence_torchao_import_noise

    silence_torchao_import_noise()
    from torchao.quantization.quant_primitives import MappingType, choose_qparams_affine, quantize_affine

    block = (1, x.shape[1])
    kw = {"quant_min": -QMAX, "quant_max": QMAX}
    scale, zero = choose_qparams_affine(
        x, MappingType.SYMMETRIC, block, torch.int8, eps=torch.finfo(torch.float32).eps,
        scale_dtype=torch.float32, zero_point_dtype=torch.int8, **kw,
    )  # fmt: skip
    codes = quantize_affine(x, block, scale, zero, torch.int8, **kw)
    acc = torch._int_mm(codes, w_q.T.contiguous())
    y = acc.double() * scale.reshape(-1, 1).double() * w_scale.double()[None, :]
    y = y if bias is None else y + bias.double()
    return {"codes": codes, "scales": scale.reshape(-1), "acc": acc, "y": y}


def random_case(generator: torch.Generator, batch: int, k: int, out: int, *, bias: bool = True) -> dict:
    """x built from known codes: per-row scales spread over 3 decades, one row 100× (an outlier token), one
    all-zero row when batch > 2, each row's max exactly ±127 steps, the rest code + offset in [−0.45, 0.45]."""
    s = torch.exp(torch.empty(batch).uniform_(-7.0, 0.0, generator=generator))
    s[int(torch.randint(0, batch, (), generator=generator))] *= 100
    codes = torch.randint(-126, 127, (batch, k), generator=generator).float()
    offsets = torch.empty(batch, k).uniform_(-0.45, 0.45, generator=generator)
    top = torch.randint(0, k, (batch,), generator=generator)
    signs = torch.randint(0, 2, (batch,), generator=generator).float() * 2 - 1
    codes[torch.arange(batch), top], offsets[torch.arange(batch), top] = QMAX * signs, 0.0
    x = ((codes + offsets) * s[:, None]).float()
    if batch > 2:
        x[int(torch.randint(0, batch, (), generator=generator))] = 0.0
    w_q = torch.randint(-QMAX, QMAX + 1, (out, k), generator=generator, dtype=torch.int8)
    w_scale = torch.empty(out).uniform_(0.002, 0.02, generator=generator)
    b = torch.randn(out, generator=generator) * 0.5 if bias else None
    return {"x": x, "w_q": w_q, "w_scale": w_scale, "bias": b}


def big_case(generator: torch.Generator) -> dict:
    """2 rows, 2,048 inputs: row 0 is all code 127 against a weight row summing to an odd number, so
    acc[0, 0] = 127 · (2048 · 127 − 1) = 33,032,065 — odd and above 2^24, which float32 cannot hold."""
    case = random_case(generator, 2, 2048, 2)
    case["x"][0] = 0.25
    case["w_q"][0] = QMAX
    case["w_q"][0, int(torch.randint(0, 2048, (), generator=generator))] = QMAX - 1
    return case


def cases(generator: torch.Generator) -> tuple[list[dict], list[dict]]:
    """(square cases, where batch = out so a scale on the wrong axis still runs and can be named;
    one non-square case, run separately because a wrong axis raises there)."""
    n1, n2 = (int(torch.randint(4, 8, (), generator=generator)) for _ in range(2))
    k1, k2 = (16 * int(torch.randint(2, 7, (), generator=generator)) for _ in range(2))
    square = [random_case(generator, n1, k1, n1), random_case(generator, n2, k2, n2, bias=False)]
    return square + [big_case(generator)], [random_case(generator, 3, 40, 7)]


def _case_problem(case: dict, o: dict, results: list) -> str | None:
    """The first wrong thing of one case's (quantize_rows, int_matmul, dynamic_int8_linear) results, against
    the case's oracle ``o``."""
    pair = results[0]
    if not (isinstance(pair, tuple | list) and len(pair) == 2 and all(_real(t) for t in pair)):
        return "**quantize_rows** must return the pair (x_q, s_x) of real tensors."
    for name, problem in (
        ("quantize_rows", lambda: scales_problem(pair[1], case, o["scales"])),
        ("quantize_rows", lambda: codes_problem(pair[0], case, o["codes"], pair[1].reshape(-1))),
        ("int_matmul", lambda: _tensor(results[1]) or acc_problem(results[1], o["acc"])),
        ("dynamic_int8_linear", lambda: _tensor(results[2]) or output_problem(results[2], case, o, pair[1])),
    ):
        if (problem := problem()) is not None:
            x, w = case["x"], case["w_q"]
            return f"**{name}** (x {tuple(x.shape)}, w_q {tuple(w.shape)}): {problem}"
    return None


def _real(value) -> bool:
    return isinstance(value, torch.Tensor) and not value.is_complex() and value.dtype != torch.bool


def _tensor(value) -> str | None:
    if _real(value):
        return None
    kind = f"a {value.dtype} tensor" if isinstance(value, torch.Tensor) else type(value).__name__
    return f"must return a tensor of numbers, got {kind}."


def unfinished(results: list) -> bool:
    """Some function returned ``...`` (the starter's blanks) or None."""
    flat = [v for r in results for v in (r if isinstance(r, tuple | list) else (r,))]
    return any(v is Ellipsis or v is None for v in flat)


def _calls(batch: list[dict], oracles: list[dict]) -> list:
    calls = []
    for case, o in zip(batch, oracles, strict=True):
        calls += [
            ("quantize_rows", (case["x"],)),
            ("int_matmul", (o["codes"], case["w_q"])),
            ("dynamic_int8_linear", (case["x"], case["w_q"], case["w_scale"], case["bias"])),
        ]
    return calls


@seeded
def seeded_cases(generator: torch.Generator) -> list[tuple[list[dict], list[dict], list]]:
    """(cases, their oracles, the calls) per batch (square ones, then the non-square one), by seed; ptqlab's
    reference is checked against every oracle (a disagreement is a ptqlab bug, raised)."""
    batches = []
    for batch in cases(generator):
        oracles = [oracle(**case) for case in batch]
        for case, o in zip(batch, oracles, strict=True):
            if not close(dynamic_int8_linear_reference(**case), o["y"]):
                raise RuntimeError(
                    "ptqlab's dynamic_int8_linear_reference disagrees with torchao + torch._int_mm"
                )
        batches.append((batch, oracles, _calls(batch, oracles)))
    return batches


def judge_dynamic_linear(run, seed: int | None = None) -> Verdict:
    """Lab 04's exercise on fresh random cases (square ones first, then a non-square one)."""
    batches = seeded_cases(seed)
    for batch, oracles, calls in batches:
        status, results = run(calls)
        if (bad := not_ok(status, results)) is not None:
            return bad
        if unfinished(results):
            return Verdict(False, "A function returned `...` or nothing: fill in every `...` of the starter.")
        for k, (case, o) in enumerate(zip(batch, oracles, strict=True)):
            if (problem := _case_problem(case, o, results[3 * k : 3 * k + 3])) is not None:
                return Verdict(False, problem)
    return Verdict(
        True,
        f"**All correct** on {sum(len(b[0]) for b in batches)} fresh random layers: codes and scales equal torchao's, "
        "accumulators equal `torch._int_mm`'s, including one sum of 33,032,065 that float32 cannot hold.",
    )


check_dynamic_linear, compare_dynamic_linear = judges(judge_dynamic_linear)


DYNAMIC_RECIPES = ("ao-dynamic-int8", "torchao-int8-dynamic")


def measured_sentence(rows: list) -> str:
    """What the measured dynamic rows say about the per-call cost (a sentence true for these numbers)."""
    dynamic = [r for r in rows if r.available and r.speedup is not None and r.recipe in DYNAMIC_RECIPES]
    if not dynamic:
        return (
            "Add `ao-dynamic-int8` or `torchao-int8-dynamic` to the recipes and press the button to time one."
        )
    said = " and ".join(f"`{r.variant}` ran at **{r.speedup:.2f}×** fp32" for r in dynamic)
    slower = [f"`{r.variant}`" for r in dynamic if r.speedup < 1]
    if slower:
        verdict = (
            f"For {' and '.join(slower)} that work, with the per-call overhead around it, cost more than the "
            "int8 matmul saved."
        )
    else:
        verdict = "Here the int8 matmul saved more than that work cost."
    return (
        f"In the measurement above, {said}. Finding the max and rounding are work fp32 never does, paid again "
        "on every forward (`ao-dynamic-int8` does it inside fbgemm's C++ kernel; `torchao-int8-dynamic`, in "
        f"eager mode, as separate PyTorch ops). {verdict}"
    )


def exercise_prompt(rows: list) -> str:
    """The task, tied to what the lab measured: the dynamic recipes' speedups in ``rows`` (BenchRows)."""
    return (
        "Write what a dynamic int8 recipe does inside every Linear, on every call: find each row's max |x|, "
        "round the row to int8 codes, multiply integers exactly, rescale. This is the scheme of "
        "`torchao-int8-dynamic` (per-row activation scales, per-channel int8 weights, `torch._int_mm`); "
        "`ao-dynamic-int8` (fbgemm) does the same with one asymmetric scale per batch. The grid here is the "
        "narrow [−127, 127], s = max|x| / 127 (LLM.int8(), torchao's DA8W4 CPU kernel); torchao's default "
        "divides by 127.5 onto [−128, 127], lab 03's convention. "
        f"{measured_sentence(rows)}\n\n"
        "**Check my code** runs your functions in a separate process ({time_limit} limit) on fresh random layers "
        "(an all-zero row, an outlier row, a sum above 2^24) against torchao's quantizer and `torch._int_mm`."
    )


EXERCISES = (
    Exercise(
        "Coding exercise: a dynamic int8 Linear",
        exercise_prompt,
        DYNAMIC_STARTER,
        DYNAMIC_SOLUTION,
        check_dynamic_linear,
        editor_height=320,
    ),
)
