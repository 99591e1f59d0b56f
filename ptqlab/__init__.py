"""ptqlab: Post-Training Quantization you can see, checked to the bit against torch and torchao.

Importing ptqlab sets ``OMP_WAIT_POLICY=PASSIVE`` (unless already set) before torch is imported: on a
2-core machine with another busy process, torch's spinning OpenMP threads slowed forwards 20-100×.

The names below are imported on first use (PEP 562), so ``ptqlab --help`` and other commands that need no
tensor do not pay for importing torch.
"""

import importlib
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_FROM = {
    "ptqlab.core.affine": (
        "QParams choose_qparams dequantize fake_quantize integer_grid min_max qparams_for quantize "
        "representable_range"
    ),
    "ptqlab.core.manual": "ManualQuantizer",
    "ptqlab.core.metrics": "ErrorSplit cosine_similarity error_split max_abs_error mse sqnr_db",
    "ptqlab.core.spec": "PerChannel PerGroup PerTensor QuantSpec",
}
_WHERE = {name: module for module, names in _FROM.items() for name in names.split()}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'ptqlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
