"""Whole-model fake-quant: copies not mutations, exact BN folding, skip lists, accuracy and MiniLM cosine."""

import pytest
import torch
from torch import nn

from ptqlab import PerChannel, PerGroup, PerTensor, QuantSpec
from ptqlab.models import digits_cnn, digits_mlp, load_minilm
from ptqlab.models.data import digits_split, sentences
from ptqlab.ptq.simulate import (
    LayerSpec,
    embedding_agreement,
    evaluate_accuracy,
    fold_batchnorm,
    foldable_pairs,
    simulate,
)

W8 = QuantSpec(bits=8, granularity=PerChannel(0))
A8 = QuantSpec(bits=8, signed=False, symmetric=False)


@pytest.fixture(scope="module")
def data():
    return digits_split()


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def model(request):
    return {"mlp": digits_mlp, "cnn": digits_cnn}[request.param]()


def _snapshot(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_simulate_returns_a_copy_and_leaves_the_original_untouched(model, data):
    before = _snapshot(model)
    q = simulate(model, QuantSpec(bits=3), A8, calibration=data.x_train[:64], fold_bn=True)
    assert q is not model
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(not m._forward_pre_hooks for m in model.modules())
    assert any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in model.modules())
    assert set(q.ptq_plan) == {n for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)}


def test_int8_per_channel_is_within_half_a_point_of_fp32(model, data):
    fp32 = evaluate_accuracy(model, data.x_test, data.y_test)
    w8 = evaluate_accuracy(simulate(model, W8), data.x_test, data.y_test)
    w8a8 = evaluate_accuracy(
        simulate(model, W8, A8, calibration=data.x_train[:256], fold_bn=True), data.x_test, data.y_test
    )
    assert abs(w8 - fp32) <= 0.005 and abs(w8a8 - fp32) <= 0.005, (fp32, w8, w8a8)


def test_batchnorm_folding_is_exact_in_eval_mode(model, data):
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in folded.modules())
    assert len(foldable_pairs(model)) == 3 and foldable_pairs(folded) == []
    with torch.no_grad():
        ref, out = model(data.x_test), folded(data.x_test)
    assert torch.allclose(out, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))
    assert any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in model.modules())  # original kept


def test_weights_land_on_the_grid_and_skip_is_respected(data):
    mlp = digits_mlp()
    q = simulate(mlp, QuantSpec(bits=4, granularity=PerChannel(0)), skip={"fc1", "fc4"})
    assert torch.equal(q.fc1.weight, mlp.fc1.weight) and torch.equal(q.fc4.weight, mlp.fc4.weight)
    assert set(q.ptq_plan) == {"fc2", "fc3"}
    assert max(len(row.unique()) for row in q.fc2.weight) <= 16
    assert not torch.equal(q.fc2.weight, mlp.fc2.weight)
    assert torch.equal(q.fc2.bias, mlp.fc2.bias)  # biases stay float


def test_per_layer_specs_and_activation_grid(data):
    mlp = digits_mlp()
    q = simulate(
        mlp,
        QuantSpec(bits=8),
        QuantSpec(bits=4, signed=False, symmetric=False),
        calibration=data.x_train[:128],
        per_layer={"fc2": QuantSpec(bits=2, granularity=PerChannel(0)), "fc3": LayerSpec(None, None)},
    )
    assert max(len(row.unique()) for row in q.fc2.weight) <= 4
    assert "fc3" not in q.ptq_plan and not hasattr(q.fc3, "input_quantizer")
    seen = []
    q.fc2.register_forward_hook(lambda m, a, o: seen.append(a[0]))
    with torch.no_grad():
        q(data.x_test[:50])
    assert len(seen[0].unique()) <= 16  # the layer really sees a 4-bit input
    assert float(seen[0].min()) == 0.0  # asymmetric uint4 over a post-ReLU range keeps 0 exact


def test_group_wise_weights_on_linear_and_conv():
    cnn = digits_cnn()
    q = simulate(cnn, QuantSpec(bits=4, granularity=PerGroup(16)), skip={"conv1"})
    blocks = q.conv2.weight.flatten(1).reshape(32, -1, 16)  # 144 inputs · 3×3 = 9 groups of 16 per channel
    assert max(len(b.unique()) for b in blocks.reshape(-1, 16)) <= 16
    with pytest.raises(ValueError, match="group_size=16 does not divide"):
        simulate(cnn, QuantSpec(bits=4, granularity=PerGroup(16)))  # conv1 has 9 inputs per channel


def test_clear_errors(data):
    mlp = digits_mlp()
    with pytest.raises(ValueError, match="calibration"):
        simulate(mlp, W8, A8)
    with pytest.raises(ValueError, match="no layer named"):
        simulate(mlp, W8, skip={"fc9"})
    with pytest.raises(TypeError, match="BatchNorm1d"):
        simulate(mlp, W8, per_layer={"bn1": W8})
    with pytest.raises(TypeError, match="single str"):
        simulate(mlp, W8, skip="fc1")
    with pytest.raises(ValueError, match="per-group"):
        simulate(mlp, W8, QuantSpec(granularity=PerGroup(8)), calibration=data.x_train[:8])
    with pytest.raises(ValueError, match="per-channel observer"):
        simulate(mlp, W8, QuantSpec(granularity=PerChannel(-1)), calibration=data.x_train[:8])
    with pytest.raises(ValueError, match="calibration set is empty"):
        simulate(mlp, W8, A8, calibration=[])
    with pytest.raises(TypeError, match="weight_spec"):
        simulate(mlp, 8)
    with pytest.raises(ValueError, match="aligned"):
        evaluate_accuracy(mlp, data.x_test, data.y_test[:5])


def test_embedding_agreement_formulas():
    e = torch.nn.functional.normalize(torch.randn(20, 8), dim=1)
    assert embedding_agreement(e, e) == pytest.approx((1.0, 1.0, 1.0))
    rotation = torch.linalg.qr(torch.randn(8, 8))[0]  # distances kept, directions changed
    rotated = embedding_agreement(e, e @ rotation)
    assert rotated.mean_cosine < 0.9 and rotated.neighbour_agreement == 1.0
    assert embedding_agreement(e, -e).mean_cosine == pytest.approx(-1.0)
    shuffled = embedding_agreement(e, e[torch.randperm(20)])
    assert shuffled.neighbour_agreement < 0.5
    with pytest.raises(ValueError, match="N >= 2"):
        embedding_agreement(e[:1], e[:1])


@pytest.mark.slow
def test_minilm_weight_schemes_rank_as_measured():
    model = load_minilm()
    text = sentences()[::3]  # 107 sentences across all topics
    ref = model.encode(text)
    cos = {}
    for label, spec in {
        "int8 per-tensor": QuantSpec(bits=8, granularity=PerTensor()),
        "int8 per-channel": QuantSpec(bits=8, granularity=PerChannel(0)),
        "int4 per-tensor": QuantSpec(bits=4, granularity=PerTensor()),
        "int4 group-32": QuantSpec(bits=4, granularity=PerGroup(32)),
    }.items():
        cos[label] = embedding_agreement(ref, simulate(model, spec).encode(text))
    # measured on all 320 sentences: 0.9732, 0.9996, 0.430, 0.965
    assert cos["int8 per-channel"].mean_cosine >= 0.999
    assert cos["int8 per-channel"].neighbour_agreement >= 0.9
    assert 0.9 < cos["int8 per-tensor"].mean_cosine < 0.99
    assert cos["int4 per-tensor"].mean_cosine < 0.7
    assert 0.9 < cos["int4 group-32"].mean_cosine < cos["int8 per-channel"].mean_cosine
    assert all(not m._forward_pre_hooks for m in model.modules())


@pytest.mark.slow
def test_minilm_static_w8a8_with_tokenized_calibration_batches():
    model = load_minilm()
    text = sentences()
    q = simulate(model, W8, A8, calibration=model.batches(text[1::8], batch_size=20))
    assert len(q.ptq_plan) == 36 and all(hasattr(q.get_submodule(n), "input_quantizer") for n in q.ptq_plan)
    agreement = embedding_agreement(model.encode(text[::8]), q.encode(text[::8]))
    assert agreement.mean_cosine > 0.98  # measured 0.994 (80 calibration sentences, all 320 evaluated)


def test_bench_models_table_lists_every_digits_scheme():
    from ptqlab.bench.accuracy import DIGITS_SCHEMES, digits_table
    from ptqlab.cli.main import BENCHMARKS

    assert BENCHMARKS["accuracy"][0] == "ptqlab.cli.bench:accuracy"
    lines = digits_table()
    assert len(lines) == 1 + 2 * (1 + len(DIGITS_SCHEMES))
    assert lines[1].startswith("mlp fp32") and "%" in lines[1]
