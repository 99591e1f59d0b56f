"""Every number-bearing sentence of labs 01, 03, 05 and 06 agrees with what the lab measures: each test
calls the lessons function that writes the sentence and checks it against ptqlab's own values."""

import pytest

from ptqlab import choose_qparams, representable_range
from ptqlab.core.spec import QuantSpec
from ptqlab.lessons import affine_map as la
from ptqlab.lessons import questions


def test_lab01_symmetric_hint_states_the_grid_ptqlab_builds():
    spec = la.per_tensor_spec(4, True, True)
    g_lo, g_hi = (float(v) for v in representable_range(choose_qparams(-1.0, 2.5, spec), spec))
    hint = la.symmetric_hint(4, -1.0, 2.5)
    assert f"covers [{la.fmt(g_lo)}, {la.fmt(g_hi)}]" in hint  # [-2.66667, 2.33333]
    assert "the codes below -1 are never used" in hint and "below -2.5" not in hint
    assert f"max = 2.5 is clipped to {la.fmt(g_hi)}" in hint
    asym = choose_qparams(-1.0, 2.5, la.per_tensor_spec(4, True, False)).scale
    assert f"grows from {la.fmt(float(asym))} to {la.fmt(2.5 / 7.5)}" in hint


def test_lab01_hint_drops_clauses_that_do_not_hold():
    hint = la.symmetric_hint(4, -3.0, 2.0)  # max|x| is the min: the grid [-3.2, 2.8] clips nothing
    assert "is clipped" not in hint and "covers [-3.2, 2.8]" in hint


@pytest.mark.parametrize("bits", [2, 4, 8, 16])
def test_lab01_clip_note_only_when_the_max_is_really_clipped(bits):
    curve = la.affine_curve(la.per_tensor_spec(bits, True, True), -1.0, 2.5, n=2)
    note = la.symmetric_clip_note(curve)
    assert curve.grid_hi < 2.5 and f"clipped to {la.fmt(curve.grid_hi)}" in note
    assert f"top code stands for {2 ** (bits - 1) - 1}·scale" in note
    flipped = la.affine_curve(la.per_tensor_spec(bits, True, True), -2.5, 1.0, n=2)
    assert la.symmetric_clip_note(flipped) == ""  # the negative end fits, max 1 is well inside


def test_lab01_conventions_table_uses_both_divisors():
    rows = la.symmetric_conventions(la.per_tensor_spec(8, True, True), -1.0, 2.5)
    (full, d_full, s_full, top_full, n_full), (narrow, d_narrow, s_narrow, top_narrow, n_narrow) = rows
    assert (d_full, d_narrow, n_full, n_narrow) == (127.5, 127, 256, 255)
    assert s_full == pytest.approx(2.5 / 127.5) and s_narrow == pytest.approx(2.5 / 127)
    assert top_full == pytest.approx(127 * 2.5 / 127.5) and top_narrow == pytest.approx(2.5)
    text = la.symmetric_conventions_markdown(QuantSpec(bits=8), -1.0, 2.5)
    assert f"clipped by {la.fmt(2.5 - top_full)}" in text and "exactly on the grid" in text
    assert f"{127.5 / 127:.4f}× as large" in text


def test_lab01_questions_answers_are_ptqlabs():
    predict, numeric, where = questions.lab01_questions()
    assert predict.expected == questions.GROWS and "0.233333 → symmetric 0.333333" in predict.answer
    assert numeric.expected == pytest.approx(6 / 255) and "0.0235294" in numeric.answer
    assert where.expected in where.options
