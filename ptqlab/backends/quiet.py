"""Silence the two messages torchao prints on every CPU import, and nothing else.

* ``torchao`` logs "Failed to load …/_C_mxfp8….so" and "…_C_cutlass_90a….so": CUDA kernels for
  Blackwell/Hopper that a CPU machine cannot load (expected; torchao's CPU paths do not use them).
* ``torch.utils._pytree`` warns that registering an Enum subclass (torchao's ``KernelPreference``) as a
  constant is deprecated: a message for torchao's developers, not for ptqlab's users.

A ``logging.Filter`` on exactly those two loggers drops records that match these messages; every other
record (a real failure to load a CPU kernel, any other warning) passes through unchanged.
"""

from __future__ import annotations

import logging
import re

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
