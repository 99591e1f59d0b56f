"""A disk cache for trained variants (QAT fine-tunes, training-dynamics runs), the same way the digits models
are cached: one file per result under ``$PTQLAB_CACHE``, named by a hash of everything that determines it
(code, recipe, seed, library versions), written atomically so that concurrent processes never read half a
file. A result is a dict of tensors, numbers, strings, lists and dicts (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path

import torch

from ptqlab.models.digits import cache_dir


def source_key(*parts) -> str:
    """sha256 over ``parts`` (a function or class contributes its source, anything else its ``repr``) and
    the torch version."""
    texts = [inspect.getsource(p) if inspect.isfunction(p) or inspect.isclass(p) else repr(p) for p in parts]
    texts.append(torch.__version__)
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


def cache_path(stem: str, key: str) -> Path:
    """Where the result named ``stem`` with hash ``key`` lives: ``$PTQLAB_CACHE/<stem>_<key[:16]>.pt``."""
    if not stem or any(c in stem for c in "/\\"):
        raise ValueError(f"stem must be a plain file-name prefix, got {stem!r}")
    return cache_dir() / f"{stem}_{key[:16]}.pt"


def load_or_build(stem: str, key: str, build: Callable[[], dict]) -> tuple[dict, bool]:
    """(result, from_cache): the file ``cache_path(stem, key)`` if it exists, else ``build()`` saved there."""
    path = cache_path(stem, key)
    if path.exists():
        return torch.load(path, weights_only=True), True
    result = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(result, tmp)
    os.replace(tmp, path)  # atomic
    return result, False
