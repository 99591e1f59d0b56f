"""Bit packing round-trips exactly, matches torchao's uint4 packer and hand-made bytes, and the packed file's
size on disk equals the bits-per-weight formula to the byte."""

import math
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ptqlab.core.affine import qparams_for, quantize
from ptqlab.core.packed_file import bits_per_weight, load_packed, payload_nbytes, read_header, save_packed
from ptqlab.core.packing import (
    byte_table,
    pack,
    pack_int32,
    packed_nbytes,
    to_signed,
    to_unsigned,
    unpack,
    unpack_int32,
)
from ptqlab.core.spec import PerChannel, PerGroup, PerTensor, QuantSpec


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda b: st.tuples(st.just(b), st.lists(st.integers(0, 2**b - 1), max_size=67))
    )
)
def test_pack_unpack_round_trips_every_width_and_length(case):
    bits, values = case
    codes = torch.tensor(values, dtype=torch.int64)
    packed = pack(codes, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(len(values) * bits / 8)
    assert torch.equal(unpack(packed, bits, len(values)), codes)


def reference_bitstream(values, bits):
    """Independent: Python ints, code i at bit i·bits of one big little-endian integer."""
    big = sum(v << (i * bits) for i, v in enumerate(values))
    return list(big.to_bytes(packed_nbytes(len(values), bits), "little"))


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda b: st.tuples(st.just(b), st.lists(st.integers(0, 2**b - 1), max_size=41))
    )
)
def test_layout_is_the_little_endian_bit_stream(case):
    bits, values = case
    assert pack(torch.tensor(values, dtype=torch.int64), bits).tolist() == reference_bitstream(values, bits)


def test_known_bytes_for_2_3_4_bits():
    assert pack(torch.tensor([1, 2, 3, 0]), 2).tolist() == [0b00111001]
    assert pack(torch.tensor([0xA, 0x5, 0xF]), 4).tolist() == [0x5A, 0x0F]  # low nibble first, odd length
    assert pack(torch.tensor([7, 0, 5]), 3).tolist() == [0b01000111, 0b00000001]  # 7 | 0<<3 | 5<<6 straddles


def test_uint4_matches_torchao():
    from torchao.prototype.mx_formats.kernels import pack_uint4, unpack_uint4

    codes = torch.randint(0, 16, (6, 34), generator=torch.Generator().manual_seed(0))
    ours = pack(codes, 4).reshape(6, 17)
    assert torch.equal(ours, pack_uint4(codes.to(torch.uint8)))
    assert torch.equal(unpack_uint4(ours).long(), codes)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_int32_words_round_trip_and_hold_the_first_code_lowest(bits):
    codes = torch.randint(0, 2**bits, (37,), generator=torch.Generator().manual_seed(bits))
    words = pack_int32(codes, bits)
    assert words.dtype == torch.int32 and words.numel() == math.ceil(37 * bits / 32)
    assert torch.equal(unpack_int32(words, bits, 37), codes)
    assert int(words[0]) & (2**bits - 1) == int(codes[0])


def test_signed_offset_round_trips():
    codes = torch.arange(-8, 8)
    assert torch.equal(to_signed(unpack(pack(to_unsigned(codes, 4), 4), 4, 16), 4), codes)


def test_byte_table_names_the_codes_in_each_byte():
    rows = byte_table(torch.tensor([7, 0, 5]), 3)
    assert rows[0]["bits"] == "01000111" and rows[0]["codes"] == [(0, 0, 2), (1, 3, 5), (2, 6, 7)]
    assert rows[1]["codes"] == [(2, 0, 0)]


def test_bad_codes_and_widths_are_named():
    with pytest.raises(ValueError, match=r"^codes holds values in \[0, 16\], outside \[0, 15\] for bits=4"):
        pack(torch.tensor([0, 16]), 4)
    with pytest.raises(ValueError, match=r"^codes holds values in \[-1, 2\]"):
        pack(torch.tensor([-1, 2]), 2)
    with pytest.raises(TypeError, match=r"^codes must be an integer tensor"):
        pack(torch.tensor([0.5]), 4)
    with pytest.raises(ValueError, match=r"^bits must be one of"):
        pack(torch.tensor([0]), 9)
    with pytest.raises(ValueError, match=r"^bits must be one of \[1, 2, 4, 8\]"):
        pack_int32(torch.tensor([0]), 3)
    with pytest.raises(ValueError, match=r"^packed has 1 bytes"):
        unpack(torch.zeros(1, dtype=torch.uint8), 4, 3)


SCHEMES = [
    QuantSpec(4, granularity=PerGroup(32)),
    QuantSpec(4, symmetric=False, granularity=PerGroup(16)),
    QuantSpec(3, signed=False, symmetric=False, granularity=PerChannel(0)),
    QuantSpec(8, granularity=PerTensor()),
    QuantSpec(2, granularity=PerGroup(64)),
]


@pytest.mark.parametrize("spec", SCHEMES, ids=str)
@pytest.mark.parametrize("scale_bits", [16, 32])
def test_file_size_is_the_formula_and_loads_back(tmp_path, spec, scale_bits):
    gen = torch.Generator().manual_seed(3)
    weights = {
        "fc1.weight": torch.randn(24, 128, generator=gen),
        "fc2.weight": torch.randn(10, 64, generator=gen),
    }
    path = tmp_path / "model.ptq"
    size = save_packed(path, weights, spec, scale_bits)
    header, start = read_header(path)
    payload = sum(payload_nbytes(tuple(w.shape), spec, scale_bits) for w in weights.values())
    assert os.path.getsize(path) == size == start + payload
    n = sum(w.numel() for w in weights.values())
    bpw = sum(bits_per_weight(tuple(w.shape), spec, scale_bits) * w.numel() for w in weights.values()) / n
    if spec.bits * 24 * 128 % 8 == 0 and spec.symmetric:  # whole bytes: the payload is exactly bpw · n / 8
        assert payload * 8 == pytest.approx(bpw * n)
    loaded = load_packed(path)
    for name, w in weights.items():
        codes, qp, w_hat = loaded[name]
        expected = qparams_for(w, spec)
        assert torch.equal(codes, quantize(w, expected, spec).long())
        assert torch.equal(qp.zero_point, expected.zero_point.to(torch.int32))
        stored_scale = expected.scale.to(torch.float16 if scale_bits == 16 else torch.float32).float()
        assert torch.equal(qp.scale, stored_scale)
        assert w_hat.shape == w.shape


def test_int4_group128_fp16_is_4_125_bits_per_weight():
    assert bits_per_weight((256, 512), QuantSpec(4, granularity=PerGroup(128))) == 4.125


def test_non_divisible_group_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"^group_size=32 does not divide"):
        save_packed(tmp_path / "x", {"w": torch.randn(4, 48)}, QuantSpec(4, granularity=PerGroup(32)))
