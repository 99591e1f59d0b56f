"""Issue 14 §5: a refused value leaves the widgets in their last valid state, from Python and from the
browser; constant tensors are described by their data; large tensors are summarised once."""

import pytest
import torch

from ptqlab.core.affine import choose_qparams
from ptqlab.core.metrics import error_split
from ptqlab.core.spec import QuantSpec
from ptqlab.widgets import AffineStaircase, ClippingExplorer, InvalidWidgetValue, clipping


@pytest.fixture
def x():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4000, generator=g) / torch.rand(4000, generator=g).clamp_min(0.05)


def _state(w):
    return (w.lo, w.hi, w.bits, dict(w.stats), w.qparams)


@pytest.mark.parametrize("make", ["explorer", "staircase"])
@pytest.mark.parametrize(
    "change, message",
    [
        (lambda w: setattr(w, "lo", -1e300), "lo must lie within float32's range"),
        (lambda w: setattr(w, "hi", 1e39), "hi must lie within float32's range"),
    ],
)
def test_refused_values_keep_the_last_valid_state(x, make, change, message):
    w = ClippingExplorer(x, lo=-2.0, hi=3.0) if make == "explorer" else AffineStaircase(lo=-2.0, hi=3.0)
    before = _state(w)
    with pytest.raises(InvalidWidgetValue, match=message):
        change(w)
    after = _state(w)
    assert after[:4] == before[:4] and after[4] is before[4]
    assert message in w.error
    w.set_range(-1.0, 1.0)  # still alive, and the next valid change clears the message
    assert w.error == "" and (w.lo, w.hi) == (-1.0, 1.0)


@pytest.mark.parametrize("make", ["explorer", "staircase"])
@pytest.mark.parametrize("sync", [{"lo": -1e300}, {"hi": "abc"}, {"bits": None}])
def test_browser_path_never_raises_and_keeps_state(x, monkeypatch, make, sync):
    w = ClippingExplorer(x, lo=-2.0, hi=3.0) if make == "explorer" else AffineStaircase(lo=-2.0, hi=3.0)
    sent = []
    monkeypatch.setattr(w, "send_state", lambda key=None: sent.append(key))
    before = _state(w)
    w.set_state(sync)  # no exception reaches the comm
    assert _state(w)[:4] == before[:4] and w.error
    assert sent and set(sent[-1]) == set(sync)


@pytest.mark.parametrize("make", ["explorer", "staircase"])
def test_a_range_near_float32_max_is_computed_exactly_or_refused_with_state_kept(x, make):
    """±3e38: choose_qparams computes the scale in float64 where the float32 span overflows (a finite
    scale); a widget either shows the exact numbers of that grid or refuses it and keeps its state."""
    w = ClippingExplorer(x, lo=-2.0, hi=3.0) if make == "explorer" else AffineStaircase(lo=-2.0, hi=3.0)
    before = _state(w)
    try:
        w.set_range(-3e38, 3e38)
    except InvalidWidgetValue:
        assert _state(w)[:4] == before[:4] and w.error
        return
    assert (w.lo, w.hi) == (-3e38, 3e38) and w.error == ""
    if make == "explorer":
        spec = w.current_spec
        split = error_split(x, choose_qparams(-3e38, 3e38, spec), spec)
        assert w.stats["total_mse"] == pytest.approx(split.total_mse)


def test_staircase_symmetric_toggle_is_validated_too():
    w = AffineStaircase(lo=-3e38, hi=-1e38, bits=4, domain=(-1.0, 1.0))  # fine asymmetric ...
    assert w.symmetric is False
    w.symmetric = True  # ... and symmetric (amax 3e38 / 7.5 fits)
    assert w.error == ""


@pytest.mark.parametrize("value", [1e38, -1e38, 3.4e38, 0.0, 5.0])
def test_constant_tensor_gets_a_range_around_its_value(value):
    x = torch.full((100,), value)
    w = ClippingExplorer(x)
    v = float(x[0])  # the float32 value
    assert w.lo < w.hi and w.lo <= v <= w.hi and w.error == ""
    assert w.split == error_split(x, choose_qparams(w.lo, w.hi, w.current_spec), w.current_spec)


def test_set_range_computes_once(x, monkeypatch):
    w = ClippingExplorer(x)
    calls = []
    original = clipping.ClippingExplorer._compute
    monkeypatch.setattr(
        clipping.ClippingExplorer, "_compute", lambda self, **s: calls.append(s) or original(self, **s)
    )
    w.set_range(-1.0, 2.0)
    assert len(calls) == 1
    w.set_state({"lo": -1.5, "hi": 2.5})
    assert len(calls) == 2


def test_large_tensor_is_summarised_once_with_labelled_estimates(monkeypatch):
    monkeypatch.setattr(clipping, "EXACT_LIMIT", 10_000)
    g = torch.Generator().manual_seed(1)
    x = torch.cat([torch.randn(200_000, generator=g), torch.randn(200, generator=g) * 15])
    w = ClippingExplorer(x, spec=QuantSpec(bits=4, symmetric=False))
    assert w.summary is not None and w.x.data_ptr() == x.data_ptr()  # no copy of a float32 x
    for lo, hi in [(-3.0, 3.0), (-10.0, 20.0), (float(x.min()), float(x.max()))]:
        w.set_range(lo, hi)
        exact = w.exact_split()
        assert w.stats["exact"] is False and w.split is None
        assert w.stats["total_mse"] == pytest.approx(exact.total_mse, rel=0.02)
        assert w.stats["rounding_mse"] == pytest.approx(exact.rounding_mse, rel=0.02)
        assert w.stats["clipping_mse"] == pytest.approx(exact.clipping_mse, rel=0.05, abs=1e-6)
        assert w.stats["clipped_fraction"] == pytest.approx(exact.clipped_fraction, abs=2e-4)
        assert w.stats["max_clipping_error"] == pytest.approx(exact.max_clipping_error, rel=1e-5)
        assert w.stats["sqnr_db"] == pytest.approx(exact.sqnr_db, abs=0.1)


def test_small_tensor_stats_are_exact(x):
    w = ClippingExplorer(x, spec=QuantSpec(bits=3, symmetric=False), lo=-4.0, hi=6.0)
    split = error_split(x, choose_qparams(-4.0, 6.0, w.current_spec), w.current_spec)
    assert w.stats["exact"] is True and w.split == split
    assert w.stats["total_mse"] == split.total_mse and w.stats["clipped_fraction"] == split.clipped_fraction


def test_widgets_benchmark_prints_the_per_drag_time(capsys):
    from ptqlab.cli.main import BENCHMARKS, main

    assert "widgets" in BENCHMARKS
    assert main(["bench", "widgets", "--numel", "300000", "--drags", "3"]) == 0
    out = capsys.readouterr().out
    assert "estimates from the summary" in out and "per drag (set_range): median" in out
    with pytest.raises(SystemExit):
        main(["bench", "widgets", "--drags", "0"])
