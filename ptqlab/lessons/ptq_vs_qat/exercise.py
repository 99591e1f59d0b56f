"""Lab 08's coding exercise: fake quantization and its straight-through-estimator (STE) gradient,

    q      = round(x / s) + z                      (round half to even, *then* add the integer zero point)
    x̂      = (clamp(q, qmin, qmax) − z) · s
    ∂L/∂x  = ∂L/∂x̂ · 1[qmin ≤ q ≤ qmax]           (STE: round's derivative taken as 1; 0 where clamped)

(Bengio et al. 2013; Jacob et al. 2018). Oracle, independent of ptqlab: ``torch.fake_quantize_per_tensor_affine``
forward and its autograd backward. Its CPU kernel computes q = nearbyint(x · (1/s)) + z and masks on that q
(checked here: at a tie the result depends on the parity of round(x/s), not of x/s + z). Inputs: power-of-two
scales, where x/s is exact and values sit exactly on qmin, qmax and the half-step ties beside them, and one
non-power-of-two scale with values kept 0.05 of a step away from ties (where x/s and x·(1/s) could differ).
"""

from __future__ import annotations

import torch

from ptqlab.labkit.exercise import (
    Exercise,
    Verdict,
    first_mismatch,
    judges,
    not_ok,
    seeded,
)

STE_STARTER = '''\
def fake_quant_forward(x, scale, zero_point, qmin, qmax):
    """x_hat = (clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point) * scale."""
    ...


def fake_quant_backward(x, scale, zero_point, qmin, qmax, grad_out):
    """The gradient w.r.t. x under the straight-through estimator: grad_out where the code
    round(x / scale) + zero_point lies in [qmin, qmax], 0 where the clamp cut it off."""
    ...
'''

STE_SOLUTION = """\
def fake_quant_forward(x, scale, zero_point, qmin, qmax):
    q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


def fake_quant_backward(x, scale, zero_point, qmin, qmax, grad_out):
    q = torch.round(x / scale) + zero_point  # the code before the clamp
    inside = (q >= qmin) & (q <= qmax)
    return torch.where(inside, grad_out, torch.zeros_like(grad_out))
"""


def torch_fake_quant(x, scale, zero_point, qmin, qmax, *, grad_out) -> tuple[torch.Tensor, torch.Tensor]:
    """(forward, gradient w.r.t. x) from ``torch.fake_quantize_per_tensor_affine`` and autograd."""
    x = x.detach().clone().requires_grad_(True)
    y = torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero_point), int(qmin), int(qmax))
    y.backward(grad_out)
    return y.detach(), x.grad


def _ties_case(generator: torch.Generator, bits: int, signed: bool, zero_point: int) -> tuple:
    """A power-of-two scale; codes q = x/s + z exactly on qmin, qmax, the ties beside them, and around."""
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    scale = 2.0 ** -int(torch.randint(2, 7, (), generator=generator))
    edges = torch.tensor([-1.0, -0.6, -0.5, -0.4, 0.0, 0.4, 0.5, 0.6, 1.0, 3.0])
    targets = torch.cat([qmin - edges.flip(0), qmax + edges, torch.tensor([qmin + 1.5, qmax - 1.5, 0.5])])
    inner = torch.randint(qmin, qmax + 1, (12,), generator=generator) + torch.empty(12).uniform_(
        -0.45, 0.45, generator=generator
    )
    codes = torch.cat([targets, inner])
    codes = codes[torch.randperm(len(codes), generator=generator)]
    return (((codes - zero_point) * scale).float(), scale, zero_point, qmin, qmax)


def _random_case(generator: torch.Generator) -> tuple:
    """uint4 [0, 15] with a non-power-of-two scale and a random zero point; no value near a tie."""
    qmin, qmax = 0, 15
    scale = float(torch.empty(()).uniform_(0.01, 0.2, generator=generator))
    zero_point = int(torch.randint(qmin, qmax + 1, (), generator=generator))
    steps = torch.randint(qmin - 6, qmax + 7, (40,), generator=generator) - zero_point
    x = (steps + torch.empty(40).uniform_(-0.45, 0.45, generator=generator)) * scale
    return (x.float(), scale, zero_point, qmin, qmax)


def cases(generator: torch.Generator) -> list[tuple]:
    """(x, scale, zero_point, qmin, qmax, grad_out) per case: int8 with an even and an odd zero point,
    signed int3 around 0, and a random uint4 case."""
    odd = 2 * int(torch.randint(-20, 20, (), generator=generator)) + 1
    chosen = [
        _ties_case(generator, 8, True, 0),
        _ties_case(generator, 8, True, odd),
        _ties_case(generator, 3, True, 0),
        _random_case(generator),
    ]
    out = []
    for x, *rest in chosen:
        grad_out = torch.randn(x.shape, generator=generator).add_(0.1).sign() * torch.empty(x.shape).uniform_(
            0.5, 2.0, generator=generator
        )
        out.append((x, *rest, grad_out))
    return out


HALF_UP = (
    "at a tie (x/s exactly k + ½: these scales are powers of two, so x/s is exact) you rounded half up, "
    "floor(x/s + 0.5); `torch.round` and torch's fake quantization round half to even (2.5 → 2, 3.5 → 4)."
)


def _masks(x, scale, zero_point, qmin, qmax) -> dict[str, torch.Tensor]:
    """The right mask and the usual wrong ones, each as a bool tensor over x."""
    q = torch.round(x / scale) + zero_point
    q_late = torch.round(x / scale + zero_point)
    lo, hi = (qmin - zero_point) * scale, (qmax - zero_point) * scale
    return {
        "right": (q >= qmin) & (q <= qmax),
        "float range": (x >= lo) & (x <= hi),
        "strict": (q > qmin) & (q < qmax),
        "one wider": (q >= qmin - 1) & (q <= qmax + 1),
        "round late": (q_late >= qmin) & (q_late <= qmax),
    }


def _backward_problem(case: tuple, got: torch.Tensor, expected: torch.Tensor) -> str | None:
    x, scale, zero_point, qmin, qmax, grad_out = case
    if torch.equal(got.double(), expected.double()):
        return None
    masks = _masks(x, scale, zero_point, qmin, qmax)
    lo, hi = (qmin - zero_point) * scale, (qmax - zero_point) * scale
    named = {
        "float range": f"you compared x with the float range [lo, hi] = [(qmin − z)·s, (qmax − z)·s] = [{lo:g}, "
        f"{hi:g}]. Values up to half a step outside still round onto qmin or qmax, and torch passes their gradient: "
        "the code round(x/s) + z decides. The two agree except in (hi, hi + s/2] and [lo − s/2, lo).",
        "strict": "off by one at the boundary: a code equal to qmin or qmax is on the grid, so its gradient "
        "passes (use >= and <=).",
        "one wider": "off by one at the boundary: a code of qmax + 1 or qmin − 1 was clamped, so its gradient is 0.",
        "round late": "you rounded x/s + z: at a tie (x/s = k + ½) that can round the other way when z is odd "
        "(a mask from floor(x/s + 0.5), rounding half up, is the same mask on every grid: if that is what you "
        "did, the fix is the same). torch rounds x/s first (half to even), then adds the integer zero point.",
    }
    for key, why in named.items():
        if torch.equal(got.double(), torch.where(masks[key], grad_out, 0.0).double()):
            return why
    if torch.equal(got.double(), masks["right"].double()):
        return "you returned the mask itself: multiply grad_out by it (0 where clipped, grad_out elsewhere)."
    if not got.abs().any():
        return (
            "the gradient is 0 everywhere: that is the true derivative of round (flat between steps), which "
            "would stop all learning. The STE passes grad_out straight through round where the code is not clipped."
        )
    if torch.equal(got.double(), grad_out.double()):
        return "you passed grad_out through everywhere: forgot the clip mask (0 where the code left [qmin, qmax])."
    i = first_mismatch(expected, got)
    return (
        f"first mismatching element, index {i}: x = {float(x[i]):.6g}, code round(x/s) + z = "
        f"{int(torch.round(x[i] / scale) + zero_point)}, expected {float(expected[i]) + 0.0:.6g}, yours is {float(got[i]) + 0.0:.6g}."
    )


def _forward_problem(case: tuple, got: torch.Tensor, expected: torch.Tensor) -> str | None:
    x, scale, zero_point, qmin, qmax, _ = case
    if first_mismatch(expected, got, 1e-4 * scale) is None:
        return None
    q = torch.round(x / scale) + zero_point
    if first_mismatch((q - zero_point) * scale, got, 1e-4 * scale) is None:
        return "no clamp: codes outside [qmin, qmax] must be clamped before dequantizing."
    if first_mismatch(torch.clamp(q, qmin, qmax) * scale, got, 1e-4 * scale) is None:
        return "subtract the zero point before multiplying by the scale: x̂ = (q − z)·s."
    late = torch.clamp(torch.round(x / scale + zero_point), qmin, qmax)
    if first_mismatch((late - zero_point) * scale, got, 1e-4 * scale) is None:
        return (
            "you rounded x/s + z: at a tie (x/s = k + ½) that can round the other way when z is odd. "
            "torch rounds x/s first (half to even), then adds the integer zero point."
        )
    up = torch.clamp(torch.floor(x / scale + 0.5) + zero_point, qmin, qmax)
    if first_mismatch((up - zero_point) * scale, got, 1e-4 * scale) is None:
        return HALF_UP
    i = first_mismatch(expected, got, 1e-4 * scale)
    return f"first mismatching element, index {i}: x = {float(x[i]):.6g}, expected {float(expected[i]) + 0.0:.6g}, yours is {float(got[i]) + 0.0:.6g}."


@seeded
def seeded_cases(generator: torch.Generator) -> tuple[list[tuple], list[tuple[torch.Tensor, torch.Tensor]]]:
    """(the cases, torch's (forward, gradient) for each), by seed (see ``seeded``)."""
    chosen = cases(generator)
    return chosen, [torch_fake_quant(*case[:5], grad_out=case[5]) for case in chosen]


def judge_ste(run, seed: int | None = None) -> Verdict:
    """Lab 08's exercise against torch's fake-quant forward and autograd backward on fresh cases."""
    chosen, oracles = seeded_cases(seed)
    calls = [("fake_quant_forward", case[:5]) for case in chosen]
    calls += [("fake_quant_backward", case) for case in chosen]
    status, results = run(calls)
    if (bad := not_ok(status, results)) is not None:
        return bad
    if any(r is None or r is Ellipsis for r in results):
        return Verdict(False, "A function returned `...` or nothing: fill in every `...` of the starter.")
    for k, (case, expected) in enumerate(zip(chosen, oracles, strict=True)):
        label = f"(int{len(bin(case[4] - case[3])) - 2}, scale {case[1]:.4g}, zero point {case[2]})"
        for name, got, want, find in (
            ("fake_quant_forward", results[k], expected[0], _forward_problem),
            ("fake_quant_backward", results[len(chosen) + k], expected[1], _backward_problem),
        ):
            if not isinstance(got, torch.Tensor) or got.shape != want.shape or got.is_complex():
                return Verdict(
                    False, f"**{name}** must return a real tensor shaped like x {tuple(want.shape)}."
                )
            if (problem := find(case, got.detach(), want)) is not None:
                return Verdict(False, f"**{name}** {label}: {problem}")
    return Verdict(
        True,
        f"**All correct**: forward and gradient equal torch's fake-quant autograd on {len(chosen)} fresh cases, "
        "values exactly on qmin, qmax and the half-step ties beside them included.",
    )


check_ste, compare_ste = judges(judge_ste)


EXERCISES = (
    Exercise(
        "Coding exercise: the straight-through estimator",
        "QAT's forward pass rounds; its backward pass needs a gradient through that rounding. Write fake "
        "quantization and the gradient the STE gives it: `grad_out` where the code `round(x / scale) + "
        "zero_point` lands in `[qmin, qmax]`, 0 where the clamp cut it off. **Check my code** runs both in a "
        "separate process ({time_limit} limit) and compares them with torch's `fake_quantize_per_tensor_affine` "
        "and its autograd on fresh values, some exactly on qmin, qmax and the half-step ties beside them.",
        STE_STARTER,
        STE_SOLUTION,
        check_ste,
        editor_height=240,
    ),
)
