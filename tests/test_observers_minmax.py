"""Min/max observers against torch.ao, plus the contract every registered observer keeps."""

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ptqlab.core.spec import PerChannel, QuantSpec
from ptqlab.observers import (
    OBSERVERS,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    PerChannelMinMaxObserver,
    make_observer,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    ao = pytest.importorskip("torch.ao.quantization")

SCHEMES = [
    (torch.qint8, True),
    (torch.qint8, False),
    (torch.quint8, True),
    (torch.quint8, False),
]


def _spec(dtype, symmetric, per_channel_axis=None):
    gran = {} if per_channel_axis is None else {"granularity": PerChannel(per_channel_axis)}
    return QuantSpec(bits=8, signed=dtype == torch.qint8, symmetric=symmetric, **gran)


def _stream(n=5, shape=(64, 33)):
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(shape, generator=gen) * (1 + k) + 0.3 * k for k in range(n)]


def _qscheme(symmetric, per_channel=False):
    if per_channel:
        return torch.per_channel_symmetric if symmetric else torch.per_channel_affine
    return torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine


@pytest.mark.parametrize("dtype,symmetric", SCHEMES)
def test_minmax_equals_torch_ao(dtype, symmetric):
    ref = ao.MinMaxObserver(dtype=dtype, qscheme=_qscheme(symmetric))
    obs = MinMaxObserver()
    for x in _stream():
        ref(x)
        obs.observe(x)
    scale, zp = ref.calculate_qparams()
    qp = obs.qparams(_spec(dtype, symmetric))
    assert torch.equal(qp.scale.reshape(-1), scale.reshape(-1))
    assert torch.equal(qp.zero_point.reshape(-1).long(), zp.reshape(-1).long())


@pytest.mark.parametrize("dtype,symmetric", SCHEMES)
def test_moving_average_equals_torch_ao(dtype, symmetric):
    ref = ao.MovingAverageMinMaxObserver(averaging_constant=0.01, dtype=dtype, qscheme=_qscheme(symmetric))
    obs = MovingAverageMinMaxObserver()
    for x in _stream(8):
        ref(x)
        obs.observe(x)
    lo, hi = obs.range()
    assert torch.equal(lo, ref.min_val) and torch.equal(hi, ref.max_val)
    scale, zp = ref.calculate_qparams()
    qp = obs.qparams(_spec(dtype, symmetric))
    assert torch.equal(qp.scale.reshape(-1), scale.reshape(-1))
    assert torch.equal(qp.zero_point.reshape(-1).long(), zp.reshape(-1).long())


@pytest.mark.parametrize("dtype,symmetric", SCHEMES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_channel_equals_torch_ao(dtype, symmetric, axis):
    ref = ao.PerChannelMinMaxObserver(ch_axis=axis % 3, dtype=dtype, qscheme=_qscheme(symmetric, True))
    obs = PerChannelMinMaxObserver(axis=axis)
    for x in _stream(4, shape=(6, 5, 7)):
        ref(x)
        obs.observe(x)
    lo, hi = obs.range()
    assert lo.shape == (x.shape[axis],)
    assert torch.equal(lo, ref.min_val) and torch.equal(hi, ref.max_val)
    scale, zp = ref.calculate_qparams()
    qp = obs.qparams(_spec(dtype, symmetric, per_channel_axis=axis))
    assert torch.equal(qp.scale, scale)
    assert torch.equal(qp.zero_point.long(), zp.long())


def test_moving_average_formula_by_hand():
    obs = MovingAverageMinMaxObserver(averaging_constant=0.5)
    obs.observe(torch.tensor([-1.0, 1.0]))  # first batch initialises
    obs.observe(torch.tensor([-3.0, 5.0]))
    lo, hi = obs.range()
    assert (float(lo), float(hi)) == (-2.0, 3.0)


@pytest.mark.parametrize("make", [MinMaxObserver, lambda: PerChannelMinMaxObserver(axis=1)])
def test_streaming_equals_concatenation_exactly(make):
    xs = _stream(7)  # batches of (64, 33): per-channel along axis 1, stacked along axis 0
    streamed, whole = make(), make()
    for x in xs:
        streamed.observe(x)
    whole.observe(torch.cat(xs))
    for a, b in zip(streamed.range(), whole.range(), strict=True):
        assert torch.equal(a, b)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=8), st.integers(0, 2**31 - 1))
def test_minmax_any_split_equals_whole(sizes, seed):
    x = torch.randn(sum(sizes), generator=torch.Generator().manual_seed(seed)) * 3
    obs = MinMaxObserver()
    for part in x.split(sizes):
        obs.observe(part)
    lo, hi = obs.range()
    assert float(lo) == float(x.min()) and float(hi) == float(x.max())


def test_per_channel_errors():
    obs = PerChannelMinMaxObserver(axis=1)
    obs.observe(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="3"):
        obs.observe(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="axis"):
        PerChannelMinMaxObserver(axis=2).observe(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="axis"):
        PerChannelMinMaxObserver(axis=1.0)


@pytest.mark.parametrize("name", sorted(OBSERVERS))
def test_every_observer_builds_with_defaults_and_rejects_bad_batches(name):
    obs = make_observer(name)
    with pytest.raises(ValueError, match="no data"):
        obs.range()
    x = torch.randn(16, 8)
    obs.observe(x)
    before = [t.clone() for t in obs.range()]
    nbytes = obs.state_nbytes()
    for bad in (float("nan"), float("inf"), -float("inf")):
        y = x.clone()
        y[3, 2] = bad * 100
        with pytest.raises(ValueError, match="non-finite"):
            obs.observe(y)
    with pytest.raises(TypeError, match="x"):
        obs.observe(torch.ones(3, dtype=torch.int32))
    with pytest.raises(TypeError, match="x"):
        obs.observe([1.0, 2.0])
    with pytest.raises(ValueError, match="empty"):
        obs.observe(torch.empty(0, 8))
    assert obs.batches == 1 and obs.state_nbytes() == nbytes
    for a, b in zip(obs.range(), before, strict=True):
        assert torch.equal(a, b)
    obs.reset()
    assert obs.batches == 0
    with pytest.raises(ValueError, match="no data"):
        obs.qparams(QuantSpec())


def test_make_observer_unknown_name():
    with pytest.raises(ValueError, match="unknown observer"):
        make_observer("nope")


@pytest.mark.parametrize("name", sorted(OBSERVERS))
def test_observe_reads_back_at_most_one_value(name, monkeypatch):
    """observe() may read back one flag (the NaN/Inf check); no .item()/float()/int()/bool() beyond it."""
    obs = make_observer(name)
    obs.observe(torch.randn(8, 8))
    calls = []
    for method in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__"):
        original = getattr(torch.Tensor, method)

        def spy(self, *a, _original=original, _method=method, **k):
            calls.append(_method)
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, method, spy)
    obs.observe(torch.randn(8, 8) * 2)
    monkeypatch.undo()
    assert len(calls) == 1, calls
