"""Lab 04 / ``ptqlab bench models`` measure quality on the whole evaluation set at every batch size."""

import pytest
import torch
from torch import nn

from ptqlab.bench.models import load_bench_model, run_whole_set


class _ShapeRecorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.shapes = []

    def forward(self, x, mask):
        self.shapes.append((tuple(x.shape), tuple(mask.shape)))
        return x * 2 + mask


@pytest.mark.parametrize("n, batch", [(360, 64), (360, 1), (360, 360), (360, 512), (7, 3)])
def test_every_row_once_and_every_call_the_same_shape(n, batch):
    x = torch.arange(n * 2, dtype=torch.float32).reshape(n, 2)
    mask = torch.ones(n, 2)
    m = _ShapeRecorder()
    out = run_whole_set(m, (x, mask), batch)
    assert torch.equal(out, x * 2 + mask)  # every row, in order, padded outputs dropped
    assert {s for s in m.shapes} == {((batch, 2), (batch, 2))}
    assert len(m.shapes) == -(-n // batch)


@pytest.mark.slow
def test_digits_quality_is_the_whole_test_set_at_every_batch():
    """Issue 14: at batch 64 only 320 of the 360 test images were scored (99.69 % vs lab 05's 99.72 %)."""
    from ptqlab.models.data import digits_split
    from ptqlab.ptq.simulate import evaluate_accuracy

    bm = load_bench_model("mlp")
    split = digits_split(0)
    expected = evaluate_accuracy(bm.model, split.x_test, split.y_test)
    assert len(split.y_test) == 360 and "all 360 test images" in bm.eval_set
    for batch in (1, 64, 100, 512):
        q = bm.quality(bm.model, batch)
        assert q["samples"] == 360.0
        assert q["accuracy"] == pytest.approx(expected, abs=1e-6)
