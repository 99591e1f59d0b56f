"""A lab's tail: its self-check questions and its coding exercises, made in one cell and shown in the next.

    checks = labkit.Checks(questions.labNN_questions(), exercise.EXERCISES)  # cell 1: the controls
    check_controls = checks.controls                                         # (bound to a global name)
    checks.view(check_controls)                                              # cell 2: what they show

Each exercise's check button counts its clicks: a new click checks the editor's code once (the verdict is
kept while the code is unchanged, so answering a question does not run the student's code again); editing
the code clears the verdict until the next click.
"""

from __future__ import annotations

from collections.abc import Sequence

import marimo as mo

from ptqlab.labkit.exercise import Exercise, Verdict
from ptqlab.labkit.questions import FEEDBACK_KIND, Question, answer_controls, questions_view

CHECK_LABEL = "Check my code"
SELF_CHECK_HEADING = "## Self-check"


def _count(clicks: int) -> int:
    return clicks + 1


def exercise_view(exercise: Exercise, editor, button, verdict: Verdict | None, **context):
    """The task, the editor, the check button, the verdict, a reference solution behind a reveal."""
    shown = verdict or Verdict(None, f"Write your code above, then press **{CHECK_LABEL}**.")
    return mo.vstack(
        [
            mo.md(exercise.prompt_markdown(**context)),
            editor,
            button,
            mo.callout(mo.md(shown.message), kind=FEEDBACK_KIND[shown.ok]),
            mo.accordion({"Reveal a reference solution": mo.md(f"```python\n{exercise.solution}```")}),
        ]
    )


class Checks:
    """The self-checks and coding exercises of one lab, and the verdicts already given."""

    def __init__(self, questions: Sequence[Question], exercises: Sequence[Exercise]):
        self.questions = tuple(questions)
        self.exercises = tuple(exercises)
        self.controls = mo.ui.dictionary(
            {
                "answers": answer_controls(list(self.questions)),
                "editors": mo.ui.array(
                    [
                        mo.ui.code_editor(value=e.starter, language="python", min_height=e.editor_height)
                        for e in self.exercises
                    ]
                ),
                "checks": mo.ui.array(
                    [mo.ui.button(value=0, on_click=_count, label=CHECK_LABEL) for _ in self.exercises]
                ),
            }
        )
        self._checked: dict[int, tuple[int, str, Verdict]] = {}  # exercise -> (clicks, source, verdict)

    def verdict(self, index: int, source: str, clicks: int, **context) -> Verdict | None:
        """The verdict on ``source`` after ``clicks`` clicks: checked once per new click, None while unchecked."""
        last = self._checked.get(index)
        if clicks and (last is None or last[0] != clicks):
            last = (clicks, source, self.exercises[index].run_check(source, **context))
            self._checked[index] = last
        return last[2] if last is not None and last[1] == source else None

    def view(self, controls, **context):
        """Every question (numbered, with feedback and a revealable answer), then every exercise; ``context``
        is the lab state an exercise's prompt or checker reads. Values are read from ``controls``; the
        elements shown are this object's own."""
        value, shown = controls.value, self.controls
        answers = value.get("answers") or [None] * len(self.questions)
        parts = []
        if self.questions:
            parts += [mo.md(SELF_CHECK_HEADING), questions_view(self.questions, shown["answers"], answers)]
        for i, exercise in enumerate(self.exercises):
            verdict = self.verdict(i, value["editors"][i], value["checks"][i], **context)
            parts.append(exercise_view(exercise, shown["editors"][i], shown["checks"][i], verdict, **context))
        return mo.vstack(parts, gap=2)
