"""Error metrics on hand-computed examples, and the rounding/clipping split."""

import math

import pytest
import torch

from ptqlab import (
    PerChannel,
    QParams,
    QuantSpec,
    cosine_similarity,
    error_split,
    fake_quantize,
    max_abs_error,
    mse,
    qparams_for,
    sqnr_db,
)


def test_mse_and_max_abs_error():
    x, x_hat = torch.tensor([1.0, 2.0, -3.0, 0.5]), torch.tensor([1.0, 4.0, -2.0, 0.5])
    assert mse(x, x_hat) == (0 + 4 + 1 + 0) / 4
    assert max_abs_error(x, x_hat) == 2.0
    assert mse(x, x) == 0.0 and max_abs_error(x, x) == 0.0


def test_sqnr_db():
    x, x_hat = torch.tensor([3.0, 4.0]), torch.tensor([3.0, 3.0])
    assert sqnr_db(x, x_hat) == pytest.approx(10 * math.log10(25 / 1))
    assert sqnr_db(x, x) == math.inf
    assert sqnr_db(torch.zeros(2), torch.ones(2)) == -math.inf
    # each extra bit of a uniform quantizer buys ~6.02 dB
    x = torch.linspace(-1, 1, 4097)
    gains = []
    for bits in (6, 7):
        spec = QuantSpec(bits=bits, symmetric=False)
        gains.append(sqnr_db(x, fake_quantize(x, qparams_for(x, spec), spec)))
    assert gains[1] - gains[0] == pytest.approx(20 * math.log10(2), abs=0.2)


def test_cosine_similarity():
    a = torch.tensor([1.0, 0.0])
    assert cosine_similarity(a, torch.tensor([2.0, 0.0])) == pytest.approx(1.0)
    assert cosine_similarity(a, torch.tensor([0.0, 3.0])) == 0.0
    assert cosine_similarity(a, torch.tensor([-1.0, 0.0])) == pytest.approx(-1.0)
    assert cosine_similarity(torch.zeros(2), torch.zeros(2)) == 1.0
    assert cosine_similarity(a, torch.zeros(2)) == 0.0


def test_error_split_by_hand():
    """int2 [-2, 1], scale 0.5, zero point 0: the grid is {-1, -0.5, 0, 0.5}, covering [-1.0, 0.5]."""
    spec = QuantSpec(bits=2, symmetric=False)
    qp = QParams(torch.tensor([0.5]), torch.tensor([0], dtype=torch.int32))
    x = torch.tensor([-2.0, -0.9, 0.0, 0.25, 0.5, 1.5])
    # -2.0 clipped to -1.0 (1.0) | -0.9 -> -1.0 (0.1) | 0 exact | 0.25 is a tie: round-half-even -> 0
    # (0.25) | 0.5 exact (on the edge, inside) | 1.5 clipped to 0.5 (1.0)
    assert torch.equal(fake_quantize(x, qp, spec), torch.tensor([-1.0, -1.0, 0.0, 0.0, 0.5, 0.5]))
    split = error_split(x, qp, spec)
    d = float(torch.tensor(-0.9).double()) + 1.0  # -0.9 is not exact in float32
    assert split.rounding_mse == pytest.approx((d**2 + 0.25**2) / 6, rel=1e-12)
    assert split.clipping_mse == (1.0 + 1.0) / 6
    assert split.clipped_fraction == 2 / 6
    assert split.max_rounding_error == 0.25 == 0.5 / 2  # the tie: exactly half a step
    assert split.max_clipping_error == 1.0
    assert split.total_mse == pytest.approx(mse(x, fake_quantize(x, qp, spec)), rel=1e-12)
    assert split.sqnr_db == pytest.approx(sqnr_db(x, fake_quantize(x, qp, spec)))
    assert split.cosine == pytest.approx(cosine_similarity(x, fake_quantize(x, qp, spec)))


def test_error_split_without_clipping_and_per_channel():
    x = torch.tensor([[0.0, 0.3, 1.0], [-5.0, 2.0, 5.0]])
    spec = QuantSpec(bits=4, granularity=PerChannel(0))
    qp = qparams_for(x, spec)
    split = error_split(x, qp, spec)
    # symmetric int4 covers [-8s, 7s] with s = amax/7.5: row 0 clips 1.0 (> 7s = 0.933), row 1 clips 5.0
    assert split.clipped_fraction == 2 / 6
    assert split.max_clipping_error == pytest.approx(5.0 / 15, rel=1e-6)  # amax - 7·amax/7.5 = amax/15
    assert split.total_mse == pytest.approx(mse(x, fake_quantize(x, qp, spec)), rel=1e-12)
    # asymmetric min/max still clips when the zero point rounds: row 1 has s = 10/15, zp = -8 - round(-7.5)
    # = 0 (half to even), so the grid is [-5.33, 4.67] and 5.0 is clipped by s/2
    asym = spec.with_(symmetric=False)
    split = error_split(x, qparams_for(x, asym), asym)
    assert split.clipped_fraction == 1 / 6
    assert split.max_clipping_error == pytest.approx((10 / 15) / 2, rel=1e-6)
    # ranges that are whole multiples of 15 steps with an integral min/scale are covered exactly
    x = torch.tensor([[0.0, 0.3, 3.75], [-5.0, 2.5, 10.0]])  # s = 0.25, zp = -8 | s = 1, zp = -3
    split = error_split(x, qparams_for(x, asym), asym)
    assert split.clipped_fraction == 0.0 and split.clipping_mse == 0.0 and split.max_clipping_error == 0.0
