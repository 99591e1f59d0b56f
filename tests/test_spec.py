"""QuantSpec: integer ranges, storage dtypes, and the block rule behind every granularity."""

import dataclasses

import pytest
import torch

from ptqlab import PerChannel, PerGroup, PerTensor, QuantSpec


@pytest.mark.parametrize(
    "bits,signed,narrow,qmin,qmax",
    [
        (8, True, False, -128, 127),
        (8, True, True, -127, 127),
        (8, False, False, 0, 255),
        (8, False, True, 1, 255),
        (4, True, False, -8, 7),
        (4, False, False, 0, 15),
        (2, True, False, -2, 1),
        (2, True, True, -1, 1),
        (16, True, False, -32768, 32767),
        (16, False, False, 0, 65535),
    ],
)
def test_integer_range(bits, signed, narrow, qmin, qmax):
    spec = QuantSpec(bits=bits, signed=signed, narrow_range=narrow)
    assert (spec.qmin, spec.qmax) == (qmin, qmax)
    assert spec.levels == qmax - qmin + 1


@pytest.mark.parametrize(
    "bits,signed,narrow,zp",
    [
        (8, True, False, 0),
        (8, True, True, 0),
        (8, False, False, 128),
        (8, False, True, 128),
        (4, False, False, 8),
        (2, False, False, 2),
        (16, False, False, 32768),
    ],
)
def test_symmetric_zero_point_is_the_upper_middle_code(bits, signed, narrow, zp):
    assert QuantSpec(bits=bits, signed=signed, narrow_range=narrow).symmetric_zero_point == zp


@pytest.mark.parametrize(
    "bits,signed,dtype",
    [
        (2, True, torch.int8),
        (8, True, torch.int8),
        (9, True, torch.int16),
        (16, True, torch.int16),
        (4, False, torch.uint8),
        (8, False, torch.uint8),
        (12, False, torch.uint16),
        (16, False, torch.uint16),
    ],
)
def test_storage_dtype_is_the_smallest_that_holds_the_range(bits, signed, dtype):
    spec = QuantSpec(bits=bits, signed=signed)
    assert spec.storage_dtype == dtype
    info = torch.iinfo(dtype)
    assert info.min <= spec.qmin and spec.qmax <= info.max


@pytest.mark.parametrize(
    "granularity,shape,block,qshape",
    [
        (PerTensor(), (4, 6), (4, 6), (1, 1)),
        (PerChannel(0), (4, 6), (1, 6), (4, 1)),
        (PerChannel(1), (4, 6), (4, 1), (1, 6)),
        (PerChannel(-1), (8, 3, 3, 3), (8, 3, 3, 1), (1, 1, 1, 3)),
        (PerChannel(0), (8, 3, 3, 3), (1, 3, 3, 3), (8, 1, 1, 1)),
        (PerGroup(2), (4, 6), (1, 2), (4, 3)),
        (PerGroup(4, axis=1), (2, 8, 5), (1, 4, 1), (2, 2, 5)),
        (PerGroup(6), (4, 6), (1, 6), (4, 1)),  # one group per row == per-channel(axis=0)
    ],
)
def test_block_rule(granularity, shape, block, qshape):
    spec = QuantSpec(granularity=granularity)
    assert spec.block_shape(shape) == block
    assert spec.qparams_shape(torch.Size(shape)) == qshape


def test_bits_per_element_counts_the_qparams():
    x_shape = (128, 256)
    # symmetric: one fp16 scale per block, no zero point (it is the constant 0)
    assert QuantSpec(bits=8).bits_per_element(x_shape) == pytest.approx(8 + 16 / (128 * 256))
    assert QuantSpec(bits=4, granularity=PerGroup(32)).bits_per_element(x_shape) == 4.5  # llama.cpp's Q4_0
    # asymmetric: a zero point of the same width too; fp32 metadata doubles it
    asym = QuantSpec(bits=4, symmetric=False, granularity=PerGroup(32))
    assert asym.bits_per_element(x_shape) == 5.0 and asym.bits_per_element(x_shape, scale_bits=32) == 6.0
    assert QuantSpec(bits=4, granularity=PerGroup(32)).bits_per_element(x_shape, qparam_bits=64) == 6.0


def test_spec_is_immutable_and_with_makes_a_copy():
    spec = QuantSpec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.bits = 4
    four = spec.with_(bits=4, signed=False)
    assert (spec.bits, four.bits, four.signed, four.symmetric) == (8, 4, False, True)
    with pytest.raises(ValueError, match="^bits must be in"):
        spec.with_(bits=1)
    assert hash(QuantSpec(bits=4)) == hash(QuantSpec(bits=4))  # usable as a cache key


def test_str_names_the_scheme():
    assert str(QuantSpec()) == "int8 symmetric, per-tensor [-128, 127]"
    assert (
        str(QuantSpec(bits=4, signed=False, symmetric=False, narrow_range=True, granularity=PerGroup(32)))
        == "uint4 asymmetric, narrow, per-group(32, axis=-1) [1, 15]"
    )
    assert str(PerChannel(1)) == "per-channel(axis=1)"
