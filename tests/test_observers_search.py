"""The searches: percentile vs numpy, entropy vs a loop reference, L2 vs torch.ao, MSE vs brute force."""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ptqlab.core.affine import choose_qparams
from ptqlab.core.metrics import error_split
from ptqlab.core.spec import PerChannel, QuantSpec
from ptqlab.observers import make_observer, range_error, threshold_error
from ptqlab.observers.entropy import EntropyObserver, kl_divergences
from ptqlab.observers.grid_error import grid_error
from ptqlab.observers.l2 import l2_search
from ptqlab.observers.threshold_error import best_two_sided

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    ao = pytest.importorskip("torch.ao.quantization")


def _stream(kind: str, n=6, size=20_000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for k in range(n):
        x = torch.randn(size, generator=gen) * (1 + 0.2 * k)
        if kind == "outliers":
            x[torch.randint(0, size, (5,), generator=gen)] = torch.randn(5, generator=gen) * 25
        elif kind == "relu":
            x = x.clamp_min(0)
        elif kind == "skewed":
            x = torch.exp(x / 2) - 0.5
        out.append(x)
    return out


KINDS = ["gaussian", "outliers", "relu", "skewed"]


# --- percentile ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("p", [99.0, 99.99, 100.0])
def test_percentile_within_one_bin_of_numpy(kind, p):
    xs = _stream(kind)
    whole = torch.cat(xs).double().numpy()
    sym, two = make_observer("percentile", p=p), make_observer("percentile", p=p, symmetric=False)
    for x in xs:
        sym.observe(x)
        two.observe(x)
    w = float(sym.hist.width)
    lo, hi = sym.range()
    assert float(hi) == -float(lo)
    assert abs(float(hi) - np.percentile(np.abs(whole), p)) <= w
    lo, hi = two.range()
    alpha = (100 - p) / 2
    assert abs(float(lo) - np.percentile(whole, alpha)) <= w
    assert abs(float(hi) - np.percentile(whole, 100 - alpha)) <= w
    if p == 100.0:
        assert (float(lo), float(hi)) == (float(whole.min()), float(whole.max()))


# --- entropy ---------------------------------------------------------------------------------------------
def tensorrt_kl_reference(hist: np.ndarray, levels: int) -> tuple[int, list[float]]:
    """The GTC 2017 pseudocode, a loop over candidates and levels: (argmin i, KL per i = levels..B)."""
    B = hist.size
    divergences = []
    for i in range(levels, B + 1):
        reference_p = hist[:i].copy()
        reference_p[i - 1] += hist[i:].sum()  # outliers folded into the last kept bin
        is_nonzero = reference_p != 0
        num_merged = i // levels
        candidate_q = np.zeros(i)
        for level in range(levels):
            start = level * num_merged
            stop = i if level == levels - 1 else start + num_merged
            merged = hist[start:stop].sum()  # quantize bins[0:i] into `levels` levels ...
            nonzero = is_nonzero[start:stop].sum()
            if nonzero:  # ... and expand back, evenly over the bins where P is non-zero
                candidate_q[start:stop] = np.where(is_nonzero[start:stop], merged / nonzero, 0.0)
        if candidate_q.sum() == 0:
            divergences.append(math.inf)
            continue
        p = reference_p / reference_p.sum()
        q = candidate_q / candidate_q.sum()
        mask = p > 0
        if np.any(q[mask] == 0):
            divergences.append(math.inf)
            continue
        divergences.append(float(np.sum(p[mask] * np.log(p[mask] / q[mask]))))
    return levels + int(np.argmin(divergences)), divergences


@pytest.mark.parametrize(
    "kind,bins,bits",
    [("outliers", 2048, 8), ("gaussian", 512, 8), ("relu", 512, 6), ("skewed", 256, 4), ("outliers", 256, 2)],
)
def test_entropy_equals_loop_reference(kind, bins, bits):
    obs = EntropyObserver(bins=bins, bits=bits)
    for x in _stream(kind, n=3):
        obs.observe(x)
    hist = obs.hist.abs_counts().numpy()
    best, ref_kl = tensorrt_kl_reference(hist, 2 ** (bits - 1))
    _, kl = kl_divergences(torch.from_numpy(hist), 2 ** (bits - 1))
    ref_kl = np.array(ref_kl)
    finite = np.isfinite(ref_kl)
    assert np.array_equal(np.isfinite(kl.numpy()), finite)
    np.testing.assert_allclose(kl.numpy()[finite], ref_kl[finite], rtol=1e-9, atol=1e-12)
    lo, hi = obs.range()
    w = float(obs.hist.width)
    assert float(hi) == pytest.approx(min((best + 0.5) * w, bins * w), rel=1e-6)
    assert float(lo) == -float(hi)


def test_entropy_conventions_and_extremes():
    obs = EntropyObserver(bins=256)
    for x in _stream("outliers", n=2):
        obs.observe(x)
    edge = EntropyObserver(bins=256, half_bin=False)
    edge.hist = obs.hist
    edge.batches = 1
    w = float(obs.hist.width)
    assert float(obs.range()[1]) - float(edge.range()[1]) == pytest.approx(w / 2, abs=1e-5)  # float32 range
    a = float(obs.hist.hi)
    assert float(obs.range_for(QuantSpec(bits=16))[1]) == pytest.approx(a)  # 2^15 levels > 256 bins
    lo, hi = obs.range_for(QuantSpec(symmetric=False))
    assert float(lo) >= float(obs.hist.data_min) and float(hi) <= float(obs.hist.data_max)


# --- L2 (torch.ao) ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dst_bits", [8, 4])
def test_l2_within_one_bin_of_torch_ao(kind, dst_bits):
    ref = ao.HistogramObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    ref.dst_nbins = 2**dst_bits
    obs = make_observer("l2", bits=dst_bits)
    for x in _stream(kind):
        ref(x)
        obs.observe(x)
    ref_lo, ref_hi = (float(v) for v in ref._non_linear_param_search())
    lo, hi = obs.range()
    w = (float(ref.max_val) - float(ref.min_val)) / ref.bins
    assert abs(float(lo) - ref_lo) <= w and abs(float(hi) - ref_hi) <= w
    if dst_bits == 8:  # and the qparams torch.ao derives from it
        scale, zp = ref.calculate_qparams()
        qp = obs.qparams(QuantSpec(bits=8, signed=False, symmetric=False))
        assert float(qp.scale) == pytest.approx(float(scale), rel=2 * w / (ref_hi - ref_lo))
        assert abs(int(qp.zero_point) - int(zp)) <= 1


def test_l2_search_is_exact_on_torch_ao_histogram():
    ref = ao.HistogramObserver()
    for x in _stream("outliers"):
        ref(x)
    expected = tuple(float(v) for v in ref._non_linear_param_search())
    got = l2_search(ref.histogram.double(), float(ref.min_val), float(ref.max_val), ref.dst_nbins)
    assert got == pytest.approx(expected, rel=1e-6)


# --- MSE and error versus threshold ----------------------------------------------------------------------
def _brute_force_error(counts, width, steps, a, b):
    """Σ over bins of the expected squared error, bin by bin (uniform in bin, Δ²/12 rounding inside)."""
    n = counts / counts.sum()
    delta = (b - a) * width / steps
    total_r = total_c = 0.0
    for j, nj in enumerate(n):
        centre = (j + 0.5) * width
        if j < a:
            total_c += nj * ((a * width - centre) ** 2 + width**2 / 12)
        elif j >= b:
            total_c += nj * ((centre - b * width) ** 2 + width**2 / 12)
        else:
            total_r += nj * delta**2 / 12
    return total_r, total_c


def test_threshold_error_matches_brute_force():
    gen = torch.Generator().manual_seed(5)
    counts = torch.randint(0, 50, (40,), generator=gen).double()
    err = threshold_error(counts, 0.25, 255)
    for i in (1, 7, 20, 40):
        r, c = _brute_force_error(counts.numpy(), 0.25, 255 / 2, 0, i)  # symmetric: Δ = 2T/steps
        assert float(err.rounding[i - 1]) == pytest.approx(r, rel=1e-9, abs=1e-15)
        assert float(err.clipping[i - 1]) == pytest.approx(c, rel=1e-9, abs=1e-15)
    assert float(err.thresholds[-1]) == pytest.approx(10.0)
    for a, b in ((0, 40), (3, 30), (10, 11)):
        r, c = range_error(counts, 0.25, 15, torch.tensor(a), torch.tensor(b))
        rr, cc = _brute_force_error(counts.numpy(), 0.25, 15, a, b)
        assert float(r) == pytest.approx(rr, rel=1e-9, abs=1e-15) and float(c) == pytest.approx(
            cc, rel=1e-9, abs=1e-15
        )


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=2, max_size=64), st.sampled_from([3, 15, 255]))
def test_threshold_error_shape(counts, steps):
    c = torch.tensor(counts, dtype=torch.float64)
    err = threshold_error(c, 0.1, steps)
    assert torch.all(err.rounding.diff() >= -1e-12)  # a wider grid rounds worse
    assert torch.all(err.clipping.diff() <= 1e-12)  # and clips less
    assert float(err.clipping[-1]) == 0.0
    assert torch.allclose(err.total, err.rounding + err.clipping)


def test_best_two_sided_matches_exhaustive_search():
    gen = torch.Generator().manual_seed(2)
    x = torch.cat([torch.randn(5000, generator=gen) * 0.5 + 1.0, torch.rand(50, generator=gen) * 6 - 3])
    h = make_observer("mse", bins=32)
    h.observe(x)
    counts, w, zero = h.hist.counts, h.hist.width, 32
    a, b = best_two_sided(counts, w, 15, zero_edge=zero)
    aa, bb = torch.meshgrid(torch.arange(0, zero + 1), torch.arange(zero, 65), indexing="ij")
    keep = aa < bb
    r, c = range_error(counts, w, 15, aa[keep], bb[keep])
    best = int(torch.argmin(r + c))
    assert (a, b) == (int(aa[keep][best]), int(bb[keep][best]))


@pytest.mark.parametrize("kind", ["gaussian", "outliers"])
def test_mse_model_predicts_measured_error(kind):
    """The mse observer scores each range by its actual grid (``grid_error``): the score of its choice is
    the error measured on the data, and the Δ²/12 model's choice is no better (issue 14)."""
    xs = _stream(kind, n=3)
    obs = make_observer("mse")
    for x in xs:
        obs.observe(x)
    spec = QuantSpec(bits=4)
    lo, hi = obs.range_for(spec)
    h = obs.hist
    r, c = grid_error(h.counts, h.lo.double(), h.width, lo.reshape(1), hi.reshape(1), spec=spec)
    data = torch.cat(xs)
    measured = error_split(data, choose_qparams(lo, hi, spec), spec)
    assert measured.total_mse == pytest.approx(float(r + c), rel=0.05)
    assert measured.clipping_mse == pytest.approx(float(c), rel=0.3, abs=1e-6)
    err = threshold_error(h.abs_counts(), h.width, spec.qmax - spec.qmin)
    t = float(err.thresholds[err.best()])
    modelled = error_split(data, choose_qparams(-t, t, spec), spec)
    assert measured.total_mse <= modelled.total_mse * 1.001


def test_histogram_observers_are_per_tensor_and_follow_the_spec():
    obs = make_observer("mse")
    obs.observe(torch.randn(1000))
    with pytest.raises(ValueError, match="per-tensor"):
        obs.qparams(QuantSpec(granularity=PerChannel(0)))
    with pytest.raises(TypeError, match="spec"):
        obs.range_for("int8")
    sym = obs.range_for(QuantSpec())
    asym = obs.range_for(QuantSpec(symmetric=False))
    assert float(sym[0]) == -float(sym[1])
    assert float(asym[0]) != -float(asym[1])
    assert torch.equal(torch.stack(obs.range()), torch.stack(sym))  # default: symmetric int8


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.lists(st.floats(90.0, 100.0), min_size=2, max_size=5))
def test_percentile_is_monotone_in_p_and_inside_the_data(seed, ps):
    x = torch.randn(3000, generator=torch.Generator().manual_seed(seed)) ** 3
    obs = make_observer("percentile", bins=256, symmetric=False)
    obs.observe(x)
    ranges = []
    for p in sorted(ps):
        obs.p = p
        ranges.append([float(v) for v in obs.range()])
    for (lo_a, hi_a), (lo_b, hi_b) in zip(ranges, ranges[1:], strict=False):
        assert lo_b <= lo_a + 1e-6 and hi_b >= hi_a - 1e-6  # a larger p never narrows the range
    assert all(float(x.min()) <= lo <= hi <= float(x.max()) for lo, hi in ranges)
