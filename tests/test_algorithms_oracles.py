"""PTQ algorithms against independent oracles: an unblocked OBS-style GPTQ, torchao's AWQ and SmoothQuant
observers, CLE's exact invariance, bias correction's zero mean shift, AdaRound's floor/ceil codes."""

import pytest
import torch
from torch import nn

from ptqlab.core.spec import PerChannel, PerGroup, QuantSpec
from ptqlab.models.digits import DigitsCNN, DigitsMLP
from ptqlab.ptq.adaround import adaround_layer, integer_codes, per_element_qparams
from ptqlab.ptq.algorithms import run_algorithm
from ptqlab.ptq.awq import awq_scales
from ptqlab.ptq.bias_correction import mean_output_shift
from ptqlab.ptq.cle import equalizable_pairs, equalize, input_ranges, output_ranges
from ptqlab.ptq.folding import fold_batchnorm
from ptqlab.ptq.gptq import gptq_quantize, hessian
from ptqlab.ptq.layer_data import relative_mse, rtn
from ptqlab.ptq.smoothquant import smoothing_scale


def correlated_rows(n: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / d**0.5 + torch.eye(d)
    return (torch.randn(n, d, generator=g) @ mix) * torch.linspace(0.2, 3.0, d)


def torch_fake_quant_rows(
    col: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, spec: QuantSpec
) -> torch.Tensor:
    """Independent grid: torch's own fake_quantize_per_channel_affine with the symmetric min/max scale."""
    amax = torch.maximum(-lo.clamp(max=0), hi.clamp(min=0)).double()
    scale = (amax / ((spec.qmax - spec.qmin) / 2)).clamp(min=torch.finfo(torch.float32).eps).float()
    zp = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(col.float(), scale, zp, 0, spec.qmin, spec.qmax).double()


def obs_gptq_reference(w: torch.Tensor, h: torch.Tensor, spec: QuantSpec, damp: float, act_order: bool):
    """Frantar et al. eq. (2)-(3), one column at a time with the explicit inverse Hessian (no Cholesky, no
    blocks): q = quant(w_i); δ = −(w_i − q)/[H⁻¹]_ii · H⁻¹_{:,i}; H⁻¹ ← H⁻¹ − H⁻¹_{:,i} H⁻¹_{i,:} / [H⁻¹]_ii."""
    w, h = w.double().clone(), h.double().clone()
    h += damp * torch.diag(h).mean() * torch.eye(len(h), dtype=h.dtype)
    hinv = torch.linalg.inv(h)
    order = torch.argsort(torch.diag(h), descending=True).tolist() if act_order else list(range(w.shape[1]))
    size = spec.granularity.group_size if isinstance(spec.granularity, PerGroup) else w.shape[1]
    static = {}
    if act_order:  # static groups: qparams from the original weights
        for g0 in range(0, w.shape[1], size):
            static[g0 // size] = (w[:, g0 : g0 + size].amin(1), w[:, g0 : g0 + size].amax(1))
    q = torch.zeros_like(w)
    for pos, i in enumerate(order):
        if not act_order and pos % size == 0:
            current = (w[:, pos : pos + size].amin(1), w[:, pos : pos + size].amax(1))
        lo, hi = static[i // size] if act_order else current
        q[:, i] = torch_fake_quant_rows(w[:, i], lo, hi, spec)
        err = (w[:, i] - q[:, i]) / hinv[i, i]
        w -= err[:, None] * hinv[i][None, :]
        w[:, i] = q[:, i]
        hinv -= hinv[:, i : i + 1] @ hinv[i : i + 1, :] / hinv[i, i]
    return q.float()


@pytest.mark.parametrize(
    ("granularity", "act_order"),
    [(PerChannel(0), False), (PerGroup(8), False), (PerGroup(8), True), (PerChannel(0), True)],
)
def test_gptq_matches_an_unblocked_obs_reference(granularity, act_order):
    # torchao.prototype.gptq asserts a CUDA device (and needs mslk for int4), so the oracle is written here.
    torch.manual_seed(0)
    w = torch.randn(12, 32)
    rows = correlated_rows(256, 32)
    spec = QuantSpec(bits=4, granularity=granularity)
    h = 2 * rows.double().T @ rows.double() / len(rows)  # H = 2XᵀX/n, as ptqlab.ptq.gptq.hessian, in float64
    torch.testing.assert_close(hessian(rows), h, rtol=1e-5, atol=1e-4)
    ours = gptq_quantize(w, h, spec, block_size=8, act_order=act_order, damp=0.01).weight
    ref = obs_gptq_reference(w, h, spec, 0.01, act_order)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    rtn_err = relative_mse(rows @ w.T, rows @ rtn(w, spec).T)
    assert relative_mse(rows @ w.T, rows @ ours.T) < rtn_err


def test_gptq_dampens_a_nearly_singular_hessian_and_fails_clearly_on_an_indefinite_one():
    w = torch.randn(3, 2)
    spec = QuantSpec(bits=4, granularity=PerChannel(0))
    result = gptq_quantize(w, torch.tensor([[1.0, 1.05], [1.05, 1.0]]), spec, name="fc")
    assert any("dampened to damp=0.1" in n for n in result.notes)
    with pytest.raises(ValueError, match="calibration.*singular"):
        gptq_quantize(w, torch.tensor([[1.0, 5.0], [5.0, 1.0]]), spec, name="fc")


def test_awq_scales_match_torchao_awq_observer():
    from torchao.prototype.awq.core import AWQObserver
    from torchao.quantization import Int8WeightOnlyConfig

    torch.manual_seed(0)
    w = torch.randn(16, 64)
    x = torch.randn(512, 64) * torch.linspace(0.1, 5, 64)
    observer = AWQObserver(w, None, Int8WeightOnlyConfig())  # int8 per-row symmetric = our int8 per-channel
    observer(x, None)
    expected = observer.calculate_qparams()
    ours, alpha, _ = awq_scales(w, x, None, QuantSpec(bits=8, granularity=PerChannel(0)), grid=20)
    assert alpha > 0
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)


def test_smoothing_scale_matches_torchao_smoothquant_observer():
    from torchao.prototype.smoothquant.core import SmoothQuantObserver

    torch.manual_seed(0)
    w = torch.randn(24, 32)
    x = torch.randn(4, 50, 32) * torch.linspace(0.5, 20, 32)
    observer = SmoothQuantObserver(w, alpha=0.6)
    observer(x)
    expected, _, _ = observer.calculate_qparams()
    amax = x.abs().reshape(-1, 32).amax(0)
    torch.testing.assert_close(smoothing_scale(amax, w, 0.6, floor=0.0), expected, rtol=1e-5, atol=1e-6)


def randomised(model: nn.Module) -> nn.Module:
    """Random BatchNorm statistics, so folding and equalisation have something to do."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean = torch.randn(m.num_features, generator=g) * 0.1
            m.running_var = torch.rand(m.num_features, generator=g) * 4 + 0.05
            m.weight.data = torch.rand(m.num_features, generator=g) * 3 + 0.1
    return model.eval()


@pytest.mark.parametrize("arch", [DigitsMLP, DigitsCNN])
def test_cle_keeps_the_float_function_and_equalises_ranges(arch):
    model = fold_batchnorm(randomised(arch()))
    x = torch.rand(64, 1, 8, 8)
    with torch.no_grad():
        before = model(x)
    pairs, _ = equalize(model, max_sweeps=50, tol=1e-9)
    assert pairs == equalizable_pairs(model) and len(pairs) == 3
    with torch.no_grad():
        after = model(x)
    assert float((after - before).norm() / before.norm()) <= 1e-5
    modules = dict(model.named_modules())
    for a, b in pairs:
        torch.testing.assert_close(output_ranges(modules[a]), input_ranges(modules[b]), rtol=1e-3, atol=1e-7)


def test_bias_correction_zeroes_the_mean_output_shift_on_calibration_data():
    model = randomised(DigitsMLP())
    x = torch.rand(512, 1, 8, 8)
    spec = QuantSpec(bits=3, granularity=PerChannel(0))
    reference = fold_batchnorm(model)
    corrected = run_algorithm("bias_correction", model, weight_spec=spec, calibration=x, max_rows=100_000)
    plain = run_algorithm("rtn", model, weight_spec=spec, calibration=x)
    for name in ("fc1", "fc2", "fc3", "fc4"):
        shift = mean_output_shift(reference, corrected.model, list(x.split(256)), name)
        rtn_shift = mean_output_shift(reference, plain.model, list(x.split(256)), name)
        assert float(shift.abs().max()) < 1e-4 * max(1.0, float(rtn_shift.abs().max()))
        assert float(rtn_shift.abs().max()) > 1e-3


def test_adaround_beats_rtn_on_held_out_inputs_and_only_rounds_down_or_up():
    torch.manual_seed(0)
    w = torch.randn(16, 32) * 0.5
    rows = correlated_rows(1024, 32)
    train, held = rows[:512], rows[512:]
    spec = QuantSpec(bits=3, granularity=PerChannel(0))
    w_q, up = adaround_layer(w, train, spec, iters=400, batch_size=256)
    assert relative_mse(held @ w.T, held @ w_q.T) <= relative_mse(held @ w.T, held @ rtn(w, spec).T)
    scale, zp = per_element_qparams(w, spec)
    codes = torch.round(w_q / scale + zp)
    down, upper = integer_codes(w, spec)
    assert bool(((codes == down) | (codes == upper)).all())
    assert 0 < float(up.mean()) < 1
