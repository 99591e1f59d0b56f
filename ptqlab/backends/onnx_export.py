"""A PyTorch model as an ONNX graph, ready for ONNX Runtime's quantizers.

* ``export_onnx`` goes through ``torch.onnx.export(dynamo=False)`` — the TorchScript exporter, which runs
  offline and needs no ``onnxscript``; opset 17, the batch (and sequence) axes dynamic so one graph serves
  every batch size.
* ``gemm_to_matmul``: that exporter writes a 2-D ``nn.Linear`` as ``Gemm(x, W, b, transB=1)``. ORT's int4
  ``MatMulNBitsQuantizer`` and its dynamic int8 path only rewrite ``MatMul`` nodes, so a ``Gemm`` would stay
  fp32 *silently*; the pass rewrites it as ``MatMul(x, Wᵀ) + b`` (the same numbers, Wᵀ stored once).
* ``op_counts`` / ``quantized_node_count`` read the graph back, so a recipe can prove that it quantized.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter

import numpy as np
import torch
from torch import nn

OPSET = 17
# ops that carry integer weights after ORT's quantizers (QDQ models: DequantizeLinear of an int8 initializer)
QUANTIZED_OPS = (
    "MatMulInteger",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "QLinearMatMul",
    "QLinearConv",
    "ConvInteger",
    "QAttention",
    "DynamicQuantizeLSTM",
    "MatMulNBits",
    "DequantizeLinear",
)


def export_onnx(
    model: nn.Module,
    args: tuple,
    input_names: list[str] | None = None,
    *,
    output_names: list[str] | None = None,
    dynamic_axes: dict | None = None,
):
    """``torch.onnx.export(dynamo=False, opset 17)`` of ``model(*args)`` -> ``onnx.ModelProto``. By default
    one output, axis 0 (batch) and, for 2-D integer inputs (token ids, masks), axis 1 (sequence) are dynamic;
    ``output_names`` / ``dynamic_axes`` (torch.onnx.export's) replace that for multi-output graphs."""
    import onnx

    names = input_names or [f"input_{i}" for i in range(len(args))]
    dynamic = {}
    for name, a in zip(names, args, strict=True):
        dynamic[name] = {0: "batch", 1: "seq"} if a.ndim == 2 and not a.is_floating_point() else {0: "batch"}
    dynamic["output"] = {0: "batch"}
    if dynamic_axes is not None:
        dynamic = dynamic_axes
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(
            model,
            args,
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=names,
            output_names=output_names or ["output"],
            dynamic_axes=dynamic,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


def gemm_to_matmul(proto) -> int:
    """Rewrite every ``Gemm(x, W, b)`` with a constant W (alpha = beta = 1) as ``MatMul(x, W') + b`` in place,
    W' = Wᵀ when transB = 1; returns how many were rewritten. Other Gemms are left alone."""
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in proto.graph.initializer}
    nodes, rewritten = [], 0
    for node in proto.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        simple = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA")
        if node.op_type != "Gemm" or not simple or node.input[1] not in inits:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        w = np.ascontiguousarray(w.T) if attrs.get("transB") else w
        inits[node.input[1]].CopyFrom(numpy_helper.from_array(w, node.input[1]))
        has_bias = len(node.input) > 2 and node.input[2]
        mm_out = node.output[0] + "_matmul" if has_bias else node.output[0]
        nodes.append(
            helper.make_node("MatMul", [node.input[0], node.input[1]], [mm_out], name=node.name + "_mm")
        )
        if has_bias:
            nodes.append(
                helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=node.name + "_add")
            )
        rewritten += 1
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return rewritten


def op_counts(proto) -> Counter:
    """op type -> number of nodes (the graph of a possibly quantized model)."""
    return Counter(node.op_type for node in proto.graph.node)


def quantized_node_count(proto) -> int:
    """Nodes that run on integer weights: integer/NBits matmuls and convs, or DequantizeLinear of an integer
    initializer (QDQ). 0 means the quantizer changed nothing."""
    inits = {t.name: t.data_type for t in proto.graph.initializer}
    from onnx import TensorProto

    int_types = {TensorProto.INT8, TensorProto.UINT8, TensorProto.INT4, TensorProto.UINT4}
    n = 0
    for node in proto.graph.node:
        if node.op_type == "DequantizeLinear":
            n += inits.get(node.input[0]) in int_types
        elif node.op_type in QUANTIZED_OPS:
            n += 1
    return n


def initializer_bytes(proto, *, exclude_gather_tables: bool = False) -> int:
    """Bytes of the graph's constant tensors; with ``exclude_gather_tables`` the tables read by ``Gather``
    (embeddings: a forward reads a few rows) are left out — the bytes a forward streams."""
    skip = set()
    if exclude_gather_tables:
        skip = {n.input[0] for n in proto.graph.node if n.op_type == "Gather"}
    return sum(_tensor_nbytes(t) for t in proto.graph.initializer if t.name not in skip)


def _tensor_nbytes(t) -> int:
    if t.raw_data:
        return len(t.raw_data)
    from onnx import numpy_helper

    return int(numpy_helper.to_array(t).nbytes)
