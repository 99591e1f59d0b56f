"""Lab 07 survives its widgets' extremes with the run button pressed (values injected through app.run(defs=...))."""

import pytest
from lab_support import checked_code, run_with_values

from ptqlab.lessons.beyond_rtn import exercise as ebias
from ptqlab.lessons.beyond_rtn import smoothquant_exercise as esmooth


@pytest.mark.slow
@pytest.mark.parametrize(
    "model,bits,granularity,group,algorithms,layer",
    [
        (
            "mlp",
            8,
            "per-group",
            128,
            ["bias_correction", "cle", "adaround", "gptq", "awq", "smoothquant"],
            "fc2",
        ),
        ("cnn", 2, "per-tensor", 16, [], "conv1"),
        ("cnn", 3, "per-group", 16, ["gptq", "adaround"], "conv2"),
    ],
)
def test_lab07_extremes(model, bits, granularity, group, algorithms, layer):
    values = dict(
        model_picker=model,
        bits=bits,
        granularity_picker=granularity,
        group_size=group,
        algorithm_picker=algorithms,
        run_button=True,
        layer_picker=layer,
        check_controls=checked_code(ebias.BIAS_SOLUTION, esmooth.SMOOTH_STARTER),
    )
    run = run_with_values("07_beyond_rtn", values)
    comparison = run.defs["comparison"]
    assert run.defs["origin"] == "your settings"
    assert [r.algorithm for r in comparison.rows] == ["rtn", *algorithms]
    assert "All correct" in run.text and "fill in every" in run.text  # exercise 1 solved, 2 not
    assert "Recap" in run.text and "Reveal the answer" in run.text
    assert f"RTN's test accuracy is {100 * comparison.rows[0].score:.1f} %" in run.text
    if granularity == "per-group":  # fc1 (K=64) or conv1 (K=9) cannot hold a group: kept in float, said so
        assert comparison.skipped and "Kept in float" in run.text
    if bits == 8:  # nothing left to rescue: every algorithm within a point of RTN
        assert all(abs(r.score - comparison.rows[0].score) <= 0.011 for r in comparison.rows)
