"""The machinery every lab shares, one floor below the lessons (it imports no lesson).

runner     the code runner: a student's source runs in a child process with a time limit
exercise   a coding exercise (title, prompt, starter, solution, checker) and the helpers checkers share
questions  self-check questions: a typed number or a picked option, with feedback
checks     a lab's tail: its self-checks and coding exercises, made in one cell and shown in the next
layout     a control with its "Try this" hint, marimo's progress bar
models     the labs' trained models, loaded once per process
vega       browser-drawn Vega-Lite charts (the slider-driven figures)
raster     a matplotlib figure as a PNG image (the figures drawn once per model or button press)

A notebook imports ``from ptqlab import labkit`` and uses the names below.
"""

from ptqlab.labkit.checks import Checks
from ptqlab.labkit.exercise import Exercise, Verdict
from ptqlab.labkit.layout import marimo_progress, with_hint
from ptqlab.labkit.questions import Question, question_block

__all__ = [
    "Checks",
    "Exercise",
    "Question",
    "Verdict",
    "marimo_progress",
    "question_block",
    "with_hint",
]
