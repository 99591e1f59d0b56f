"""W8A16Linear / W4A16Linear: the stored weights are ptqlab's affine quantizer (and torch's fake-quant op) with
the fp16 scale they store, int4 bytes are ptqlab.core.packing's layout, and replace_linear swaps every Linear."""

import pytest
import torch
from torch import nn

from ptqlab.backends.weight_only_linear import W4A16Linear, W8A16Linear, WeightOnlyLinear, replace_linear
from ptqlab.core.affine import QParams, fake_quantize, qparams_for
from ptqlab.core.packing import pack
from ptqlab.core.spec import PerChannel, PerGroup, QuantSpec


def linear(out_f=24, in_f=64, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(in_f, out_f)


def expected_weight(w, spec):
    qp = qparams_for(w, spec)
    qp = QParams(qp.scale.to(torch.float16).float(), qp.zero_point)
    return fake_quantize(w, qp, spec)


@pytest.mark.parametrize("kind,bits", [(W8A16Linear, 8), (W4A16Linear, 4)])
@pytest.mark.parametrize("group_size", [None, 16])
def test_dequantized_weight_is_the_affine_quantizer(kind, bits, group_size):
    lin = linear()
    layer = kind.from_linear(lin, group_size)
    grain = PerChannel(0) if group_size is None else PerGroup(group_size, axis=1)
    w_hat = expected_weight(lin.weight.detach(), QuantSpec(bits, granularity=grain))
    assert torch.equal(layer.dequantized_weight(), w_hat)
    x = torch.randn(5, 64)
    assert torch.allclose(layer(x), nn.functional.linear(x, w_hat, lin.bias), atol=1e-6)


def test_int8_per_channel_equals_torch_fake_quant_op():
    lin = linear()
    layer = W8A16Linear.from_linear(lin)
    scale = layer.scale.float().reshape(-1)
    oracle = torch.fake_quantize_per_channel_affine(
        lin.weight.detach(), scale, torch.zeros(24, dtype=torch.int32), 0, -128, 127
    )
    assert torch.equal(layer.dequantized_weight(), oracle)


def test_int4_bytes_are_the_packing_layout_and_odd_widths_work():
    lin = linear(in_f=63)
    layer = W4A16Linear.from_linear(lin)
    codes = layer.weight_codes().long()
    assert codes.min() >= -8 and codes.max() <= 7
    for row in range(3):
        assert torch.equal(layer.packed[row], pack(codes[row] + 8, 4))


def test_storage_is_about_a_quarter_and_an_eighth():
    lin = linear(256, 512)
    fp32 = 256 * 512 * 4
    w8, w4 = W8A16Linear.from_linear(lin), W4A16Linear.from_linear(lin, group_size=128)
    assert w8.storage_bytes() == 256 * 512 + 256 * 2 + 256 * 4
    assert w4.storage_bytes() == 256 * 256 + 256 * 4 * 2 + 256 * 4
    assert w4.storage_bytes() < fp32 / 7


def test_replace_linear_swaps_every_linear_and_keeps_the_original():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Sequential(nn.Linear(16, 4)))
    swapped = replace_linear(model, bits=4, group_size=8)
    assert [type(m) for m in swapped.modules() if isinstance(m, nn.Linear | WeightOnlyLinear)] == [
        W4A16Linear
    ] * 2
    assert all(type(m) is not W4A16Linear for m in model.modules())
    kept = replace_linear(model, bits=8, skip=("2.0",))
    assert type(kept[0]) is W8A16Linear and type(kept[2][0]) is nn.Linear


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"^group_size=32 does not divide"):
        W4A16Linear.from_linear(linear(in_f=48), group_size=32)
    with pytest.raises(ValueError, match=r"^bits must be 4 or 8"):
        replace_linear(linear(), bits=3)
    with pytest.raises(TypeError, match=r"^linear must be an nn.Linear"):
        W8A16Linear.from_linear(nn.Conv2d(1, 1, 1))


@pytest.mark.slow
def test_digits_mlp_keeps_its_accuracy():
    from ptqlab.models import digits_mlp
    from ptqlab.models.data import digits_split

    split = digits_split()
    model = digits_mlp(progress=False).eval()
    with torch.inference_mode():
        fp32 = (model(split.x_test).argmax(1) == split.y_test).float().mean()
        for bits, group in [(8, None), (4, 16)]:
            q = replace_linear(model, bits=bits, group_size=group)
            assert (q(split.x_test).argmax(1) == split.y_test).float().mean() >= fp32 - 0.02
