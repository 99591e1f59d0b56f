"""Real bytes on disk: a packed state_dict whose size is exactly what the bits-per-weight formula says.

File layout: 8-byte magic, 8-byte little-endian header length L, a UTF-8 JSON header of L bytes (names, shapes,
scheme, byte offsets), then for every tensor its payload:

    codes        ⌈n · b / 8⌉ bytes        (``ptqlab.core.packing.pack`` of code − q_min)
    scales       G · scale_bits / 8       (one per block, float16 by default, or float32)
    zero points  ⌈G · b / 8⌉ bytes        (asymmetric only: zero points lie in [q_min, q_max], so b bits each)

with n elements and G blocks (``spec.qparams_shape``). Bits per weight, metadata included:

    bpw = b + G · (scale_bits + [asymmetric] · b) / n        e.g. int4, group 128, fp16 scales: 4.125

so file size = 16 + L + Σ_tensors payload, exact to the byte (tests check it with ``os.path.getsize``).
Dequantizing a loaded tensor uses the stored (float16-rounded) scales: what a deployed model computes.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import torch

from ptqlab.core.affine import QParams, dequantize, qparams_for, quantize
from ptqlab.core.packing import pack, packed_nbytes, unpack
from ptqlab.core.spec import PerChannel, PerGroup, PerTensor, QuantSpec

MAGIC = b"PTQLAB\x00\x01"
SCALE_DTYPES = {16: torch.float16, 32: torch.float32}


def payload_nbytes(shape: tuple[int, ...], spec: QuantSpec, scale_bits: int = 16) -> int:
    """Bytes one tensor of ``shape`` takes in the file (codes + scales + zero points)."""
    n, groups = math.prod(shape), math.prod(spec.qparams_shape(shape))
    zero_points = 0 if spec.symmetric else packed_nbytes(groups, spec.bits)
    return packed_nbytes(n, spec.bits) + groups * scale_bits // 8 + zero_points


def bits_per_weight(shape: tuple[int, ...], spec: QuantSpec, scale_bits: int = 16) -> float:
    """b + G · (scale_bits + [asymmetric] · b) / n: the storage cost per weight, metadata included."""
    n, groups = math.prod(shape), math.prod(spec.qparams_shape(shape))
    return spec.bits + groups * (scale_bits + (0 if spec.symmetric else spec.bits)) / n


def spec_to_json(spec: QuantSpec) -> dict:
    g = spec.granularity
    kind = {PerTensor: "tensor", PerChannel: "channel", PerGroup: "group"}[type(g)]
    return {"bits": spec.bits, "signed": spec.signed, "symmetric": spec.symmetric,
            "narrow_range": spec.narrow_range, "granularity": kind, "axis": getattr(g, "axis", None),
            "group_size": getattr(g, "group_size", None)}  # fmt: skip


def spec_from_json(d: dict) -> QuantSpec:
    g = {"tensor": lambda: PerTensor(), "channel": lambda: PerChannel(d["axis"]),
         "group": lambda: PerGroup(d["group_size"], d["axis"])}[d["granularity"]]()  # fmt: skip
    return QuantSpec(d["bits"], d["signed"], d["symmetric"], d["narrow_range"], g)


def save_packed(
    path: str | Path, weights: dict[str, torch.Tensor], spec: QuantSpec, scale_bits: int = 16
) -> int:
    """Quantize every tensor of ``weights`` with ``spec``, pack it and write the file; returns its size."""
    if scale_bits not in SCALE_DTYPES:
        raise ValueError(f"scale_bits must be 16 or 32, got {scale_bits!r}")
    entries, chunks, offset = [], [], 0
    for name, w in weights.items():
        qp = qparams_for(w.detach().float(), spec)
        codes = quantize(w.detach().float(), qp, spec).to(torch.int64) - spec.qmin
        parts = [pack(codes, spec.bits), qp.scale.reshape(-1).to(SCALE_DTYPES[scale_bits]).view(torch.uint8)]
        if not spec.symmetric:
            parts.append(pack(qp.zero_point.reshape(-1).to(torch.int64) - spec.qmin, spec.bits))
        payload = torch.cat(parts).numpy().tobytes()
        entries.append({"name": name, "shape": list(w.shape), "offset": offset, "nbytes": len(payload)})
        chunks.append(payload)
        offset += len(payload)
    header = json.dumps({"spec": spec_to_json(spec), "scale_bits": scale_bits, "tensors": entries}).encode()
    data = MAGIC + struct.pack("<Q", len(header)) + header + b"".join(chunks)
    Path(path).write_bytes(data)
    return len(data)


def read_header(path: str | Path) -> tuple[dict, int]:
    """(header, byte offset of the first payload) of a packed file."""
    with open(path, "rb") as f:
        if f.read(8) != MAGIC:
            raise ValueError(f"path {str(path)!r} is not a ptqlab packed file (bad magic)")
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length)), 16 + length


def load_packed(path: str | Path) -> dict[str, tuple[torch.Tensor, QParams, torch.Tensor]]:
    """name -> (integer codes, qparams with the stored scales, dequantized float32 tensor)."""
    header, start = read_header(path)
    spec, scale_bits = spec_from_json(header["spec"]), header["scale_bits"]
    raw = Path(path).read_bytes()
    out = {}
    for e in header["tensors"]:
        shape = tuple(e["shape"])
        n, groups = math.prod(shape), math.prod(spec.qparams_shape(shape))
        buf = torch.frombuffer(
            bytearray(raw[start + e["offset"] : start + e["offset"] + e["nbytes"]]), dtype=torch.uint8
        )
        n_codes = packed_nbytes(n, spec.bits)
        codes = (unpack(buf[:n_codes], spec.bits, n) + spec.qmin).reshape(shape)
        scale_end = n_codes + groups * scale_bits // 8
        scale = (
            buf[n_codes:scale_end].view(SCALE_DTYPES[scale_bits]).float().reshape(spec.qparams_shape(shape))
        )
        if spec.symmetric:
            zp = torch.full_like(scale, spec.symmetric_zero_point, dtype=torch.int32)
        else:
            zp = (unpack(buf[scale_end:], spec.bits, groups) + spec.qmin).to(torch.int32).reshape(scale.shape)
        qp = QParams(scale, zp)
        out[e["name"]] = (codes, qp, dequantize(codes.to(spec.storage_dtype), qp, spec))
    return out
