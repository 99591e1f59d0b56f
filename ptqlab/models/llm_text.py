"""An offline text corpus for language models: the standard library's own ``pydoc_data.topics``.

``pydoc_data.topics.topics`` is a dict of 79 help topics (~465 K characters of English/Python prose) shipped
with every CPython. The corpus is its values in sorted key order joined by a blank line; slices are in
*tokens* of that text: evaluation uses tokens [0, n) ("the first n tokens"), calibration tokens from
CALIBRATION_START on, so the two never overlap (the text is ~120 K SmolLM2 tokens).
"""

from __future__ import annotations

import functools

import torch

CALIBRATION_START = 65_536  # first token of the calibration slice (evaluation slices stay below it)
SHORT_EVAL_TOKENS = 512  # the interactive default
BENCH_EVAL_TOKENS = 2_048  # the benchmark's slice


@functools.lru_cache(maxsize=1)
def pydoc_text() -> str:
    """The corpus: ``pydoc_data.topics.topics`` values in sorted key order, joined by ``"\\n\\n"``."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


@functools.lru_cache(maxsize=4)
def _token_ids(tokenizer) -> torch.Tensor:
    ids = tokenizer(pydoc_text(), add_special_tokens=False, return_tensors="pt").input_ids[0]
    return ids.to(torch.int64)


def corpus_tokens(tokenizer, n_tokens: int, *, start: int = 0) -> torch.Tensor:
    """Tokens [start, start + n_tokens) of the tokenized corpus, int64 (n_tokens,)."""
    for name, value, low in (("n_tokens", n_tokens, 1), ("start", start, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if not callable(tokenizer):
        raise TypeError(f"tokenizer must be a callable tokenizer, got {type(tokenizer).__name__}")
    ids = _token_ids(tokenizer)
    if start + n_tokens > len(ids):
        raise ValueError(
            f"n_tokens: the corpus has {len(ids)} tokens, asked for [{start}, {start + n_tokens})"
        )
    return ids[start : start + n_tokens].clone()


def calibration_batches(tokenizer, n_sequences: int = 16, length: int = 256) -> list[torch.Tensor]:
    """``n_sequences`` batches of shape (1, length) cut from the calibration slice (after the eval slices)."""
    ids = corpus_tokens(tokenizer, n_sequences * length, start=CALIBRATION_START)
    return [chunk[None] for chunk in ids.split(length)]


__all__ = [
    "BENCH_EVAL_TOKENS",
    "CALIBRATION_START",
    "SHORT_EVAL_TOKENS",
    "calibration_batches",
    "corpus_tokens",
    "pydoc_text",
]
