"""A PTQ recipe: a name, what it does, when it can run, and ``apply`` on a deep copy of a model.

    result = recipe.apply(model, example_inputs, calibration_batches=None, observer="minmax", device="cpu")
    result.model    # the quantized copy (the original model is never modified)
    result.notes    # what the recipe really did: layers converted or skipped, ranges, engine settings
    ok, reason = recipe.availability(model, device)

``observer`` names a ptqlab observer (``make_observer(observer, **observer_kwargs)``) that decides every
calibrated activation range. ``example_inputs`` is a tuple of positional arguments (a lone tensor is accepted); calibration batches are
tensors or tuples in the same form. A recipe that cannot run here raises ``RecipeUnavailable`` with the reason.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn


class RecipeUnavailable(RuntimeError):
    """The recipe cannot run for this model on this device; the message says why."""


@dataclass
class QuantizedResult:
    model: nn.Module
    recipe: str
    notes: list[str] = field(default_factory=list)
    compiled: bool = False


# apply(model, args, batches, *, observer, kw, device, **options) -> QuantizedResult
ApplyFn = Callable[..., QuantizedResult]
AvailabilityFn = Callable[[nn.Module, torch.device], tuple[bool, str]]


@dataclass
class Recipe:
    name: str
    label: str
    family: str  # "baseline", "torch.ao (x86/fbgemm)", "pt2e + inductor", "torchao"
    bits: int  # bits per stored weight
    description: str
    _apply: ApplyFn
    _availability: AvailabilityFn
    calibrates: bool = False  # needs calibration batches (static activation ranges)
    compiles: bool = False  # returns a torch.compile'd model, specialized to the example shapes

    def availability(self, model: nn.Module, device: str | torch.device = "cpu") -> tuple[bool, str]:
        """(True, "") when this recipe can run here, else (False, the reason). Never raises."""
        try:
            device = torch.device(device)
        except (RuntimeError, ValueError, TypeError) as e:
            return False, f"device {device!r} is not a torch device ({e})"
        try:
            ok, reason = self._availability(model, device)
        except Exception as e:  # an availability probe must never crash the caller
            ok, reason = False, f"availability check failed: {type(e).__name__}: {e}"
        if ok:  # the recipe could run on this kind of device: is there one here?
            ok, reason = device_usable(device)
        return ok, reason

    def apply(
        self,
        model: nn.Module,
        example_inputs,
        calibration_batches: Iterable | None = None,
        *,
        observer: str = "minmax",
        device: str | torch.device = "cpu",
        observer_kwargs: dict | None = None,
        **options,
    ) -> QuantizedResult:
        """Quantize a deep copy of ``model``; ``options`` are recipe-specific (e.g. ``alpha`` for SmoothQuant)."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        from ptqlab.observers import OBSERVERS

        if observer not in OBSERVERS:
            raise ValueError(f"unknown observer {observer!r}; choose from {sorted(OBSERVERS)}")
        ok, reason = self.availability(model, device)
        if not ok:
            raise RecipeUnavailable(f"{self.name}: {reason}")
        args = as_args(example_inputs, "example_inputs")
        batches = (
            [args]
            if calibration_batches is None
            else [as_args(b, "calibration_batches") for b in calibration_batches]
        )
        if not batches:
            raise ValueError(
                "calibration_batches is empty: pass at least one batch, or None to use example_inputs"
            )
        check_inputs(args, "example_inputs")
        for i, batch in enumerate(batches):
            check_inputs(batch, f"calibration_batches[{i}]")
        device = torch.device(device)
        work = copy.deepcopy(model).eval()
        args = to_device(args, device)
        batches = [to_device(b, device) for b in batches]
        return self._apply(
            work.to(device),
            args,
            batches,
            observer=observer,
            kw=dict(observer_kwargs or {}),
            device=device,
            **options,
        )


def device_usable(device: torch.device) -> tuple[bool, str]:
    """(True, "") when torch can place tensors on ``device`` in this process, else (False, why)."""
    if device.type == "cpu":
        return True, ""
    if device.type == "cuda" and not torch.cuda.is_available():
        return False, "CUDA is not available here (torch.cuda.is_available() is False)"
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as e:
        return False, f"device {device} is not usable here ({type(e).__name__}: {e})"
    return True, ""


def as_args(inputs, name: str) -> tuple:
    """A lone tensor -> (tensor,); a tuple/list -> tuple; anything else is a TypeError naming ``name``."""
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, tuple | list):
        return tuple(inputs)
    raise TypeError(f"{name} must be a tensor or a tuple of positional inputs, got {type(inputs).__name__}")


def check_inputs(args: tuple, name: str) -> None:
    """Refuse, naming ``name``, an input tensor that is meta, 0-d or empty, or floating with NaN/Inf."""
    from ptqlab.core import checks

    for j, a in enumerate(args):
        if not isinstance(a, torch.Tensor):
            continue
        what = f"{name}[{j}]" if len(args) > 1 else name
        checks.not_meta(a, what)
        if a.dim() == 0 or a.shape[0] == 0:
            raise ValueError(f"{what} is empty or 0-d (shape {tuple(a.shape)}): give a batch of samples")
        if a.is_floating_point() and not checks.all_finite(a):
            checks.float_tensor(a, what)  # raises, counting the NaN/Inf


def to_device(args: tuple, device: torch.device) -> tuple:
    return tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)


def exact_linear_modules(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """(name, module) of every module whose type is exactly nn.Linear (swapped modules are skipped)."""
    return [(n, m) for n, m in model.named_modules() if type(m) is nn.Linear]


def needs_layers(kinds: tuple[type, ...], what: str) -> Callable[[nn.Module], tuple[bool, str]]:
    def check(model: nn.Module) -> tuple[bool, str]:
        if any(type(m) in kinds for m in model.modules()):
            return True, ""
        return False, f"the model has no {what} layer to quantize"

    return check


def cpu_only(reason: str) -> Callable[[torch.device], tuple[bool, str]]:
    def check(device: torch.device) -> tuple[bool, str]:
        if device.type != "cpu":
            return False, reason
        return True, ""

    return check


def all_of(*checks: Callable[[], tuple[bool, str]]) -> tuple[bool, str]:
    for check in checks:
        ok, reason = check()
        if not ok:
            return False, reason
    return True, ""


class CastInputs(nn.Module):
    """Runs ``model`` in ``dtype``: floating inputs are cast to it, floating outputs back to float32."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, *args):
        args = tuple(
            a.to(self.dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args
        )
        return _to_float32(self.model(*args))


def _to_float32(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, tuple | list):
        return type(out)(_to_float32(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_float32(v) for k, v in out.items()}
    return out
