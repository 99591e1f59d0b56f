"""run_algorithm: composes with simulate, leaves its input alone, runs every algorithm on MLP and CNN
layouts, and rejects bad input with errors that name the argument."""

import pytest
import torch
from torch import nn

from ptqlab.core.spec import PerChannel, PerGroup, PerTensor, QuantSpec
from ptqlab.models.digits import DigitsCNN, DigitsMLP
from ptqlab.ptq.algorithms import ALGORITHMS, AlgorithmRun, run_algorithm
from ptqlab.ptq.simulate import simulate

W4 = QuantSpec(bits=4, granularity=PerChannel(0))
FAST = {"adaround": {"iters": 20}}


def test_registry_names_match_the_interface():
    assert ALGORITHMS == ("rtn", "bias_correction", "cle", "adaround", "gptq", "awq", "smoothquant")


@pytest.mark.parametrize("spec", [W4, QuantSpec(bits=3, granularity=PerTensor())])
def test_rtn_is_simulate_with_bn_folded(spec):
    model = DigitsCNN().eval()
    x = torch.rand(32, 1, 8, 8)
    run = run_algorithm("rtn", model, weight_spec=spec, calibration=x)
    with torch.no_grad():
        assert torch.equal(run.model(x), simulate(model, spec, fold_bn=True)(x))


def test_activation_spec_is_simulate_on_the_weight_quantized_model():
    # Observers see the activations of the weight-quantized model (what it will see deployed); simulate()
    # calibrates its float copy instead, so the two differ by a fraction of an activation step.
    model = DigitsMLP().eval()
    x = torch.rand(64, 1, 8, 8)
    a8 = QuantSpec(bits=8, signed=False, symmetric=False)
    run = run_algorithm("rtn", model, weight_spec=W4, calibration=x, act_spec=a8)
    weights_only = run_algorithm("rtn", model, weight_spec=W4, calibration=x).model
    with torch.no_grad():
        assert torch.equal(run.model(x), simulate(weights_only, None, a8, calibration=x)(x))
        same_as_simulate = simulate(model, W4, a8, calibration=x, fold_bn=True)(x)
        assert float((run.model(x) - same_as_simulate).abs().max()) < 0.05 * float(
            same_as_simulate.abs().max()
        )


@pytest.mark.parametrize("arch", [DigitsMLP, DigitsCNN])
@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_algorithm_runs_reports_and_leaves_the_input_alone(arch, name):
    model = arch().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(96, 1, 8, 8)
    run = run_algorithm(name, model, weight_spec=W4, calibration=x, **FAST.get(name, {}))
    assert isinstance(run, AlgorithmRun) and run.seconds > 0 and run.notes
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(run.layer_errors) == {
        n for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)
    }
    with torch.no_grad():
        out = run.model(x)
    assert out.shape == (96, 10) and bool(torch.isfinite(out).all())
    if name in ("gptq", "bias_correction"):  # on its own inputs, never worse than RTN overall
        rtn_total = sum(r for r, _ in run.layer_errors.values())
        assert sum(a for _, a in run.layer_errors.values()) <= rtn_total * 1.05


def test_group_size_must_divide_the_input_dimension():
    with pytest.raises(ValueError, match="group_size=48 does not divide layer 'fc1'"):
        run_algorithm(
            "gptq",
            DigitsMLP(),
            weight_spec=QuantSpec(bits=4, granularity=PerGroup(48)),
            calibration=torch.rand(8, 1, 8, 8),
        )


def test_bad_input_names_the_argument():
    model, x = DigitsMLP(), torch.rand(8, 1, 8, 8)
    with pytest.raises(ValueError, match="name must be one of"):
        run_algorithm("obq", model, weight_spec=W4, calibration=x)
    with pytest.raises(ValueError, match="calibration"):
        run_algorithm("gptq", model, weight_spec=W4, calibration=None)
    with pytest.raises(TypeError, match="weight_spec"):
        run_algorithm("gptq", model, weight_spec="int4", calibration=x)
    with pytest.raises(ValueError, match="bits"):
        run_algorithm("gptq", model, weight_spec=QuantSpec(bits=1), calibration=x)
    with pytest.raises(ValueError, match="weight_spec: per-channel weights need axis=0"):
        run_algorithm("awq", model, weight_spec=QuantSpec(granularity=PerChannel(1)), calibration=x)
    with pytest.raises(TypeError, match="no option"):
        run_algorithm("gptq", model, weight_spec=W4, calibration=x, alpha=0.5)
    with pytest.raises(ValueError, match="damp"):
        run_algorithm("gptq", model, weight_spec=W4, calibration=x, damp=0.0)


def test_unsupported_layer_type_is_a_type_error():
    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.Flatten(), nn.Linear(12, 3))
    x = torch.rand(4, 2, 5)
    with pytest.raises(TypeError, match="layer '0' is a Conv1d"):
        run_algorithm("gptq", model, weight_spec=W4, calibration=x, layers=["0"])
    run = run_algorithm("gptq", model, weight_spec=W4, calibration=x)
    assert set(run.layer_errors) == {"2"} and any("skipped" in n and "0" in n for n in run.notes)


def test_smoothquant_has_one_implementation_shared_with_the_backend():
    import ptqlab.backends.smoothquant as backend
    import ptqlab.ptq.smoothquant as algorithm

    for name in ("SmoothedInput", "channel_absmax", "smooth_linears", "smoothing_scale"):
        assert getattr(backend, name) is getattr(algorithm, name)


def test_smoothquant_with_w8a8_keeps_a_trained_like_model_close():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).eval()
    x = torch.randn(256, 16) * torch.linspace(0.1, 20, 16)  # outlier input channels
    w8 = QuantSpec(bits=8, granularity=PerChannel(0))
    a8 = QuantSpec(bits=8, signed=False, symmetric=False)
    sq = run_algorithm("smoothquant", model, weight_spec=w8, calibration=x, act_spec=a8, alpha=0.5)
    plain = run_algorithm("rtn", model, weight_spec=w8, calibration=x, act_spec=a8)
    with torch.no_grad():
        ref = model(x)
        sq_err = float((sq.model(x) - ref).pow(2).mean())
        rtn_err = float((plain.model(x) - ref).pow(2).mean())
    assert sq_err < rtn_err


def test_grouped_convolutions_are_skipped_and_reported():
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.Conv2d(4, 2, 1), nn.Flatten()).eval()
    run = run_algorithm("gptq", model, weight_spec=W4, calibration=torch.rand(8, 4, 6, 6))
    assert set(run.layer_errors) == {"1"} and any("skipped" in n and "0" in n for n in run.notes)
