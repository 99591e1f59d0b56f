"""ONNX Runtime recipes: the engine many CPU deployments use, on the same timing/quality/size path.

    ort-fp32              the exported graph (``ptqlab.backends.onnx_export``), ORT's own graph optimizations
    ort-int8-dynamic      ``quantize_dynamic``: int8 per-channel symmetric weights, activations quantized per
                          batch at run time (MatMulInteger / DynamicQuantizeMatMul)
    ort-int8-static       ``quantize_static``, QDQ format, per-channel int8 weights, uint8 activations whose
                          ranges come from a ptqlab observer (``observer=``) or from ORT's own calibrator
                          (``ort_calibrator="minmax" | "entropy" | "percentile" | "distribution"``)
    ort-int4-weight-only  ``MatMulNBitsQuantizer``: symmetric int4 weights in blocks of ``block_size`` (128)
                          along K, ``accuracy_level`` (4: activations quantized to int8 inside the kernel)

Fair settings: intra-op threads = torch's thread count, inter-op 1, ``session.intra_op.allow_spinning = 0``
(ORT's spinning workers otherwise steal the cores from whatever runs next, e.g. torch's fp32 forward).
MiniLM (a BERT) goes through ``onnxruntime.transformers.optimizer`` (model_type "bert"): Attention,
SkipLayerNormalization, BiasGelu and EmbedLayerNormalization fusions. Every quantizing recipe counts the
quantized nodes of its graph and raises ``RecipeUnavailable`` when there are none (e.g. Linear exported as
Gemm, which MatMulNBits skips): a model that was not quantized is never reported as int8/int4.
"""

from __future__ import annotations

import contextlib
import io

from ptqlab.backends.base import QuantizedResult, Recipe
from ptqlab.backends.hardware import should_reduce_range
from ptqlab.backends.onnx_export import op_counts
from ptqlab.backends.ort_calibration import FeedReader, observer_overrides, ort_calibration_method
from ptqlab.backends.ort_session import (
    OrtModule,
    exported,
    ort_availability,
    quiet_ort_logs,
    require_quantized,
    roundtrip_files,
    to_numpy,
)

INT4_BLOCK_SIZE = 128
INT4_ACCURACY_LEVEL = 4


def _apply_fp32(model, args, batches, *, observer, kw, device):
    proto, notes = exported(model, args)
    return QuantizedResult(
        OrtModule(proto), "ort-fp32", notes + ["ORT CPU provider, ORT_ENABLE_ALL, no spinning"]
    )


def dynamic_int8(proto, nodes: list[str] | None = None):
    """ORT's ``quantize_dynamic`` of ``proto``: int8 per-channel symmetric weights (7-bit where the CPU lacks
    VNNI, ``should_reduce_range``), activations quantized per call at run time; ``nodes``: only these nodes
    (None: every node ORT quantizes). Returns the quantized graph; ``proto`` is left as it was."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    return roundtrip_files(
        lambda src, dst, tmp: quantize_dynamic(
            src,
            dst,
            per_channel=True,
            reduce_range=should_reduce_range(),
            weight_type=QuantType.QInt8,
            nodes_to_quantize=nodes,
        ),
        proto,
    )


def nbits(
    proto, *, bits: int = 4, block_size: int = INT4_BLOCK_SIZE, accuracy_level: int = INT4_ACCURACY_LEVEL
):
    """ORT's ``MatMulNBitsQuantizer`` on a copy of ``proto``: symmetric ``bits``-bit weights of every MatMul with
    a constant weight, in blocks of ``block_size`` along K, ``accuracy_level`` as MatMulNBits takes it (4: int8
    activations inside the kernel). Returns the quantized graph; ``proto`` is left as it was."""
    import onnx
    from onnxruntime.quantization import matmul_nbits_quantizer  # (creates its logger, which we quiet)

    check_int4_options(block_size, accuracy_level)
    work = onnx.ModelProto()
    work.CopyFrom(proto)  # the quantizer rewrites the graph it is given in place
    with contextlib.redirect_stdout(io.StringIO()), quiet_ort_logs():
        quant = matmul_nbits_quantizer.MatMulNBitsQuantizer(
            work, bits=bits, block_size=block_size, is_symmetric=True, accuracy_level=accuracy_level
        )
        quant.process()
    return quant.model.model


def _apply_dynamic(model, args, batches, *, observer, kw, device):
    proto, notes = exported(model, args)
    q = dynamic_int8(proto)
    n = require_quantized(q, "quantize_dynamic")
    notes += [
        f"{n} quantized nodes: int8 per-channel symmetric weights, activations per batch at run time",
        _reduce_range_note(),
    ]
    return QuantizedResult(OrtModule(q), "ort-int8-dynamic", notes)


def _apply_static(model, args, batches, *, observer, kw, device, ort_calibrator: str | None = None):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    method = ort_calibration_method(ort_calibrator)  # a bad name fails before the (slow) export
    proto, notes = exported(model, args)
    names = [i.name for i in proto.graph.input]
    feeds = [{n: to_numpy(a) for n, a in zip(names, b, strict=True)} for b in batches]
    extra = {"ActivationSymmetric": False, "WeightSymmetric": True}
    if ort_calibrator is None:
        overrides = observer_overrides(proto, feeds, observer, kw)
        extra["TensorQuantOverrides"] = overrides
        notes.append(f"{len(overrides)} activation ranges from ptqlab's {observer!r} observer")
    else:
        notes.append(f"activation ranges from ORT's own {ort_calibrator!r} calibrator (create_calibrator)")

    def run(src, dst, tmp):
        quantize_static(
            src,
            dst,
            FeedReader(feeds),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=should_reduce_range(),
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=method,
            extra_options=extra,
        )

    q = roundtrip_files(run, proto)
    n = require_quantized(q, "quantize_static")
    notes.append(
        f"QDQ format: {n} DequantizeLinear of int8 constants (per-channel weights), uint8 activations"
    )
    notes.append(_reduce_range_note())
    return QuantizedResult(OrtModule(q), "ort-int8-static", notes)


def _reduce_range_note() -> str:
    if should_reduce_range():
        return (
            "reduce_range=True (7-bit weights): without VNNI, MLAS's u8×s8 kernel sums pairs in int16 "
            "(vpmaddubsw), which saturates with full 8-bit weights"
        )
    return "reduce_range=False: the CPU has VNNI (int32 accumulation), full 8-bit weights"


def _apply_int4(
    model,
    args,
    batches,
    *,
    observer,
    kw,
    device,
    block_size=INT4_BLOCK_SIZE,
    accuracy_level=INT4_ACCURACY_LEVEL,
):
    check_int4_options(block_size, accuracy_level)  # before the (slow) export
    proto, notes = exported(model, args)
    q = nbits(proto, bits=4, block_size=block_size, accuracy_level=accuracy_level)
    n = require_quantized(q, "MatMulNBitsQuantizer", ("MatMulNBits",))
    left, fused = op_counts(q)["MatMul"], op_counts(q)["Attention"]
    notes.append(
        f"{n} MatMul -> MatMulNBits (int4 symmetric, block {block_size}, accuracy_level {accuracy_level}); "
        f"{left} MatMul left in fp32"
        + (f"; the Q/K/V weights inside {fused} fused Attention ops stay fp32" if fused else "")
    )
    return QuantizedResult(OrtModule(q), "ort-int4-weight-only", notes)


def check_int4_options(block_size, accuracy_level) -> None:
    """ORT's MatMulNBits takes a power-of-two ``block_size`` >= 16 and an ``accuracy_level`` in 0..4."""
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, int)
        or block_size < 16
        or block_size & (block_size - 1)
    ):
        raise ValueError(f"block_size must be a power of two >= 16 (ORT's MatMulNBits), got {block_size!r}")
    if isinstance(accuracy_level, bool) or accuracy_level not in (0, 1, 2, 3, 4):
        raise ValueError(
            f"accuracy_level must be one of 0, 1, 2, 3, 4 (ORT's MatMulNBits), got {accuracy_level!r}"
        )


ORT_FAMILY = "onnxruntime (CPU EP)"
ORT_FP32 = Recipe(
    "ort-fp32", "ORT fp32", ORT_FAMILY, 32, "the fp32 graph on ONNX Runtime", _apply_fp32, ort_availability
)
ORT_INT8_DYNAMIC = Recipe(
    "ort-int8-dynamic",
    "ORT quantize_dynamic int8 (per-channel)",
    ORT_FAMILY,
    8,
    "int8 per-channel weights, activations quantized per batch at run time",
    _apply_dynamic,
    ort_availability,
)
ORT_INT8_STATIC = Recipe(
    "ort-int8-static",
    "ORT quantize_static int8 (QDQ)",
    ORT_FAMILY,
    8,
    "int8 weights and uint8 activations with calibrated ranges (QDQ)",
    _apply_static,
    ort_availability,
    calibrates=True,
)
ORT_INT4_WEIGHT_ONLY = Recipe(
    "ort-int4-weight-only",
    "ORT int4 MatMulNBits (block 128, acc. level 4)",
    ORT_FAMILY,
    4,
    "int4 block-wise weights (MatMulNBits); activations fp32 (int8 inside the kernel at accuracy_level 4)",
    _apply_int4,
    ort_availability,
)
ORT_RECIPES = (ORT_FP32, ORT_INT8_DYNAMIC, ORT_INT8_STATIC, ORT_INT4_WEIGHT_ONLY)
