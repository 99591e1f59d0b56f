"""The widgets' Python side: every number equals ptqlab's own functions; invalid values are refused."""

import math

import pytest
import torch
import traitlets

from ptqlab.core.affine import choose_qparams, fake_quantize, integer_grid, representable_range
from ptqlab.core.metrics import error_split
from ptqlab.core.spec import PerChannel, QuantSpec
from ptqlab.observers import OBSERVERS, PER_TENSOR, MinMaxObserver, make_observer
from ptqlab.widgets import AffineStaircase, ClippingExplorer, InvalidWidgetValue
from ptqlab.widgets.clipping import histogram


@pytest.fixture
def x():
    g = torch.Generator().manual_seed(0)
    return torch.randn(5000, generator=g) / torch.rand(5000, generator=g).clamp_min(0.05)  # heavy tails


def expected_split(x, lo, hi, spec):
    return error_split(x, choose_qparams(lo, hi, spec), spec)


def test_explorer_starts_at_min_max_with_exact_error_split(x):
    spec = QuantSpec(bits=4, symmetric=False)
    w = ClippingExplorer(x, spec=spec)
    assert (w.lo, w.hi) == (float(x.min()), float(x.max()))
    split = expected_split(x, w.lo, w.hi, spec)
    assert w.split == split
    assert w.stats["rounding_mse"] == split.rounding_mse
    assert w.stats["clipping_mse"] == split.clipping_mse
    assert w.stats["total_mse"] == split.total_mse
    assert w.stats["sqnr_db"] == split.sqnr_db
    assert w.stats["clipped_fraction"] == split.clipped_fraction
    assert w.error == ""


@pytest.mark.parametrize("lo, hi, bits", [(-2.0, 3.0, 4), (-0.5, 0.5, 8), (0.25, 7.0, 3), (-9.0, -1.0, 6)])
def test_setting_traits_recomputes_with_ptqlab(x, lo, hi, bits):
    spec = QuantSpec(bits=8, symmetric=False)
    w = ClippingExplorer(x, spec=spec)
    w.bits = bits
    w.set_range(lo, hi)
    spec_b = spec.with_(bits=bits)
    qp = choose_qparams(lo, hi, spec_b)
    split = error_split(x, qp, spec_b)
    assert w.thresholds == (lo, hi)
    assert w.split == split
    assert torch.equal(w.qparams.scale, qp.scale) and torch.equal(w.qparams.zero_point, qp.zero_point)
    assert w.stats["scale"] == float(qp.scale) and w.stats["zero_point"] == int(qp.zero_point)
    g_lo, g_hi = representable_range(qp, spec_b)
    assert (w.stats["grid_lo"], w.stats["grid_hi"]) == (float(g_lo), float(g_hi))
    assert w.stats["sqnr_db"] == split.sqnr_db
    assert math.isclose(w.stats["total_mse"], w.stats["rounding_mse"] + w.stats["clipping_mse"])


def test_tighter_range_trades_clipping_for_rounding(x):
    w = ClippingExplorer(x, spec=QuantSpec(bits=4, symmetric=False))
    wide = dict(w.stats)
    w.set_range(-3.0, 3.0)
    assert w.stats["rounding_mse"] < wide["rounding_mse"]
    assert w.stats["clipping_mse"] > wide["clipping_mse"]
    assert w.stats["clipped_fraction"] > 0


def test_symmetric_spec_and_browser_state_update(x):
    spec = QuantSpec(bits=8, symmetric=True)
    w = ClippingExplorer(x, spec=spec)
    w.set_state({"lo": -1.5, "hi": 4.0})  # what the browser sends after a drag
    assert w.split == expected_split(x, -1.5, 4.0, spec)
    assert w.stats["zero_point"] == 0 and w.error == ""


def test_histogram_counts_every_value(x):
    edges, counts = histogram(x, 50)
    assert len(edges) == 51 and len(counts) == 50
    assert sum(counts) == x.numel()
    assert edges[0] == float(x.to(torch.float64).min()) and edges[-1] == float(x.to(torch.float64).max())


def test_observer_markers_names_instances_and_mapping(x):
    w = ClippingExplorer(x, observers=["minmax"])
    assert w.markers == [{"name": "minmax", "lo": float(x.min()), "hi": float(x.max())}]
    calibrated = MinMaxObserver().observe(torch.tensor([-1.0, 2.0]))  # already calibrated: used as is
    w = ClippingExplorer(x, observers={"on other data": calibrated, "mm": "minmax"})
    assert [m["name"] for m in w.markers] == ["on other data", "mm"]
    assert (w.markers[0]["lo"], w.markers[0]["hi"]) == (-1.0, 2.0)
    with pytest.raises(ValueError, match="unknown observer 'nope'"):
        ClippingExplorer(x, observers=["nope"])
    with pytest.raises(TypeError, match="observers must be names or Observer"):
        ClippingExplorer(x, observers=[3])


def test_markers_are_each_per_tensor_observers_range_for_the_current_grid(x):
    assert set(PER_TENSOR) == {n for n in OBSERVERS if n != "per_channel" and not n.startswith("ort_")}
    spec = QuantSpec(bits=4, symmetric=True)
    w = ClippingExplorer(x, spec=spec, observers=PER_TENSOR)
    for bits in (4, 7):
        w.bits = bits
        expected = []
        for name in PER_TENSOR:
            lo, hi = make_observer(name).observe(x).range_for(spec.with_(bits=bits))
            expected.append({"name": name, "lo": float(lo), "hi": float(hi)})
        assert w.markers == expected
    searched = {m["name"]: m for m in w.markers}

    def threshold(m):  # a symmetric grid's threshold T = max(−lo, hi)
        return max(-m["lo"], m["hi"])

    assert threshold(searched["mse"]) < threshold(searched["minmax"])  # the search clips this heavy tail
    with pytest.raises(ValueError, match="'per_channel' gives a range per channel"):
        ClippingExplorer(x, observers=["per_channel"])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lo": 100.0}, r"lo must be below hi, got lo=100 >= hi="),
        ({"hi": -100.0}, r"lo must be below hi, got lo=.* >= hi=-100"),
        ({"lo": float("nan")}, r"lo must be a finite number, got nan"),
        ({"hi": float("inf")}, r"hi must be a finite number, got inf"),
        ({"bits": 1}, r"bits must be in \[2, 16\], got 1"),
        ({"bits": 17}, r"bits must be in \[2, 16\], got 17"),
    ],
)
def test_invalid_values_from_python_are_refused_and_state_kept(x, change, message):
    w = ClippingExplorer(x, spec=QuantSpec(bits=4, symmetric=False), lo=-2.0, hi=3.0)
    before = (w.lo, w.hi, w.bits, dict(w.stats), w.split)
    ((name, value),) = change.items()
    with pytest.raises(InvalidWidgetValue, match=message):
        setattr(w, name, value)
    assert (w.lo, w.hi, w.bits, w.stats, w.split) == before
    assert w.error and __import__("re").search(message, w.error)
    w.lo = -1.0  # the next valid change clears the message
    assert w.error == ""


def test_invalid_value_is_both_value_error_and_trait_error():
    assert issubclass(InvalidWidgetValue, ValueError) and issubclass(InvalidWidgetValue, traitlets.TraitError)


def test_set_range_validates_the_pair_and_rolls_back(x):
    w = ClippingExplorer(x, lo=-1.0, hi=1.0)
    w.set_range(5.0, 6.0)  # moving past the old hi in one step is fine
    assert (w.lo, w.hi) == (5.0, 6.0)
    with pytest.raises(InvalidWidgetValue, match="lo must be below hi, got lo=7 >= hi=2"):
        w.set_range(7.0, 2.0)
    assert (w.lo, w.hi) == (5.0, 6.0)
    assert "lo must be below hi" in w.error


def test_invalid_values_from_browser_are_refused_and_resent(x, monkeypatch):
    w = ClippingExplorer(x, lo=-1.0, hi=1.0, bits=8)
    sent = []
    monkeypatch.setattr(w, "send_state", lambda key=None: sent.append(key))
    before = (w.lo, w.hi, w.bits, w.split)
    w.set_state({"lo": 3.0})  # the browser must not crash the kernel: no exception, state kept
    assert (w.lo, w.hi, w.bits, w.split) == before
    assert w.error == "lo must be below hi, got lo=3 >= hi=1"
    assert ["lo"] in sent  # the last valid lo goes back to the browser
    w.set_state({"bits": 40, "lo": -0.5})
    assert (w.lo, w.bits) == (-1.0, 8) and w.error == "bits must be in [2, 16], got 40"
    w.set_state({"lo": None})  # a cleared number box arrives as null
    assert w.lo == -1.0 and "'lo' trait" in w.error


def test_constructor_rejects_bad_arguments(x):
    with pytest.raises(InvalidWidgetValue, match="lo must be below hi"):
        ClippingExplorer(x, lo=2.0, hi=1.0)
    with pytest.raises(ValueError, match="one range per tensor"):
        ClippingExplorer(x.reshape(50, 100), spec=QuantSpec(granularity=PerChannel(0)))
    with pytest.raises(ValueError, match="bins must be an int"):
        ClippingExplorer(x, bins=1)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        ClippingExplorer([1.0, 2.0])
    with pytest.raises(ValueError, match="x contains non-finite"):
        ClippingExplorer(torch.tensor([1.0, float("nan")]))


def test_sqnr_of_an_exact_copy_is_sent_as_null():
    w = ClippingExplorer(
        torch.tensor([0.0, 1.0, 2.0, 3.0]),
        spec=QuantSpec(bits=2, signed=False, symmetric=False),
        lo=0.0,
        hi=3.0,
    )
    assert w.split.sqnr_db == math.inf and w.stats["sqnr_db"] is None  # JSON has no infinity


# --- AffineStaircase ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lo, hi, bits, symmetric", [(-1.0, 1.0, 3, False), (-0.3, 2.0, 4, True), (0.5, 1.5, 2, False)]
)
def test_staircase_is_ptqlab_fake_quantize(lo, hi, bits, symmetric):
    w = AffineStaircase(lo=-1.0, hi=1.0, bits=3, domain=(-3.0, 3.0))
    w.symmetric = symmetric
    w.bits = bits
    w.set_range(lo, hi)
    spec = QuantSpec(bits=bits, symmetric=symmetric)
    qp = choose_qparams(lo, hi, spec)
    xs = torch.tensor(w.xs, dtype=torch.float32)
    assert xs[0] == -3.0 and xs[-1] == 3.0
    assert w.ys == fake_quantize(xs, qp, spec).tolist()
    assert w.grid == integer_grid(qp, spec).tolist()
    assert w.stats["scale"] == float(qp.scale) and w.stats["zero_point"] == int(qp.zero_point)
    assert (w.stats["qmin"], w.stats["qmax"], w.stats["levels"]) == (spec.qmin, spec.qmax, spec.levels)


def test_staircase_every_output_is_a_grid_point():
    w = AffineStaircase(lo=-1.0, hi=2.0, bits=3)
    assert set(w.ys) <= set(w.grid)
    assert len(set(w.ys)) == 8  # the domain is wider than the range: every level is reached


def test_staircase_drops_grid_lines_when_too_dense():
    w = AffineStaircase(bits=12)
    assert w.grid == [] and w.stats["levels"] == 4096


def test_staircase_refuses_invalid_values_and_keeps_state():
    w = AffineStaircase(lo=-1.0, hi=1.0, bits=3)
    before = (w.lo, w.hi, w.bits, list(w.ys), dict(w.stats))
    with pytest.raises(InvalidWidgetValue, match=r"bits must be in \[2, 16\], got 0"):
        w.bits = 0
    with pytest.raises(InvalidWidgetValue, match="lo must be below hi, got lo=1 >= hi=1"):
        w.lo = 1.0
    assert (w.lo, w.hi, w.bits, w.ys, w.stats) == before
    w.set_state({"bits": 99})
    assert w.bits == 3 and w.error == "bits must be in [2, 16], got 99"
    with pytest.raises(ValueError, match="domain must be an interval"):
        AffineStaircase(domain=(1.0, -1.0))


def test_current_spec_follows_the_widget(x):
    w = ClippingExplorer(x, spec=QuantSpec(bits=8, symmetric=False, narrow_range=True))
    w.bits = 5
    assert w.current_spec == QuantSpec(bits=5, symmetric=False, narrow_range=True)
    s = AffineStaircase(bits=3)
    s.symmetric = True
    assert s.current_spec == QuantSpec(bits=3, symmetric=True)
