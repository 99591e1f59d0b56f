"""Self-check questions: a typed number or a picked option, checked against a value ptqlab computed, with feedback."""

from __future__ import annotations

from typing import NamedTuple

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


def questions_view(questions: list[Question], controls, values=None):
    """Every question with its control, feedback and revealable answer, numbered; ``values`` are the controls'
    current values (``controls.value`` when None)."""
    values = controls.value if values is None else values
    import marimo as mo

    return mo.vstack(
        [
            question_view(f"**{i}.** {q.prompt}", controls[i - 1], feedback(q, values[i - 1]), q.answer)
            for i, q in enumerate(questions, start=1)
        ],
        gap=1.5,
    )


def question_block(question: Question, control):
    """One self-check on its own: the prompt, its control, the feedback on the control's value, the answer."""
    return question_view(question.prompt, control, feedback(question, control.value), question.answer)
