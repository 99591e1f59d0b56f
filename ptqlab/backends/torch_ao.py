"""Baselines (fp32, bf16) and PyTorch's x86/fbgemm quantized engine: dynamic and static eager int8 PTQ.

torch.ao's eager quantization is deprecated in favour of torchao, but still ships with torch, and on x86 CPUs
it calls fbgemm/oneDNN's hand-tuned int8 GEMMs (``vpmaddubsw`` on AVX2, ``vpdpbusd`` with VNNI) — the fastest
int8 path on CPUs without VNNI/AMX. Every import is guarded: a torch without it makes the recipe unavailable.
"""

from __future__ import annotations

import torch
from torch import nn

from ptqlab.backends.base import CastInputs, QuantizedResult, Recipe, all_of, cpu_only, needs_layers
from ptqlab.backends.hardware import should_reduce_range


def quantized_engine() -> str | None:
    """The x86 engine ("x86" picks fbgemm or oneDNN per shape; older torch: "fbgemm"), or None."""
    engines = getattr(torch.backends.quantized, "supported_engines", [])
    for engine in ("x86", "fbgemm"):
        if engine in engines:
            return engine
    return None


def set_engine() -> str:
    engine = quantized_engine()
    if engine is None:
        raise RuntimeError("this torch build has no x86/fbgemm quantized engine")
    torch.backends.quantized.engine = engine
    return engine


def torch_ao_available(device: torch.device) -> tuple[bool, str]:
    def importable():
        try:
            import torch.ao.quantization  # noqa: F401
        except Exception as e:
            return False, f"torch.ao.quantization cannot be imported ({type(e).__name__}: {e})"
        return True, ""

    def engine():
        if quantized_engine() is None:
            return (
                False,
                f"no x86/fbgemm quantized engine in this torch (engines: {torch.backends.quantized.supported_engines})",
            )
        return True, ""

    return all_of(
        lambda: cpu_only("torch.ao's quantized int8 kernels (fbgemm/oneDNN) run on CPU only")(device),
        importable,
        engine,
    )


# --- fp32 and bf16 -----------------------------------------------------------------------------------------


def _apply_fp32(model, args, batches, *, observer, kw, device):
    return QuantizedResult(model, "fp32", ["unchanged float32 copy: the baseline every speedup divides"])


def _apply_bf16(model, args, batches, *, observer, kw, device):
    notes = ["weights and activations in bfloat16 (16-bit float, fp32's exponent range): no calibration"]
    if device.type == "cpu":
        notes.append("bf16 matmuls are fast only with avx512_bf16/AMX; elsewhere they are emulated")
    return QuantizedResult(CastInputs(model.to(torch.bfloat16), torch.bfloat16), "bf16", notes)


# --- torch.ao dynamic int8 ---------------------------------------------------------------------------------


def _full_range_linear_class():
    import torch.ao.nn.quantized.dynamic as nnqd

    class FullRangeDynamicLinear(nnqd.Linear):
        """nnqd.Linear hard-codes reduce_range=True (7-bit activations, for CPUs without VNNI); with VNNI the
        full 8-bit range is safe and halves the activation rounding error."""

        def forward(self, x):
            y = torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=False)
            return y.to(x.dtype)

    return FullRangeDynamicLinear


def quantize_dynamic_int8(
    model: nn.Module, device: torch.device, names: set[str] | None = None
) -> tuple[nn.Module, list[str]]:
    """torch.ao dynamic int8 (per-channel weights) on the Linear layers named in ``names`` (None = all)."""
    import torch.ao.nn.quantized.dynamic as nnqd
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    engine = set_engine()
    spec = (
        {nn.Linear: per_channel_dynamic_qconfig}
        if names is None
        else dict.fromkeys(names, per_channel_dynamic_qconfig)
    )
    qmodel = quantize_dynamic(model, spec, dtype=torch.qint8, inplace=False)
    reduce_range = reduce_range_for(device)
    if not reduce_range:
        cls = _full_range_linear_class()
        for m in qmodel.modules():
            if type(m) is nnqd.Linear and m._packed_params.dtype == torch.qint8:
                m.__class__ = cls
    n = sum(1 for m in qmodel.modules() if m._get_name() == "DynamicQuantizedLinear")
    notes = [
        f"{n} nn.Linear -> int8 weights (per-channel symmetric), engine={engine}",
        "activations quantized on the fly per batch, per tensor (their range is measured at run time: no "
        "calibration, the observer choice does not apply)",
        reduce_range_note(reduce_range),
    ]
    return qmodel, notes


def _apply_dynamic(model, args, batches, *, observer, kw, device):
    qmodel, notes = quantize_dynamic_int8(model, device)
    return QuantizedResult(qmodel, "ao-dynamic-int8", notes)


def _availability_fp(model, device):
    return True, ""


def dynamic_availability(model, device):
    return all_of(
        lambda: torch_ao_available(device),
        lambda: needs_layers((nn.Linear,), "nn.Linear")(model),
    )


FP32 = Recipe(
    "fp32", "fp32 eager", "baseline", 32, "the unquantized float32 model", _apply_fp32, _availability_fp
)
BF16 = Recipe(
    "bf16",
    "bf16 eager",
    "baseline",
    16,
    "cast weights and activations to bfloat16",
    _apply_bf16,
    _availability_fp,
)
AO_DYNAMIC = Recipe(
    "ao-dynamic-int8",
    "torch.ao quantize_dynamic (x86/fbgemm)",
    "torch.ao (x86/fbgemm)",
    8,
    "int8 Linear weights, activations quantized per batch at run time; fbgemm's int8 GEMM",
    _apply_dynamic,
    dynamic_availability,
)


def reduce_range_note(reduce_range: bool) -> str:
    if reduce_range:
        return "reduce_range=True: this x86 CPU lacks VNNI, so u8×s8 pairs summed in int16 (vpmaddubsw) could saturate; 7-bit activations avoid it"
    return "reduce_range=False: the CPU has VNNI/AMX (int32 accumulation), the full 8-bit range is safe"


def reduce_range_for(device: torch.device) -> bool:
    return device.type == "cpu" and should_reduce_range()
