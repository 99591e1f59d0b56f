"""Train the ResNet-, MobileNetV2- and ViT-style digits models once, cache them, load them in milliseconds.

``vision_model(name)`` returns a trained copy in eval mode: from this process, else from the disk cache
(``$PTQLAB_CACHE/vision_<name>_seed<seed>_<hash>.pt``, the hash covering the architecture's source, the
training code, the recipe, the seed and the torch version), else trained now (fixed seed, tqdm bar) and
cached. A cache entry is trusted only if its weights reproduce the test accuracy recorded with them: an
untrained, truncated or foreign file is set aside with a one-line warning and the model retrained
(``ptqlab.models.cache``).

Recipe: AdamW, one-cycle learning rate, batches of 64, every 8×8 image shifted by up to one pixel
(``ptqlab.models.digits.random_shift``), cross-entropy (label smoothing 0.1 for the ViT, which otherwise
over-fits 1437 images).
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from ptqlab.core.progress import Progress, track
from ptqlab.models.cache import cache_dir, read_entry, source_key, write_entry
from ptqlab.models.data import digits_split, load_digits_split
from ptqlab.models.digits import random_shift
from ptqlab.models.vision import VISION_ARCHITECTURES, VISION_LABELS, check_architecture

VISION_RECIPES = {
    "resnet": {"epochs": 15, "lr": 3e-3, "weight_decay": 1e-4, "batch_size": 64, "label_smoothing": 0.0},
    "mobilenetv2": {"epochs": 25, "lr": 5e-3, "weight_decay": 1e-4, "batch_size": 64, "label_smoothing": 0.0},
    "vit": {"epochs": 100, "lr": 3e-3, "weight_decay": 5e-2, "batch_size": 64, "label_smoothing": 0.1},
}
ACCURACY_FLOOR = 0.97  # the floor: below it, int8 deltas would mean nothing
ACCURACY_TOLERANCE = 0.02  # a cached entry must reproduce its recorded accuracy this closely (thread counts
# change float sums, so a borderline image may flip; untrained weights score ~0.1)


@torch.no_grad()
def digits_test_accuracy(model: nn.Module, seed: int = 0) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on all 360 test images of ``digits_split(seed)``."""
    data = digits_split(seed)
    return float((model.eval()(data.x_test).argmax(1) == data.y_test).float().mean())


def train_vision_model(
    name: str, seed: int = 0, progress: Progress = True
) -> tuple[nn.Module, dict[str, float]]:
    """Train ``name`` from scratch with its ``VISION_RECIPES`` entry; (eval-mode model, {test_accuracy, seconds})."""
    check_architecture(name)
    recipe, data = VISION_RECIPES[name], digits_split(seed)
    start = time.perf_counter()
    with torch.random.fork_rng():  # leave the caller's global RNG untouched
        torch.manual_seed(seed)
        model = VISION_ARCHITECTURES[name]()
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"]
        )
        batch, n = recipe["batch_size"], len(data.y_train)
        steps = (n + batch - 1) // batch
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe["lr"], total_steps=recipe["epochs"] * steps
        )
        model.train()
        for _ in track(range(recipe["epochs"]), progress, desc=f"training {VISION_LABELS[name]}"):
            order = torch.randperm(n, generator=generator)
            for k in range(0, n, batch):
                idx = order[k : k + batch]
                if len(idx) > 1:  # BatchNorm needs two samples
                    x = random_shift(data.x_train[idx], generator)
                    logits = model(x)
                    loss = F.cross_entropy(
                        logits, data.y_train[idx], label_smoothing=recipe["label_smoothing"]
                    )
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                schedule.step()
    model.eval()
    return model, {"test_accuracy": digits_test_accuracy(model, seed), "seconds": time.perf_counter() - start}


def vision_training_key(name: str, seed: int) -> str:
    """sha256 of everything that determines the trained weights: architecture and training code, recipe,
    seed, torch version."""
    check_architecture(name)
    _check_seed(seed)
    return source_key(
        _vision_source(),
        train_vision_model,
        random_shift,
        load_digits_split.__wrapped__,
        sorted(VISION_RECIPES[name].items()),
        seed,
    )


def _vision_source() -> str:
    """The whole ``ptqlab.models.vision`` source (blocks shared by the architectures included)."""
    import inspect

    return inspect.getsource(inspect.getmodule(VISION_ARCHITECTURES["resnet"]))


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")


_TRAINED: dict[tuple[str, int], tuple[nn.Module, dict[str, float]]] = {}


def _checkpoint_of(name: str, seed: int):
    """Validate a loaded cache entry: {state_dict, info}, loadable, and reproducing its recorded accuracy."""

    def restore(saved) -> tuple[nn.Module, dict[str, float]]:
        if not (isinstance(saved, dict) and set(saved) == {"state_dict", "info"}):
            raise ValueError("not a {state_dict, info} checkpoint")
        model = VISION_ARCHITECTURES[name]()
        model.load_state_dict(saved["state_dict"])
        info = {k: float(v) for k, v in dict(saved["info"]).items()}
        measured = digits_test_accuracy(model, seed)
        if abs(measured - info.get("test_accuracy", -1.0)) > ACCURACY_TOLERANCE:
            raise ValueError(
                f"weights give test accuracy {measured:.4f}, the entry records {info.get('test_accuracy')} "
                "(untrained or foreign weights)"
            )
        return model, info

    return restore


def vision_cache_path(name: str, seed: int = 0):
    """Where the trained ``name`` with ``seed`` is cached."""
    return cache_dir() / f"vision_{name}_seed{seed}_{vision_training_key(name, seed)[:16]}.pt"


def trained_vision_model(name: str, seed: int = 0, progress: Progress = True) -> nn.Module:
    """The trained model from this process, else from the disk cache, else trained now and cached."""
    check_architecture(name)
    _check_seed(seed)
    if (name, seed) not in _TRAINED:
        path = vision_cache_path(name, seed)
        cached = read_entry(path, _checkpoint_of(name, seed), what="model cache")
        if cached is None:
            cached = train_vision_model(name, seed, progress)
            write_entry(path, {"state_dict": cached[0].state_dict(), "info": cached[1]}, what="trained model")
        cached[0].eval()
        _TRAINED[(name, seed)] = cached
    return copy.deepcopy(_TRAINED[(name, seed)][0])


def vision_training_info(name: str, seed: int = 0) -> dict[str, float]:
    """{test_accuracy, seconds} recorded when the model was trained (trains it if needed)."""
    trained_vision_model(name, seed, progress=False)
    return dict(_TRAINED[(name, seed)][1])


def vision_model(name: str, seed: int = 0, progress: Progress = True) -> nn.Module:
    """The trained "ResNet-style on digits" (``"resnet"``), "MobileNetV2-style on digits" (``"mobilenetv2"``)
    or "ViT-style on digits" (``"vit"``); eval mode, a fresh copy per call."""
    return trained_vision_model(name, seed, progress)


__all__ = [
    "ACCURACY_FLOOR",
    "VISION_RECIPES",
    "digits_test_accuracy",
    "train_vision_model",
    "trained_vision_model",
    "vision_cache_path",
    "vision_model",
    "vision_training_info",
    "vision_training_key",
]
