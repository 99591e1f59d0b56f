"""The mse calibrator scores candidates by the error of their actual grid: its choice's measured MSE
(``error_split`` on the data) is within 3 % of a brute-force search measured with torch's fake-quant kernel."""

import pytest
import torch

from ptqlab.core.affine import choose_qparams
from ptqlab.core.metrics import error_split
from ptqlab.core.spec import QuantSpec
from ptqlab.lessons.calibration.numbers import mixture_batches
from ptqlab.observers import make_observer
from ptqlab.observers.grid_error import grid_error


def _data(kind: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    n = 8192
    if kind == "spiky":  # 30 % exact zeros in a Gaussian
        return torch.where(torch.rand(n, generator=g) < 0.3, torch.zeros(n), torch.randn(n, generator=g))
    if kind == "one-sided":  # lab 02's ReLU body with its default outliers
        return torch.cat(mixture_batches(2, n // 2, body="relu"))
    return torch.randn(n, generator=g) / torch.rand(n, generator=g).clamp_min(0.05)  # heavy tails


def _brute_force_mse(x: torch.Tensor, spec: QuantSpec, n: int) -> float:
    """The least MSE over a grid of ranges, each measured with torch.fake_quantize_per_channel_affine."""
    lo_x, hi_x = float(x.min()), float(x.max())
    if spec.symmetric:
        t = torch.linspace(max(-lo_x, hi_x) / n, max(-lo_x, hi_x), n)
        lo, hi = -t, t
    else:
        los = torch.linspace(min(lo_x, 0.0), 0.0, n)
        his = torch.linspace(0.0, max(hi_x, 0.0), n + 1)[1:]
        lo, hi = (g.flatten() for g in torch.meshgrid(los, his, indexing="ij"))
    qp = choose_qparams(lo, hi, spec)
    best = float("inf")
    for s in range(0, lo.numel(), 256):
        sc, zp = qp.scale[s : s + 256], qp.zero_point[s : s + 256]
        xs = x.expand(sc.numel(), -1).contiguous()
        fq = torch.fake_quantize_per_channel_affine(xs, sc, zp, 0, spec.qmin, spec.qmax)
        best = min(best, float(((fq - xs) ** 2).mean(1).min()))
    return best


@pytest.mark.parametrize("kind", ["spiky", "one-sided", "heavy-tailed"])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
def test_mse_choice_is_within_3_percent_of_brute_force(kind, bits, symmetric):
    x = _data(kind)
    spec = QuantSpec(bits=bits, symmetric=symmetric, signed=symmetric)
    lo, hi = make_observer("mse").observe(x).range_for(spec)
    chosen = error_split(x, choose_qparams(lo, hi, spec), spec)
    brute = _brute_force_mse(x, spec, 400 if symmetric else 48)
    assert chosen.total_mse <= 1.03 * brute
    assert float(hi) > float(lo) and chosen.clipped_fraction < 0.5


def test_lab02_relu_2bit_asymmetric_no_longer_picks_the_empty_range():
    """Issue 14: mse chose [0, 0] (49.9 % clipped, 0.0 dB) where l2 got 11.5 dB."""
    from ptqlab.lessons.calibration.numbers import compare_observers, lab_grid, synthetic_calibration

    stats, x_eval = synthetic_calibration("relu", 20.0, 0.001, 8)
    results = {r.name: r for r in compare_observers(stats, x_eval, lab_grid(2, False), p=99.99)}
    assert results["mse"].hi > 1.0 and results["mse"].clipped_fraction < 0.05
    assert results["mse"].sqnr_db >= results["l2"].sqnr_db - 0.05


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_grid_error_predicts_the_measured_error(bits):
    """On a fine histogram of smooth data the score is the measured error (rounding and clipping apart)."""
    x = torch.randn(50_000, generator=torch.Generator().manual_seed(1))
    obs = make_observer("mse", bins=4096).observe(x)
    h = obs.hist
    spec = QuantSpec(bits=bits, symmetric=False)
    lo, hi = torch.tensor([-1.0, -2.5, -0.3]), torch.tensor([1.5, 2.0, 4.0])
    r, c = grid_error(h.counts, h.lo.double(), h.width, lo, hi, spec=spec)
    for k in range(3):
        split = error_split(x, choose_qparams(lo[k], hi[k], spec), spec)
        assert float(r[k]) == pytest.approx(split.rounding_mse, rel=0.02)
        assert float(c[k]) == pytest.approx(split.clipping_mse, rel=0.02, abs=1e-7)
