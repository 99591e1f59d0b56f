"""How big is a quantized model? Serialize it and count the bytes.

``sum(p.numel() * p.element_size() for p in model.parameters())`` is wrong for quantized models: torchao's
tensor subclasses report their *logical* float size, and torch.ao's packed modules hold their weights outside
``parameters()`` (the sum is ~0). ``torch.save(model.state_dict())`` writes what the model really stores.
"""

from __future__ import annotations

import io

import torch
from torch import nn


def embedding_prefixes(model: nn.Module) -> list[str]:
    """Names of the model's nn.Embedding modules (a forward reads only a few rows of their tables)."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Embedding | nn.EmbeddingBag)]


def serialized_bytes(model: nn.Module, exclude_embeddings: bool = False) -> int:
    """len(torch.save(state_dict)) in bytes; with ``exclude_embeddings`` the embedding tables are left out,
        which gives the bytes a forward must stream (the roofline's numerator). A model wrapping another engine
    reports its own file through ``serialized_nbytes(exclude_embeddings)`` (ORT: the ONNX graph's bytes)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if hasattr(model, "serialized_nbytes"):  # an engine session (ONNX Runtime): its serialized graph
        return int(model.serialized_nbytes(exclude_embeddings))
    state = model.state_dict()
    if exclude_embeddings:
        prefixes = tuple(p + "." for p in embedding_prefixes(model))
        state = {k: v for k, v in state.items() if not (prefixes and k.startswith(prefixes))}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()


def torchao_model_bytes(model: nn.Module) -> int | None:
    """torchao's ``get_model_size_in_bytes`` (understands its tensor subclasses); None when unavailable."""
    try:
        from torchao.utils import get_model_size_in_bytes

        return int(get_model_size_in_bytes(model))
    except Exception:
        return None
