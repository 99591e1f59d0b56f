"""pt2e static int8 PTQ with torchao's X86InductorQuantizer, compiled by inductor with freezing.

    exported  = torch.export.export(model, example_inputs)          # one ATen graph
    prepared  = prepare_pt2e(exported, X86InductorQuantizer())      # observers on every activation edge
    calibrate: run the calibration batches                           # ptqlab observers decide the ranges
    converted = convert_pt2e(prepared)                              # quantize/dequantize pairs in the graph
    compiled  = torch.compile(converted, options={"freezing": True})  # inductor fuses q/dq into int8 GEMMs

Without inductor the converted graph runs q/dq in float (slower than fp32); freezing lets inductor fold the
weights into prepacked oneDNN int8 kernels. The graph is specialized to ``example_inputs``' shapes.
"""

from __future__ import annotations

import dataclasses
import shutil

import torch
from torch import nn

from ptqlab.backends.base import QuantizedResult, Recipe, RecipeUnavailable, all_of, cpu_only, needs_layers
from ptqlab.backends.calibration import bridged_observer, run_batches
from ptqlab.backends.torch_ao import reduce_range_for, reduce_range_note


def compiler_available(device: torch.device) -> tuple[bool, str]:
    """inductor needs a C++ compiler on CPU and triton on CUDA."""
    if device.type == "cpu":
        if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
            return False, "torch.compile (inductor) needs a C++ compiler on CPU; none found on PATH"
        return True, ""
    try:
        import triton  # noqa: F401
    except Exception:
        return False, "torch.compile (inductor) needs triton on GPU"
    return True, ""


class FrozenCompiled(nn.Module):
    """``torch.compile(model)`` whose compilations run with inductor freezing (weights become constants that
    inductor prepacks and folds into int8/fp32 oneDNN kernels).

    Freezing is switched on only around calls with a new input signature (when dynamo compiles), through
    ``torch._inductor.config.patch``: setting ``torch._inductor.config.freezing`` globally would change every
    other compiled model in the process, and ``torch.compile(options={"freezing": True})`` fails here for
    pt2e graphs (torch 2.13: onednn.qlinear_prepack reaches fake-tensor propagation unfolded).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.compiled = torch.compile(model)
        self._seen: set = set()

    def forward(self, *args):
        key = tuple((tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else type(a) for a in args)
        if key in self._seen:
            return self.compiled(*args)
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True):
            out = self.compiled(*args)
        self._seen.add(key)
        return out


def compile_frozen(model: nn.Module) -> nn.Module:
    """torch.compile with inductor freezing; see FrozenCompiled."""
    return FrozenCompiled(model)


def _x86_config(observer: str, kw: dict, reduce_range: bool):
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.observer import MinMaxObserver
    from torchao.quantization.pt2e.quantizer.utils import QuantizationConfig

    base = xiq.get_default_x86_inductor_quantization_config(reduce_range=reduce_range)
    ctr = bridged_observer(MinMaxObserver).with_args(ptqlab_observer=observer, ptqlab_kwargs=kw, eps=2**-12)
    act = dataclasses.replace(base.input_activation, observer_or_fake_quant_ctr=ctr)
    config = QuantizationConfig(act, act, base.weight, base.bias, False)
    return xiq.X86InductorQuantizer().set_global(config)


def rechunk(batches: list[tuple], like: tuple) -> list[tuple]:
    """Calibration data re-cut into batches of ``like``'s batch size (the exported graph's static shape).

    Tensor arguments are concatenated along dim 0 and split into chunks of ``like[i].shape[0]`` rows (a short
    remainder is dropped); non-tensor arguments are taken from ``like``. Returns [] when shapes beyond dim 0
    differ from ``like``'s.
    """
    idx = [i for i, a in enumerate(like) if isinstance(a, torch.Tensor) and a.ndim > 0]
    if not idx or any(len(b) != len(like) for b in batches):
        return []
    for b in batches:
        if any(not isinstance(b[i], torch.Tensor) or b[i].shape[1:] != like[i].shape[1:] for i in idx):
            return []
    size = like[idx[0]].shape[0]
    if any(like[i].shape[0] != size for i in idx):
        return []
    joined = {i: torch.cat([b[i] for b in batches]) for i in idx}
    chunks = []
    for start in range(0, joined[idx[0]].shape[0] - size + 1, size):
        chunks.append(
            tuple(joined[i][start : start + size] if i in joined else a for i, a in enumerate(like))
        )
    return chunks


def drop_unused_attributes(gm: torch.fx.GraphModule) -> int:
    """Delete parameters/buffers no ``get_attr`` node reads: after ``convert_pt2e`` the fp32 weights linger
    beside their int8 copies (a serialized size would count both). Returns how many were dropped."""
    used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    dropped = 0
    for name in [k for k in gm.state_dict() if k not in used]:
        owner_name, _, attr = name.rpartition(".")
        owner = gm.get_submodule(owner_name) if owner_name else gm
        if attr in owner._parameters:
            del owner._parameters[attr]
        elif attr in owner._buffers:
            del owner._buffers[attr]
        else:
            continue
        dropped += 1
    return dropped


def apply_pt2e(model, args, batches, *, observer, kw, device, keep_fp32=(), name="pt2e-x86-int8"):
    """``keep_fp32``: module names whose ops stay fp32 (``set_module_name_qconfig(name, None)``)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    reduce_range = reduce_range_for(device)
    quantizer = _x86_config(observer, kw, reduce_range)
    for module_name in keep_fp32:
        quantizer.set_module_name_qconfig(module_name, None)
    try:
        exported = torch.export.export(model, args).module()
    except Exception as e:
        raise RecipeUnavailable(f"{name}: torch.export failed ({type(e).__name__}: {str(e)[:200]})") from e
    prepared = prepare_pt2e(exported, quantizer)
    shapes = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]
    chunks = rechunk(batches, args)
    n = run_batches(prepared, chunks or [args])
    converted = convert_pt2e(prepared)
    drop_unused_attributes(converted)
    compiled = compile_frozen(converted)
    try:
        with torch.inference_mode():
            compiled(*args)  # compile now: a failure is an unavailable recipe, not a crash mid-benchmark
    except Exception as e:
        raise RecipeUnavailable(f"{name}: torch.compile failed ({type(e).__name__}: {str(e)[:200]})") from e
    notes = [
        f"X86InductorQuantizer: int8 activations (ranges: ptqlab '{observer}' over {n} batch(es), re-chunked to "
        "the example's batch size) and per-channel int8 weights; compiled with inductor freezing",
        reduce_range_note(reduce_range),
        f"graph specialized to input shapes {shapes}",
    ]
    if not chunks:
        notes.append(
            "calibration batches did not match the example's non-batch shapes: calibrated on example_inputs"
        )
    return QuantizedResult(compiled, name, notes, compiled=True)


def pt2e_availability(model, device):
    def importable():
        try:
            import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401
            import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401
        except Exception as e:
            return False, f"torchao.quantization.pt2e cannot be imported ({type(e).__name__}: {e})"
        return True, ""

    return all_of(
        lambda: cpu_only("X86InductorQuantizer targets x86 CPUs (GPUs would need a different quantizer)")(
            device
        ),
        importable,
        lambda: compiler_available(device),
        lambda: needs_layers((nn.Linear, nn.Conv2d), "nn.Linear or nn.Conv2d")(model),
    )


PT2E_X86 = Recipe(
    "pt2e-x86-int8",
    "pt2e X86InductorQuantizer + compile",
    "pt2e + inductor",
    8,
    "static int8 through torch.export + X86InductorQuantizer, lowered by torch.compile with freezing",
    apply_pt2e,
    pt2e_availability,
    calibrates=True,
    compiles=True,
)
