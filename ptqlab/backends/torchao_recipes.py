"""torchao ``quantize_`` recipes: int8 dynamic, int8 weight-only, int4 weight-only, int8 static.

torchao swaps each Linear's weight for a tensor subclass whose ``F.linear`` calls an int8/int4 kernel. It is
GPU-first: on CUDA its int8 path is ``torch._int_mm`` (tensor cores) and int4 is tinygemm; on CPU the same
ops exist but are tuned mainly for AMX/VNNI server parts and for ``torch.compile`` — measure, don't assume.

Every config gets ``set_inductor_config=False``: the default (True) rewrites inductor settings for the whole
process, which would silently change every other compiled variant in a benchmark.
"""

from __future__ import annotations

import torch
from torch import nn

from ptqlab.backends.base import (
    CastInputs,
    QuantizedResult,
    Recipe,
    all_of,
    exact_linear_modules,
    needs_layers,
)
from ptqlab.backends.calibration import observe_linear_inputs
from ptqlab.backends.torch_ao import reduce_range_for, reduce_range_note
from ptqlab.core.spec import QuantSpec

INT4_GROUP = 128


def _torchao():
    try:
        import torchao.quantization as tq

        return tq, ""
    except Exception as e:
        return None, f"torchao cannot be imported ({type(e).__name__}: {e})"


def _torchao_available(model, device) -> tuple[bool, str]:
    return all_of(
        lambda: (_torchao()[0] is not None, _torchao()[1]),
        lambda: needs_layers((nn.Linear,), "nn.Linear")(model),
    )


def _only(names: set[str]):
    return lambda module, fqn: isinstance(module, nn.Linear) and fqn in names


def _skipped_conv_note(model) -> list[str]:
    n = sum(1 for m in model.modules() if isinstance(m, nn.Conv2d))
    return [f"{n} nn.Conv2d not quantized (these torchao configs quantize Linear layers only)"] if n else []


# --- int8 dynamic activation, int8 weight ------------------------------------------------------------------


def _apply_int8_dynamic(model, args, batches, *, observer, kw, device):
    tq, _ = _torchao()
    n = len(exact_linear_modules(model))
    tq.quantize_(model, tq.Int8DynamicActivationInt8WeightConfig(set_inductor_config=False))
    notes = [
        f"{n} Linear: int8 per-channel weights; activations quantized per token at run time (no calibration)",
        "matmul: torch._int_mm (int8×int8->int32) then rescale",
    ]
    return QuantizedResult(model, "torchao-int8-dynamic", notes + _skipped_conv_note(model))


def _apply_int8_weight_only(model, args, batches, *, observer, kw, device):
    tq, _ = _torchao()
    n = len(exact_linear_modules(model))
    tq.quantize_(model, tq.Int8WeightOnlyConfig(set_inductor_config=False))
    notes = [f"{n} Linear: int8 per-channel weights, converted to the activation dtype inside every matmul"]
    return QuantizedResult(model, "torchao-int8-weight-only", notes + _skipped_conv_note(model))


# --- int4 weight-only --------------------------------------------------------------------------------------


def int4_cpu_eligible(layer: nn.Linear, group: int = INT4_GROUP) -> bool:
    """The CPU int4 kernel packs N in tiles of 16 and groups K by ``group``: N % 16 == 0 and K % group == 0."""
    return layer.out_features % 16 == 0 and layer.in_features % group == 0


def _int4_available(model, device):
    ok, reason = _torchao_available(model, device)
    if not ok:
        return ok, reason
    if device.type == "cpu":
        try:
            from torchao.prototype.quantization.int4.inference_workflow import PrototypeInt4WeightOnlyConfig  # noqa: F401
        except Exception as e:
            return False, f"torchao's CPU int4 config cannot be imported ({type(e).__name__})"
        if not any(int4_cpu_eligible(m) for _, m in exact_linear_modules(model)):
            return (
                False,
                f"no Linear has out_features % 16 == 0 and in_features % {INT4_GROUP} == 0 (CPU int4 kernel)",
            )
        return True, ""
    if device.type == "cuda":
        return True, ""
    return False, f"no torchao int4 kernel for device type {device.type!r}"


def _apply_int4(model, args, batches, *, observer, kw, device):
    """int4 weight-only needs bf16 activations for its fast kernels: on CPU the int4 GEMM with fp32
    activations took 25 ms per 4096² layer here, with bf16 1.3 ms. So the whole model runs in bf16."""
    tq, _ = _torchao()
    layers = exact_linear_modules(model)
    model = model.to(torch.bfloat16)
    if device.type == "cpu":
        from torchao.prototype.quantization.int4.inference_workflow import PrototypeInt4WeightOnlyConfig

        eligible = {n for n, m in layers if int4_cpu_eligible(m)}
        config = PrototypeInt4WeightOnlyConfig(group_size=INT4_GROUP, set_inductor_config=False)
        kernel = "PrototypeInt4WeightOnlyConfig, CPU kernel _weight_int4pack_mm_for_cpu"
    else:
        from torchao.quantization.quantize_.workflows import Int4PackingFormat

        eligible = {n for n, m in layers if m.in_features % INT4_GROUP == 0}
        config = tq.Int4WeightOnlyConfig(
            group_size=INT4_GROUP,
            int4_packing_format=Int4PackingFormat.TILE_PACKED_TO_4D,
            set_inductor_config=False,
        )
        kernel = "Int4WeightOnlyConfig, tinygemm CUDA kernel"
    tq.quantize_(model, config, _only(eligible))
    notes = [
        f"{len(eligible)} Linear: int4 asymmetric weights, group {INT4_GROUP} ({kernel})",
        "activations and every other layer in bfloat16 (the int4 kernels' fast path)",
    ]
    skipped = sorted({n for n, _ in layers} - eligible)
    if skipped:
        notes.append(f"left in bf16 (shape not N%16, K%{INT4_GROUP}): {', '.join(skipped)}")
    return QuantizedResult(
        CastInputs(model, torch.bfloat16), "torchao-int4-weight-only", notes + _skipped_conv_note(model)
    )


# --- int8 static (calibrated with ptqlab observers) --------------------------------------------------------


def _apply_int8_static(model, args, batches, *, observer, kw, device):
    tq, _ = _torchao()
    from torchao.quantization import PerTensor

    reduce_range = reduce_range_for(device)
    spec = QuantSpec(bits=7 if reduce_range else 8, signed=True, symmetric=True)
    names = [n for n, _ in exact_linear_modules(model)]
    ranges = observe_linear_inputs(model, names, batches, observer, kw)
    for name in names:
        config = tq.Int8StaticActivationInt8WeightConfig(
            act_quant_scale=ranges.act_scale(name, spec),
            granularity=PerTensor(),
            set_inductor_config=False,
            reduce_range=reduce_range,
        )
        tq.quantize_(model, config, _only({name}))
    notes = [
        f"{len(names)} Linear: int8 per-tensor weights; per-tensor symmetric int8 activations with a fixed scale "
        f"from ptqlab '{observer}' over {len(batches)} calibration batch(es)",
        reduce_range_note(reduce_range),
    ]
    return QuantizedResult(model, "torchao-int8-static", notes + _skipped_conv_note(model))


TORCHAO_INT8_DYNAMIC = Recipe(
    "torchao-int8-dynamic",
    "torchao Int8DynamicActivationInt8Weight",
    "torchao",
    8,
    "int8 weights, int8 activations quantized per token at run time (torch._int_mm)",
    _apply_int8_dynamic,
    _torchao_available,
)
TORCHAO_INT8_WEIGHT_ONLY = Recipe(
    "torchao-int8-weight-only",
    "torchao Int8WeightOnly",
    "torchao",
    8,
    "int8 weights dequantized inside the matmul; activations stay float",
    _apply_int8_weight_only,
    _torchao_available,
)
TORCHAO_INT4_WEIGHT_ONLY = Recipe(
    "torchao-int4-weight-only",
    "torchao int4 weight-only (group 128)",
    "torchao",
    4,
    "int4 grouped weights, bf16 activations; CPU: PrototypeInt4WeightOnlyConfig, CUDA: Int4WeightOnlyConfig (tinygemm)",
    _apply_int4,
    _int4_available,
)
TORCHAO_INT8_STATIC = Recipe(
    "torchao-int8-static",
    "torchao Int8StaticActivationInt8Weight",
    "torchao",
    8,
    "int8 weights and int8 activations with fixed per-tensor scales calibrated by ptqlab observers",
    _apply_int8_static,
    _torchao_available,
    calibrates=True,
)
