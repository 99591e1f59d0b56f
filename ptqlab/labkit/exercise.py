"""A coding exercise: the task, a starter, a reference solution and a checker ``check(source, seed=None)``
that runs the student's code through ``ptqlab.labkit.runner`` on fresh random inputs, compares it with
ptqlab's reference and returns a ``Verdict`` naming the first thing wrong. Every lab's ``exercise.py``
exposes its exercises as ``EXERCISES``, a tuple of ``Exercise``; the helpers below are what checkers share.

Each checker is one *judge* ``judge(run, seed, ...) -> Verdict`` that draws its cases from ``seed``, asks
``run(calls)`` for the student's results and compares them. ``check_X(source, seed)`` gives it ``contained``
(the student's code in the runner's contained process: what "Check my code" does); ``compare_X(candidate,
seed)`` gives it ``in_process`` (trusted code, a function or a mapping of functions, called here: what the
tests use to try a checker on thousands of seeds in seconds). Both go through ``judged``, so a checker never
raises: an exception inside a judge becomes a verdict that blames ptqlab, not the student.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import NamedTuple, TypeVar

import torch

import ptqlab.labkit.child as child
import ptqlab.labkit.wire as wire
from ptqlab.labkit.runner import TIME_LIMIT_S, run_student_code

Run = Callable[[list], tuple[str, object]]  # [(name, args), ...] -> ("ok", results) or (status, message)
CHECKER_FAILED = "**The checker itself failed**"
SEEDS_KEPT = 4  # seeds whose cases ``seeded`` keeps
T = TypeVar("T")


class Verdict(NamedTuple):
    """``ok`` is None while there is nothing to check; ``message`` is markdown."""

    ok: bool | None
    message: str


def first_mismatch(expected: torch.Tensor, got: torch.Tensor, atol: float = 0.0) -> int | None:
    """The flat index of the first element further than ``atol`` from ``expected`` (NaN never matches)."""
    bad = ~((expected.double() - got.double()).abs() <= atol).flatten()
    bad = bad.nonzero()
    return int(bad[0]) if len(bad) else None


def as_tensor(value, what: str) -> tuple[torch.Tensor | None, str | None]:
    """(``value`` as a real tensor, None), or (None, what is wrong with it): not a tensor or a number, or
    complex."""
    if isinstance(value, torch.Tensor):
        got = value.detach()
    else:
        try:
            got = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            return None, f"`{what}` must return a tensor (or a number), got {type(value).__name__}"
    if got.is_complex():
        return None, f"`{what}` returned a complex tensor: return real numbers"
    return got, None


def student_tensor(result, name: str, where: str) -> tuple[torch.Tensor | None, str | None]:
    """(the student's ``name`` result as a float tensor, None), or (None, what is wrong, prefixed by ``where``):
    a blank left as ``...`` or ``None``, or something that is not a tensor or a number."""
    if result is None or result is Ellipsis:
        return None, f"{where}, `{name}` returned {result!r}: fill in every `...`."
    got, problem = as_tensor(result, name)
    return (None, f"{where}: {problem}") if problem is not None else (got.float(), None)


VERDICT_PREFIX = {
    "timeout": "**Time limit.** ",
    "busy": "**The server was busy.** ",
    "error": "**Your code raised an error:** ",
}


def not_ok(status: str, result) -> Verdict | None:
    """None when the run returned results, else the verdict for its status: the student's time limit, a
    busy server (not the student's fault: press again) or an error in the student's code."""
    if status == "ok":
        return None
    return Verdict(False, VERDICT_PREFIX.get(status, VERDICT_PREFIX["error"]) + str(result))


def contained(source: str, time_limit_s: float = TIME_LIMIT_S) -> Run:
    """The student's ``source`` in the runner's contained process, one fresh process per call of the result."""
    return lambda calls: run_student_code(source, calls, time_limit_s)


def in_process(candidate) -> Run:
    """Trusted code called in this process, as the contained process would call it: ``candidate`` is source
    code (executed here), a mapping name -> function, or one function that answers every name. Arguments and
    results cross as plain data (``wire``) both ways, so results look exactly as the runner returns them and a
    candidate that changes its arguments in place cannot change the checker's case; an exception is an
    ("error", message) as from the runner. Never for student code: nothing here is contained."""
    if isinstance(candidate, str):
        execute = lambda calls: child.execute(torch, candidate, calls)  # noqa: E731
    else:
        named = candidate.get if isinstance(candidate, Mapping) else (lambda name: candidate)

        def execute(calls):
            try:
                return "ok", child.call_each(named, calls)
            except Exception as exc:  # a candidate's exception is its verdict, as in the child
                return "error", child.where(exc)

    def run(calls: list) -> tuple[str, object]:
        status, value = execute(wire.copy(list(calls)))
        if status != "ok":
            return status, value
        try:
            return "ok", wire.copy(value)
        except (ValueError, TypeError, RecursionError, OverflowError) as exc:
            return "error", f"your function returned something that cannot be sent back ({exc})"

    return run


def judged(judge: Callable[..., Verdict], run: Run, *args, **kwargs) -> Verdict:
    """``judge(run, *args, **kwargs)``, or, if the judge itself raises, a verdict that says so (a ptqlab bug:
    the student is not told their code is wrong, and the lab keeps running)."""
    try:
        return judge(run, *args, **kwargs)
    except Exception as exc:
        return Verdict(
            False,
            f"{CHECKER_FAILED} on your answer ({type(exc).__name__}: {exc}). This is a bug in ptqlab, not a "
            "verdict on your code: please report it with your code.",
        )


def judges(judge: Callable[..., Verdict]) -> tuple[Callable[..., Verdict], Callable[..., Verdict]]:
    """``(check, compare)`` for one ``judge(run, seed)``: ``check(source, seed=None, time_limit_s=TIME_LIMIT_S)``
    judges the student's source in the contained runner (what "Check my code" does); ``compare(candidate,
    seed=None)`` judges trusted code (``in_process``) in this process, for the tests. Both run the same judge
    on the same cases, so they give the same verdict on the same seed (tested per exercise)."""

    def check(source: str, seed: int | None = None, time_limit_s: float = TIME_LIMIT_S) -> Verdict:
        return judged(judge, contained(source, time_limit_s), seed)

    def compare(candidate, seed: int | None = None) -> Verdict:
        return judged(judge, in_process(candidate), seed)

    return check, compare


# ---- what a lab shows: self-check questions and coding exercises ------------------------------------------


LIMIT_PLACEHOLDER = "{time_limit}"


class Exercise(NamedTuple):
    """One coding exercise. ``prompt`` is markdown, or a function of the lab's state (``**context``) that
    returns it; where it says ``{time_limit}`` the view prints the runner's limit (``TIME_LIMIT_S``), so no
    prompt types a number that could drift from the constant. ``check(source, **kw)`` receives the context
    entries named in ``check_context`` (e.g. the table the lab just measured)."""

    title: str
    prompt: str | Callable[..., str]
    starter: str
    solution: str
    check: Callable[..., Verdict]
    editor_height: int = 240
    check_context: tuple[str, ...] = ()

    def prompt_markdown(self, **context) -> str:
        text = self.prompt(**context) if callable(self.prompt) else self.prompt
        return f"## {self.title}\n\n" + text.replace(LIMIT_PLACEHOLDER, f"{TIME_LIMIT_S:g} s")

    def run_check(self, source: str, **context) -> Verdict:
        return self.check(source, **{key: context[key] for key in self.check_context if key in context})


def seeded(make: Callable[[torch.Generator], T]) -> Callable[[int | None], T]:
    """``make(generator)`` by seed: a given seed draws its cases (and what the checker precomputes for them)
    once and returns them again (shared: never modified) for the next few calls, so trying several answers
    on one seed pays for the cases once; ``None`` draws fresh ones every time, as a lab's check does."""
    cache: dict[int, T] = {}

    @functools.wraps(make)
    def cases(seed: int | None) -> T:
        if seed is None:
            return make(seeded_generator(None))
        if seed not in cache:
            while len(cache) >= SEEDS_KEPT:
                cache.pop(next(iter(cache)))
            cache[seed] = make(seeded_generator(seed))
        return cache[seed]

    return cases


def seeded_generator(seed: int | None) -> torch.Generator:
    """A generator seeded with ``seed``, or with fresh OS entropy when ``seed`` is None (a new case per check)."""
    return torch.Generator().manual_seed(int.from_bytes(os.urandom(4)) if seed is None else seed)
