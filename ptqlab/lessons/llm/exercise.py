"""Lab 10's coding exercise: the student writes llama.cpp's Q8_0 for one block of 32 weights,

    d = max_j |x_j| / 127   (float32)        id = 1/d  (0 when d = 0)
    q_j = roundf(x_j · id)  (half away from zero)          stored: fp16(d), then the 32 int8 codes

checked byte for byte against the ``gguf`` package's numpy reference (``gguf.quants``, what llama.cpp's
converter runs) on fresh random blocks, exact ties and edge blocks. A wrong answer is matched against the
usual mistakes (torch.round's half-to-even, the fp16 d used for the codes, / 128, the signed max, …) and
named. ``verdict(cases, results)`` is the pure comparison; ``check`` runs the student's code through
``ptqlab.labkit.runner`` first.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ptqlab.labkit.exercise import Exercise, Verdict, not_ok, seeded_generator
from ptqlab.labkit.runner import TIME_LIMIT_S, run_student_code

BLOCK = 32

STARTER = '''\
def q8_0_block(x):
    """x: float32 tensor of 32 weights. Return (d, q) as llama.cpp's Q8_0 stores them:
    d = max|x| / 127 computed in float32, stored as a torch.float16 scalar tensor;
    q = the int8 codes (32,): x · (1/d) rounded half AWAY from zero (q = 0 everywhere when d = 0)."""
    d = x.abs().max() / 127
    inverse = 1 / d if d > 0 else torch.zeros(())
    q = torch.round(x * inverse)  # TODO: torch.round sends a tie (2.5) to the even neighbour (2)
    return d.to(torch.float16), q.to(torch.int8)
'''

SOLUTION = """\
def q8_0_block(x):
    d = x.abs().max() / 127                       # float32, as llama.cpp computes it
    inverse = 1 / d if d > 0 else torch.zeros(())  # codes use the float32 d ...
    y = x * inverse
    whole = torch.floor(y.abs())
    q = torch.sign(y) * (whole + (y.abs() - whole >= 0.5))  # roundf: half away from zero
    return d.to(torch.float16), q.to(torch.int8)   # ... only the stored d is fp16
# Not floor(|y| + 0.5): in float32, 0.49999997 + 0.5 rounds to 1.0, so that code would be 1, not 0.
"""


def gguf_reference(blocks: torch.Tensor) -> np.ndarray:
    """The Q8_0 bytes of each row of ``blocks`` (n, 32) from ``gguf.quants`` (n, 34): fp16 d, then int8 q."""
    from gguf import GGMLQuantizationType, quants

    with np.errstate(all="ignore"):
        return quants.quantize(blocks.numpy().astype(np.float32), GGMLQuantizationType.Q8_0)


def fresh_blocks(seed: int | None = None, n: int = 64) -> torch.Tensor:
    """(n + 6, 32) float32: Gaussian blocks of random scale (some with a spike), blocks made of exact ties
    (x = (k + ½)·d with d a power of two, so x·(1/d) is exactly k + ½), an all-zero block, a block whose
    largest magnitude is negative, a constant block and a tiny one (1e-30)."""
    g = seeded_generator(seed)
    scale = 10 ** (torch.rand(n, 1, generator=g) * 6 - 4)
    blocks = torch.randn(n, BLOCK, generator=g) * scale
    spikes = torch.rand(n, BLOCK, generator=g) < 0.03
    blocks = torch.where(spikes, blocks * 20, blocks)
    ties = []
    for _ in range(3):
        d = 2.0 ** int(torch.randint(-12, 4, (), generator=g))
        k = torch.randint(-126, 126, (BLOCK,), generator=g).float() + 0.5
        k[0] = 0.5 - 2.0**-25  # 0.49999997: roundf gives 0, float32 floor(y + 0.5) gives 1
        k[int(torch.randint(1, BLOCK, (), generator=g))] = 127.0 * (
            1 if torch.rand((), generator=g) < 0.5 else -1
        )
        ties.append(k * d)
    negative_peak = torch.randn(BLOCK, generator=g)
    negative_peak[0] = -8.0
    edge = [
        torch.zeros(BLOCK),
        negative_peak,
        torch.full((BLOCK,), 0.3),
        torch.randn(BLOCK, generator=g) * 1e-30,
    ]
    return torch.cat([torch.stack(ties), blocks, torch.stack(edge)]).to(torch.float32)


def _mistakes() -> list[tuple[str, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]]]:
    """(name, a wrong Q8_0) for the usual mistakes; each returns (d float32-valued, q int64)."""

    def inv(d):
        return torch.where(d == 0, torch.zeros_like(d), 1 / torch.where(d == 0, torch.ones_like(d), d))

    def away(y):
        whole = torch.floor(y.abs())
        return torch.sign(y) * (whole + (y.abs() - whole >= 0.5).float())

    def amax(x):
        return x.abs().amax(-1, keepdim=True)

    def fp16(d):
        return d.to(torch.float16).to(torch.float32)

    return [
        (
            "torch.round rounds an exact tie (k + ½) to the even neighbour; Q8_0 rounds half away from zero "
            "(C's roundf): 2.5 → 3, −2.5 → −3",
            lambda x: (amax(x) / 127, torch.round(x * inv(amax(x) / 127))),
        ),
        (
            "the codes were computed with the fp16-rounded d; llama.cpp computes them with the float32 d and "
            "rounds only the *stored* d to fp16",
            lambda x: (amax(x) / 127, away(x * inv(fp16(amax(x) / 127)))),
        ),
        (
            "d = max|x| / 128: Q8_0 uses 127, so the largest weight lands exactly on ±127",
            lambda x: (amax(x) / 128, away(x * inv(amax(x) / 128))),
        ),
        (
            "d came from the signed max (or min), not the largest *magnitude* max|x|",
            lambda x: (
                x.amax(-1, keepdim=True) / 127,
                away(x * inv(x.amax(-1, keepdim=True) / 127)).clamp(-128, 127),
            ),
        ),
        (
            "the codes were truncated toward zero (int conversion) instead of rounded",
            lambda x: (amax(x) / 127, torch.trunc(x * inv(amax(x) / 127))),
        ),
        (
            "floor(|y| + 0.5) in float32 is not roundf: 0.49999997 + 0.5 rounds to 1.0 in float32, so a "
            "code just below one half became 1; split |y| into its integer part and fraction instead",
            lambda x: (
                amax(x) / 127,
                (lambda y: torch.sign(y) * torch.floor(y.abs() + 0.5))(x * inv(amax(x) / 127)),
            ),
        ),
        (
            "round half up (floor(y + 0.5)) sends −2.5 to −2; Q8_0 rounds half away from zero (−2.5 → −3)",
            lambda x: (amax(x) / 127, torch.floor(x * inv(amax(x) / 127) + 0.5)),
        ),
    ]


def _as_block(result, index: int) -> tuple[torch.Tensor | None, torch.Tensor | None, str | None]:
    where = f"On block {index}"
    if not isinstance(result, tuple | list) or len(result) != 2:
        return None, None, f"{where}, `q8_0_block` must return a pair `(d, q)`, got {type(result).__name__}."
    d, q = result
    if not isinstance(d, torch.Tensor) or d.dtype != torch.float16 or d.numel() != 1:
        got = (
            f"a {d.dtype} tensor of {d.numel()} elements" if isinstance(d, torch.Tensor) else type(d).__name__
        )
        return None, None, (f"{where}, d must be a one-element **torch.float16** tensor (llama.cpp stores d in "
                            f"2 bytes: return `d.to(torch.float16)`), got {got}.")  # fmt: skip
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8 or tuple(q.shape) != (BLOCK,):
        got = f"{q.dtype} of shape {tuple(q.shape)}" if isinstance(q, torch.Tensor) else type(q).__name__
        return None, None, f"{where}, q must be an **int8** tensor of shape (32,), got {got}."
    return d.reshape(()), q, None


def _named(blocks: torch.Tensor, got: np.ndarray) -> str | None:
    """The first mistake whose bytes equal the student's on every block that differs from the reference."""
    for message, wrong in _mistakes():
        d, q = wrong(blocks)
        mine = torch.cat([d.to(torch.float16).view(torch.uint8).reshape(-1, 2),
                          q.to(torch.int8).view(torch.uint8)], 1).numpy()  # fmt: skip
        if np.array_equal(mine, got):
            return message
    return None


def verdict(blocks: torch.Tensor, results: list) -> Verdict:
    """The pure comparison: the student's ``(d, q)`` per block against the ``gguf`` reference bytes."""
    expected = gguf_reference(blocks)
    got = np.zeros_like(expected)
    for i, result in enumerate(results):
        d, q, problem = _as_block(result, i)
        if problem is not None:
            return Verdict(False, problem)
        got[i] = np.concatenate([d.reshape(1).view(torch.uint8).numpy(), q.view(torch.uint8).numpy()])
    bad = np.nonzero((got != expected).any(1))[0]
    if not len(bad):
        return Verdict(True, f"**Bit-exact** with the `gguf` reference on all {len(blocks)} fresh blocks "
                             "(random scales, spikes, exact ties, zeros, a negative peak, tiny values).")  # fmt: skip
    i = int(bad[0])
    ref_d = float(expected[i, :2].view(np.float16)[0])
    mine_d = float(got[i, :2].view(np.float16)[0])
    j = (
        int(np.nonzero(expected[i, 2:] != got[i, 2:])[0][0])
        if (expected[i, 2:] != got[i, 2:]).any()
        else None
    )
    detail = (f"d: expected {ref_d!r} (fp16), yours {mine_d!r}" if j is None else
              f"weight {j} = {float(blocks[i, j])!r}: expected code {int(expected[i, 2 + j].view(np.int8))}, "
              f"yours {int(got[i, 2 + j].view(np.int8))} (x·(1/d) = {float(blocks[i, j] * (1 / (blocks[i].abs().max() / 127))):.6f})")  # fmt: skip
    named = _named(blocks, got)
    hint = (
        f"**Named mistake:** {named}."
        if named
        else "Check d = max|x|/127 (float32), x·(1/d), and the rounding."
    )
    return Verdict(
        False, f"**Block {i} of {len(blocks)} differs from the `gguf` reference** — {detail}. {hint}"
    )


def check(source: str, seed: int | None = None, time_limit_s: float = TIME_LIMIT_S) -> Verdict:
    """The verdict on the student's ``q8_0_block`` on fresh blocks (through the contained runner)."""
    if not isinstance(source, str) or not source.strip():
        return Verdict(None, "**Write your `q8_0_block` above, then press the button.**")
    blocks = fresh_blocks(seed)
    status, payload = run_student_code(source, [("q8_0_block", (b.clone(),)) for b in blocks], time_limit_s)
    if (bad := not_ok(status, payload)) is not None:
        return bad
    return verdict(blocks, payload)


EXERCISES = (
    Exercise(
        "Coding exercise: llama.cpp's Q8_0, one block",
        "Write `q8_0_block(x)` for one block of 32 weights: $d = \\max_j |x_j| / 127$ in float32, "
        "$q_j = \\operatorname{roundf}(x_j \\cdot 1/d)$ — rounded half **away from zero**, 0 when $d = 0$ — "
        "and return $d$ as fp16 (what the file stores) with the int8 codes. **Check my code** runs your "
        "function in a separate process ({time_limit} limit) on fresh random blocks, exact ties and edge "
        "blocks, and compares the 34 bytes of each block with the `gguf` package's reference quantizer "
        "(`gguf.quants`); a wrong answer is matched against the usual mistakes and named.",
        STARTER,
        SOLUTION,
        check,
        editor_height=200,
    ),
)
