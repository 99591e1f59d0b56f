"""GPTQ's weight-range shrink search (``ptq.range_search``, the reference's ``Quantizer(mse=True)``) against
an independent per-row loop on torch's own fake-quant, alone and inside GPTQ's column sweep."""

import pytest
import torch

from ptqlab.core.spec import PerChannel, PerGroup, PerTensor, QuantSpec
from ptqlab.ptq.gptq import gptq_quantize
from ptqlab.ptq.range_search import shrink_search_qparams
from tests.test_algorithms_oracles import correlated_rows, torch_fake_quant_rows


def reference_range(row: torch.Tensor, spec: QuantSpec, norm=2.4, grid=100, maxshrink=0.8):
    """The reference's loop for one row: p = 1 − i/grid, keep the strictly better Σ|x − Q_p(x)|^norm."""
    lo, hi = row.min().reshape(1), row.max().reshape(1)
    best, best_range = float("inf"), None
    for i in range(int(maxshrink * grid)):
        p = 1 - i / grid
        q = torch_fake_quant_rows(row[None], lo * p, hi * p, spec)[0]
        err = float((q - row.double()).abs().pow(norm).sum())
        if err < best:
            best, best_range = err, (lo * p, hi * p)
    return best_range


def searched_fake_quant(w: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    ranges = [reference_range(r, spec) for r in w.float()]
    lo, hi = torch.cat([r[0] for r in ranges]), torch.cat([r[1] for r in ranges])
    return torch_fake_quant_rows(w, lo, hi, spec)


@pytest.mark.parametrize("bits", [3, 4, 8])
def test_shrink_search_equals_the_reference_loop(bits):
    torch.manual_seed(bits)
    w = torch.randn(16, 64) * torch.linspace(0.1, 2.0, 16)[:, None]
    w[3, 5] = 9.0  # an outlier row: clipping it pays
    spec = QuantSpec(bits=bits, granularity=PerGroup(64))
    qp = shrink_search_qparams(w, spec)
    ours = (
        (torch.round(w * (1 / qp.scale)) + qp.zero_point).clamp(spec.qmin, spec.qmax) - qp.zero_point
    ) * qp.scale
    torch.testing.assert_close(ours.double(), searched_fake_quant(w, spec), atol=1e-6, rtol=1e-6)
    full = w.abs().amax(1, keepdim=True) / ((spec.qmax - spec.qmin) / 2)
    assert bool((qp.scale <= full * (1 + 1e-6)).all()) and bool((qp.scale < full).any())


@pytest.mark.parametrize(
    ("granularity", "act_order"), [(PerGroup(8), False), (PerGroup(8), True), (PerChannel(0), False)]
)
def test_gptq_with_range_search_equals_the_obs_reference_on_searched_ranges(granularity, act_order):
    torch.manual_seed(0)
    w, rows = torch.randn(12, 32), correlated_rows(256, 32)
    spec = QuantSpec(bits=4, granularity=granularity)
    h = 2 * rows.double().T @ rows.double() / len(rows)
    ours = gptq_quantize(w, h, spec, block_size=8, act_order=act_order, clip=True).weight
    ref = obs_reference_with_search(w, h, spec, act_order)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def obs_reference_with_search(w, h, spec, act_order, damp=0.01):
    """Frantar et al. eq. (2)-(3) column by column with the explicit inverse Hessian; each group's rows take
    the searched range of the group as it stands when the sweep reaches it (static groups with act-order)."""
    w, h = w.double().clone(), h.double().clone()
    h += damp * torch.diag(h).mean() * torch.eye(len(h), dtype=h.dtype)
    hinv = torch.linalg.inv(h)
    order = torch.argsort(torch.diag(h), descending=True).tolist() if act_order else list(range(w.shape[1]))
    size = spec.granularity.group_size if isinstance(spec.granularity, PerGroup) else w.shape[1]

    def ranges(block):
        found = [reference_range(r, spec) for r in block.float()]
        return torch.cat([f[0] for f in found]), torch.cat([f[1] for f in found])

    static = (
        {g: ranges(w[:, g * size : (g + 1) * size]) for g in range(w.shape[1] // size)} if act_order else {}
    )
    q = torch.zeros_like(w)
    for pos, i in enumerate(order):
        if not act_order and pos % size == 0:
            current = ranges(w[:, pos : pos + size])
        lo, hi = static[i // size] if act_order else current
        q[:, i] = torch_fake_quant_rows(w[:, i : i + 1], lo, hi, spec)[:, 0]
        err = (w[:, i] - q[:, i]) / hinv[i, i]
        w -= err[:, None] * hinv[i][None, :]
        w[:, i] = q[:, i]
        hinv -= hinv[:, i : i + 1] @ hinv[i : i + 1, :] / hinv[i, i]
    return q.float()


def test_range_search_lowers_gptq_output_error_on_outlier_weights():
    torch.manual_seed(1)
    w, rows = torch.randn(32, 64), correlated_rows(512, 64, seed=1)
    w[torch.rand_like(w) < 0.02] *= 8  # a few large weights stretch their group's range
    spec = QuantSpec(bits=3, granularity=PerGroup(32))
    h = 2 * rows.double().T @ rows.double() / len(rows)
    err = {
        c: float((rows @ (w - gptq_quantize(w, h, spec, clip=c).weight).T).pow(2).mean())
        for c in (False, True)
    }
    assert err[True] < err[False]


@pytest.mark.parametrize(
    ("w", "kw", "error", "match"),
    [
        (torch.tensor([[float("nan"), 1.0]]), {}, ValueError, "NaN"),
        (torch.tensor([[float("inf"), 1.0]]), {}, ValueError, "Inf"),
        (torch.zeros(0, 4), {}, TypeError, "non-empty"),
        (torch.ones(4, dtype=torch.int32), {}, TypeError, "2-D float"),
        (torch.ones(2, 4), {"grid": 0}, ValueError, "grid"),
        (torch.ones(2, 4), {"grid": True}, ValueError, "grid"),
        (torch.ones(2, 4), {"maxshrink": 1.5}, ValueError, "maxshrink"),
        (torch.ones(2, 4), {"norm": -1}, ValueError, "norm"),
    ],
)
def test_shrink_search_rejects_bad_input(w, kw, error, match):
    with pytest.raises(error, match=match):
        shrink_search_qparams(w, QuantSpec(bits=4, granularity=PerChannel(0)), **kw)


def test_shrink_search_handles_huge_and_zero_rows_and_refuses_per_tensor():
    w = torch.tensor([[3e38, -3e38, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    qp = shrink_search_qparams(w, QuantSpec(bits=4, granularity=PerChannel(0)))
    assert bool(torch.isfinite(qp.scale).all()) and bool((qp.scale > 0).all())
    with pytest.raises(ValueError, match="per-tensor"):
        shrink_search_qparams(w, QuantSpec(bits=4, granularity=PerTensor()))
    with pytest.raises(TypeError, match="clip"):
        gptq_quantize(torch.ones(2, 4), torch.eye(4), QuantSpec(bits=4, granularity=PerChannel(0)), clip=1)


def test_layer_errors_from_the_gram_matrix_equal_the_errors_on_rows():
    from ptqlab.ptq.gptq import hessian
    from ptqlab.ptq.layerwise import errors_vs_rtn

    torch.manual_seed(2)
    rows, w = correlated_rows(300, 64, seed=2), torch.randn(24, 64)
    w_new = w + 0.01 * torch.randn_like(w)
    spec = QuantSpec(bits=4, granularity=PerGroup(16))
    on_rows = errors_vs_rtn(rows, w, None, w_new, None, spec=spec)
    from_gram = errors_vs_rtn(rows, w, None, w_new, None, spec=spec, gram=hessian(rows))
    torch.testing.assert_close(torch.tensor(from_gram), torch.tensor(on_rows), rtol=1e-4, atol=0)
    b = torch.randn(24)  # a bias does not cancel in the reference norm: the rows are used then
    assert errors_vs_rtn(rows, w, b, w_new, b, spec=spec, gram=hessian(rows)) == errors_vs_rtn(
        rows, w, b, w_new, b, spec=spec
    )
