"""Properties of the affine map that hold for every scheme, range and input (hypothesis).

Float tolerance, where one appears, is derived rather than tuned. With u = 2⁻²⁴ (float32 unit roundoff,
``EPS32 = 2u``): t = x/s is computed as fl(x·fl(1/s)), off by at most |t|·2u; the chosen code m is the
nearest integer to that, so |x - m·s| ≤ s/2 + |x|·2u; then x̂ = fl(m·s) adds at most |x̂|·u. Hence

    |x - x̂| ≤ s/2 + EPS32·(|x| + |x̂|)

and the strict s/2 does not hold in float32: hypothesis breaks it at 2 bits already (unsigned, range
[0, 0.001], x = 0.0005 = 1.5 steps, a tie, errs by a hair more than s/2), and at 16 bits, where a tie sits
2¹⁵ steps from 0 and one ulp of x is 1/256 of a step, the error reaches 1.003·s/2.
"""

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ptqlab import (
    PerChannel,
    PerGroup,
    QuantSpec,
    choose_qparams,
    error_split,
    fake_quantize,
    mse,
    qparams_for,
    quantize,
    representable_range,
)

EPS32 = torch.finfo(torch.float32).eps
FAST = settings(max_examples=120, deadline=None)

specs = st.builds(
    QuantSpec,
    bits=st.integers(2, 16),
    signed=st.booleans(),
    symmetric=st.booleans(),
    narrow_range=st.booleans(),
)
magnitudes = st.sampled_from([1e-3, 0.1, 1.0, 7.5, 300.0])
unit = st.floats(0.0, 1.0)
float32s = st.floats(-1e4, 1e4, width=32)


@st.composite
def ranges(draw):
    """A (lo, hi) pair, lo ≤ hi, that may or may not contain 0."""
    scale = draw(magnitudes)
    a, b = sorted([draw(st.floats(-1.0, 1.0)) * scale, draw(st.floats(-1.0, 1.0)) * scale])
    return a, b


def _bound(x: torch.Tensor, x_hat: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """s/2 + EPS32·(|x| + |x̂|): the float32 rounding bound derived in the module docstring."""
    return scale.double() / 2 + EPS32 * (x.double().abs() + x_hat.double().abs())


@given(spec=specs, rng=ranges(), fractions=st.lists(unit, min_size=1, max_size=64), ties=st.booleans())
@FAST
def test_in_range_round_trip_error_at_most_half_a_step(spec, rng, fractions, ties):
    qp = choose_qparams(*rng, spec)
    lo, hi = (float(v) for v in representable_range(qp, spec))
    if ties:  # exact half-way points (k + 1/2)·s between grid values
        zp = int(qp.zero_point)
        k = torch.tensor([math.floor(f * (spec.qmax - spec.qmin - 1)) for f in fractions]) + spec.qmin - zp
        x = (k.float() + 0.5) * qp.scale.reshape(())
    else:
        x = torch.tensor([lo + f * (hi - lo) for f in fractions], dtype=torch.float32)
    x = x[(x >= lo) & (x <= hi)]
    assume(x.numel() > 0)
    x_hat = fake_quantize(x, qp, spec)
    err = (x.double() - x_hat.double()).abs()
    assert bool((err <= _bound(x, x_hat, qp.scale)).all())


@given(spec=specs, rng=ranges(), values=st.lists(float32s, min_size=1, max_size=64))
@FAST
def test_fake_quantize_is_idempotent(spec, rng, values):
    """x̂ = fl(m·s) and fl(x̂·fl(1/s)) is within 3u·|m| ≤ 3·2⁻²⁴·2¹⁶ < ½ of m, so it rounds back to m."""
    qp = choose_qparams(*rng, spec)
    once = fake_quantize(torch.tensor(values), qp, spec)
    assert torch.equal(fake_quantize(once, qp, spec), once)


@given(spec=specs, rng=ranges(), values=st.lists(float32s, min_size=2, max_size=64))
@FAST
def test_quantize_is_monotonic(spec, rng, values):
    qp = choose_qparams(*rng, spec)
    x = torch.tensor(sorted(values))
    q = quantize(x, qp, spec).to(torch.int32)
    assert bool((q[1:] >= q[:-1]).all())


@given(spec=specs, rng=ranges())
@FAST
def test_zero_round_trips_exactly(spec, rng):
    """The range is widened to include 0 and the zero point is an integer, so 0.0 is a grid point."""
    qp = choose_qparams(*rng, spec)
    zeros = torch.tensor([0.0, -0.0])
    assert torch.equal(fake_quantize(zeros, qp, spec), torch.zeros(2))
    assert torch.equal(quantize(zeros, qp, spec).to(torch.int32), qp.zero_point.reshape(()).repeat(2))


@given(
    spec=specs,
    shape=st.sampled_from([(4, 8), (2, 3, 8), (6, 4)]),
    axis=st.integers(0, 1),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=40, deadline=None)
def test_zero_round_trips_per_channel_and_per_group(spec, shape, axis, seed):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 3 + 1
    x[..., 0] = 0.0
    for granularity in (PerChannel(axis), PerGroup(2, axis=-1)):
        s = spec.with_(granularity=granularity)
        x_hat = fake_quantize(x, qparams_for(x, s), s)
        assert bool((x_hat[..., 0] == 0).all())


# ---------------------------------------------------------------------------------------------------------
# More bits on the same range
# ---------------------------------------------------------------------------------------------------------


def test_more_bits_can_increase_mse_of_one_tensor():
    """COUNTEREXAMPLE to "more bits never increase the MSE of a tensor on the same range".

    The b-bit and (b+1)-bit grids are not nested (steps 2·amax/(2^b - 1) do not divide each other), so a
    tensor whose values sit on the 2-bit grid loses accuracy at 3 bits. Same tensor, same min/max range,
    symmetric int (torch's convention): 2 bits MSE 0.0025, 3 bits MSE 0.0207 (8×), 4 bits 0.0001.
    The properties that *do* hold are tested below.
    """
    x = torch.tensor([-1.5] + [1.0] * 100)  # 2-bit symmetric: scale 1.0, grid {-2, -1, 0, 1}
    mses = {
        b: mse(x, fake_quantize(x, qparams_for(x, QuantSpec(bits=b)), QuantSpec(bits=b))) for b in (2, 3, 4)
    }
    assert mses[2] == pytest.approx(0.25 / 101)  # only -1.5 is off-grid: it rounds (to even) to -2
    assert mses[3] == pytest.approx((1.5 - 12 / 7) ** 2 / 101 + 100 * (1 - 6 / 7) ** 2 / 101, rel=1e-6)
    assert mses[3] > 8 * mses[2]
    assert mses[4] < mses[2]


@given(spec=specs, rng=ranges())
@FAST
def test_more_bits_shrink_the_step_on_the_same_range(spec, rng):
    """Strictly, until the step reaches the eps floor (float32 eps, an *absolute* 1.19e-7, torch.ao's
    convention): a range narrower than (qmax - qmin)·eps, e.g. [-0.001, 0.001] at 15 or 16 bits, gets
    scale = eps at both widths, so the extra bit buys nothing there."""
    assume(spec.bits < 16)
    finer = spec.with_(bits=spec.bits + 1)
    coarse_step = float(choose_qparams(*rng, spec).scale)
    fine_step = float(choose_qparams(*rng, finer).scale)
    if coarse_step > EPS32:
        assert fine_step < coarse_step
    else:
        assert fine_step == coarse_step == EPS32


def test_eps_floor_caps_the_resolution_of_narrow_ranges():
    spec = QuantSpec(bits=16, signed=False, symmetric=False)
    qp = choose_qparams(-0.001, 0.001, spec)
    assert float(qp.scale) == EPS32  # 0.002 / 65535 = 3.1e-8 would be finer
    lo, hi = representable_range(qp, spec)
    assert float(lo) <= -0.001 and float(hi) >= 0.001  # the grid still covers the range


@given(spec=specs, rng=ranges())
@settings(max_examples=60, deadline=None)
def test_more_bits_never_increase_mse_over_the_whole_range(spec, rng):
    """The MSE over the range itself (a dense uniform sample of [min(lo,0), max(hi,0)]) drops ~4× per bit."""
    assume(rng[1] - rng[0] > 1e-3)
    assume(spec.bits <= 10)
    lo, hi = min(rng[0], 0.0), max(rng[1], 0.0)
    x = torch.linspace(lo, hi, 32 * 2 ** (spec.bits + 1) + 1)
    finer = spec.with_(bits=spec.bits + 1)
    coarse_mse = mse(x, fake_quantize(x, choose_qparams(*rng, spec), spec))
    fine_mse = mse(x, fake_quantize(x, choose_qparams(*rng, finer), finer))
    assert fine_mse <= coarse_mse
    assert fine_mse <= 0.3 * coarse_mse  # step ratio (2^b - 1)/(2^(b+1) - 1) ≤ 3/7, squared ≤ 0.19..0.25


@given(
    bits=st.integers(2, 8),
    amax=st.floats(1e-2, 1e3),
    fractions=st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=64),
)
@FAST
def test_doubling_bits_never_increases_any_error_symmetric(bits, amax, fractions):
    """b → 2b bits, signed symmetric: step_2b = step_b / (2^b + 1), so the fine grid contains every coarse
    point inside [-amax, amax] and no element's error can grow, for *any* tensor.

    Tolerance: both grids' points k·s are float32 products within 2u·|k·s| ≤ 2u·(4/3)·amax of the exact
    points, and t = x/s can pick a neighbour that is that close to a tie: 4·EPS32·amax covers all three.
    """
    x = torch.tensor([f * amax for f in fractions], dtype=torch.float32)
    coarse, fine = QuantSpec(bits=bits), QuantSpec(bits=2 * bits)
    e_coarse = (x - fake_quantize(x, choose_qparams(-amax, amax, coarse), coarse)).double().abs()
    e_fine = (x - fake_quantize(x, choose_qparams(-amax, amax, fine), fine)).double().abs()
    assert bool((e_fine <= e_coarse + 4 * EPS32 * amax).all())


# ---------------------------------------------------------------------------------------------------------
# The error split
# ---------------------------------------------------------------------------------------------------------


@given(spec=specs, rng=ranges(), values=st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=64))
@FAST
def test_error_split_parts_sum_to_total_mse(spec, rng, values):
    """rounding_mse + clipping_mse == MSE; only the float64 summation order differs (rel 1e-12)."""
    x = torch.tensor(values)
    qp = choose_qparams(*rng, spec)
    split = error_split(x, qp, spec)
    total = mse(x, fake_quantize(x, qp, spec))
    assert split.total_mse == pytest.approx(total, rel=1e-12, abs=1e-300)
    lo, hi = representable_range(qp, spec)
    outside = (x < lo.reshape(())) | (x > hi.reshape(()))
    assert split.clipped_fraction == float(outside.sum()) / x.numel()
    if not bool(outside.any()):
        assert split.clipping_mse == 0.0 and split.max_clipping_error == 0.0


@given(spec=specs, rng=ranges(), values=st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=64))
@FAST
def test_max_rounding_error_at_most_half_a_step(spec, rng, values):
    x = torch.tensor(values)
    qp = choose_qparams(*rng, spec)
    split = error_split(x, qp, spec)
    x_hat = fake_quantize(x, qp, spec)
    lo, hi = representable_range(qp, spec)
    inside = (x >= lo.reshape(())) & (x <= hi.reshape(()))
    if bool(inside.any()):
        bound = float(_bound(x[inside], x_hat[inside], qp.scale.reshape(())).max())
        assert split.max_rounding_error <= bound
    # clipping error is the distance to the nearest end of the grid, exactly
    if bool((~inside).any()):
        dist = torch.maximum(lo.reshape(()) - x, x - hi.reshape(())).clamp_min(0).double()
        assert split.max_clipping_error == pytest.approx(float(dist.max()), rel=1e-6)


# ---------------------------------------------------------------------------------------------------------
# The block rule: per-channel and per-group are per-tensor on each block
# ---------------------------------------------------------------------------------------------------------


@given(spec=specs, seed=st.integers(0, 2**16), group=st.sampled_from([1, 2, 4, 8]))
@settings(max_examples=40, deadline=None)
def test_per_group_is_per_tensor_on_each_group(spec, seed, group):
    x = torch.randn(3, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 0.5
    grouped = spec.with_(granularity=PerGroup(group))
    whole = fake_quantize(x, qparams_for(x, grouped), grouped)
    for r in range(3):
        for g in range(8 // group):
            block = x[r, g * group : (g + 1) * group]
            expect = fake_quantize(block, qparams_for(block, spec), spec)
            assert torch.equal(whole[r, g * group : (g + 1) * group], expect)


@given(spec=specs, seed=st.integers(0, 2**16), axis=st.integers(-3, 2))
@settings(max_examples=40, deadline=None)
def test_per_channel_is_per_tensor_on_each_slice(spec, seed, axis):
    x = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(seed)) + 0.25
    channel = spec.with_(granularity=PerChannel(axis))
    whole = fake_quantize(x, qparams_for(x, channel), channel)
    for c in range(x.shape[axis]):
        part = x.select(axis, c).contiguous()
        assert torch.equal(whole.select(axis, c), fake_quantize(part, qparams_for(part, spec), spec))
