"""The digits classifiers, offline: an MLP and a CNN trained on first use and cached on disk.

``digits_mlp()`` and ``digits_cnn()`` train in a few seconds on 2 CPU threads with a fixed seed, then are
cached on disk under ``$PTQLAB_CACHE`` (default ``~/.cache/ptqlab``) in a file named by a hash of the
training code, the recipe, the seed and the torch version — edit any of them and the model is retrained.
Within a process a second call costs one ``deepcopy``.

Training recipe (both models): AdamW, one-cycle learning rate, batches of 64, every image shifted by up
to one pixel at random (data augmentation), cross-entropy loss.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import time
from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ptqlab.core.progress import Progress, track
from ptqlab.models.cache import cache_dir, read_entry, write_entry
from ptqlab.models.data import digits_split, load_digits_split

RECIPES = {
    "mlp": {"epochs": 60, "lr": 3e-3, "weight_decay": 1e-4, "batch_size": 64},
    "cnn": {"epochs": 20, "lr": 3e-3, "weight_decay": 1e-4, "batch_size": 64},
}


class DigitsMLP(nn.Sequential):
    """The seed's SimpleNet on 8×8 digits: flatten, 64-512-256-128-10, each hidden layer Linear-BN-ReLU-Dropout."""

    def __init__(self, hidden: tuple[int, ...] = (512, 256, 128), dropout: float = 0.2) -> None:
        layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
        width = 64
        for i, h in enumerate(hidden, start=1):
            layers += [
                (f"fc{i}", nn.Linear(width, h)),
                (f"bn{i}", nn.BatchNorm1d(h)),
                (f"relu{i}", nn.ReLU()),
                (f"drop{i}", nn.Dropout(dropout)),
            ]
            width = h
        layers.append((f"fc{len(hidden) + 1}", nn.Linear(width, 10)))
        super().__init__(OrderedDict(layers))


class DigitsCNN(nn.Sequential):
    """Three Conv3×3-BN-ReLU blocks (1→16→32→64 channels, 2×2 max-pool after the last two), then an MLP head."""

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64), dropout: float = 0.3) -> None:
        c1, c2, c3 = channels
        super().__init__(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(1, c1, 3, padding=1)),
                    ("bn1", nn.BatchNorm2d(c1)),
                    ("relu1", nn.ReLU()),
                    ("conv2", nn.Conv2d(c1, c2, 3, padding=1)),
                    ("bn2", nn.BatchNorm2d(c2)),
                    ("relu2", nn.ReLU()),
                    ("pool2", nn.MaxPool2d(2)),
                    ("conv3", nn.Conv2d(c2, c3, 3, padding=1)),
                    ("bn3", nn.BatchNorm2d(c3)),
                    ("relu3", nn.ReLU()),
                    ("pool3", nn.MaxPool2d(2)),
                    ("flatten", nn.Flatten()),
                    ("fc1", nn.Linear(c3 * 2 * 2, 128)),
                    ("relu4", nn.ReLU()),
                    ("drop", nn.Dropout(dropout)),
                    ("fc2", nn.Linear(128, 10)),
                ]
            )
        )


ARCHITECTURES = {"mlp": DigitsMLP, "cnn": DigitsCNN}


def random_shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift every (N, 1, 8, 8) image by dx, dy ∈ {-1, 0, 1} pixels (zero fill)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n,), generator=generator)
    dx = torch.randint(0, 3, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    return padded[
        torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols
    ]


def train_recipe(
    name: str,
    seed: int,
    recipe: dict,
    make_schedule: Callable[[torch.optim.Optimizer, int], object],
    *,
    progress: Progress = None,
    desc: str | None = None,
    after_epoch: Callable[[nn.Module], None] | None = None,
) -> nn.Module:
    """The digits training recipe, written once: returns the trained model, still in train mode.

    Seeded model init and batch order; AdamW(lr, weight_decay); each epoch a fresh random order in batches of
    ``batch_size``, every image shifted by up to one pixel, cross-entropy loss; the schedule
    ``make_schedule(optimizer, total_steps)`` stepped once per batch (a 1-sample batch, which BatchNorm cannot
    train on, is skipped but still steps it, so every schedule sees epochs·⌈n/batch⌉ steps);
    ``after_epoch(model)`` at each epoch's end. The caller's global RNG (dropout draws from it) is untouched.
    """
    data = digits_split()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = ARCHITECTURES[name]()
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"]
        )
        batch, n = recipe["batch_size"], len(data.y_train)
        schedule = make_schedule(optimizer, recipe["epochs"] * ((n + batch - 1) // batch))
        model.train()
        for _ in track(range(recipe["epochs"]), progress, desc=desc or f"training digits {name}"):
            order = torch.randperm(n, generator=generator)
            for k in range(0, n, batch):
                idx = order[k : k + batch]
                if len(idx) > 1:  # BatchNorm needs two samples
                    x = random_shift(data.x_train[idx], generator)
                    loss = F.cross_entropy(model(x), data.y_train[idx])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                schedule.step()
            if after_epoch is not None:
                after_epoch(model)
    return model


def one_cycle(max_lr: float) -> Callable[[torch.optim.Optimizer, int], object]:
    """The shipped schedule: one-cycle (warm-up, then cosine annealing to ~0) peaking at ``max_lr``."""
    return lambda optimizer, total: torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lr, total_steps=total
    )


def train_digits_model(
    name: str, seed: int = 0, progress: Progress = True
) -> tuple[nn.Module, dict[str, float]]:
    """Train ``name`` ("mlp" or "cnn") from scratch; returns the eval-mode model and {test_accuracy, seconds}."""
    recipe, data = RECIPES[name], digits_split()
    start = time.perf_counter()
    model = train_recipe(name, seed, recipe, one_cycle(recipe["lr"]), progress=progress).eval()
    with torch.no_grad():
        accuracy = float((model(data.x_test).argmax(1) == data.y_test).float().mean())
    return model, {"test_accuracy": accuracy, "seconds": time.perf_counter() - start}


_TRAINING_CODE = (random_shift, train_recipe, one_cycle, train_digits_model, load_digits_split.__wrapped__)


def training_key(name: str, seed: int) -> str:
    """sha256 of everything that determines the trained weights: code, recipe, seed, torch version."""
    if name not in ARCHITECTURES:
        raise ValueError(f"name must be one of {sorted(ARCHITECTURES)}, got {name!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    parts = [
        inspect.getsource(ARCHITECTURES[name]),
        *(inspect.getsource(f) for f in _TRAINING_CODE),
        repr(sorted(RECIPES[name].items())),
        str(seed),
        torch.__version__,
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


_TRAINED: dict[tuple[str, int], tuple[nn.Module, dict[str, float]]] = {}


def _checkpoint_of(name: str) -> Callable[[object], tuple[nn.Module, dict[str, float]]]:
    """Validate a loaded cache entry as a {state_dict, info} checkpoint of digits model ``name``."""

    def restore(saved) -> tuple[nn.Module, dict[str, float]]:
        if not (isinstance(saved, dict) and set(saved) == {"state_dict", "info"}):
            raise ValueError("not a {state_dict, info} checkpoint")
        model = ARCHITECTURES[name]()
        model.load_state_dict(saved["state_dict"])
        return model, {k: float(v) for k, v in dict(saved["info"]).items()}

    return restore


def trained_digits_model(name: str, seed: int = 0, progress: Progress = True) -> nn.Module:
    """The trained model from this process, else from the disk cache, else trained now and cached."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown digits model {name!r}; choose from {sorted(ARCHITECTURES)}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if (name, seed) not in _TRAINED:
        path = cache_dir() / f"digits_{name}_seed{seed}_{training_key(name, seed)[:16]}.pt"
        cached = read_entry(path, _checkpoint_of(name), what="model cache")
        if cached is None:
            cached = train_digits_model(name, seed, progress)
            write_entry(path, {"state_dict": cached[0].state_dict(), "info": cached[1]}, what="trained model")
        cached[0].eval()
        _TRAINED[(name, seed)] = cached
    return copy.deepcopy(_TRAINED[(name, seed)][0])


def training_info(name: str, seed: int = 0) -> dict[str, float]:
    """{test_accuracy, seconds} recorded when the model was trained (trains it if needed)."""
    trained_digits_model(name, seed, progress=False)
    return dict(_TRAINED[(name, seed)][1])


def digits_mlp(seed: int = 0, progress: Progress = True) -> DigitsMLP:
    """SimpleNet (64-512-256-128-10, BatchNorm, dropout) trained on digits; eval mode, a fresh copy per call."""
    return trained_digits_model("mlp", seed, progress)


def digits_cnn(seed: int = 0, progress: Progress = True) -> DigitsCNN:
    """Conv-BN-ReLU ×3 + MLP head trained on digits; eval mode, a fresh copy per call."""
    return trained_digits_model("cnn", seed, progress)


__all__ = [
    "DigitsCNN",
    "DigitsMLP",
    "digits_cnn",
    "digits_mlp",
    "training_info",
    "training_key",
]
