"""Lab 11's coding exercise: fold an eval-mode BatchNorm into the convolution before it.

    s = γ / sqrt(σ² + ε),   W' = s ⊙ W (output channel c scaled by s_c),   b' = s · (b − μ) + β

checked on fresh random layers — a 3×3 conv with a bias, a depthwise 3×3 conv without one (bias=None), and
a conv with tiny running variances (where ε matters) — against two oracles: ``ptqlab.ptq.folding`` (on real
Conv2d + BatchNorm2d modules) and torch's ``torch.nn.utils.fusion.fuse_conv_bn_weights``, and against the
property that the folded conv computes what conv → BN computes. ``judge(run, seed)`` draws the cases and
compares (``judge_result`` per case); ``check`` runs the student's code in the contained runner
(``ptqlab.labkit.runner``), ``compare`` runs trusted code in this process (1,000 seeds in seconds).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ptqlab.labkit.exercise import (
    Exercise,
    Verdict,
    contained,
    first_mismatch,
    in_process,
    judged,
    not_ok,
    seeded,
    student_tensor,
)
from ptqlab.labkit.runner import TIME_LIMIT_S
from ptqlab.ptq.folding import fold_bn_into

STARTER = '''\
def fold_batchnorm(w, b, gamma, beta, mean, var, eps):
    """w: conv weights (out, in/groups, k, k); b: conv bias (out,) or None;
    gamma, beta, mean, var: the BatchNorm's weight, bias, running mean, running variance (out,); eps: float.
    Return (w_folded, b_folded) such that conv(x, w_folded) + b_folded == BN(conv(x, w) + b) in eval mode."""
    s = gamma / var  # TODO: the BatchNorm's per-channel factor
    w_folded = w * s  # TODO: scale each OUTPUT channel (dim 0) by its s
    b_folded = beta  # TODO: the bias too
    return w_folded, b_folded
'''

SOLUTION = """\
def fold_batchnorm(w, b, gamma, beta, mean, var, eps):
    s = gamma / torch.sqrt(var + eps)
    w_folded = w * s.reshape(-1, 1, 1, 1)  # output channel c scaled by s_c
    if b is None:  # a conv without a bias: b = 0
        b = torch.zeros_like(mean)
    b_folded = s * (b - mean) + beta
    return w_folded, b_folded
"""

KINDS = ("conv3x3 with bias", "depthwise 3x3 without bias", "tiny variances")


class Case(NamedTuple):
    kind: str
    w: torch.Tensor
    b: torch.Tensor | None
    gamma: torch.Tensor
    beta: torch.Tensor
    mean: torch.Tensor
    var: torch.Tensor
    eps: float
    groups: int
    x: torch.Tensor  # an input batch for the property check

    def args(self) -> tuple:
        return (self.w, self.b, self.gamma, self.beta, self.mean, self.var, self.eps)


def random_case(generator: torch.Generator, kind: str) -> Case:
    """A random conv + BatchNorm of ``kind`` (one of ``KINDS``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    out = int(torch.randint(3, 9, (), generator=generator))
    depthwise = kind.startswith("depthwise")
    cin = out if depthwise else int(torch.randint(2, 6, (), generator=generator))
    groups = out if depthwise else 1
    w = torch.randn(out, cin // groups, 3, 3, generator=generator) * 0.3
    b = None if depthwise else torch.randn(out, generator=generator) * 0.1
    gamma = torch.rand(out, generator=generator) * 2 + 0.1
    beta = torch.randn(out, generator=generator) * 0.2
    mean = torch.randn(out, generator=generator) * 0.5
    var = torch.rand(out, generator=generator) * 2 + 0.05
    eps = 1e-5
    if kind == "tiny variances":
        var = torch.rand(out, generator=generator) * 1e-3  # comparable to eps: forgetting it shows
        eps = 1e-3
    x = torch.randn(4, cin, 6, 6, generator=generator)
    return Case(kind, w, b, gamma, beta, mean, var, eps, groups, x)


def _modules(case: Case) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    out, cin_g = case.w.shape[:2]
    conv = nn.Conv2d(cin_g * case.groups, out, 3, padding=1, groups=case.groups, bias=case.b is not None)
    bn = nn.BatchNorm2d(out, eps=case.eps).eval()
    with torch.no_grad():
        conv.weight.copy_(case.w)
        if case.b is not None:
            conv.bias.copy_(case.b)
        bn.weight.copy_(case.gamma)
        bn.bias.copy_(case.beta)
        bn.running_mean.copy_(case.mean)
        bn.running_var.copy_(case.var)
    return conv.eval(), bn


def reference(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    """ptqlab's ``fold_bn_into`` on real modules (float64 inside, float32 out)."""
    conv, bn = _modules(case)
    fold_bn_into(conv, bn)
    return conv.weight.detach().clone(), conv.bias.detach().clone()


def torch_reference(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    """torch's own fusion (``torch.nn.utils.fusion.fuse_conv_bn_weights``)."""
    w, b = fuse_conv_bn_weights(case.w, case.b, case.mean, case.var, case.eps, case.gamma, case.beta)
    return w.detach(), b.detach()


def unfolded_output(case: Case) -> torch.Tensor:
    conv, bn = _modules(case)
    with torch.no_grad():
        return bn(conv(case.x))


def folded_output(case: Case, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.conv2d(case.x, w, b, padding=1, groups=case.groups)


def _named_mistake(case: Case, w: torch.Tensor, b: torch.Tensor, tol: float) -> str | None:
    bias = case.b if case.b is not None else torch.zeros_like(case.mean)
    shape = (-1, 1, 1, 1)
    no_eps = case.gamma / torch.sqrt(case.var)
    no_sqrt = case.gamma / (case.var + case.eps)
    s = case.gamma / torch.sqrt(case.var + case.eps)
    checks = [
        (no_eps.reshape(shape) * case.w, "you left out ε: s = γ / sqrt(σ² + ε) (ε matters when σ² is tiny)."),
        (
            no_sqrt.reshape(shape) * case.w,
            "s divides by the standard deviation sqrt(σ² + ε), not the variance.",
        ),
    ]
    for value, message in checks:
        if value.shape == w.shape and first_mismatch(value, w, tol) is None:
            return message
    if case.w.shape[1] == len(s) and w.shape == case.w.shape:
        if first_mismatch(case.w * s.reshape(1, -1, 1, 1), w, tol) is None:
            return (
                "you scaled the input channels (dim 1); BatchNorm acts on the conv's OUTPUT channels (dim 0)."
            )
    if b.shape == s.shape:
        if first_mismatch(s * bias + case.beta, b, tol) is None:
            return "the bias forgot the running mean: b' = s · (b − μ) + β."
        if first_mismatch(bias - case.mean + case.beta, b, tol) is None:
            return "the bias must be scaled by s too: b' = s · (b − μ) + β."
    return None


def judge_result(case: Case, result) -> str | None:
    """None when ``result`` = (w', b') equals both oracles and the folded conv matches conv → BN; else what
    is wrong (markdown), naming the case."""
    where = f"For a {case.kind} conv with weights of shape {tuple(case.w.shape)}"
    if not isinstance(result, tuple | list) or len(result) != 2:
        return (
            f"{where}, `fold_batchnorm` must return a pair (w_folded, b_folded), got {type(result).__name__}."
        )
    w, problem = student_tensor(result[0], "fold_batchnorm", where + " (w_folded)")
    if problem is not None:
        return problem
    b, problem = student_tensor(result[1], "fold_batchnorm", where + " (b_folded)")
    if problem is not None:
        return problem
    if w.shape != case.w.shape or b.shape != case.mean.shape:
        return (
            f"{where}: returned shapes {tuple(w.shape)} and {tuple(b.shape)}, expected {tuple(case.w.shape)} "
            f"and {tuple(case.mean.shape)} (one bias per output channel)."
        )
    w_ref, b_ref = reference(case)
    tol = 1e-5 * max(1.0, float(w_ref.abs().max()), float(b_ref.abs().max()))
    if (i := first_mismatch(w_ref, w, tol)) is not None or first_mismatch(b_ref, b, tol) is not None:
        named = _named_mistake(case, w, b, tol)
        if named:
            return f"{where}: {named}"
        if i is not None:
            return (
                f"{where}: w_folded differs at flat index {i}: expected {float(w_ref.flatten()[i]):.6g}, "
                f"got {float(w.flatten()[i]):.6g}."
            )
        j = first_mismatch(b_ref, b, tol)
        return f"{where}: b_folded differs at channel {j}: expected {float(b_ref[j]):.6g}, got {float(b[j]):.6g}."
    w_torch, b_torch = torch_reference(case)
    if first_mismatch(w_torch, w, tol) is not None or first_mismatch(b_torch, b, tol) is not None:
        return f"{where}: equal to ptqlab's folding but not to torch's `fuse_conv_bn_weights`."
    y_ref, y = unfolded_output(case), folded_output(case, w, b)
    if (k := first_mismatch(y_ref, y, 1e-4 * max(1.0, float(y_ref.abs().max())))) is not None:
        return f"{where}: the folded conv's output differs from conv → BatchNorm at flat index {k}."
    return None


def _hint(message: str) -> str:
    if "NoneType" in message:
        return " — **Hint:** the depthwise conv has no bias (`b is None`): treat it as zeros."
    if "size" in message and "match" in message:
        return " — **Hint:** s has one entry per output channel: reshape it to (-1, 1, 1, 1) to scale dim 0."
    return ""


@seeded
def seeded_cases(generator: torch.Generator) -> list[Case]:
    """One fresh case of each kind, by seed (see ``labkit.exercise.seeded``)."""
    return [random_case(generator, kind) for kind in KINDS]


def judge(run, seed: int | None = None) -> Verdict:
    """The verdict on ``fold_batchnorm`` as ``run`` returns it, on one fresh case of each kind."""
    cases = seeded_cases(seed)
    status, results = run([("fold_batchnorm", c.args()) for c in cases])
    if (bad := not_ok(status, results)) is not None:
        return Verdict(False, bad.message + _hint(bad.message))
    for case, result in zip(cases, results, strict=True):
        if (problem := judge_result(case, result)) is not None:
            return Verdict(False, problem)
    return Verdict(
        True,
        f"**Correct** on {len(cases)} fresh layers ({', '.join(KINDS)}): equal to ptqlab's folding and to "
        "torch's `fuse_conv_bn_weights`, and each folded conv computes what conv → BatchNorm computes.",
    )


def check(source: str, seed: int | None = None, time_limit_s: float = TIME_LIMIT_S) -> Verdict:
    """The student's ``source`` judged in the contained runner (what "Check my code" does)."""
    if not isinstance(source, str) or not source.strip():
        return Verdict(None, "**Write your `fold_batchnorm` above, then press the button.**")
    return judged(judge, contained(source, time_limit_s), seed)


def compare(candidate, seed: int | None = None) -> Verdict:
    """Trusted ``candidate`` (a function or source, see ``in_process``) judged in this process."""
    return judged(judge, in_process(candidate), seed)


EXERCISES = (
    Exercise(
        "Coding exercise: fold a BatchNorm into its convolution",
        "In eval mode BatchNorm is a per-channel affine map, so it can disappear into the conv before it: "
        "s = γ / sqrt(σ² + ε), W' = s ⊙ W (output channel c times s_c), b' = s · (b − μ) + β. Write "
        "`fold_batchnorm` (torch is imported for you). **Check my code** runs it in a separate process "
        "({time_limit} limit) on three fresh layers — a conv with a bias, a depthwise conv without one, and "
        "one whose variances are as small as ε — and compares it with ptqlab's folding and torch's "
        "`fuse_conv_bn_weights`.",
        STARTER,
        SOLUTION,
        check,
        editor_height=200,
    ),
)
