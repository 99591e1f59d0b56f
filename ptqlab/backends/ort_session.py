"""ONNX Runtime sessions that behave like torch modules, and the export pipeline the ORT recipes share.

``OrtModule(proto)`` runs a graph on ORT's CPU execution provider with the benchmark's fair settings:
intra-op threads = torch's thread count, inter-op 1, ``session.intra_op.allow_spinning = 0`` (ORT's spinning
workers otherwise steal the cores from whatever runs next, e.g. an interleaved torch fp32 forward).
Its size is the serialized ONNX graph. ``exported`` = ``torch.onnx.export`` + Gemm -> MatMul + (for a BERT)
``onnxruntime.transformers`` fusions; ``require_quantized`` proves that a quantizer changed the graph.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ptqlab.backends.base import RecipeUnavailable, all_of, cpu_only
from ptqlab.backends.onnx_export import (
    export_onnx,
    gemm_to_matmul,
    initializer_bytes,
    op_counts,
    quantized_node_count,
)


def ort_importable() -> tuple[bool, str]:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except Exception as e:
        return (
            False,
            f"onnxruntime/onnx cannot be imported ({type(e).__name__}: {e}); pip install onnxruntime onnx",
        )
    return True, ""


def ort_availability(model: nn.Module, device: torch.device) -> tuple[bool, str]:
    return all_of(
        lambda: cpu_only("these recipes run ONNX Runtime's CPU execution provider")(device), ort_importable
    )


def session_options(threads: int | None = None):
    """intra-op threads = torch's count, inter-op 1, no spinning (see the module docstring)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or torch.get_num_threads())
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


class OrtModule(nn.Module):
    """An ORT session that behaves like the torch model it came from: ``forward(*tensors) -> tensor``.

    It holds no parameters; ``serialized_nbytes()`` is the size of the serialized ONNX graph."""

    def __init__(self, proto, threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        data = proto.SerializeToString()
        self.session = ort.InferenceSession(
            data, session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.onnx_bytes = len(data)
        self.weight_bytes = initializer_bytes(proto, exclude_gather_tables=True)
        self.ops = op_counts(proto)

    def forward(self, *args):
        feeds = {n: to_numpy(a) for n, a in zip(self.input_names, args, strict=True)}
        return torch.from_numpy(self.session.run(None, feeds)[0])

    def serialized_nbytes(self, exclude_embeddings: bool = False) -> int:
        return self.weight_bytes if exclude_embeddings else self.onnx_bytes


def to_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
        return a.numpy() if not a.is_floating_point() else a.float().numpy()
    return np.asarray(a)


def bert_config(model: nn.Module):
    """The Hugging Face BERT config inside ``model`` (MiniLM), or None."""
    for m in model.modules():
        cfg = getattr(m, "config", None)
        if getattr(cfg, "model_type", None) == "bert":
            return cfg
    return None


def exported(model: nn.Module, args: tuple) -> tuple[object, list[str]]:
    """Export, rewrite Gemm as MatMul, and for a BERT apply ORT's transformer fusions; returns (proto, notes).
    A BERT is exported with the "eager" attention (explicit MatMul/Softmax), the pattern ORT fuses into
    its Attention op; ``model`` is the recipe's own copy, so the switch does not leak."""
    cfg = bert_config(model)
    if cfg is not None and hasattr(cfg, "_attn_implementation"):
        cfg._attn_implementation = "eager"
    try:
        proto = export_onnx(model, args)
    except Exception as e:
        raise RecipeUnavailable(f"torch.onnx.export failed: {type(e).__name__}: {str(e)[:200]}") from e
    notes = ["exported with torch.onnx.export(dynamo=False, opset 17)"]
    n = gemm_to_matmul(proto)
    if n:
        notes.append(f"{n} Gemm -> MatMul + Add (ORT's int4/int8 quantizers rewrite MatMul only)")
    if cfg is not None:
        import onnx
        from onnxruntime.transformers.optimizer import optimize_model

        with contextlib.redirect_stdout(io.StringIO()):
            opt = optimize_model(
                proto, "bert", num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size, opt_level=0
            )
        fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
        proto = opt.model
        if not any(o.domain == "com.microsoft" for o in proto.opset_import):  # the fused ops' domain
            proto.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        # onnx's shape inference does not know the fused (com.microsoft) ops; the quantizers need types
        proto = SymbolicShapeInference.infer_shapes(proto, auto_merge=True)
        notes.append(f"onnxruntime.transformers optimize_model(bert) fusions: {fused}")
    return proto, notes


def require_quantized(proto, what: str, ops: tuple[str, ...] | None = None) -> int:
    counts = op_counts(proto)
    n = sum(counts[o] for o in ops) if ops else quantized_node_count(proto)
    if n == 0:
        raise RecipeUnavailable(
            f"{what} quantized no node (graph ops: {dict(counts)}); the model would run in fp32, "
            "so it is not reported as quantized"
        )
    return n


def roundtrip_files(fn, proto):
    """Run an ORT quantizer that reads and writes files; returns the quantized proto."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), quiet_ort_logs():
        src, dst = Path(tmp, "model.onnx"), Path(tmp, "quantized.onnx")
        onnx.save(proto, src)
        fn(src, dst, tmp)
        return onnx.load(dst)


@contextlib.contextmanager
def quiet_ort_logs():
    """ORT's quantizers log progress (INFO) and a 'consider pre-processing' warning; hide them meanwhile."""
    names = [""] + [n for n in logging.root.manager.loggerDict if n.startswith("onnxruntime")]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
