"""Integer-only Linear/Conv2d against torch.ao's x86 kernels, output code for output code.

Activation codes stay in [0, 127] (7 bits, torch.ao's reduce_range): on x86 CPUs without VNNI fbgemm sums
pairs of u8×s8 products in int16 (vpmaddubsw), which saturates for full 8-bit codes, so the engine itself is
only exact on 7-bit activations there. fbgemm requantizes in float32 with a float bias and rounds ties to
even; we use an int32 bias and a fixed-point multiplier rounding ties up. So we compare on the outputs whose
exact real value is farther from a rounding boundary than those differences can move it (tie-free), and pin
the rest: at most one code apart, and an exact tie resolved differently (test_exact_tie_is_pinned).
"""

from fractions import Fraction

import pytest
import torch
import torch.ao.nn.quantized as nnq
from hypothesis import given, settings
from hypothesis import strategies as st

from ptqlab.backends.integer_only import IntegerConv2d, IntegerLinear, conv2d_from_torch_ao
from ptqlab.core.fixed_point import (
    exact_requantize_reference,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
)


@pytest.fixture(autouse=True)
def x86_engine():
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = "x86"
    yield
    torch.backends.quantized.engine = previous


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-9, max_value=1e4, allow_nan=False))
def test_quantize_multiplier_mantissa_and_error(m):
    m0, n = quantize_multiplier(m)
    assert 2**30 <= int(m0) < 2**31
    assert abs(Fraction(int(m0), 2 ** int(n)) - Fraction(m)) <= Fraction(m) / 2**31


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**31), 2**31 - 1), st.floats(min_value=1e-6, max_value=0.999))
def test_fixed_point_rounding_is_round_half_up_of_the_exact_product(acc, m):
    m0, n = quantize_multiplier(m)
    got = int(multiply_by_quantized_multiplier(torch.tensor([acc]), m0, n))
    exact = Fraction(acc * int(m0), 2 ** int(n))
    assert got == exact_requantize_reference(acc, int(m0), int(n))
    assert got == (exact + Fraction(1, 2)).__floor__()


def weight_codes(out_f, in_f, per_channel, gen, zero_point=0):
    w = torch.randn(out_f, in_f, generator=gen) * 0.1
    if per_channel:
        scales = w.abs().amax(1) / 127.5
        return torch.quantize_per_channel(w, scales, torch.zeros(out_f, dtype=torch.long), 0, torch.qint8)
    return torch.quantize_per_tensor(w, float(w.abs().max()) / 120, zero_point, torch.qint8)


def tie_free_mask(real_codes, multiplier_max):
    """Outputs whose exact value (engine's float formula) is farther than the bias rounding error + float32
    slop from a half-integer: there fbgemm and the fixed-point path must agree."""
    distance = (real_codes - torch.floor(real_codes) - 0.5).abs()
    return distance > 0.5 * multiplier_max + 1e-3


def engine_real_codes(x_q, zx, sx, w_q, w_scale, w_zp, bias, sy):
    centered = (x_q.double() - zx) @ (w_q.double() - w_zp.double()[:, None]).T
    return (centered * sx * w_scale.double() + bias.double()) / sy


@pytest.mark.parametrize("per_channel,w_zp,relu", [(True, 0, False), (False, 3, False), (True, 0, True)])
def test_linear_equals_torch_ao_on_tie_free_outputs(per_channel, w_zp, relu):
    gen = torch.Generator().manual_seed(13 + w_zp + relu)
    qw = weight_codes(48, 200, per_channel, gen, w_zp)
    bias = torch.randn(48, generator=gen)
    sx, zx, sy, zy = 0.06, 60, 0.05, 100
    qx = torch.quantize_per_tensor(torch.randn(64, 200, generator=gen).clamp(-3.5, 3.5), sx, zx, torch.quint8)
    op = torch.ops.quantized.linear_relu if relu else torch.ops.quantized.linear
    ref = op(qx, torch.ops.quantized.linear_prepack(qw, bias), sy, zy).int_repr().long()
    layer = IntegerLinear.from_quantized(
        qw, bias, input_scale=sx, input_zero_point=zx, output_scale=sy, output_zero_point=zy, relu=relu
    )
    got = layer(qx.int_repr())
    w_q, w_scale, w_zp_t = layer.weight_q, layer.weight_scale, layer.weight_zero_point
    mask = tie_free_mask(
        engine_real_codes(qx.int_repr(), zx, sx, w_q, w_scale, w_zp_t, bias, sy), layer.multiplier.max()
    )
    assert mask.float().mean() > 0.9
    assert torch.equal(got[mask], ref[mask])
    assert (got - ref).abs().max() <= 1  # the pinned difference off the tie-free set


@pytest.mark.parametrize(
    "stride,padding,dilation,relu", [(1, 1, 1, False), (2, 1, 1, True), (1, 2, 2, False)]
)
def test_conv2d_equals_torch_ao_on_tie_free_outputs(stride, padding, dilation, relu):
    gen = torch.Generator().manual_seed(7 + stride + padding)
    w = torch.randn(8, 3, 3, 3, generator=gen) * 0.2
    qw = torch.quantize_per_channel(
        w, w.abs().amax((1, 2, 3)) / 127.5, torch.zeros(8, dtype=torch.long), 0, torch.qint8
    )
    bias = torch.randn(8, generator=gen)
    module = (torch.ao.nn.intrinsic.quantized.ConvReLU2d if relu else nnq.Conv2d)(
        3, 8, 3, stride=stride, padding=padding, dilation=dilation
    )
    module.set_weight_bias(qw, bias)
    module.scale, module.zero_point = 0.04, 90
    qx = torch.quantize_per_tensor(
        torch.randn(4, 3, 12, 12, generator=gen).clamp(-3.0, 3.0), 0.05, 62, torch.quint8
    )
    ref = module(qx).int_repr().long()
    layer = conv2d_from_torch_ao(module, 0.05, 62)
    got = layer(qx.int_repr())
    centered = torch.nn.functional.conv2d(
        qx.dequantize().double(), qw.dequantize().double(), bias.double(), stride, padding, dilation
    )
    mask = tie_free_mask(centered / 0.04, float(layer.multiplier.max()))
    assert mask.float().mean() > 0.9
    assert torch.equal(got[mask], ref[mask])
    assert (got - ref).abs().max() <= 1


def test_exact_tie_is_pinned():
    """acc · M = 5 · 1/2 = 2.5 exactly: fbgemm's nearbyint gives 2 (ties to even), fixed point gives 3 (ties up)."""
    qw = torch.quantize_per_tensor(torch.tensor([[1.0]]), 1.0, 0, torch.qint8)
    qx = torch.quantize_per_tensor(torch.tensor([[5.0]]), 1.0, 0, torch.quint8)
    ref = torch.ops.quantized.linear(qx, torch.ops.quantized.linear_prepack(qw, None), 2.0, 0).int_repr()
    layer = IntegerLinear.from_quantized(
        qw, None, input_scale=1.0, input_zero_point=0, output_scale=2.0, output_zero_point=0
    )
    assert int(ref) == 2
    assert int(layer(qx.int_repr())) == 3


def test_expanded_cross_terms_equal_the_centered_int64_product():
    gen = torch.Generator().manual_seed(1)
    qw = weight_codes(16, 300, False, gen, zero_point=-5)
    layer = IntegerLinear.from_quantized(
        qw, torch.randn(16, generator=gen), input_scale=0.02, input_zero_point=131, output_scale=0.1,
        output_zero_point=128,
    )  # fmt: skip
    x_q = torch.randint(0, 256, (32, 300), generator=gen)
    centered = (x_q - 131) @ (layer.weight_q - layer.weight_zero_point[:, None]).T + layer.bias_q
    assert torch.equal(layer.accumulate(x_q), centered)
    terms = layer.accumulator_terms(x_q)
    assert torch.equal(terms.weight_zero_point_term, -5 * x_q.sum(1, keepdim=True).expand(-1, 16))


def make_layer(in_features, bias=None, input_scale=0.1):
    w = torch.full((1, in_features), 127, dtype=torch.int8).float()
    qw = torch.quantize_per_tensor(w, 1.0, 0, torch.qint8)
    return IntegerLinear.from_quantized(
        qw, bias, input_scale=input_scale, input_zero_point=0, output_scale=1.0, output_zero_point=0
    )


def test_accumulator_overflow_is_detected():
    layer = make_layer(70_000)  # 70000 · 255 · 127 > 2^31 - 1
    with pytest.raises(ValueError, match=r"^x_q: int32 accumulator overflow"):
        layer(torch.full((1, 70_000), 255))
    assert int(layer(torch.full((1, 70_000), 1))) == 255  # small codes fit: clamps to the top code


def test_bias_overflow_and_bad_codes_are_rejected():
    with pytest.raises(ValueError, match=r"^bias: int32 accumulator overflow"):
        make_layer(4, bias=torch.tensor([1e9]), input_scale=1e-3)
    layer = make_layer(4)
    with pytest.raises(ValueError, match=r"^x_q holds codes in \[0, 256\], outside \[0, 255\]"):
        layer(torch.tensor([[0, 1, 2, 256]]))
    with pytest.raises(TypeError, match=r"^x_q must be an integer tensor"):
        layer(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"^x_q must have shape \(N, 4\)"):
        layer(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^multiplier must lie in"):
        quantize_multiplier(0.0)
    with pytest.raises(ValueError, match=r"^qmin"):
        requantize(torch.tensor([1]), torch.tensor([2**30]), torch.tensor([31]), 0, qmin=10, qmax=5)


def test_conv_padding_uses_the_input_zero_point():
    qw = torch.quantize_per_tensor(torch.ones(1, 1, 3, 3), 1.0, 0, torch.qint8)
    layer = IntegerConv2d.from_quantized(
        qw, None, input_scale=1.0, input_zero_point=7, output_scale=1.0, output_zero_point=0, padding=(1, 1)
    )
    # an input of all zero points is the real 0: every output, border included, must be 0
    assert torch.equal(layer(torch.full((1, 1, 4, 4), 7)), torch.zeros(1, 1, 4, 4, dtype=torch.long))


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_whole_digits_model_in_integers_matches_the_engine(model_name):
    from ptqlab.backends import get_recipe
    from ptqlab.backends.integer_model import IntegerModel
    from ptqlab.models import digits_cnn, digits_mlp
    from ptqlab.models.data import digits_split
    from ptqlab.ptq.folding import fold_batchnorm

    split = digits_split()
    fp32 = fold_batchnorm((digits_mlp if model_name == "mlp" else digits_cnn)(progress=False))
    batches = [split.x_train[i : i + 256] for i in range(0, len(split.x_train), 256)]
    engine = get_recipe("ao-static-int8").apply(fp32, (batches[0],), batches, observer="minmax").model
    integer = IntegerModel.from_torch_ao(engine)
    last = integer.layers()[-1]
    engine_out = engine(split.x_test)
    engine_codes = torch.round(engine_out / last.output_scale).long() + last.output_zero_point
    codes = integer.codes(split.x_test)
    assert (codes != engine_codes).float().mean() < 0.05  # off-by-one codes only near ties (see above)
    assert (codes - engine_codes).abs().max() <= 2
    predictions = last.dequantize(codes).argmax(1)
    assert (predictions == engine_out.argmax(1)).float().mean() >= 0.99
    accuracy = (predictions == split.y_test).float().mean()
    assert accuracy >= (fp32(split.x_test).argmax(1) == split.y_test).float().mean() - 0.01
