"""Coding exercises the labs check: the student's code runs in a fresh Python process with a time limit,
on fresh random tensors, and is compared with ptqlab's reference; the verdict names the first thing wrong.

Running untrusted code: ``run_student_code`` is ``ptqlab.labkit.runner``'s (a fresh, contained process; only
plain data comes back); ``runner.protection()`` says what contains it on this machine.

The exercises (each checker takes the source text and returns a ``Verdict``), one module per lab:

- ``exercises_affine``        lab 01 (and 06): choose_qparams (asymmetric min/max), quantize, dequantize
- ``exercises_calibration``   lab 02: a percentile calibrator
- ``exercises_schemes``       lab 03: symmetric per-channel and per-group scales, max|w| / ((qmax − qmin) / 2)
- ``exercises_full_model``    lab 04: a dynamic int8 Linear (per-row activation scales, exact integer matmul)
- ``exercises_sensitivity``   lab 05: the one-layer-at-a-time sensitivity loop, drop = baseline − accuracy
- ``exercises_beyond_rtn``    lab 07: bias correction; ``exercises_smoothquant``: SmoothQuant's factor
- ``exercises_qat``           lab 08: fake-quant forward and its straight-through-estimator backward
- ``real_integers_exercise``  lab 09: integer-only requantization
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ptqlab.labkit.runner import TIME_LIMIT_S, execute, run_student_code  # noqa: F401 (the contained runner)


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

FEEDBACK_KIND = {True: "success", False: "danger", None: "neutral"}


def check_number(
    text: str, expected: float, *, rel_tol: float = 0.01, hint: str = ""
) -> tuple[bool | None, str]:
    """(correct?, feedback) for a typed number within ``rel_tol`` of ``expected``; (None, prompt) while blank."""
    text = (text or "").strip().replace("−", "-")
    if not text:
        return None, "Type a number above."
    try:
        given = float(text)
    except ValueError:
        return None, f"{text!r} is not a number."
    if abs(given - expected) <= rel_tol * abs(expected) + 1e-12:
        return True, f"Correct: {expected:.6g}."
    side = "high" if given > expected else "low"
    return False, f"Not quite: {given:.6g} is too {side}. {hint}".strip()


def check_choice(choice: str | None, correct: str, why: dict[str, str]) -> tuple[bool | None, str]:
    """(correct?, feedback) for a picked option; ``why[option]`` explains each option (right or wrong)."""
    if not choice:
        return None, "Pick an answer, then check it against the lab."
    if choice not in why:
        raise ValueError(f"choice {choice!r} is not one of {sorted(why)}")
    prefix = "Correct." if choice == correct else "Not this one."
    return choice == correct, f"{prefix} {why[choice]}"


def question_view(prompt: str, control, feedback: tuple[bool | None, str], answer: str):
    """A self-check: the question (markdown), its control, the feedback, and the answer behind a reveal."""
    import marimo as mo

    correct, text = feedback
    return mo.vstack(
        [
            mo.md(prompt),
            control,
            mo.callout(mo.md(text), kind=FEEDBACK_KIND[correct]),
            mo.accordion({"Reveal the answer": mo.md(answer)}),
        ]
    )


CHECK_LABEL = "Check my code"


def exercise_controls(starter: str, min_height: int):
    """(the code editor holding ``starter``, the button that checks it), the two controls of an exercise."""
    import marimo as mo

    editor = mo.ui.code_editor(value=starter, language="python", min_height=min_height)
    return editor, mo.ui.run_button(label=CHECK_LABEL)


def exercise_view(prompt: str, editor, button, verdict: Verdict | None, solution: str):
    """A coding exercise: the task, the editor, the check button, the verdict, a reference solution behind a
    reveal. ``verdict`` is None until the button is pressed."""
    import marimo as mo

    shown = verdict or Verdict(None, f"Write your code above, then press **{CHECK_LABEL}**.")
    return mo.vstack(
        [
            mo.md(prompt),
            editor,
            button,
            mo.callout(mo.md(shown.message), kind=FEEDBACK_KIND[shown.ok]),
            mo.accordion({"Reveal a reference solution": mo.md(f"```python\n{solution}```")}),
        ]
    )


def checked(pressed: bool, checker, source: str, **kwargs) -> Verdict | None:
    """``checker(source, **kwargs)`` when the check button was ``pressed``, else None (nothing runs)."""
    return checker(source, **kwargs) if pressed else None


class Question(NamedTuple):
    """A self-check: ``expected`` is a number (typed answer) or the right key of ``options`` (option -> why)."""

    prompt: str
    expected: float | str
    answer: str  # revealed on demand (markdown)
    options: dict[str, str] | None = None
    rel_tol: float = 0.01
    hint: str = ""


def answer_controls(questions: list[Question]):
    """One control per question: a radio for a choice, a text field for a number (as a ``mo.ui.array``)."""
    import marimo as mo

    return mo.ui.array(
        [
            mo.ui.radio(options=list(q.options))
            if q.options
            else mo.ui.text(placeholder="a number", label="your answer")
            for q in questions
        ]
    )


def feedback(question: Question, given) -> tuple[bool | None, str]:
    """(correct?, feedback) for one question's current answer."""
    if question.options:
        return check_choice(given, question.expected, question.options)
    return check_number(given, float(question.expected), rel_tol=question.rel_tol, hint=question.hint)


def questions_view(questions: list[Question], controls):
    """Every question with its control, feedback and revealable answer, numbered."""
    import marimo as mo

    return mo.vstack(
        [
            question_view(
                f"**{i}.** {q.prompt}", controls[i - 1], feedback(q, controls.value[i - 1]), q.answer
            )
            for i, q in enumerate(questions, start=1)
        ],
        gap=1.5,
    )
