"""ptqlab's observers set ONNX Runtime's activation ranges (``ort-int8-static``).

Every float activation of the graph is made a graph output, the calibration batches run through ORT, and
each tensor feeds its own ptqlab observer (``make_observer(observer, **kw)``). The range it picks for the
uint8 asymmetric grid, ``range_for(QuantSpec(bits=8, signed=False, symmetric=False))``, goes to
``quantize_static`` as ``TensorQuantOverrides = {tensor: [{"rmin": lo, "rmax": hi}]}``, which ORT uses
instead of its own calibrator's range (it still widens the range to include 0, like every affine grid).
"""

from __future__ import annotations

import numpy as np
import torch

from ptqlab.core.spec import QuantSpec
from ptqlab.observers import make_observer

ACTIVATION_SPEC = QuantSpec(bits=8, signed=False, symmetric=False)
ORT_CALIBRATORS = ("minmax", "entropy", "percentile", "distribution")


def ort_calibration_method(name: str | None):
    """ORT's ``CalibrationMethod`` for ``name`` (None -> MinMax, used only to satisfy the API)."""
    from onnxruntime.quantization import CalibrationMethod

    if name is None:
        return CalibrationMethod.MinMax
    if name not in ORT_CALIBRATORS:
        raise ValueError(f"ort_calibrator must be one of {ORT_CALIBRATORS} or None, got {name!r}")
    return {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
        "distribution": CalibrationMethod.Distribution,
    }[name]


def float_activations(proto) -> list[str]:
    """Names of the graph's float32 inputs and node outputs (not constants)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    types.update({v.name: v.type.tensor_type.elem_type for v in inferred.graph.input})
    types.update({v.name: v.type.tensor_type.elem_type for v in inferred.graph.output})
    consts = {t.name for t in proto.graph.initializer}
    consts |= {o for n in proto.graph.node if n.op_type == "Constant" for o in n.output}
    names = [i.name for i in proto.graph.input] + [o for n in proto.graph.node for o in n.output]
    return [
        n for n in dict.fromkeys(names) if n and n not in consts and types.get(n) == onnx.TensorProto.FLOAT
    ]


def observed_ranges(proto, feeds: list[dict], observer: str, kw: dict) -> dict[str, tuple[float, float]]:
    """tensor name -> (lo, hi) chosen by a ptqlab observer over the calibration feeds."""
    import onnx
    import onnxruntime as ort

    names = float_activations(proto)
    augmented = onnx.ModelProto()
    augmented.CopyFrom(proto)
    existing = {o.name for o in augmented.graph.output}
    for n in names:
        if n not in existing:
            augmented.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    opts.log_severity_level = 3
    session = ort.InferenceSession(augmented.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    observers = {n: make_observer(observer, **kw) for n in names}
    for feed in feeds:
        for name, value in zip(outputs, session.run(None, feed), strict=True):
            if name in observers and value.size:
                observers[name].observe(torch.from_numpy(np.ascontiguousarray(value)))
    ranges = {}
    for name, obs in observers.items():
        if obs.batches:
            lo, hi = obs.range_for(ACTIVATION_SPEC)
            ranges[name] = (float(lo.float().amin()), float(hi.float().amax()))
    return ranges


def observer_overrides(proto, feeds: list[dict], observer: str, kw: dict) -> dict[str, list[dict]]:
    """``TensorQuantOverrides`` that pin every activation range to the ptqlab observer's."""
    return {
        name: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}]
        for name, (lo, hi) in observed_ranges(proto, feeds, observer, kw).items()
    }


class FeedReader:
    """ORT's CalibrationDataReader over prepared feeds."""

    def __init__(self, feeds: list[dict]):
        self.feeds = feeds
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):
        self._it = iter(self.feeds)
