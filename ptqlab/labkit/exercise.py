"""A coding exercise: the task, a starter, a reference solution and a checker ``check(source, seed=None)``
that runs the student's code through ``ptqlab.labkit.runner`` on fresh random inputs, compares it with
ptqlab's reference and returns a ``Verdict`` naming the first thing wrong. Every lab's ``exercise.py``
exposes its exercises as ``EXERCISES``, a tuple of ``Exercise``; the helpers below are what checkers share.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

import torch

from ptqlab.labkit.runner import TIME_LIMIT_S


class Verdict(NamedTuple):
    """``ok`` is None while there is nothing to check; ``message`` is markdown."""

    ok: bool | None
    message: str


def first_mismatch(expected: torch.Tensor, got: torch.Tensor, atol: float = 0.0) -> int | None:
    bad = ((expected.double() - got.double()).abs() > atol).flatten().nonzero()
    return int(bad[0]) if len(bad) else None


def as_tensor(value, what: str) -> tuple[torch.Tensor | None, str | None]:
    if isinstance(value, torch.Tensor):
        return value.detach(), None
    try:
        return torch.as_tensor(value), None
    except (TypeError, ValueError, RuntimeError):
        return None, f"`{what}` must return a tensor (or a number), got {type(value).__name__}"


def student_tensor(result, name: str, where: str) -> tuple[torch.Tensor | None, str | None]:
    """(the student's ``name`` result as a float tensor, None), or (None, what is wrong, prefixed by ``where``):
    a blank left as ``...`` or ``None``, or something that is not a tensor or a number."""
    if result is None or result is Ellipsis:
        return None, f"{where}, `{name}` returned {result!r}: fill in every `...`."
    got, problem = as_tensor(result, name)
    return (None, f"{where}: {problem}") if problem is not None else (got.float(), None)


def not_ok(status: str, result) -> Verdict | None:
    if status == "ok":
        return None
    return Verdict(
        False, ("**Time limit.** " if status == "timeout" else "**Your code raised an error:** ") + result
    )


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


def seeded_generator(seed: int | None) -> torch.Generator:
    """A generator seeded with ``seed``, or with fresh OS entropy when ``seed`` is None (a new case per check)."""
    return torch.Generator().manual_seed(int.from_bytes(os.urandom(4)) if seed is None else seed)
