"""Lab 05's glitched-pool study (ptqlab.lessons.calibration_selection): the pool, the table and the note
state exactly what was measured."""

import pytest
import torch

from ptqlab.lessons.sensitivity import numbers as sensitivity
from ptqlab.lessons.sensitivity import selection as cs
from ptqlab.lessons.sensitivity.numbers import CalibrationPoint


def test_with_glitches_scales_exactly_the_chosen_share():
    x = torch.rand(200, 1, 8, 8)
    pool, glitched = cs.with_glitches(x, share=0.05, gain=6.0, seed=3)
    assert len(glitched) == 10 and torch.equal(glitched, glitched.sort().values)
    assert torch.equal(pool[glitched], x[glitched] * 6.0)
    normal = torch.ones(200, dtype=torch.bool)
    normal[glitched] = False
    assert torch.equal(pool[normal], x[normal]) and torch.equal(x, x.clone())  # the input is not modified
    assert torch.equal(cs.with_glitches(x, share=0.05, seed=3)[1], glitched)  # seeded
    assert len(cs.with_glitches(x, share=0.0)[1]) == 0
    with pytest.raises(ValueError, match="share"):
        cs.with_glitches(x, share=1.5)
    with pytest.raises(ValueError, match="non-empty"):
        cs.with_glitches(torch.empty(0, 4))


def _points(accuracy):
    return [
        CalibrationPoint(m, n, s, accuracy(m, n, s)) for m in cs.METHODS for n in cs.SIZES for s in cs.SEEDS
    ]


def test_table_and_note_read_the_measurements():
    clean = _points(lambda m, n, s: 0.99 - 0.001 * s)
    minmax = _points(lambda m, n, s: {"random": 0.95, "stratified": 0.97, "kmeans": 0.85}[m] - 0.01 * s)
    percentile = _points(lambda m, n, s: 0.98)
    picks = {(m, n): {"random": 1, "stratified": 0, "kmeans": 3}[m] for m in cs.METHODS for n in cs.SIZES}
    table = cs.glitch_table(clean, minmax, percentile, picks)
    assert "| kmeans | 16 | 98.9 (98.8–99.0) | 84.0 (83.0–85.0) | 98.0 (98.0–98.0) | 3 of 3 |" in table
    note = cs.glitch_note(clean, minmax, percentile, picks)
    images = round(0.002 * sensitivity.test_images())
    assert f"within {images} test images (98.8–99.0 %)" in note
    assert "the worst run falls to 83.0 % (kmeans, n = 4)" in note
    assert "**stratified** keeps 96.0 %" in note and "**kmeans** drops to 84.0 %" in note
    assert "0 of 9 stratified sets, 9 of 9 kmeans sets" in note
    assert f"{100 * (1 - 0.98**64):.0f} % at n = 64" in note


def test_glitch_picks_count_the_sets_holding_a_glitched_sample():
    points = [
        CalibrationPoint("random", 4, 0, 0.9, (1, 2, 3, 4)),
        CalibrationPoint("random", 4, 1, 0.9, (5, 6, 7, 8)),
        CalibrationPoint("kmeans", 4, 0, 0.8, (7, 9, 10, 11)),
    ]
    assert cs.glitch_picks(points, torch.tensor([3, 7])) == {("random", 4): 2, ("kmeans", 4): 1}
    assert cs.glitch_picks(points, torch.tensor([99])) == {("random", 4): 0, ("kmeans", 4): 0}


def test_a_second_observer_reuses_the_recorded_sets(monkeypatch):
    """``same_sets_as`` calibrates with the samples recorded on the earlier points; nothing is selected again."""
    from ptqlab.labkit.models import lab_model
    from ptqlab.models import digits_split

    data = digits_split()
    kwargs = dict(sizes=(4,), methods=("random", "kmeans"), seeds=(0,))
    args = (lab_model("mlp"), data.x_train[:200], data.y_train[:200], data.x_test, data.y_test)
    first = sensitivity.accuracy_vs_calibration(*args, **kwargs)
    assert [len(p.indices) for p in first] == [4, 4]

    def no_selection(*_, **__):
        raise AssertionError("selected again")

    monkeypatch.setattr(sensitivity, "select_calibration", no_selection)
    monkeypatch.setattr(sensitivity, "penultimate_features", no_selection)
    again = sensitivity.accuracy_vs_calibration(*args, **kwargs, same_sets_as=first)
    assert [p.indices for p in again] == [p.indices for p in first]
    assert [p.accuracy for p in again] == [p.accuracy for p in first]  # same sets, same observer: same result
