"""Recipes on real kernels: outputs close to fp32, honest sizes, reasons when unavailable, ptqlab ranges used."""

import copy

import pytest
import torch
from torch import nn

from ptqlab.backends import RECIPES, RecipeUnavailable, availability_table, get_recipe
from ptqlab.backends.pt2e import rechunk
from ptqlab.backends.smoothquant import channel_absmax, smooth_linears, smoothing_scale
from ptqlab.bench.size import serialized_bytes
from ptqlab.core.affine import choose_qparams
from ptqlab.core.spec import QuantSpec
from ptqlab.observers import OBSERVERS, MinMaxObserver


def small_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 32)
    ).eval()


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 16, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    ).eval()
    m[1].running_mean.uniform_(-0.2, 0.2)
    m[1].running_var.uniform_(0.5, 2.0)
    return m


FAST = [name for name in RECIPES if not RECIPES[name].compiles]
TOLERANCE = {  # max |y - y_fp32| / max |y_fp32| on the small MLP
    "fp32": 0.0,
    "bf16": 0.02,
    "torchao-int4-weight-only": 0.15,
    "ort-int4-weight-only": 0.15,
}


@pytest.mark.parametrize("name", FAST)
def test_recipe_output_close_to_fp32(name):
    model = small_mlp()
    x = torch.randn(8, 256)
    calib = [torch.randn(32, 256) for _ in range(4)] + [x]
    ref = model(x).detach()
    result = get_recipe(name).apply(model, (x,), calib)
    with torch.inference_mode():
        y = result.model(x)
    rel = float((y - ref).abs().max() / ref.abs().max())
    assert rel <= TOLERANCE.get(name, 0.06), (name, rel, result.notes)
    assert result.recipe == name and result.notes
    assert torch.equal(model(x), ref)  # the original is untouched (apply works on a deep copy)


def test_pt2e_compiled_close_to_fp32_and_int8_sized():
    model = small_mlp()
    x = torch.randn(8, 256)
    result = get_recipe("pt2e-x86-int8").apply(model, (x,), [torch.randn(32, 256)])
    with torch.inference_mode():
        y = result.model(x)
    assert result.compiled
    ref = model(x).detach()
    assert float((y - ref).abs().max() / ref.abs().max()) < 0.06
    inner = result.model.compiled._orig_mod
    # the stale fp32 weights were dropped: int8 weights + scales only
    assert serialized_bytes(inner) < serialized_bytes(model) / 3


@pytest.mark.parametrize("name", ["ao-static-int8", "ao-dynamic-int8-sq", "torchao-int8-static"])
def test_calibrated_recipes_keep_cnn_accuracy_proxy(name):
    model = small_cnn()
    x = torch.randn(64, 1, 8, 8)
    calib = [torch.randn(64, 1, 8, 8) for _ in range(4)]
    ref = model(x).detach()
    result = get_recipe(name).apply(model, (x,), calib)
    with torch.inference_mode():
        y = result.model(x)
    agree = float((y.argmax(1) == ref.argmax(1)).float().mean())
    assert agree >= 0.9, (name, agree)


def test_static_ptq_fuses_and_uses_ptqlab_range(monkeypatch):
    """The QuantStub's scale is the one torch.ao derives from the ptqlab observer's (lo, hi)."""
    model = small_cnn()
    calib = [torch.randn(16, 1, 8, 8) * 3 for _ in range(3)]
    result = get_recipe("ao-static-int8").apply(model, calib[0], calib)
    assert any("3 fusions" in n for n in result.notes)
    quant = next(m for m in result.model.modules() if type(m).__name__ == "Quantize")
    obs = MinMaxObserver()
    for b in calib:
        obs.observe(b)
    lo, hi = obs.range()
    reduce = "reduce_range=True" in " ".join(result.notes)
    spec = QuantSpec(bits=7 if reduce else 8, signed=False, symmetric=False)
    expected = choose_qparams(lo, hi, spec)
    assert float(quant.scale) == pytest.approx(float(expected.scale), rel=1e-6)
    assert int(quant.zero_point) == int(expected.zero_point)


def test_a_different_ptqlab_observer_changes_the_kernel_scale(monkeypatch):
    class HalfRange(MinMaxObserver):
        name = "half"

        def _range(self):
            return self.min_val / 2, self.max_val / 2

    monkeypatch.setitem(OBSERVERS, "half", HalfRange)
    model, x = small_mlp(), torch.randn(32, 256)
    full = get_recipe("torchao-int8-static").apply(model, x, [x], observer="minmax")
    half = get_recipe("torchao-int8-static").apply(model, x, [x], observer="half")
    s_full = full.model[0].weight.act_quant_scale
    s_half = half.model[0].weight.act_quant_scale
    assert s_full.shape == (1, 1)  # per-tensor, with the input's ndim
    assert torch.allclose(s_half, s_full / 2)
    spec_bits = 7 if any("reduce_range=True" in n for n in full.notes) else 8
    assert float(s_full) == pytest.approx(float(x.abs().max()) / ((2**spec_bits - 1) / 2), rel=1e-6)


def test_int8_is_about_4x_smaller_and_naive_count_misreports():
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(512, 512) for _ in range(4)]).eval()
    x = torch.randn(4, 512)
    fp32 = serialized_bytes(model)
    for name in ["ao-dynamic-int8", "ao-static-int8", "torchao-int8-dynamic", "torchao-int8-weight-only"]:
        q = get_recipe(name).apply(model, x).model
        assert 3.5 < fp32 / serialized_bytes(q) < 4.1, name
    int4 = get_recipe("torchao-int4-weight-only").apply(model, x).model
    assert 5.0 < fp32 / serialized_bytes(int4) < 8.1
    bf16 = get_recipe("bf16").apply(model, x).model
    assert 1.9 < fp32 / serialized_bytes(bf16) < 2.05
    dyn = get_recipe("ao-dynamic-int8").apply(model, x).model
    naive = sum(p.numel() * p.element_size() for p in dyn.parameters())  # what parameters() shows
    assert naive < fp32 / 100  # packed weights are invisible to parameters()


def test_unavailable_recipes_say_why():
    model = small_mlp()
    ok, reason = get_recipe("ao-dynamic-int8").availability(model, "cuda")
    assert not ok and "CPU" in reason
    ok, reason = get_recipe("pt2e-x86-int8").availability(model, "cuda")
    assert not ok and reason
    tiny = nn.Sequential(nn.Linear(10, 10)).eval()
    ok, reason = get_recipe("torchao-int4-weight-only").availability(tiny, "cpu")
    assert not ok and "in_features % 128" in reason
    with pytest.raises(RecipeUnavailable, match="torchao-int4-weight-only"):
        get_recipe("torchao-int4-weight-only").apply(tiny, torch.randn(2, 10))
    no_linear = nn.Sequential(nn.ReLU())
    table = availability_table(no_linear, "cpu")
    assert table["fp32"] == (True, "")
    assert not table["torchao-int8-dynamic"][0] and "nn.Linear" in table["torchao-int8-dynamic"][1]
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("int3-magic")


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="model"):
        get_recipe("fp32").apply("not a model", torch.randn(1, 2))
    with pytest.raises(TypeError, match="example_inputs"):
        get_recipe("fp32").apply(small_mlp(), 3.0)
    with pytest.raises(ValueError, match="calibration_batches"):
        get_recipe("ao-static-int8").apply(small_mlp(), torch.randn(2, 256), [])


def test_smoothquant_is_exact_before_quantization():
    model = small_mlp()
    batches = [(torch.randn(16, 256) * torch.linspace(0.1, 20, 256),)]
    x = batches[0][0]
    ref = model(x)
    smoothed = small_mlp()
    names = ["0", "2", "4"]
    smooth_linears(smoothed, channel_absmax(smoothed, names, batches), alpha=0.75)
    assert torch.allclose(smoothed(x), ref, atol=1e-4, rtol=1e-4)
    w = torch.ones(4, 3)
    s = smoothing_scale(torch.tensor([16.0, 1.0, 0.0]), w, alpha=0.5)
    assert torch.allclose(s, torch.tensor([4.0, 1.0, 0.4]))  # the zero channel is floored at 1% of 16


def test_rechunk_cuts_calibration_to_the_example_batch():
    like = (torch.zeros(4, 3), "flag")
    chunks = rechunk([(torch.ones(6, 3), "x"), (torch.ones(5, 3), "y")], like)
    assert len(chunks) == 2 and all(c[0].shape == (4, 3) and c[1] == "flag" for c in chunks)
    assert rechunk([(torch.ones(6, 2), "x")], like) == []


def test_unknown_observer_is_named():
    with pytest.raises(ValueError, match="unknown observer 'median'"):
        get_recipe("ao-static-int8").apply(small_mlp(), torch.randn(2, 256), observer="median")


def outlier_mlp() -> nn.Module:
    """Two Linear layers whose hidden activations have a few 30× channels (the transformer outlier pattern)."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 16)).eval()
    with torch.no_grad():
        m[0].weight[:4] *= 30.0
        m[0].bias[:4] = 5.0
    return m


def test_pt2e_smoothquant_close_to_fp32_and_reports_what_it_did():
    model = outlier_mlp()
    x = torch.randn(8, 64)
    calib = [torch.randn(8, 64) for _ in range(4)] + [x]
    ref = model(x).detach()
    result = get_recipe("pt2e-x86-int8-sq").apply(model, (x,), calib)
    with torch.inference_mode():
        y = result.model(x)
    assert result.compiled and result.recipe == "pt2e-x86-int8-sq"
    assert float(torch.nn.functional.cosine_similarity(y.flatten(), ref.flatten(), dim=0)) > 0.999
    assert float((y - ref).abs().max() / ref.abs().max()) < 0.06
    assert any("SmoothQuant α=0.75 on 2 Linear" in n for n in result.notes)
    assert any("calibration-set output cosine" in n for n in result.notes), result.notes
    assert torch.equal(model(x), ref)  # the original is untouched


def test_pt2e_keep_fp32_leaves_named_layer_unquantized():
    """``keep_fp32`` names stay float Linear ops in the converted graph (no int8 weight for them)."""
    from ptqlab.backends.pt2e import apply_pt2e

    model = outlier_mlp()
    x = torch.randn(8, 64)
    result = apply_pt2e(
        copy.deepcopy(model), (x,), [x], observer="minmax", kw={}, device=torch.device("cpu"), keep_fp32=["2"]
    )
    graph = result.model.compiled._orig_mod.graph
    linears = [n for n in graph.nodes if n.target == torch.ops.aten.linear.default]
    assert len(linears) == 2
    float_weight = [n for n in linears if n.args[1].op == "get_attr"]
    assert len(float_weight) == 1  # layer "2": its weight feeds linear directly, no dequantize in between
    with torch.inference_mode():
        y, ref = result.model(x), model(x)
    assert float((y - ref).abs().max() / ref.abs().max()) < 0.06
