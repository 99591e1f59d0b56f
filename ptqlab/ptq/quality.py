"""How good is a (quantized) model? Top-1 accuracy on labelled inputs, and agreement between embeddings.

accuracy           = mean(argmax model(x) == y)
cosine_i           = <r_i, t_i> / (‖r_i‖·‖t_i‖)       (1.0 when both rows are all zeros, as cosine_similarity)
neighbour agreement = share of rows whose nearest other row (by cosine) is the same in both sets
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ptqlab.core import checks
from ptqlab.ptq.measure import eval_mode, run_named
from ptqlab.ptq.selection import class_labels


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy as a fraction in [0, 1] (eval mode, every module's flag restored after; no grad)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor of inputs, got {type(x).__name__}")
    if x.device.type == "meta":
        raise ValueError("x is a meta tensor (shape only, no data)")
    if x.dim() == 0 or len(x) == 0:
        raise ValueError(f"x must be a non-empty batch of inputs, got shape {tuple(x.shape)}")
    if x.is_floating_point() and not checks.all_finite(x):
        checks.float_tensor(x, "x")  # raises, counting the NaN/Inf
    y = class_labels(y, len(x), "y")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    with eval_mode(model):
        batches = x.split(batch_size)
        predictions = torch.cat(
            [run_named(model, b, i, "batch of x").argmax(-1) for i, b in enumerate(batches)]
        )
    if predictions.shape != y.shape:
        raise ValueError(
            f"the model gives predictions of shape {tuple(predictions.shape)} for labels y {tuple(y.shape)}"
        )
    return float((predictions == y).float().mean())


def _unit_rows(e: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm in float64 (first by their largest magnitude, so 1e200 rows do not
    overflow); all-zero rows stay zero."""
    e = e.detach().to(torch.float64)
    m = e.abs().amax(1, keepdim=True)
    return torch.nn.functional.normalize(e / torch.where(m > 0, m, torch.ones_like(m)), dim=1)


class EmbeddingAgreement(NamedTuple):
    """mean/min cosine between matching rows, and the share of rows whose nearest neighbour is unchanged."""

    mean_cosine: float
    min_cosine: float
    neighbour_agreement: float


def embedding_agreement(reference: torch.Tensor, test: torch.Tensor) -> EmbeddingAgreement:
    """cos_i = <r_i, t_i> / (‖r_i‖‖t_i‖); neighbour of i = argmax_{j≠i} cos(e_i, e_j), in each embedding set."""
    if not (isinstance(reference, torch.Tensor) and isinstance(test, torch.Tensor)):
        raise TypeError("reference and test must be tensors of embeddings (N, D)")
    if reference.shape != test.shape or reference.dim() != 2 or reference.shape[0] < 2:
        raise ValueError(
            f"reference and test must be two (N, D) tensors with N >= 2, got {tuple(reference.shape)} and {tuple(test.shape)}"
        )
    for name, e in (("reference", reference), ("test", test)):
        checks.float_tensor(e, name)
    r, t = _unit_rows(reference), _unit_rows(test)
    zero_r, zero_t = (r == 0).all(1), (t == 0).all(1)
    # rows that are all zeros in both sets agree perfectly (cosine_similarity's convention: 1.0)
    cos = torch.where(zero_r & zero_t, torch.ones(len(r), dtype=torch.float64), (r * t).sum(1))
    eye = torch.eye(len(r), dtype=torch.bool)
    nn_r = (r @ r.T).masked_fill(eye, -2).argmax(1)
    nn_t = (t @ t.T).masked_fill(eye, -2).argmax(1)
    return EmbeddingAgreement(float(cos.mean()), float(cos.min()), float((nn_r == nn_t).double().mean()))
