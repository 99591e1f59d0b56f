"""Static eager int8 PTQ on the x86 engine, with activation ranges from ptqlab's observers.

Steps (torch.ao eager mode, made to work on any nn.Module):
1. fuse   Conv2d+BatchNorm2d(+ReLU), Conv2d+ReLU, Linear+ReLU inside every nn.Sequential (BN folded into conv);
2. wrap   each maximal run of int8-friendly children of an nn.Sequential (Linear, Conv2d, fused, ReLU, pooling,
          Flatten, Dropout) in QuantStub -> run -> DeQuantStub, so activations stay int8 across the run; every
          other Linear/Conv2d (e.g. inside attention) gets its own stubs;
3. observe with ``bridged_observer``: ptqlab observers decide each activation range (input of each run, output
          of each quantized layer); weights use per-channel symmetric min-max (torch.ao's standard);
4. convert to fbgemm/oneDNN int8 modules.
"""

from __future__ import annotations

import torch
from torch import nn

from ptqlab.backends.base import QuantizedResult, Recipe, all_of, needs_layers
from ptqlab.backends.calibration import bridged_observer, run_batches
from ptqlab.backends.torch_ao import reduce_range_for, reduce_range_note, set_engine, torch_ao_available

_FUSIONS = (
    (nn.Conv2d, nn.BatchNorm2d, nn.ReLU),
    (nn.Conv2d, nn.BatchNorm2d),
    (nn.Conv2d, nn.ReLU),
    (nn.Linear, nn.ReLU),
)
_QUANTIZABLE = (nn.Linear, nn.Conv2d)
_INT8_FRIENDLY = (
    nn.ReLU,
    nn.MaxPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AvgPool2d,
    nn.Flatten,
    nn.Dropout,
    nn.Identity,
)


def fuse_sequentials(model: nn.Module) -> int:
    """Fuse the _FUSIONS patterns among consecutive children of every nn.Sequential; returns groups fused."""
    from torch.ao.quantization import fuse_modules

    fused = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        groups, i = [], 0
        while i < len(names):
            for pattern in _FUSIONS:
                window = names[i : i + len(pattern)]
                if len(window) == len(pattern) and all(
                    type(seq._modules[n]) is t for n, t in zip(window, pattern, strict=True)
                ):
                    groups.append(window)
                    i += len(pattern)
                    break
            else:
                i += 1
        if groups:
            fuse_modules(seq, groups, inplace=True)
            fused += len(groups)
    return fused


def _is_quantizable(m: nn.Module) -> bool:
    import torch.ao.nn.intrinsic as nni

    return type(m) in _QUANTIZABLE or isinstance(m, nni._FusedModule)


def wrap_for_static(model: nn.Module) -> tuple[nn.Module, list[nn.Module]]:
    """Insert QuantStub/DeQuantStub around int8 runs; returns (model, the wrappers that get a qconfig)."""
    from torch.ao.quantization import QuantWrapper

    wrappers: list[nn.Module] = []

    def visit(parent: nn.Module) -> None:
        if isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            runs, current = [], []
            for n in names:
                child = parent._modules[n]
                if _is_quantizable(child) or type(child) in _INT8_FRIENDLY:
                    current.append(n)
                else:
                    runs.append(current)
                    current = []
                    visit(child)
            runs.append(current)
            for run in runs:
                if any(_is_quantizable(parent._modules[n]) for n in run):
                    inner = nn.Sequential(*[parent._modules[n] for n in run])
                    wrapper = QuantWrapper(inner)
                    wrappers.append(wrapper)
                    parent._modules[run[0]] = wrapper
                    for n in run[1:]:
                        parent._modules[n] = nn.Identity()
            return
        for name, child in list(parent._modules.items()):
            if child is None:
                continue
            if _is_quantizable(child):
                wrapper = QuantWrapper(child)
                wrappers.append(wrapper)
                parent._modules[name] = wrapper
            else:
                visit(child)

    if _is_quantizable(model):
        model = nn.Sequential(model)
    visit(model)
    return model, wrappers


def static_qconfig(observer: str, observer_kwargs: dict, reduce_range: bool):
    from torch.ao.quantization import QConfig
    from torch.ao.quantization.observer import MinMaxObserver, default_per_channel_weight_observer

    activation = bridged_observer(MinMaxObserver).with_args(
        ptqlab_observer=observer,
        ptqlab_kwargs=observer_kwargs,
        dtype=torch.quint8,
        qscheme=torch.per_tensor_affine,
        reduce_range=reduce_range,
    )
    return QConfig(activation=activation, weight=default_per_channel_weight_observer)


def _apply_static(model, args, batches, *, observer, kw, device):
    from torch.ao.quantization import convert, prepare

    engine = set_engine()
    reduce_range = reduce_range_for(device)
    fused = fuse_sequentials(model)
    model, wrappers = wrap_for_static(model)
    qconfig = static_qconfig(observer, kw, reduce_range)
    for w in wrappers:
        w.qconfig = qconfig
    prepared = prepare(model, inplace=True)
    n = run_batches(prepared, batches)
    qmodel = convert(prepared, inplace=True)
    layers = sum(
        1 for m in qmodel.modules() if hasattr(m, "_packed_params") and callable(getattr(m, "weight", None))
    )
    notes = [
        f"engine={engine}; {fused} fusions (Conv+BN+ReLU / Linear+ReLU); {len(wrappers)} int8 regions between "
        f"QuantStub/DeQuantStub; {layers} int8 Linear/Conv modules",
        f"activation ranges: ptqlab '{observer}' observer over {n} calibration batch(es); "
        "weights: per-channel symmetric int8",
        reduce_range_note(reduce_range),
    ]
    return QuantizedResult(qmodel, "ao-static-int8", notes)


def _availability_static(model, device):
    return all_of(
        lambda: torch_ao_available(device),
        lambda: needs_layers(_QUANTIZABLE, "nn.Linear or nn.Conv2d")(model),
    )


AO_STATIC = Recipe(
    "ao-static-int8",
    "torch.ao static PTQ (x86/fbgemm)",
    "torch.ao (x86/fbgemm)",
    8,
    "int8 weights and int8 activations with calibrated ranges (ptqlab observers); fbgemm/oneDNN int8 kernels",
    _apply_static,
    _availability_static,
    calibrates=True,
)
