"""Labs 03 and 05 survive their widgets' extremes (values injected through app.run(defs=...))."""

import pytest
from lab_support import run_with_values


@pytest.mark.slow
@pytest.mark.parametrize(
    "model,folded,layer,bits,group,symmetric,act_bits",
    [
        ("cnn", True, "conv1", 2, 4, False, 2),  # K = 9: group size falls back to 3
        ("mlp", True, "fc4", 8, 128, True, 8),
        ("minilm", False, "bert.encoder.layer.5.intermediate.dense", 3, 128, False, 5),
    ],
)
def test_lab03_extremes(model, folded, layer, bits, group, symmetric, act_bits):
    values = dict(
        model_picker=model,
        fold_switch=folded,
        layer_picker=layer,
        bits=bits,
        group_size=group,
        symmetric=symmetric,
        act_bits=act_bits,
    )
    text = run_with_values("03_schemes", values).text
    if model == "cnn":
        assert "Group size used: <strong>3</strong>" in text
    assert f"A{act_bits}" in text


@pytest.mark.slow
@pytest.mark.parametrize(
    "model,granularity,budget_kib", [("mlp", "per-tensor", 0.0), ("cnn", "per-channel", 1e6)]
)
def test_lab05_extremes(model, granularity, budget_kib):
    values = dict(model_picker=model, granularity_picker=granularity, budget=budget_kib)
    text = run_with_values("05_sensitivity", values).text
    if budget_kib == 0.0:
        assert "No configuration on the greedy path fits" in text
    else:
        assert "Chosen:" in text
