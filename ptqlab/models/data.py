"""Offline data: scikit-learn's bundled 8×8 digits, and a few hundred sentences written for ptqlab.

Nothing here downloads anything: ``load_digits`` ships inside scikit-learn, the sentences ship inside
ptqlab (``ptqlab/models/sentences.tsv``, one ``topic<TAB>sentence`` per line).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import NamedTuple

import torch

DIGITS_PIXEL_MAX = 16.0  # load_digits stores 4-bit intensities 0..16


class DigitsSplit(NamedTuple):
    """Images float32 (N, 1, 8, 8) in [0, 1] and labels int64 (N,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@functools.lru_cache(maxsize=8)
def load_digits_split(seed: int, test_fraction: float) -> DigitsSplit:
    """The split itself, cached per (seed, fraction); ``digits_split`` checks the arguments first."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / DIGITS_PIXEL_MAX
    y = torch.tensor(digits.target, dtype=torch.int64)
    idx_train, idx_test = train_test_split(
        range(len(y)), test_size=test_fraction, stratify=digits.target, random_state=seed
    )
    idx_train, idx_test = torch.tensor(sorted(idx_train)), torch.tensor(sorted(idx_test))
    return DigitsSplit(x[idx_train], y[idx_train], x[idx_test], y[idx_test])


def digits_split(seed: int = 0, test_fraction: float = 0.2) -> DigitsSplit:
    """The 1797 digits, split stratified by class: 80 % train (1437), 20 % test (360) by default.

    Deterministic for a given ``seed``; the tensors are shared between calls, so clone before editing.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    return load_digits_split(seed, float(test_fraction))


@functools.lru_cache(maxsize=1)
def _sentence_table() -> tuple[tuple[str, str], ...]:
    text = resources.files("ptqlab.models").joinpath("sentences.tsv").read_text(encoding="utf-8")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        topic, sep, sentence = line.partition("\t")
        if not sep or not sentence.strip():
            raise ValueError(f"sentences.tsv line {number} is not 'topic<TAB>sentence': {line!r}")
        rows.append((topic.strip(), sentence.strip()))
    return tuple(rows)


def sentences(topic: str | None = None) -> list[str]:
    """The project's sentences (all topics, in file order), or only those of ``topic``."""
    rows = _sentence_table()
    if topic is not None and topic not in {t for t, _ in rows}:
        raise ValueError(f"unknown topic {topic!r}; choose from {sorted({t for t, _ in rows})}")
    return [s for t, s in rows if topic is None or t == topic]


def sentence_topics() -> list[str]:
    """The topic of every sentence, aligned with ``sentences()``."""
    return [t for t, _ in _sentence_table()]


def heavy_tailed_activations(n: int = 20_000, seed: int = 0) -> torch.Tensor:
    """Student-t with 3 degrees of freedom: t = z / √(v/3), z ~ N(0, 1), v ~ χ²(3) (a sum of 3 squared
    normals). Most values are small, a few are huge: the shape of a transformer's outlier activations."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator=generator)
    v = torch.randn(3, n, generator=generator).pow(2).sum(dim=0)
    return z / (v / 3).sqrt()
