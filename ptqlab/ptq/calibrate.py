"""Calibration: watch every Linear/Conv of a model with observers, and choose which samples to watch with.

    stats = calibrate(model, batches, "minmax", where="input")   # forward hooks, attached then removed
    lo, hi = stats["fc1"].input.lo, stats["fc1"].input.hi

Batches may be a tensor (split into ``batch_size`` rows), a dict (one ``model(**batch)`` call, e.g. MiniLM's
``{input_ids, attention_mask}``), or a list of tensors / dicts / ``(x, y)`` pairs (the first element is fed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ptqlab.core.progress import Progress, track
from ptqlab.observers import Observer, make_observer
from ptqlab.ptq.measure import check_layer_input, eval_mode, run_batch, run_named  # noqa: F401 (re-exported)
from ptqlab.ptq.selection import SELECTION_METHODS, select_calibration  # noqa: F401 (re-exported)

SUPPORTED_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)
WHERE = ("input", "output", "both")

ObserverFactory = str | Callable[[], Observer]


@dataclass
class TensorStats:
    """What one observer saw at one point of one layer, plus running moments of every value seen."""

    observer: Observer
    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    shape: tuple[int, ...] = ()

    def update(self, x: torch.Tensor) -> None:
        self.observer.observe(x)
        x64 = x.detach().to(torch.float64)
        self.count += x.numel()
        self.total += float(x64.sum())
        self.total_sq += float((x64 * x64).sum())
        self.shape = tuple(x.shape)

    @property
    def lo(self) -> torch.Tensor:
        return self.observer.range()[0]

    @property
    def hi(self) -> torch.Tensor:
        return self.observer.range()[1]

    @property
    def mean(self) -> float:
        return self.total / self.count

    @property
    def std(self) -> float:
        return max(self.total_sq / self.count - self.mean**2, 0.0) ** 0.5


@dataclass
class LayerStats:
    """Per-layer calibration result: statistics of the layer's input and/or output (None if not watched)."""

    name: str
    kind: str
    input: TensorStats | None
    output: TensorStats | None
    batches: int = 0


def check_layer_types(layer_types: Iterable[type]) -> tuple[type[nn.Module], ...]:
    layer_types = tuple(layer_types)
    for t in layer_types:
        if not (isinstance(t, type) and issubclass(t, SUPPORTED_LAYERS)):
            raise TypeError(f"unsupported layer type {t!r}; supported: {_names(SUPPORTED_LAYERS)}")
    return layer_types


def select_layers(
    model: nn.Module, layers: Iterable[str] | None = None, layer_types: Iterable[type] = SUPPORTED_LAYERS
) -> dict[str, nn.Module]:
    """Name -> module for ``layers`` (default: every module of ``layer_types``), in model order.

    Unknown names raise ValueError; a named module of an unsupported type raises TypeError.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    layer_types = check_layer_types(layer_types)
    modules = dict(model.named_modules())
    if layers is None:
        return {n: m for n, m in modules.items() if isinstance(m, layer_types)}
    if isinstance(layers, str):
        raise TypeError("layers must be a collection of layer names, not a single str")
    wanted = list(layers)
    unknown = [n for n in wanted if n not in modules]
    if unknown:
        raise ValueError(f"no layer named {unknown}; layers: {[n for n in modules if n]}")
    for n in wanted:
        if not isinstance(modules[n], layer_types):
            raise TypeError(f"layer {n!r} is a {type(modules[n]).__name__}; supported: {_names(layer_types)}")
    return {n: m for n, m in modules.items() if n in set(wanted)}


def as_batches(data, batch_size: int = 256) -> list:
    """Normalise calibration data to a non-empty list of batches (see the module docstring)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if isinstance(data, torch.Tensor):
        if data.device.type == "meta":
            raise ValueError("the calibration set is a meta tensor (shape only, no data)")
        if data.dim() == 0:
            raise ValueError("the calibration set must be a batch of samples (N, ...), got a 0-d tensor")
        if data.shape[0] == 0:
            raise ValueError(f"the calibration set is empty (tensor of shape {tuple(data.shape)})")
        return list(data.split(batch_size))
    if isinstance(data, dict):
        data = [data]
    batches = list(data)
    if not batches:
        raise ValueError("the calibration set is empty: give at least one batch")
    for i, b in enumerate(batches):
        if isinstance(b, torch.Tensor) and (b.dim() == 0 or b.shape[0] == 0):
            raise ValueError(f"calibration batch {i} is empty (shape {tuple(b.shape)})")
        if not isinstance(b, torch.Tensor | dict | tuple | list):
            raise TypeError(
                f"calibration batch {i} must be a tensor, dict or (x, y) pair, got {type(b).__name__}"
            )
        if isinstance(b, tuple | list) and not (b and isinstance(b[0], torch.Tensor | dict)):
            raise TypeError(
                f"calibration batch {i} is a {type(b).__name__} without a tensor first: give (x, y)"
            )
    return batches


def _factory(observer: ObserverFactory, observer_kwargs: dict | None) -> Callable[[], Observer]:
    if isinstance(observer, str):
        make_observer(observer, **(observer_kwargs or {}))  # fail early on an unknown name or bad kwargs
        return lambda: make_observer(observer, **(observer_kwargs or {}))
    if callable(observer):

        def checked() -> Observer:
            made = observer(**(observer_kwargs or {}))
            if not isinstance(made, Observer):
                raise TypeError(
                    f"observer factory {observer!r} returned a {type(made).__name__}, not an Observer"
                )
            return made

        return checked
    raise TypeError(f"observer must be a registered name or a factory, got {type(observer).__name__}")


@torch.no_grad()
def calibrate(
    model: nn.Module,
    batches,
    observer: ObserverFactory = "minmax",
    *,
    observer_kwargs: dict | None = None,
    where: str = "input",
    layers: Iterable[str] | None = None,
    layer_types: Iterable[type] = SUPPORTED_LAYERS,
    batch_size: int = 256,
    progress: Progress = None,
) -> dict[str, LayerStats]:
    """Run ``batches`` through ``model`` (eval mode) with one fresh observer per watched tensor.

    ``where`` is "input", "output" or "both". Hooks are always removed (also on error),
    every module's train/eval flag is restored, and each watched layer's input is checked
    (``measure.check_layer_input``: finite, float, the layer's dtype and width).
    """
    if where not in WHERE:
        raise ValueError(f"where must be one of {WHERE}, got {where!r}")
    targets = select_layers(model, layers, layer_types)
    if not targets:
        raise ValueError(f"the model has no layer of the supported types {_names(SUPPORTED_LAYERS)}")
    batches = as_batches(batches, batch_size)
    new = _factory(observer, observer_kwargs)
    stats = {
        n: LayerStats(
            n,
            type(m).__name__,
            TensorStats(new()) if where in ("input", "both") else None,
            TensorStats(new()) if where in ("output", "both") else None,
        )
        for n, m in targets.items()
    }
    handles = []
    try:
        for n, m in targets.items():
            handles.append(m.register_forward_pre_hook(_checked(n)))
            handles.append(m.register_forward_hook(_hook(stats[n])))
        with eval_mode(model):
            for i, batch in enumerate(track(batches, progress, desc="calibrating")):
                run_named(model, batch, i)
    finally:
        for h in handles:
            h.remove()
    return stats


def _checked(name: str):
    def hook(module, args):
        check_layer_input(module, args[0] if args else None, name)

    return hook


def _hook(layer: LayerStats):
    def hook(module, args, output):
        if layer.input is not None:
            layer.input.update(args[0])
        if layer.output is not None:
            layer.output.update(output)
        layer.batches += 1

    return hook


@torch.no_grad()
def capture(model: nn.Module, x, layer: str, where: str = "input") -> torch.Tensor:
    """The full input (or output) tensor of ``layer`` when ``model`` runs on ``x`` (batches concatenated)."""
    if where not in ("input", "output"):
        raise ValueError(f"where must be 'input' or 'output', got {where!r}")
    module = select_layers(model, [layer])[layer]
    seen: list[torch.Tensor] = []
    handles = [
        module.register_forward_pre_hook(_checked(layer)),
        module.register_forward_hook(lambda m, a, o: seen.append((a[0] if where == "input" else o).detach())),
    ]
    try:
        with eval_mode(model):
            for i, batch in enumerate(as_batches(x)):
                run_named(model, batch, i, "batch of x")
    finally:
        for h in handles:
            h.remove()
    return torch.cat(seen)


def penultimate_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of the model's last Linear/Conv, flattened to (N, D): the features the classifier reads."""
    last = list(select_layers(model))[-1]
    return capture(model, x, last).flatten(1)


def _names(types: Sequence[type]) -> str:
    return ", ".join(t.__name__ for t in types)
