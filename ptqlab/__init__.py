"""ptqlab: Post-Training Quantization you can see, checked to the bit against torch and torchao.

Importing ptqlab sets ``OMP_WAIT_POLICY=PASSIVE`` (unless already set) before torch is imported: on a
2-core machine with another busy process, torch's spinning OpenMP threads slowed forwards 20-100×.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ptqlab.core.affine import (
    QParams,
    choose_qparams,
    dequantize,
    fake_quantize,
    integer_grid,
    min_max,
    qparams_for,
    quantize,
    representable_range,
)
from ptqlab.core.manual import ManualQuantizer
from ptqlab.core.metrics import (
    ErrorSplit,
    cosine_similarity,
    error_split,
    max_abs_error,
    mse,
    sqnr_db,
)
from ptqlab.core.spec import PerChannel, PerGroup, PerTensor, QuantSpec

__all__ = [
    "ErrorSplit",
    "ManualQuantizer",
    "PerChannel",
    "PerGroup",
    "PerTensor",
    "QParams",
    "QuantSpec",
    "choose_qparams",
    "cosine_similarity",
    "dequantize",
    "error_split",
    "fake_quantize",
    "integer_grid",
    "max_abs_error",
    "min_max",
    "mse",
    "qparams_for",
    "quantize",
    "representable_range",
    "sqnr_db",
]
