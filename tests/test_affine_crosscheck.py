"""ptqlab's affine core, bit-exact (torch.equal, never allclose) against independent implementations.

References: ATen's fake-quant and quantize kernels (torch.fake_quantize_per_{tensor,channel}_affine,
torch.quantize_per_{tensor,channel}), torchao's quant_primitives (choose_qparams_affine, quantize_affine,
dequantize_affine) and torch.ao's MinMaxObserver / PerChannelMinMaxObserver.

Convention differences, each pinned by a test here instead of a looser check:

1. eps floor of the scale: ptqlab (like torch.ao's observers) uses float32 machine eps (1.19e-7); torchao's
   choose_qparams_affine defaults to float32's smallest normal (1.18e-38). Every comparison passes eps
   explicitly; ``test_eps_default_differs_from_torchao`` shows the difference on an all-zero tensor.
2. Symmetric zero point on an unsigned *custom* range: ptqlab and torchao take (qmin + qmax + 1) // 2 (the
   upper middle code, 8 for [0, 15]); torch.ao takes (qmin + qmax) // 2 (7). On the default uint8 range both
   give 128 (torch.ao hardcodes it). See ``test_torch_ao_symmetric_unsigned_custom_range_zero_point``.
3. Shapes and dtypes of qparams: torchao drops block dimensions unless keepdim=True (we pass keepdim=True
   and compare shapes exactly); torch's per-channel ops want 1-D scale/zero_point (float64/int64 for
   torch.quantize_per_channel) — we reshape/cast, which is exact.
4. Integer storage: torchao has no uint16 target, so unsigned 9..16-bit codes are compared as int32 values
   (ptqlab stores them as torch.uint16); every other width compares dtype and values together.
5. Where the zero point is added: ptqlab, the fake-quant kernels and torchao round first, round(x/s) + zp;
   ATen's quantized-tensor kernels (torch.quantize_per_tensor / _per_channel, x86) add it first,
   round(x/s + zp). The two agree except on exact ties with an odd zero point (round-half-to-even sees a
   different parity) and, since the x86 kernels fold zp in float (per-tensor with an FMA), on values within
   float rounding of a tie. The quantized-tensor tests therefore use tie-free random data, and
   ``test_quantized_tensor_kernels_add_zero_point_before_rounding`` pins the difference on exact ties.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ptqlab import (
    PerChannel,
    PerGroup,
    PerTensor,
    QParams,
    QuantSpec,
    choose_qparams,
    dequantize,
    fake_quantize,
    qparams_for,
    quantize,
)
from ptqlab.core.affine import FLOAT32_EPS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # torch.quantize_per_* deprecation notice

qp_mod = pytest.importorskip("torchao.quantization.quant_primitives")
MappingType = qp_mod.MappingType

ALL_SPECS = [
    QuantSpec(bits=b, signed=sg, symmetric=sy, narrow_range=nr)
    for b in range(2, 17)
    for sg in (True, False)
    for sy in (True, False)
    for nr in (False, True)
]


def _ids(spec: QuantSpec) -> str:
    return str(spec).split(",")[0].replace(" ", "-") + ("-narrow" if spec.narrow_range else "")


def _data(shape, seed=0, offset=0.3, spread=2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * spread + offset


def _with_ties(x: torch.Tensor, qp: QParams, spec: QuantSpec) -> torch.Tensor:
    """Append exact half-way points (k + 1/2)·scale, where round-half-to-even decides."""
    s = float(qp.scale.reshape(-1)[0])
    zp = int(qp.zero_point.reshape(-1)[0])
    k = torch.arange(spec.qmin - zp - 2, spec.qmax - zp + 2, dtype=torch.float32)
    k = k[torch.linspace(0, len(k) - 1, min(len(k), 64)).long()]
    return torch.cat([x.reshape(-1), (k + 0.5) * s])


# ---------------------------------------------------------------------------------------------------------
# ATen fake-quant kernels
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_ids)
def test_fake_quantize_per_tensor_matches_aten(spec):
    x = _data((5, 7, 3))
    qp = qparams_for(x, spec)
    x = _with_ties(x, qp, spec)
    ours = fake_quantize(x, qp, spec)
    ref_float = torch.fake_quantize_per_tensor_affine(
        x, float(qp.scale), int(qp.zero_point), spec.qmin, spec.qmax
    )
    ref_tensor = torch.fake_quantize_per_tensor_affine(
        x, qp.scale.reshape(()), qp.zero_point.reshape(()), spec.qmin, spec.qmax
    )
    assert torch.equal(ours, ref_float)
    assert torch.equal(ours, ref_tensor)


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 12, 16])
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize(
    "shape,axis", [((6, 10), 0), ((6, 10), 1), ((4, 3, 5), 1), ((4, 3, 5), -1), ((8, 3, 3, 3), 0)]
)
def test_fake_quantize_per_channel_matches_aten(bits, signed, symmetric, shape, axis):
    spec = QuantSpec(bits=bits, signed=signed, symmetric=symmetric, granularity=PerChannel(axis))
    x = _data(shape, seed=bits)
    qp = qparams_for(x, spec)
    ref = torch.fake_quantize_per_channel_affine(
        x, qp.scale.reshape(-1), qp.zero_point.reshape(-1), axis % len(shape), spec.qmin, spec.qmax
    )
    assert torch.equal(fake_quantize(x, qp, spec), ref)


@given(
    values=st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=48),
    scale=st.floats(2.0**-10, 16.0, width=32),
    bits=st.integers(2, 16),
    signed=st.booleans(),
    zp_frac=st.floats(0.0, 1.0),
)
@settings(max_examples=150, deadline=None)
def test_fake_quantize_matches_aten_for_arbitrary_qparams(values, scale, bits, signed, zp_frac):
    spec = QuantSpec(bits=bits, signed=signed, symmetric=False)
    zp = spec.qmin + round(zp_frac * (spec.qmax - spec.qmin))
    x = torch.tensor(values, dtype=torch.float32)
    qp = QParams(torch.tensor([scale]), torch.tensor([zp], dtype=torch.int32))
    ref = torch.fake_quantize_per_tensor_affine(x, scale, zp, spec.qmin, spec.qmax)
    assert torch.equal(fake_quantize(x, qp, spec), ref)


# ---------------------------------------------------------------------------------------------------------
# ATen quantized tensors (8-bit)
# ---------------------------------------------------------------------------------------------------------

QDTYPES = [(torch.qint8, True), (torch.quint8, False)]


@pytest.mark.parametrize("qdtype,signed", QDTYPES)
@pytest.mark.parametrize("symmetric", [True, False])
def test_quantize_per_tensor_int_repr_matches_aten(qdtype, signed, symmetric):
    spec = QuantSpec(bits=8, signed=signed, symmetric=symmetric)
    x = _data((32, 9), seed=3)
    qp = qparams_for(x, spec)  # random data: no ties (difference 5)
    q_ref = torch.quantize_per_tensor(x, float(qp.scale), int(qp.zero_point), qdtype)
    ours = quantize(x, qp, spec)
    assert ours.dtype == q_ref.int_repr().dtype
    assert torch.equal(ours, q_ref.int_repr())
    assert torch.equal(dequantize(ours, qp, spec), q_ref.dequantize())


@pytest.mark.parametrize("qdtype,signed", QDTYPES)
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("shape,axis", [((16, 12), 0), ((16, 12), 1), ((8, 4, 3, 3), 0), ((5, 6, 7), 2)])
def test_quantize_per_channel_int_repr_matches_aten(qdtype, signed, symmetric, shape, axis):
    spec = QuantSpec(bits=8, signed=signed, symmetric=symmetric, granularity=PerChannel(axis))
    x = _data(shape, seed=4)
    qp = qparams_for(x, spec)
    # torch.quantize_per_channel wants 1-D float64 scales and int64 zero points: exact casts.
    q_ref = torch.quantize_per_channel(
        x, qp.scale.reshape(-1).double(), qp.zero_point.reshape(-1).long(), axis, qdtype
    )
    ours = quantize(x, qp, spec)
    assert torch.equal(ours, q_ref.int_repr())
    assert torch.equal(dequantize(ours, qp, spec), q_ref.dequantize())


@pytest.mark.parametrize("qdtype,signed", QDTYPES)
def test_quantized_tensor_kernels_add_zero_point_before_rounding(qdtype, signed):
    """Difference 5 on exact ties (scale 1.0, so every product is exact): x = k + 1/2.

    ptqlab: round(x) + zp; ATen quantized tensors: round(x + zp). Same codes for an even zero point, one
    code apart on every unclamped tie for an odd one. ATen's fake-quant kernel sides with ptqlab.
    """
    spec = QuantSpec(bits=8, signed=signed, symmetric=False)
    x = torch.arange(-20, 20, dtype=torch.float32) + 0.5
    for zp, expect_equal in ((4, True), (3, False)):
        qp = QParams(torch.tensor([1.0]), torch.tensor([zp], dtype=torch.int32))
        ours = quantize(x, qp, spec)
        add_first = torch.round(x + zp).clamp(spec.qmin, spec.qmax).to(ours.dtype)
        per_tensor = torch.quantize_per_tensor(x, 1.0, zp, qdtype).int_repr()
        per_channel = torch.quantize_per_channel(
            x.reshape(4, 10), torch.ones(10, dtype=torch.float64), torch.full((10,), zp), 1, qdtype
        ).int_repr()
        assert torch.equal(per_tensor, add_first)
        assert torch.equal(per_channel.reshape(-1), add_first)
        assert torch.equal(ours, add_first) is expect_equal
        if not expect_equal:  # e.g. x = 0.5: ptqlab round(0.5) + 3 = 3, ATen round(3.5) = 4
            unclamped = (ours > spec.qmin) & (ours < spec.qmax)
            gap = (add_first.int() - ours.int())[unclamped].abs()
            assert torch.equal(gap.unique(), torch.tensor([1], dtype=torch.int32))
            assert int(ours[x == 0.5]) == 3 and int(add_first[x == 0.5]) == 4
        fq_ref = torch.fake_quantize_per_tensor_affine(x, 1.0, zp, spec.qmin, spec.qmax)
        assert torch.equal(fake_quantize(x, qp, spec), fq_ref)


# ---------------------------------------------------------------------------------------------------------
# torchao quant_primitives: every width 2..16, per-tensor / per-channel / per-group
# ---------------------------------------------------------------------------------------------------------


def _torchao_dtype(spec: QuantSpec) -> torch.dtype:
    """torchao's target dtype that holds the spec's range; quant_min/quant_max narrow it to the spec."""
    if spec.bits <= 8:
        return torch.int8 if spec.signed else torch.uint8
    return torch.int16 if spec.signed else torch.int32  # torchao has no uint16 target (difference 4)


GRANULARITIES = [
    ((6, 32), PerTensor()),
    ((6, 32), PerChannel(0)),
    ((6, 32), PerChannel(1)),
    ((6, 32), PerGroup(8)),
    ((4, 8, 6), PerGroup(4, axis=1)),
    ((8, 3, 3, 3), PerChannel(0)),
    ((4, 2, 16), PerGroup(16)),
]


@pytest.mark.parametrize("spec", ALL_SPECS, ids=_ids)
@pytest.mark.parametrize("shape,granularity", GRANULARITIES, ids=lambda v: str(v))
def test_matches_torchao_quant_primitives(spec, shape, granularity):
    spec = spec.with_(granularity=granularity)
    x = _data(shape, seed=spec.bits)
    block = spec.block_shape(x.shape)
    dtype = _torchao_dtype(spec)
    mapping = MappingType.SYMMETRIC if spec.symmetric else MappingType.ASYMMETRIC

    scale, zp = qp_mod.choose_qparams_affine(
        x,
        mapping,
        block,
        dtype,
        spec.qmin,
        spec.qmax,
        eps=FLOAT32_EPS,  # difference 1: torchao's default is smallest_normal
        scale_dtype=torch.float32,
        zero_point_dtype=torch.int32,
        keepdim=True,
    )
    ours = qparams_for(x, spec)
    assert torch.equal(ours.scale, scale)
    assert torch.equal(ours.zero_point, zp)

    q_ref = qp_mod.quantize_affine(x, block, scale, zp, dtype, spec.qmin, spec.qmax)
    q = quantize(x, ours, spec)
    if dtype == torch.int32:  # difference 4: compare uint16 codes as int32 values
        q = q.to(torch.int32)
    assert q.dtype == q_ref.dtype
    assert torch.equal(q, q_ref)

    x_hat_ref = qp_mod.dequantize_affine(q_ref, block, scale, zp, dtype, spec.qmin, spec.qmax)
    assert torch.equal(dequantize(quantize(x, ours, spec), ours, spec), x_hat_ref)


@pytest.mark.parametrize("bits,sub_byte", [(2, torch.uint2), (4, torch.uint4), (7, torch.uint7)])
def test_torchao_sub_byte_unsigned_dtypes(bits, sub_byte):
    """torchao's uintN targets (stored as uint8) give the same codes as ptqlab's uint8 storage."""
    spec = QuantSpec(bits=bits, signed=False, symmetric=False, granularity=PerGroup(8))
    x = _data((4, 16), seed=bits)
    block = spec.block_shape(x.shape)
    scale, zp = qp_mod.choose_qparams_affine(
        x, MappingType.ASYMMETRIC, block, sub_byte, eps=FLOAT32_EPS, keepdim=True
    )
    ours = qparams_for(x, spec)
    assert torch.equal(ours.scale, scale) and torch.equal(ours.zero_point, zp)
    q_ref = qp_mod.quantize_affine(x, block, scale, zp, sub_byte)
    assert q_ref.dtype == torch.uint8
    assert torch.equal(quantize(x, ours, spec), q_ref)


def test_eps_default_differs_from_torchao():
    """Difference 1, concretely: an all-zero tensor gets scale = float32 eps here, smallest_normal in torchao."""
    spec = QuantSpec(bits=8, symmetric=False)
    x = torch.zeros(4, 8)
    ao_scale, _ = qp_mod.choose_qparams_affine(x, MappingType.ASYMMETRIC, (4, 8), torch.int8)
    assert float(ao_scale) == torch.finfo(torch.float32).smallest_normal
    ours = qparams_for(x, spec)
    assert float(ours.scale) == torch.finfo(torch.float32).eps
    tiny = qparams_for(x, spec, eps=torch.finfo(torch.float32).smallest_normal)
    assert torch.equal(tiny.scale.reshape(()), ao_scale.reshape(()))
    assert torch.equal(fake_quantize(x, ours, spec), x)  # both round-trip zeros exactly


# ---------------------------------------------------------------------------------------------------------
# torch.ao observers: same (scale, zero_point) for qint8/quint8, symmetric/affine
# ---------------------------------------------------------------------------------------------------------

observer_mod = pytest.importorskip("torch.ao.quantization.observer")


@pytest.mark.parametrize("qdtype,signed", QDTYPES)
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("offset", [-3.0, 0.3, 4.0])
def test_qparams_match_torch_ao_minmax_observer(qdtype, signed, symmetric, offset):
    qscheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    obs = observer_mod.MinMaxObserver(dtype=qdtype, qscheme=qscheme)
    x = _data((200,), seed=5, offset=offset)
    obs(x)
    ref_scale, ref_zp = obs.calculate_qparams()
    ours = qparams_for(x, QuantSpec(bits=8, signed=signed, symmetric=symmetric))
    assert torch.equal(ours.scale, ref_scale)
    assert torch.equal(ours.zero_point, ref_zp.to(torch.int32))  # torch.ao may return int64


@pytest.mark.parametrize("qdtype,signed", QDTYPES)
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("shape,axis", [((8, 5), 0), ((8, 5), 1), ((6, 4, 3, 3), 0)])
def test_qparams_match_torch_ao_per_channel_observer(qdtype, signed, symmetric, shape, axis):
    qscheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
    obs = observer_mod.PerChannelMinMaxObserver(ch_axis=axis, dtype=qdtype, qscheme=qscheme)
    x = _data(shape, seed=6)
    obs(x)
    ref_scale, ref_zp = obs.calculate_qparams()
    ours = qparams_for(x, QuantSpec(bits=8, signed=signed, symmetric=symmetric, granularity=PerChannel(axis)))
    assert torch.equal(ours.scale.reshape(-1), ref_scale)
    assert torch.equal(ours.zero_point.reshape(-1), ref_zp.to(torch.int32))


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
def test_qparams_match_torch_ao_custom_signed_range(bits, symmetric):
    spec = QuantSpec(bits=bits, signed=True, symmetric=symmetric)
    qscheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    obs = observer_mod.MinMaxObserver(
        dtype=torch.qint8, qscheme=qscheme, quant_min=spec.qmin, quant_max=spec.qmax
    )
    x = _data((100,), seed=bits)
    obs(x)
    ref_scale, ref_zp = obs.calculate_qparams()
    ours = qparams_for(x, spec)
    assert torch.equal(ours.scale, ref_scale)
    assert torch.equal(ours.zero_point, ref_zp.to(torch.int32))


def test_torch_ao_symmetric_unsigned_custom_range_zero_point():
    """Difference 2, concretely: uint4 symmetric, zero point 8 (ptqlab, torchao) vs 7 (torch.ao)."""
    spec = QuantSpec(bits=4, signed=False, symmetric=True)
    x = torch.tensor([-1.0, 0.25, 0.5, 1.0])
    obs = observer_mod.MinMaxObserver(
        dtype=torch.quint8, qscheme=torch.per_tensor_symmetric, quant_min=0, quant_max=15
    )
    obs(x)
    ref_scale, ref_zp = obs.calculate_qparams()
    ours = qparams_for(x, spec)
    assert torch.equal(ours.scale, ref_scale)  # the scales agree: 1.0 / 7.5
    assert int(ref_zp) == (0 + 15) // 2 == 7
    assert int(ours.zero_point) == (0 + 15 + 1) // 2 == 8
    ao_scale, ao_zp = qp_mod.choose_qparams_affine(
        x, MappingType.SYMMETRIC, (4,), torch.uint8, 0, 15, eps=FLOAT32_EPS, keepdim=True
    )
    assert torch.equal(ours.zero_point, ao_zp) and torch.equal(ours.scale, ao_scale)
    # The two grids are mirror images: ptqlab covers [-8s, 7s], torch.ao [-7s, 8s].
    s = float(ours.scale)
    assert fake_quantize(torch.tensor([-1.0]), ours, spec).item() == pytest.approx(-1.0, abs=s / 2)
    torch_ao_fq = torch.fake_quantize_per_tensor_affine(torch.tensor([-1.0]), s, 7, 0, 15)
    assert torch_ao_fq.item() == pytest.approx(-7 * s)  # clipped: -1.0 lies below -7s = -0.933
    # Default uint8 range: torch.ao hardcodes 128, ptqlab's rule gives 128 too.
    obs8 = observer_mod.MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_symmetric)
    obs8(x)
    assert int(obs8.calculate_qparams()[1]) == QuantSpec(8, signed=False).symmetric_zero_point == 128


def test_choose_qparams_from_numbers_matches_tensor_path():
    spec = QuantSpec(bits=6, symmetric=False)
    a = choose_qparams(-0.75, 2.5, spec)
    b = choose_qparams(torch.tensor(-0.75), torch.tensor(2.5), spec)
    assert torch.equal(a.scale, b.scale) and torch.equal(a.zero_point, b.zero_point)
    assert float(a.scale) == pytest.approx(3.25 / 63) and int(a.zero_point) == -32 + round(0.75 / (3.25 / 63))
