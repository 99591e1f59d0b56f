"""The benchmark's models, each with example inputs, calibration batches and a quality measure.

    mlp, cnn   digits classifiers (ptqlab.models)        quality: top-1 test accuracy
    minilm     all-MiniLM-L6-v2, sequences of 32 tokens  quality: mean/min cosine and nearest-neighbour
                                                         agreement of sentence embeddings vs fp32
    membound   4 × Linear(4096, 4096), 268 MB fp32       quality: output cosine vs fp32 on random inputs

Quality is always measured on the WHOLE evaluation set (``eval_set`` says which), in chunks of the timed
batch size; the last, short chunk is padded to the batch size with copies of its rows and the padded
outputs are dropped, so a compiled variant, specialized to that shape, never sees a new shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

MODEL_NAMES = ("mlp", "cnn", "minilm", "membound")
VISION_NAMES = ("resnet", "mobilenetv2", "vit")  # ptqlab.models.vision, for ``ptqlab bench architectures``
MINILM_SEQ = 32


class ModelUnavailable(RuntimeError):
    """The model cannot be built here; the message says why."""


@dataclass
class BenchModel:
    name: str
    title: str
    model: nn.Module
    inputs: Callable[[int], tuple]  # batch size -> positional inputs
    calibration: list[tuple]
    quality: Callable[
        [nn.Module, int], dict[str, float]
    ]  # (model, batch) -> metrics; inputs follow the model
    quality_key: str  # the headline metric (for the Pareto plot)
    quality_label: str
    eval_set: str = ""  # what quality is measured on, e.g. "all 360 test images"


def run_whole_set(m: nn.Module, inputs: tuple[torch.Tensor, ...], batch: int) -> torch.Tensor:
    """``m`` on every row of ``inputs`` in chunks of ``batch`` rows, outputs concatenated (float32, CPU).

    The last chunk, if short, is padded to ``batch`` rows with copies of its own rows and only its real
    rows' outputs are kept: every call has the same shape (compiled variants are shape-specialized)."""
    n, dev, outs = inputs[0].shape[0], model_device(m), []
    with torch.inference_mode():
        for start in range(0, n, batch):
            chunk = [t[start : start + batch] for t in inputs]
            rows = chunk[0].shape[0]
            if rows < batch:
                chunk = [_repeat_rows(c, batch) for c in chunk]
            out = m(*(c.to(dev) for c in chunk))
            outs.append(out[:rows].float().cpu())
    return torch.cat(outs)


class _ReferenceCache:
    """fp32 outputs on the whole evaluation set per batch size, computed once."""

    def __init__(self, model: nn.Module):
        self.model, self.outputs = model, {}

    def __call__(self, batch: int, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if batch not in self.outputs:
            self.outputs[batch] = run_whole_set(self.model, inputs, batch)
        return self.outputs[batch]


def model_device(m: nn.Module) -> torch.device:
    """Where a (possibly wrapped or packed) model runs: its first parameter or buffer, else the CPU."""
    for t in list(m.parameters()) + list(m.buffers()):
        return t.device
    return torch.device("cpu")


def _repeat_rows(x: torch.Tensor, batch: int) -> torch.Tensor:
    reps = -(-batch // x.shape[0])
    return x.repeat(reps, *([1] * (x.ndim - 1)))[:batch]


def _digits(name: str, seed: int) -> BenchModel:
    try:
        from ptqlab import models
        from ptqlab.models.data import digits_split
    except ImportError as e:
        raise ModelUnavailable(f"digits models not available: {e}") from e
    split = digits_split(seed)
    calibration = [(b,) for b in split.x_train[:256].split(64)]

    def quality(m: nn.Module, batch: int) -> dict[str, float]:
        predicted = run_whole_set(m, (split.x_test,), batch).argmax(-1)
        correct = int((predicted == split.y_test).sum())
        return {"accuracy": correct / len(split.y_test), "samples": float(len(split.y_test))}

    if name in VISION_NAMES:
        from ptqlab.models.vision import VISION_LABELS
        from ptqlab.models.vision_training import vision_model

        model = vision_model(name, seed=seed, progress=True)
        title = VISION_LABELS[name]
    else:
        model = (models.digits_mlp if name == "mlp" else models.digits_cnn)(seed=seed, progress=False)
        title = "digits MLP (64-512-256-128-10)" if name == "mlp" else "digits CNN (3 conv-BN-ReLU + head)"
    return BenchModel(
        name,
        title,
        model,
        lambda b: (_repeat_rows(split.x_test, b),),
        calibration,
        quality,
        "accuracy",
        "test accuracy",
        f"all {len(split.y_test)} test images of the digits split (seed {seed})",
    )


def _minilm(seed: int) -> BenchModel:
    try:
        from ptqlab.models import load_minilm
        from ptqlab.models.data import sentences
    except ImportError as e:
        raise ModelUnavailable(f"MiniLM not available: {e}") from e
    try:
        model = load_minilm()
    except Exception as e:
        raise ModelUnavailable(f"MiniLM could not be loaded ({type(e).__name__}: {e})") from e
    texts = sentences()
    tok = model.tokenizer

    def encode(batch_texts):
        enc = tok(
            list(batch_texts),
            padding="max_length",
            truncation=True,
            max_length=MINILM_SEQ,
            return_tensors="pt",
        )
        return enc["input_ids"], enc["attention_mask"]

    calib_ids, calib_mask = encode(texts[0::2][:64])
    calibration = [(calib_ids[s : s + 16], calib_mask[s : s + 16]) for s in range(0, 64, 16)]
    eval_ids, eval_mask = encode(texts[1::2][:64])

    reference = _ReferenceCache(model)

    def quality(m: nn.Module, batch: int) -> dict[str, float]:
        from ptqlab.ptq.simulate import embedding_agreement

        ref = reference(batch, (eval_ids, eval_mask))
        out = run_whole_set(m, (eval_ids, eval_mask), batch)
        agree = embedding_agreement(ref, out)
        return {
            "cosine": agree.mean_cosine,
            "min_cosine": agree.min_cosine,
            "neighbour_agreement": agree.neighbour_agreement,
            "samples": float(len(ref)),
        }

    def inputs(batch: int) -> tuple:
        return _repeat_rows(eval_ids, batch), _repeat_rows(eval_mask, batch)

    title = f"all-MiniLM-L6-v2 (seq {MINILM_SEQ})"
    return BenchModel(
        "minilm",
        title,
        model,
        inputs,
        calibration,
        quality,
        "cosine",
        "embedding cosine vs fp32",
        f"all {len(eval_ids)} evaluation sentences (odd-indexed; calibration uses even-indexed ones)",
    )


def _membound(seed: int, width: int = 4096, depth: int = 4) -> BenchModel:
    try:
        from ptqlab.models import memory_bound_mlp

        model = memory_bound_mlp(width, depth, seed)
    except ImportError as e:
        raise ModelUnavailable(f"memory_bound_mlp not available: {e}") from e
    gen = torch.Generator().manual_seed(seed)
    calibration = [(torch.randn(16, width, generator=gen),) for _ in range(4)]
    probe = torch.randn(64, width, generator=gen)

    reference = _ReferenceCache(model)

    def quality(m: nn.Module, batch: int) -> dict[str, float]:
        ref = reference(batch, (probe,))
        out = run_whole_set(m, (probe,), batch)
        cos = torch.nn.functional.cosine_similarity(ref, out, dim=1)
        return {"cosine": float(cos.mean()), "min_cosine": float(cos.min()), "samples": float(len(ref))}

    mb = width * width * depth * 4 / 1e6
    title = f"memory-bound MLP ({depth} × Linear({width}, {width}), {mb:.0f} MB fp32)"
    return BenchModel(
        "membound",
        title,
        model,
        lambda b: (_repeat_rows(probe, b),),
        calibration,
        quality,
        "cosine",
        "output cosine vs fp32",
        f"all {len(probe)} random probe inputs",
    )


def load_bench_model(name: str, seed: int = 0, **kwargs) -> BenchModel:
    """Build a benchmark model by name; raises ModelUnavailable (with the reason) when it cannot be built."""
    if name not in MODEL_NAMES + VISION_NAMES:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES + VISION_NAMES)}")
    if name in ("mlp", "cnn") + VISION_NAMES:
        return _digits(name, seed)
    if name == "minilm":
        return _minilm(seed)
    return _membound(seed, **kwargs)
