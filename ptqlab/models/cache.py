"""The disk cache of trained models and variants (digits models, QAT fine-tunes, training-dynamics runs).

One file per result under ``$PTQLAB_CACHE`` (default ``~/.cache/ptqlab``), named by a hash of everything
that determines it (code, recipe, seed, library versions). Three promises:

* nothing is lost: a write goes to a temporary file, then ``os.replace`` (atomic; concurrent processes never
  read half a file); a read-only or vanished cache directory only costs a one-line warning — the result is
  still returned and used, uncached;
* a damaged entry heals: anything unreadable or of the wrong shape (truncated, random bytes, empty, a
  directory, wrong keys) is set aside as ``<file>.damaged-<time>`` (or removed), with a one-line warning,
  and the result is rebuilt;
* nothing is un-pickled: entries are read with ``torch.load(weights_only=True)`` (tensors, numbers,
  strings, lists, dicts only).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

T = TypeVar("T")


def cache_dir() -> Path:
    """``$PTQLAB_CACHE`` if set, else ``~/.cache/ptqlab``."""
    return Path(os.environ.get("PTQLAB_CACHE") or Path.home() / ".cache" / "ptqlab")


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


def read_entry(path: Path, restore: Callable[[object], T], *, what: str = "cache entry") -> T | None:
    """``restore(torch.load(path, weights_only=True))``, or None when there is no entry. Any failure to load
    or restore is damage: the entry is set aside (one-line warning) and None is returned."""
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        return restore(torch.load(path, weights_only=True))
    except Exception as error:  # any damage at all: the cache must never break a run
        first = str(error).splitlines()[0].split(". ")[0] if str(error) else ""
        reason = f"{type(error).__name__}: {first}"[:140]
        warnings.warn(
            f"ptqlab: damaged {what} {path} ({reason}); {_set_aside(path)}; rebuilding",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def _set_aside(path: Path) -> str:
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    try:
        os.replace(path, aside)
        return f"moved to {aside.name}"
    except OSError:
        try:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            return "removed"
        except OSError as error:
            return f"could not be moved or removed ({type(error).__name__})"


def write_entry(path: Path, obj, *, what: str = "result") -> bool:
    """Write ``obj`` to ``path`` atomically; on an OS error (read-only or vanished directory) warn in one
    line and return False: the caller still uses its result."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, tmp)
        os.replace(tmp, path)  # atomic: concurrent processes never read half a file
        return True
    except OSError as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        warnings.warn(
            f"ptqlab: could not cache the {what} at {path} ({type(error).__name__}: "
            f"{error.strerror or error}); using it uncached",
            RuntimeWarning,
            stacklevel=3,
        )
        return False


def load_or_build(stem: str, key: str, build: Callable[[], dict]) -> tuple[dict, bool]:
    """(result, from_cache): the entry ``cache_path(stem, key)`` if it is a readable dict, else ``build()``
    written there (a damaged entry is set aside first)."""
    path = cache_path(stem, key)
    cached = read_entry(path, _a_dict)
    if cached is not None:
        return cached, True
    result = build()
    write_entry(path, result)
    return result, False


def _a_dict(saved) -> dict:
    if not isinstance(saved, dict):
        raise ValueError(f"expected a dict, found {type(saved).__name__}")
    return saved
