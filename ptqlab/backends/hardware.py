"""Hardware facts a benchmark must record: CPU model, the ISA flags that decide which int8 kernel is fast,
core and thread counts, library versions, and the device.

Why the flags matter (x86):
  avx2 only            int8 dot products use ``vpmaddubsw``, which saturates int16 sums: activations must use
                       a reduced 7-bit range (``reduce_range=True``) or results overflow.
  avx512_vnni/avx_vnni ``vpdpbusd`` accumulates u8×s8 straight into int32: full 8-bit range, ~2× the int8 rate.
  amx_int8             tile matrix units (Sapphire Rapids and later): int8/bf16 GEMMs many times faster again.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpuinfo_text(path: str = "/proc/cpuinfo") -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def parse_cpuinfo(text: str) -> tuple[str, set[str]]:
    """(CPU model name, set of flags) from the text of /proc/cpuinfo (first processor entry)."""
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model or platform.processor() or "unknown CPU", flags


def has_vnni(flags: set[str]) -> bool:
    """True when the CPU can accumulate u8×s8 products into int32 without int16 saturation."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags)


def should_reduce_range(flags: set[str] | None = None) -> bool:
    """x86 without VNNI: use 7-bit activations (reduce_range=True) to avoid ``vpmaddubsw`` saturation."""
    if flags is None:
        flags = parse_cpuinfo(cpuinfo_text())[1]
    is_x86 = platform.machine().lower() in ("x86_64", "amd64", "i686") or "avx2" in flags
    return is_x86 and not has_vnni(flags)


@dataclass
class HardwareFacts:
    cpu_model: str
    isa: dict[str, bool]
    logical_cores: int
    torch_threads: int
    torch_version: str
    torchao_version: str
    device: str
    device_name: str
    quantized_engine: str
    cpu_capability: str
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        flags = ", ".join(k for k, v in self.isa.items() if v) or "none of " + ", ".join(ISA_FLAGS)
        return (
            f"{self.device_name} · {self.logical_cores} logical cores, {self.torch_threads} torch threads · "
            f"ISA: {flags} · torch {self.torch_version}, torchao {self.torchao_version}"
        )


def torchao_version() -> str:
    try:
        import torchao

        return str(torchao.__version__)
    except Exception as e:  # torchao missing or failing to import
        return f"unavailable ({type(e).__name__})"


def hardware_facts(device: str | torch.device = "cpu", cpuinfo: str | None = None) -> HardwareFacts:
    model, flags = parse_cpuinfo(cpuinfo_text() if cpuinfo is None else cpuinfo)
    device = torch.device(device)
    name = model
    notes = []
    if device.type == "cuda" and torch.cuda.is_available():
        name = f"{torch.cuda.get_device_name(device)} (host CPU: {model})"
        major, minor = torch.cuda.get_device_capability(device)
        notes.append(f"CUDA compute capability sm{major}{minor}")
    if should_reduce_range(flags):
        notes.append("no VNNI: int8 activations use reduce_range (7 bits) on the x86 engine")
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:
        capability = "unknown"
    return HardwareFacts(
        cpu_model=model,
        isa={f: f in flags for f in ISA_FLAGS},
        logical_cores=os.cpu_count() or 1,
        torch_threads=torch.get_num_threads(),
        torch_version=torch.__version__,
        torchao_version=torchao_version(),
        device=str(device),
        device_name=name,
        quantized_engine=torch.backends.quantized.engine,
        cpu_capability=capability,
        notes=notes,
    )


def last_level_cache_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int | None:
    """The size of the highest-level cache of CPU 0 (from sysfs), or None where it cannot be read."""
    best: tuple[int, int] | None = None
    for index in Path(root).glob("index*"):
        try:
            level = int((index / "level").read_text())
            text = (index / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        size = int(text.rstrip("KMG")) * unit
        if best is None or (level, size) > best:
            best = (level, size)
    return best[1] if best else None
