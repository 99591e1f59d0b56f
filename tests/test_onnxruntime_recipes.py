"""ONNX Runtime recipes: close to fp32, honestly sized, a Gemm that was not quantized is caught, and a
missing engine or failed export is a row with its reason."""

import sys

import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime")

from ptqlab.backends import (  # noqa: E402
    RecipeUnavailable,
    get_recipe,
    ort_session,  # noqa: E402
)
from ptqlab.backends.onnx_export import export_onnx, gemm_to_matmul, op_counts, quantized_node_count  # noqa: E402
from ptqlab.backends.ort_calibration import FeedReader, observed_ranges  # noqa: E402
from ptqlab.bench.models import load_bench_model  # noqa: E402
from ptqlab.bench.run import run_group  # noqa: E402
from ptqlab.bench.size import serialized_bytes  # noqa: E402
from ptqlab.core.spec import QuantSpec  # noqa: E402

ORT = ["ort-fp32", "ort-int8-dynamic", "ort-int8-static", "ort-int4-weight-only"]
MIN_COSINE = {
    "ort-fp32": 0.99999,
    "ort-int8-dynamic": 0.999,
    "ort-int8-static": 0.999,
    "ort-int4-weight-only": 0.98,
}


@pytest.fixture(scope="module")
def membound():
    return load_bench_model("membound", width=512)  # 4 × Linear(512, 512): the same construction, small


@pytest.fixture(scope="module")
def results(membound):
    args = membound.inputs(8)
    return {n: get_recipe(n).apply(membound.model, args, membound.calibration) for n in ORT}


@pytest.mark.parametrize("name", ORT)
def test_ort_recipe_close_to_fp32_on_membound(name, membound, results):
    q = membound.quality(results[name].model, 8)
    assert q["cosine"] >= MIN_COSINE[name], (name, q, results[name].notes)
    assert results[name].recipe == name


def test_onnx_file_is_about_4x_int8_and_7x_int4_smaller(membound, results):
    fp32 = serialized_bytes(results["ort-fp32"].model)
    assert fp32 == pytest.approx(
        serialized_bytes(membound.model), rel=0.01
    )  # 4 MiB of fp32 weights either way
    for name in ("ort-int8-dynamic", "ort-int8-static"):
        assert 3.6 <= fp32 / serialized_bytes(results[name].model) <= 4.1, name
    assert 6.0 <= fp32 / serialized_bytes(results["ort-int4-weight-only"].model) <= 8.0
    ops = results["ort-int4-weight-only"].model.ops
    assert ops["MatMulNBits"] == 4 and ops["MatMul"] == 0 and ops["Gemm"] == 0


def test_a_gemm_exported_linear_is_detected_as_not_quantized(membound, monkeypatch):
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    proto = export_onnx(membound.model, membound.inputs(2))
    assert op_counts(proto)["Gemm"] == 4 and quantized_node_count(proto) == 0
    quant = MatMulNBitsQuantizer(proto, block_size=128, is_symmetric=True, accuracy_level=4)
    quant.process()
    assert quantized_node_count(quant.model.model) == 0  # MatMulNBits silently skipped every Gemm
    monkeypatch.setattr(ort_session, "gemm_to_matmul", lambda proto: 0)  # keep the Gemms
    with pytest.raises(RecipeUnavailable, match="quantized no node"):
        get_recipe("ort-int4-weight-only").apply(membound.model, membound.inputs(2))
    rows = run_group(membound, 2, recipes=["ort-int4-weight-only"], repeats=1, warmup=0)
    row = next(r for r in rows if r.recipe == "ort-int4-weight-only")
    assert not row.available and "quantized no node" in row.reason


def test_gemm_to_matmul_keeps_the_numbers():
    import onnxruntime as ort

    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)).eval()
    x = torch.randn(3, 16)
    proto = export_onnx(model, (x,))
    assert gemm_to_matmul(proto) == 2 and op_counts(proto)["Gemm"] == 0
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    y = session.run(None, {"input_0": x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(y), model(x).detach(), rtol=1e-5, atol=1e-6)


def test_missing_onnxruntime_or_failed_export_is_a_row_with_a_reason(membound, monkeypatch):
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
        ok, reason = get_recipe("ort-fp32").availability(membound.model)
        assert not ok and "onnxruntime" in reason
        rows = run_group(membound, 2, recipes=["ort-int8-dynamic"], repeats=1, warmup=0)
        row = next(r for r in rows if r.recipe == "ort-int8-dynamic")
        assert not row.available and "pip install onnxruntime" in row.reason

    def broken(*a, **k):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(ort_session, "export_onnx", broken)
    rows = run_group(membound, 2, recipes=["ort-fp32"], repeats=1, warmup=0)
    row = next(r for r in rows if r.recipe == "ort-fp32")
    assert (
        not row.available
        and "torch.onnx.export failed" in row.reason
        and "unsupported operator" in row.reason
    )
    assert next(r for r in rows if r.recipe == "fp32").available


def test_ptqlab_observer_ranges_equal_orts_minmax_calibrator(membound, tmp_path):
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    proto, _ = ort_session.exported(membound.model, membound.inputs(2))
    feeds = [{"input_0": b[0].numpy()} for b in membound.calibration]
    mine = observed_ranges(proto, feeds, "minmax", {})
    import onnx

    onnx.save(proto, tmp_path / "m.onnx")
    cal = create_calibrator(tmp_path / "m.onnx", None, tmp_path / "aug.onnx", CalibrationMethod.MinMax)
    cal.collect_data(FeedReader(feeds))
    theirs = cal.compute_data()
    assert set(mine) == set(theirs.keys())
    for name, (lo, hi) in mine.items():
        t_lo, t_hi = (float(v.reshape(-1)[0]) for v in theirs[name].range_value)
        assert (lo, hi) == pytest.approx((t_lo, t_hi), rel=1e-6), name
    clipped = observed_ranges(proto, feeds, "percentile", {"p": 99.0})
    assert all(clipped[n][1] < mine[n][1] for n in mine)  # another observer, other ranges


def test_static_recipe_takes_orts_own_calibrators(membound):
    args = membound.inputs(8)
    r = get_recipe("ort-int8-static").apply(
        membound.model, args, membound.calibration, ort_calibrator="entropy"
    )
    assert "ORT's own 'entropy' calibrator" in " ".join(r.notes)
    assert membound.quality(r.model, 8)["cosine"] >= 0.999
    with pytest.raises(ValueError, match="ort_calibrator"):
        get_recipe("ort-int8-static").apply(membound.model, args, ort_calibrator="kl")


def test_report_names_the_best_engine_and_separates_engine_from_quantization_gain():
    from ptqlab.bench.report import bench_table, evaluate_goals, goals_text
    from ptqlab.bench.run import BenchRow

    def row(variant, family, bits, speedup, vs_ort=None, attained=None):
        return BenchRow(
            "membound", 1, variant, variant, variant, family, bits, False, True,
            median_ms=10 / speedup, p10_ms=9 / speedup, p90_ms=11 / speedup, repeats=10, speedup=speedup,
            speedup_vs_ort_fp32=vs_ort, size_bytes=1000, attained=attained, floor_ms=1.0,
            quality={"cosine": 0.9999},
        )  # fmt: skip

    rows = [
        row("fp32", "baseline", 32, 1.0),
        row("ao-dynamic-int8", "torch.ao (x86/fbgemm)", 8, 4.6, attained=0.55),
        row("ort-fp32", "onnxruntime (CPU EP)", 32, 1.6, vs_ort=1.0),
        row("ort-int8-dynamic", "onnxruntime (CPU EP)", 8, 5.5, vs_ort=5.5 / 1.6, attained=0.6),
        row("ort-int4-weight-only", "onnxruntime (CPU EP)", 4, 10.9, vs_ort=10.9 / 1.6),
    ]
    table = bench_table(rows)
    assert "(3.44× vs ORT fp32)" in table and "(6.81× vs ORT fp32)" in table
    goals = {g.text: g for g in evaluate_goals(rows)}
    int4 = goals["int4 weight-only ≥ 10× vs fp32, memory-bound MLP, batch 1"]
    assert int4.met and int4.variant == "ort-int4-weight-only"
    roof = goals["best int8 on membound, batch 1, ≥ 70 % of the roofline"]
    assert roof.met is False and roof.measured == pytest.approx(0.6) and "short by 1.17×" in roof.line()
    text = goals_text(list(goals.values()))
    assert "best engine on membound, batch 1: onnxruntime (CPU EP): 10.90× with ort-int4-weight-only" in text
    assert "then on membound, batch 1: torch.ao (x86/fbgemm): 4.60×" in text


def test_static_kernel_scale_is_the_ptqlab_observers_range(membound, monkeypatch):
    """The QuantizeLinear scale ORT writes for the input is (max(hi, 0) − min(lo, 0)) / 255 of ptqlab's range."""
    import importlib

    from onnx import numpy_helper

    from ptqlab.observers import make_observer

    recipes = importlib.import_module("ptqlab.backends.onnxruntime")
    captured = []
    real = recipes.OrtModule
    monkeypatch.setattr(recipes, "OrtModule", lambda proto: captured.append(proto) or real(proto))
    get_recipe("ort-int8-static").apply(
        membound.model,
        membound.inputs(2),
        membound.calibration,
        observer="percentile",
        observer_kwargs={"p": 99.0},
    )
    proto = captured[0]
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    node = next(n for n in proto.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "input_0")
    obs = make_observer("percentile", p=99.0)
    for (x,) in membound.calibration:
        obs.observe(x)
    lo, hi = (float(v) for v in obs.range_for(QuantSpec(bits=8, signed=False, symmetric=False)))
    expected = (max(hi, 0.0) - min(lo, 0.0)) / 255
    assert float(inits[node.input[1]]) == pytest.approx(expected, rel=1e-6)
    minmax = float(torch.cat([b[0] for b in membound.calibration]).abs().max())
    assert expected < 2 * minmax / 255  # the percentile clipped: not ORT's own min/max


def test_int4_block_size_and_accuracy_level_are_options(membound):
    r = get_recipe("ort-int4-weight-only").apply(
        membound.model, membound.inputs(8), block_size=32, accuracy_level=0
    )
    assert "block 32, accuracy_level 0" in r.notes[-1]
    assert membound.quality(r.model, 8)["cosine"] >= 0.98
