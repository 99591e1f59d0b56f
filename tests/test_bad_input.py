"""Bad input gets a ValueError/TypeError whose message names the offending argument."""

import math

import pytest
import torch

from ptqlab import (
    ManualQuantizer,
    PerChannel,
    PerGroup,
    QParams,
    QuantSpec,
    choose_qparams,
    cosine_similarity,
    dequantize,
    error_split,
    fake_quantize,
    integer_grid,
    max_abs_error,
    min_max,
    mse,
    qparams_for,
    quantize,
    sqnr_db,
)

SPEC = QuantSpec(bits=8)
QP = QParams(torch.tensor([0.1]), torch.tensor([0], dtype=torch.int32))
X = torch.tensor([0.5, -1.0, 2.0])


# ---------------------------------------------------------------------------------------------------------
# Tensors: NaN/Inf, empty, integer dtypes, not a tensor
# ---------------------------------------------------------------------------------------------------------

TENSOR_FUNCS = {
    "quantize": lambda x: quantize(x, QP, SPEC),
    "fake_quantize": lambda x: fake_quantize(x, QP, SPEC),
    "qparams_for": lambda x: qparams_for(x, SPEC),
    "min_max": lambda x: min_max(x, SPEC),
    "error_split": lambda x: error_split(x, QP, SPEC),
    "mse": lambda x: mse(x, torch.zeros(3)),
    "ManualQuantizer": lambda x: ManualQuantizer(8).quantize_tensor(x),
}


@pytest.mark.parametrize("func", TENSOR_FUNCS.values(), ids=TENSOR_FUNCS.keys())
@pytest.mark.parametrize(
    "bad,count",
    [(math.nan, r"1 NaN, 0 Inf"), (math.inf, r"0 NaN, 1 Inf"), (-math.inf, r"0 NaN, 1 Inf")],
)
def test_non_finite_values_are_rejected(func, bad, count):
    x = torch.tensor([0.5, bad, 1.0])
    with pytest.raises(ValueError, match=rf"^(x|tensor) contains non-finite values \({count}\)"):
        func(x)


@pytest.mark.parametrize("func", TENSOR_FUNCS.values(), ids=TENSOR_FUNCS.keys())
def test_empty_tensor_is_rejected(func):
    with pytest.raises(ValueError, match=r"^(x|tensor) is empty \(shape \(0,\)\)"):
        func(torch.empty(0))


@pytest.mark.parametrize("func", TENSOR_FUNCS.values(), ids=TENSOR_FUNCS.keys())
@pytest.mark.parametrize("dtype", [torch.int8, torch.int32, torch.int64, torch.uint8, torch.bool])
def test_integer_dtype_is_rejected_where_float_is_required(func, dtype):
    with pytest.raises(TypeError, match=rf"^(x|tensor) must be a floating-point tensor, got dtype {dtype}"):
        func(torch.zeros(3, dtype=dtype))


@pytest.mark.parametrize("func", TENSOR_FUNCS.values(), ids=TENSOR_FUNCS.keys())
def test_non_tensor_is_rejected(func):
    with pytest.raises(TypeError, match=r"^(x|tensor) must be a torch.Tensor, got list"):
        func([0.5, 1.0])


def test_second_argument_of_metrics_is_named():
    for metric in (mse, max_abs_error, sqnr_db, cosine_similarity):
        with pytest.raises(ValueError, match=r"^x_hat contains non-finite"):
            metric(X, torch.tensor([0.5, math.nan, 2.0]))
        with pytest.raises(TypeError, match=r"^x_hat must be a floating-point tensor"):
            metric(X, torch.tensor([1, 2, 3]))
        with pytest.raises(ValueError, match=r"^x has shape \(3,\) but x_hat has shape \(2,\)"):
            metric(X, torch.zeros(2))


def test_dequantize_wants_integer_codes_in_range():
    with pytest.raises(TypeError, match=r"^x_q must be an integer tensor, got dtype torch.float32"):
        dequantize(X, QP, SPEC)
    with pytest.raises(TypeError, match=r"^x_q must be a torch.Tensor"):
        dequantize([1, 2], QP, SPEC)
    with pytest.raises(ValueError, match=r"^x_q is empty"):
        dequantize(torch.empty(0, dtype=torch.int8), QP, SPEC)
    with pytest.raises(ValueError, match=r"^x_q has codes outside \[-8, 7\]"):
        dequantize(torch.tensor([0, 9]), QP, QuantSpec(bits=4))


# ---------------------------------------------------------------------------------------------------------
# The spec: bits, flags, granularity, axis, group_size
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [-1, 0, 1, 17, 32])
def test_bits_outside_2_to_16(bits):
    with pytest.raises(ValueError, match=rf"^bits must be in \[2, 16\], got {bits}$"):
        QuantSpec(bits=bits)


@pytest.mark.parametrize("bits", [8.0, "8", True, None])
def test_bits_must_be_an_int(bits):
    with pytest.raises(TypeError, match=r"^bits must be an int"):
        QuantSpec(bits=bits)


@pytest.mark.parametrize("flag", ["signed", "symmetric", "narrow_range"])
def test_flags_must_be_bools(flag):
    with pytest.raises(TypeError, match=rf"^{flag} must be a bool, got int"):
        QuantSpec(**{flag: 1})


def test_granularity_must_be_one_of_the_three():
    with pytest.raises(TypeError, match=r"^granularity must be PerTensor\(\), PerChannel"):
        QuantSpec(granularity="per_channel")


@pytest.mark.parametrize("axis", [2, -3, 5])
def test_axis_out_of_range(axis):
    spec = SPEC.with_(granularity=PerChannel(axis))
    x = torch.randn(4, 6)
    with pytest.raises(ValueError, match=rf"^axis={axis} is out of range for a tensor with 2 dimension\(s\)"):
        qparams_for(x, spec)
    with pytest.raises(ValueError, match=rf"^axis={axis} is out of range"):
        quantize(x, QP, spec)
    with pytest.raises(ValueError, match=rf"^axis={axis} is out of range"):
        qparams_for(x, SPEC.with_(granularity=PerGroup(2, axis=axis)))


def test_axis_must_be_an_int():
    with pytest.raises(TypeError, match=r"^axis must be an int, got float"):
        qparams_for(torch.randn(4, 6), SPEC.with_(granularity=PerChannel(1.0)))


@pytest.mark.parametrize("group_size,dim", [(5, 32), (3, 8), (64, 32)])
def test_group_size_must_divide_the_dimension(group_size, dim):
    spec = SPEC.with_(granularity=PerGroup(group_size))
    with pytest.raises(
        ValueError, match=rf"^group_size={group_size} does not divide dimension 1 of size {dim}"
    ):
        qparams_for(torch.randn(2, dim), spec)


@pytest.mark.parametrize("group_size", [0, -4])
def test_group_size_must_be_positive(group_size):
    with pytest.raises(ValueError, match=rf"^group_size must be >= 1, got {group_size}"):
        PerGroup(group_size)


@pytest.mark.parametrize("group_size", [4.0, "4", True])
def test_group_size_must_be_an_int(group_size):
    with pytest.raises(TypeError, match=r"^group_size must be an int"):
        PerGroup(group_size)


# ---------------------------------------------------------------------------------------------------------
# choose_qparams: min > max, non-finite bounds, shapes, eps, spec
# ---------------------------------------------------------------------------------------------------------


def test_min_greater_than_max():
    with pytest.raises(ValueError, match=r"^min_val > max_val in 1 of 1 entries"):
        choose_qparams(1.0, -1.0, SPEC)
    with pytest.raises(ValueError, match=r"^min_val > max_val in 2 of 3 entries"):
        choose_qparams(torch.tensor([0.0, 2.0, 3.0]), torch.tensor([1.0, 1.0, 1.0]), SPEC)


@pytest.mark.parametrize("name,args", [("min_val", (math.nan, 1.0)), ("max_val", (0.0, math.inf))])
def test_non_finite_range(name, args):
    with pytest.raises(ValueError, match=rf"^{name} contains non-finite values"):
        choose_qparams(*args, SPEC)


def test_range_of_wrong_type_or_shape():
    with pytest.raises(TypeError, match=r"^min_val must be a number or a torch.Tensor, got str"):
        choose_qparams("0", 1.0, SPEC)
    with pytest.raises(TypeError, match=r"^max_val must be a number or tensor, got bool"):
        choose_qparams(0.0, True, SPEC)
    with pytest.raises(ValueError, match=r"^min_val has shape \(2,\) but max_val has shape \(3,\)"):
        choose_qparams(torch.zeros(2), torch.ones(3), SPEC)
    with pytest.raises(ValueError, match=r"^min_val is empty"):
        choose_qparams(torch.zeros(0), torch.ones(0), SPEC)


@pytest.mark.parametrize("eps", [0.0, -1e-7, math.inf, math.nan, "tiny"])
def test_eps_must_be_positive_and_finite(eps):
    with pytest.raises(ValueError, match=r"^eps must be a positive finite number"):
        choose_qparams(-1.0, 1.0, SPEC, eps=eps)


def test_spec_must_be_a_quantspec():
    with pytest.raises(TypeError, match=r"^spec must be a QuantSpec, got int"):
        choose_qparams(-1.0, 1.0, 8)
    with pytest.raises(TypeError, match=r"^spec must be a QuantSpec, got dict"):
        quantize(X, QP, {"bits": 8})


# ---------------------------------------------------------------------------------------------------------
# qparams passed to quantize/dequantize: float zero point, shapes, scale ≤ 0, zero point out of range
# ---------------------------------------------------------------------------------------------------------


def test_float_zero_point_is_rejected():
    with pytest.raises(TypeError, match=r"^zero_point must be an integer tensor \(a float zero point"):
        quantize(X, QParams(torch.tensor([0.1]), torch.tensor([3.0])), SPEC)
    with pytest.raises(TypeError, match=r"^zero_point must be an integer tensor"):
        quantize(X, QParams(torch.tensor([0.1]), 3.5), SPEC)
    with pytest.raises(TypeError, match=r"^zero_point must be an integer tensor"):
        quantize(X, QParams(torch.tensor([0.1]), torch.tensor([True])), SPEC)


def test_qparams_must_be_a_pair():
    with pytest.raises(TypeError, match=r"^qparams must be a QParams\(scale, zero_point\) pair"):
        quantize(X, torch.tensor([0.1]), SPEC)


def test_wrong_qparams_shapes():
    x = torch.randn(4, 6)
    spec = SPEC.with_(granularity=PerChannel(0))
    five = QParams(torch.full((5,), 0.1), torch.zeros(5, dtype=torch.int32))
    with pytest.raises(
        ValueError, match=r"^scale has 5 entries but per-channel\(axis=0\) on a tensor of shape"
    ):
        quantize(x, five, spec)
    mismatched = QParams(torch.full((4,), 0.1), torch.zeros(6, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"^zero_point has 6 entries .* needs 4 \(shape \(4, 1\)\)"):
        fake_quantize(x, mismatched, spec)
    transposed = QParams(torch.full((1, 4), 0.1), torch.zeros(1, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"^scale has shape \(1, 4\), expected \(4, 1\)"):
        quantize(x, transposed, spec)
    with pytest.raises(ValueError, match=r"^scale has 4 entries but per-tensor"):
        quantize(x, QParams(torch.full((4,), 0.1), torch.zeros(4, dtype=torch.int32)), SPEC)


@pytest.mark.parametrize("scale", [0.0, -0.1])
def test_scale_must_be_positive(scale):
    with pytest.raises(ValueError, match=r"^scale must be > 0 everywhere"):
        quantize(X, QParams(torch.tensor([scale]), torch.tensor([0])), SPEC)


def test_non_finite_scale():
    with pytest.raises(ValueError, match=r"^scale contains non-finite values"):
        quantize(X, QParams(torch.tensor([math.inf]), torch.tensor([0])), SPEC)


@pytest.mark.parametrize("zp", [-129, 128, 300])
def test_zero_point_out_of_range(zp):
    with pytest.raises(ValueError, match=r"^zero_point must lie in \[-128, 127\]"):
        quantize(X, QParams(torch.tensor([0.1]), torch.tensor([zp])), SPEC)


def test_integer_grid_needs_one_scale():
    spec = SPEC.with_(granularity=PerChannel(0))
    qp = qparams_for(torch.randn(3, 4), spec)
    with pytest.raises(ValueError, match=r"^integer_grid needs per-tensor qparams"):
        integer_grid(qp, spec)


def test_manual_quantizer_rejects_a_fractional_zero_point():
    mq = ManualQuantizer(bits=8)
    codes, scale, _ = mq.quantize_tensor(X)
    with pytest.raises(TypeError, match=r"^zero_point must be an integer, got -68.5"):
        mq.dequantize_tensor(codes, scale, -68.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_single_non_finite_value_is_found_at_every_position(dtype, bad):
    """checks.all_finite uses one min/max pass: NaN and ±Inf are caught in every SIMD lane and in the tail."""
    from ptqlab.core.checks import all_finite, float_tensor

    for i in range(67):
        x = torch.randn(67, dtype=dtype)
        x[i] = bad
        assert not all_finite(x)
        with pytest.raises(ValueError, match="non-finite"):
            float_tensor(x)
    assert all_finite(torch.randn(67, dtype=dtype))
