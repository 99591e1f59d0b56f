"""The models the labs show, loaded once per process: training on first use shows marimo's progress bar."""

from __future__ import annotations

import functools

from torch import nn

from ptqlab.labkit.layout import marimo_progress
from ptqlab.models import digits_cnn, digits_mlp, digits_split, load_minilm
from ptqlab.ptq.folding import fold_batchnorm
from ptqlab.ptq.simulate import evaluate_accuracy

LABELS = {"minilm": "MiniLM (all-MiniLM-L6-v2)", "mlp": "digits MLP", "cnn": "digits CNN"}


@functools.cache
def lab_model(name: str, folded: bool = False) -> nn.Module:
    """``"minilm"``, ``"mlp"`` or ``"cnn"``; the digits models with BatchNorm folded when ``folded``.
    Shared by the caller: do not modify it (``simulate`` and the studies copy before changing weights)."""
    if name == "minilm":
        return load_minilm()
    if name not in ("mlp", "cnn"):
        raise ValueError(f"name must be one of {sorted(LABELS)}, got {name!r}")
    train = {"mlp": digits_mlp, "cnn": digits_cnn}[name]
    model = train(progress=marimo_progress(f"Training the digits {name.upper()} (first run only)"))
    return fold_batchnorm(model) if folded else model


def digits_test_accuracy(model: nn.Module) -> float:
    """Top-1 accuracy on the 360 held-out digits images."""
    data = digits_split()
    return evaluate_accuracy(model, data.x_test, data.y_test)
