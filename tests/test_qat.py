"""QAT (ptqlab.ptq.qat): torchao's fake quantizers against ptqlab's and torch's fake-quant forward, the STE
gradient, prepare/convert round trip, the counts and the disk cache of a short fine-tune."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import ptqlab.models.cache as cache_module
from ptqlab.core.affine import qparams_for
from ptqlab.core.spec import QuantSpec
from ptqlab.ptq import qat
from ptqlab.ptq.simulate import ActFakeQuant, evaluate_accuracy, quantize_weight, simulate


@settings(max_examples=25, deadline=None)
@given(bits=st.sampled_from([2, 3, 4, 8]), seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3))
def test_torchao_weight_fake_quant_is_ptqlab_quantize_weight_and_torch_per_channel(bits, seed, scale):
    g = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(3, 8, 3)
    conv.weight.data = torch.randn(conv.weight.shape, generator=g) * scale
    fq_conv = qat.FakeQuantizedConv2d.from_conv(conv, qat._torchao_config(bits))
    x = torch.randn(2, 3, 5, 5, generator=g)
    w_hat = fq_conv.weight_fake_quantizer(conv.weight.flatten(1)).view_as(conv.weight)
    expected = quantize_weight(conv.weight, qat.weight_spec(bits))
    assert torch.equal(w_hat, expected)
    q = fq_conv.weight_fake_quantizer
    oracle = torch.fake_quantize_per_channel_affine(
        conv.weight.detach().flatten(1),
        q.scale.flatten(),
        q.zero_point.flatten().int(),
        0,
        -(2 ** (bits - 1)),
        2 ** (bits - 1) - 1,
    )
    assert torch.equal(w_hat.flatten(1), oracle)
    assert torch.allclose(fq_conv(x), nn.functional.conv2d(x, expected, conv.bias), atol=1e-5 * scale)


def test_weight_gradient_is_the_clipped_straight_through_estimator():
    """dL/dw = dL/dŵ where round(w/s) lies on the grid, 0 where it is clamped (at 2 bits the largest positive
    weight of a channel: max|w|/s = 1.5 rounds to 2 > qmax = 1)."""
    conv = qat.FakeQuantizedConv2d.from_conv(nn.Conv2d(2, 4, 3), qat._torchao_config(2))
    x = torch.randn(3, 2, 6, 6)
    conv(x).square().sum().backward()
    w_hat = quantize_weight(conv.weight, qat.weight_spec(2)).requires_grad_(True)
    nn.functional.conv2d(x, w_hat, conv.bias.detach()).square().sum().backward()
    codes = torch.round(conv.weight.detach().flatten(1) / conv.weight_fake_quantizer.scale)
    on_grid = ((codes >= -2) & (codes <= 1)).view_as(conv.weight)
    assert not on_grid.all()
    assert torch.allclose(conv.weight.grad, w_hat.grad * on_grid, atol=1e-5)


def test_act_fake_quant_matches_simulate_forward_and_clips_the_gradient():
    spec = qat.A8
    x = torch.linspace(-1.0, 3.0, 401)
    qp = qparams_for(torch.tensor([0.0, 2.0]), spec)
    ste = qat.STEActFakeQuant(qp, spec)
    assert torch.equal(ste(x), ActFakeQuant(qp, spec)(x))
    x.requires_grad_(True)
    ste(x).sum().backward()
    codes = torch.round(x.detach() / qp.scale) + qp.zero_point
    inside = (codes >= 0) & (codes <= 255)
    assert 0 < int(inside.sum()) < len(x)
    assert torch.equal(x.grad, inside.float())


@pytest.mark.parametrize("bits", [1, 9])
def test_bits_out_of_range(bits):
    with pytest.raises(ValueError, match="bits"):
        qat._torchao_config(bits)


def test_bad_arguments():
    with pytest.raises(TypeError, match="bits"):
        qat._torchao_config("2")
    with pytest.raises(ValueError, match="digits model"):
        qat.run_qat("resnet", 2)


@pytest.mark.slow
def test_prepare_then_convert_without_training_is_identity_and_deploy_is_simulate():
    from ptqlab.models import digits_cnn, digits_split
    from ptqlab.ptq.folding import fold_batchnorm

    data = digits_split()
    folded = fold_batchnorm(digits_cnn(progress=False))
    prepared = qat.prepare_qat(folded, 2, data.x_train[:256])
    assert sum(isinstance(m, qat.FakeQuantizedConv2d) for m in prepared.modules()) == 3
    latent = qat.convert_qat(prepared)
    assert not any(isinstance(m, qat.FakeQuantizedConv2d) for m in latent.modules())
    for (n, a), (_, b) in zip(folded.state_dict().items(), latent.state_dict().items(), strict=True):
        assert torch.equal(a, b), n
    # the training network (W2 fake quant + frozen A8 ranges) and the deployed one agree before training
    deployed = qat.deploy(latent, 2, data.x_train[:256])
    reference = simulate(
        folded,
        QuantSpec(bits=2, granularity=qat.weight_spec(2).granularity),
        qat.A8,
        calibration=data.x_train[:256],
    )
    with torch.no_grad():
        assert torch.allclose(prepared(data.x_test), reference(data.x_test), atol=1e-5)
        assert torch.equal(deployed(data.x_test), reference(data.x_test))


@pytest.mark.slow
def test_short_qat_counts_and_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "cache_dir", lambda: tmp_path)
    recipe = {"epochs": 1, "lr": 3e-4, "weight_decay": 1e-4, "batch_size": 64}
    model, info = qat.qat_digits_model("mlp", 2, recipe=recipe)
    assert info["from_cache"] is False
    assert (info["epochs"], info["steps"], info["images_seen"], info["train_images"]) == (1, 23, 1437, 1437)
    from ptqlab.models import digits_split

    data = digits_split()
    assert evaluate_accuracy(model, data.x_test, data.y_test) == pytest.approx(info["test_accuracy"])
    again, info2 = qat.qat_digits_model("mlp", 2, recipe=recipe)
    assert info2["from_cache"] is True and info2["test_accuracy"] == info["test_accuracy"]
    assert len(list(tmp_path.glob("qat_mlp_w2a8_seed0_*.pt"))) == 1
    with torch.no_grad():
        assert torch.equal(model(data.x_test), again(data.x_test))
