"""Plain data across the process boundary: what a check sends to the student's process and what comes back,
as JSON (numbers, strings, lists, tagged tuples/dicts/tensors). Nothing here ever unpickles or evaluates:
a reply is parsed with ``json.loads`` and tensors are rebuilt from dtype, shape and nested lists.

This file is also loaded by path in the student's process (``child.py``), so it imports only the standard
library and torch.
"""

from __future__ import annotations

import json
import math

import torch

TAG = "__t"
PLAIN = (type(None), bool, int, float, str)  # exactly these types cross unchanged
# the dtypes a reply may hold, by name; anything else is refused by name (never looked up with getattr)
DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32,
        torch.int16, torch.int8, torch.uint8, torch.bool,
    )
}  # fmt: skip


class Unreadable:
    """Stands for a value the student's process could not send as data (its type's name and a short repr):
    a checker sees an object of a type that is neither a tensor nor a number, and says so."""

    def __init__(self, kind: str, text: str):
        self.kind, self.text = kind, text

    def __repr__(self) -> str:
        return self.text


def unreadable(kind: str, text: str) -> Unreadable:
    """An ``Unreadable`` whose ``type(...).__name__`` is the student's type name (a plain subclass, no code)."""
    name = kind if kind.isidentifier() else "object"
    return type(name, (Unreadable,), {})(kind, text[:200])


def _tensor(value: torch.Tensor) -> dict:
    t = value.detach()
    if t.layout != torch.strided or t.is_quantized:
        t = t.dequantize() if t.is_quantized else t.to_dense()
    name = str(t.dtype).removeprefix("torch.")
    if name not in DTYPES:
        return {TAG: "other", "type": "Tensor", "repr": f"a tensor of dtype {t.dtype}"}
    t = t.cpu()
    data = t.float().tolist() if t.dtype in (torch.float16, torch.bfloat16) else t.tolist()
    return {TAG: "tensor", "dtype": name, "shape": list(t.shape), "data": data}


def to_wire(value, depth: int = 0):
    """``value`` as JSON-ready data; a type that is not plain data becomes an ``other`` entry (name, repr)."""
    if depth > 50:
        raise ValueError("nested more than 50 levels deep")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if value is Ellipsis:
        return {TAG: "ellipsis"}
    if isinstance(value, torch.Tensor):
        return _tensor(value)
    if isinstance(value, list):
        return [to_wire(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {TAG: "tuple", "items": [to_wire(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {
            TAG: "dict",
            "items": [[to_wire(k, depth + 1), to_wire(v, depth + 1)] for k, v in value.items()],
        }
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return _tensor(torch.as_tensor(value))
    return {TAG: "other", "type": type(value).__name__, "repr": object.__repr__(value)}


def _rebuild_tensor(entry: dict) -> torch.Tensor:
    dtype, shape = DTYPES[entry["dtype"]], entry["shape"]
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
        raise ValueError("a tensor's shape must be a list of sizes")
    numel = math.prod(shape)
    target = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    t = torch.tensor(entry["data"], dtype=target)
    if t.numel() != numel:
        raise ValueError("a tensor's data does not match its shape")
    return t.reshape(shape).to(dtype)


def from_wire(data, depth: int = 0):
    """The value ``to_wire`` encoded: tuples, dicts and tensors rebuilt; raises ValueError on anything else."""
    if depth > 60:
        raise ValueError("nested too deeply")
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [from_wire(v, depth + 1) for v in data]
    if not isinstance(data, dict):
        raise ValueError(f"unexpected {type(data).__name__}")
    kind = data.get(TAG)
    if kind == "tensor":
        return _rebuild_tensor(data)
    if kind == "tuple":
        return tuple(from_wire(v, depth + 1) for v in data["items"])
    if kind == "dict":
        return {_key(from_wire(k, depth + 1)): from_wire(v, depth + 1) for k, v in data["items"]}
    if kind == "ellipsis":
        return Ellipsis
    if kind == "other":
        return unreadable(str(data.get("type")), str(data.get("repr")))
    raise ValueError(f"unknown entry {kind!r}")


def _key(value):
    try:
        hash(value)
    except TypeError as exc:
        raise ValueError("a dict key must be hashable") from exc
    return value


def copy(value, depth: int = 0):
    """``from_wire(to_wire(value))`` without the JSON: what the other side of the wire would rebuild, with
    tensors cloned instead of listed (for calls made in one process, e.g. a checker tried on many seeds)."""
    if type(value) in PLAIN:
        return value
    if depth > 50:
        raise ValueError("nested more than 50 levels deep")
    if isinstance(value, list | tuple):
        items = [v if type(v) in PLAIN else copy(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, torch.Tensor):
        t = value.detach()
        if t.layout != torch.strided or t.is_quantized:
            t = t.dequantize() if t.is_quantized else t.to_dense()
        if str(t.dtype).removeprefix("torch.") not in DTYPES:
            return from_wire(_tensor(t))
        return t.cpu().clone()
    if isinstance(value, dict):
        return {_key(copy(k, depth + 1)): copy(v, depth + 1) for k, v in value.items()}
    return from_wire(to_wire(value, depth), depth)


def dumps(value) -> bytes:
    return json.dumps(to_wire(value), separators=(",", ":")).encode()


def loads(data: bytes):
    """Parse a reply (JSON only) and rebuild it; ValueError (or RecursionError) if it is not what we sent."""
    try:
        return from_wire(json.loads(data))
    except (KeyError, TypeError, RuntimeError, OverflowError) as exc:
        raise ValueError(str(exc)) from exc
