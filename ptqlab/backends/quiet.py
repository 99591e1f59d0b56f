"""Silence the messages torchao and torch.ao print on every CPU run, and nothing else.

* ``torchao`` logs "Failed to load …/_C_mxfp8….so" and "…_C_cutlass_90a….so": CUDA kernels for
  Blackwell/Hopper that a CPU machine cannot load (expected; torchao's CPU paths do not use them).
* ``torch.utils._pytree`` warns that registering an Enum subclass (torchao's ``KernelPreference``) as a
  constant is deprecated: a message for torchao's developers, not for ptqlab's users.

A ``logging.Filter`` on exactly those two loggers drops records that match these messages; every other
record (a real failure to load a CPU kernel, any other warning) passes through unchanged.

torch.ao's eager x86 engine (the ``ao-*`` recipes, lab 09's reference kernel) warns twice per process:

* "Please use quant_min and quant_max …": its own dynamic Linear passes ``reduce_range=True`` to an observer;
* "torch.quantize_per_tensor, torch.quantize_per_channel and other quantized tensor creation functions …
  are deprecated": PyTorch plans to remove quantized tensors (torchao replaces them).

Both are for torch.ao's own code, not for ptqlab's users; ``warnings.filterwarnings`` drops exactly those two
messages from exactly those modules. The README states the deprecation.
"""

from __future__ import annotations

import logging
import re
import warnings

_EXPECTED = {
    "torchao": re.compile(r"Failed to load .*_C_(mxfp8|cutlass_\w+)[\w.-]*\.so"),
    "torch.utils._pytree": re.compile(r"is an Enum subclass and is now natively supported by torch\.compile"),
}


class _DropExpected(logging.Filter):
    def __init__(self, pattern: re.Pattern) -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def silence_torchao_import_noise() -> None:
    """Install the filters (once per process)."""
    for name, pattern in _EXPECTED.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropExpected) for f in logger.filters):
            logger.addFilter(_DropExpected(pattern))


TORCH_AO_EXPECTED = (
    (
        r"Please use quant_min and quant_max to specify the range for observers",
        r"torch\.ao\.quantization\.observer",
    ),
    (
        r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation functions",
        r"torch\.ao\.nn\.quantized\.modules\.utils",
    ),
)


def silence_torch_ao_deprecations() -> None:
    """Drop torch.ao's two expected per-process warnings (see the module docstring), and nothing else."""
    for message, module in TORCH_AO_EXPECTED:
        warnings.filterwarnings("ignore", message=message, category=UserWarning, module=module)
