"""ONNX Runtime's calibrators as an outside oracle: ``create_calibrator`` (MinMax, Percentile, Entropy,
Distribution) on a one-node graph, fed the same streams as ptqlab's observers, batch by batch."""

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator  # noqa: E402

from ptqlab.backends.ort_calibration import FeedReader  # noqa: E402
from ptqlab.observers import make_observer  # noqa: E402


def stream(kind: str, seed: int = 0, batches: int = 4, n: int = 4000) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for b in range(batches):
        if kind == "gaussian":
            x = torch.randn(n, generator=g) * (1 + 0.5 * b)  # the range grows: ORT's histograms merge
        elif kind == "heavy":  # Student-t, 2 degrees of freedom: rare huge values
            x = torch.randn(n, generator=g) / torch.sqrt(torch.rand(n, generator=g).clamp_min(1e-3))
        elif kind == "bimodal":  # no mass near zero: |x| in [3, 5]
            sign = torch.randint(0, 2, (n,), generator=g) * 2 - 1
            x = sign * (3 + 2 * torch.rand(n, generator=g))
        elif kind == "relu":
            x = torch.relu(torch.randn(n, generator=g)) * (1 + b)
        out.append(x.float())
    return out


KINDS = ["gaussian", "heavy", "bimodal", "relu"]


def ort_range(xs, method, tmp_path, **extra):
    """(lo, hi, histogram) that ORT's calibrator computes for the graph input X, one collect per batch."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["n"])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    cal = create_calibrator(tmp_path / "m.onnx", None, tmp_path / "a.onnx", method, extra_options=extra)
    for x in xs:
        cal.collect_data(FeedReader([{"X": x.numpy()}]))
    data = cal.compute_data()["X"]
    lo, hi = (float(np.asarray(v).reshape(-1)[0]) for v in data.range_value)
    hist = getattr(cal, "collector", None) and cal.collector.histogram_dict["X"]
    return lo, hi, hist


def observed(name, xs, **kw):
    obs = make_observer(name, **kw)
    for x in xs:
        obs.observe(x)
    return tuple(float(v) for v in obs.range())


@pytest.mark.parametrize("kind", KINDS)
def test_minmax_matches_orts_minmax_exactly(kind, tmp_path):
    xs = stream(kind)
    lo, hi, _ = ort_range(xs, CalibrationMethod.MinMax, tmp_path)
    assert observed("minmax", xs) == pytest.approx((lo, hi), rel=0, abs=0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("p", [99.999, 99.0])
def test_ort_percentile_matches_orts_percentile_within_one_bin(kind, p, tmp_path):
    xs = stream(kind)
    lo, hi, hist = ort_range(xs, CalibrationMethod.Percentile, tmp_path, percentile=p)
    width = float(hist[1][1] - hist[1][0])
    mine = observed("ort_percentile", xs, p=p)
    assert mine == pytest.approx((lo, hi), abs=width * 1.01), (mine, (lo, hi), width)
    # ptqlab's own percentile (piecewise-linear CDF on its own grid, re-binned as the range grows, (−T, T)
    # not clipped per side) finds ORT's threshold before ORT clips each side to [min, max]: within 1 %
    counts, edges = hist[0], hist[1]
    t_ort = float(edges[np.searchsorted(np.cumsum(counts / counts.sum()), p / 100)])
    t_ours = observed("percentile", xs, p=p)[1]
    assert t_ours == pytest.approx(min(t_ort, max(abs(hist[2]), abs(hist[3]))), rel=0.01), (t_ours, t_ort)


@pytest.mark.parametrize("kind", KINDS)
def test_ort_two_tailed_percentile_matches_within_one_bin(kind, tmp_path):
    xs = stream(kind)
    lo, hi, hist = ort_range(xs, CalibrationMethod.Percentile, tmp_path, percentile=99.9, symmetric=False)
    width = float(hist[1][1] - hist[1][0])
    mine = observed("ort_percentile", xs, p=99.9, symmetric=False)
    assert mine == pytest.approx((lo, hi), abs=width * 1.01), (mine, (lo, hi), width)


@pytest.mark.parametrize(
    "kind,bins",
    [(k, b) for k in KINDS for b in [(128, 128), (512, 64)]] + [("bimodal", (2048, 128))],
)  # ORT's own 2048-bin search is a slow Python loop: once
def test_ort_entropy_matches_orts_entropy_within_one_bin(kind, bins, tmp_path):
    xs = stream(kind)
    num_bins, num_q = bins
    lo, hi, hist = ort_range(
        xs, CalibrationMethod.Entropy, tmp_path, num_bins=num_bins, num_quantized_bins=num_q
    )
    width = float(hist[1][1] - hist[1][0])
    mine = observed("ort_entropy", xs, num_bins=num_bins, num_quantized_bins=num_q)
    assert mine == pytest.approx((lo, hi), abs=width * 1.01), (mine, (lo, hi), width)
    if bins == (128, 128):  # ORT's defaults on one collect (quantize_static gathers every batch at once):
        whole = [torch.cat(xs)]  # only the full window is tried, the range is min/max
        assert observed("ort_entropy", whole) == pytest.approx(observed("minmax", whole), abs=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_distribution_range_is_the_signed_histograms_span(kind, tmp_path):
    """ORT's Distribution calibrator returns its histogram's outer edges: ±T after the merges."""
    xs = stream(kind)
    lo, hi, hist = ort_range(xs, CalibrationMethod.Distribution, tmp_path, num_bins=2048)
    obs = make_observer("ort_entropy", num_bins=2048)
    for x in xs:
        obs.observe(x)
    width = float(hist[1][1] - hist[1][0])
    assert (-obs.hist.threshold, obs.hist.threshold) == pytest.approx((lo, hi), abs=width * 1e-3)
    assert obs.hist.counts.numel() == len(hist[0])


def test_tensorrt_and_ort_entropy_disagree_on_a_bimodal_stream():
    """No mass near zero: TensorRT's |x| search (ptqlab's entropy) clips far below ORT's signed window."""
    xs = stream("bimodal")
    trt = observed("entropy", xs)
    ort = observed("ort_entropy", xs, num_bins=2048, num_quantized_bins=128)
    assert ort[1] > 0.9 * 5.0 and trt[1] < ort[1]


def test_lab02_vendor_table_is_filled_from_the_observers():
    from ptqlab.lessons.calibration import numbers as oc
    from ptqlab.lessons.calibration import vendors

    _, x = oc.synthetic_calibration("gaussian", 20.0, 0.001, 2)
    spec = oc.lab_grid(8, True)
    answers = vendors.vendor_answers(x, spec, 99.9)
    by = {(a.library, a.method, a.settings): a.result for a in answers}
    assert len(by) == 7
    default = by[("ONNX Runtime", "entropy", "ORT defaults: 128 bins, 128 quantized")]
    minmax = by[("everyone", "min/max", "running min and max")]
    assert (default.lo, default.hi) == pytest.approx((minmax.lo, minmax.hi))  # one sample: the full window
    assert (minmax.lo, minmax.hi) == pytest.approx((float(x.min()), float(x.max())))
    trt = by[("TensorRT (ptqlab entropy)", "entropy", "|x|, 2048 bins, 128 levels, (i + ½)·w")]
    assert trt.hi == pytest.approx(observed("entropy", [x])[1])
    text = vendors.why_they_differ(answers)
    assert f"clips at **{trt.hi:.4g}**" in text and f"{default.hi:.4g}" in text
    assert "| ONNX Runtime | percentile |" in vendors.vendors_markdown(answers)
