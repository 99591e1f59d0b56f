"""Lab 11, what it computes: the seed's architecture table measured here, and each family's failure.

* ``measured_table`` / ``cached_table``: ``ptqlab.bench.architectures.measure_rows`` (what
  ``ptqlab bench architectures`` prints), kept on disk per machine (CPU model, cores, torch version, code);
* ``resnet_folding``: the ResNet-style model with BatchNorm folded vs not (max |logit difference|, predictions);
* ``mobilenet_study(factor)``: ``ptqlab.ptq.dfq.dfq_study`` on the trained MobileNetV2-style model
  (``factor`` 1) or on ``unequalize(model, factor)`` (same float function, ``factor``× wider spread), with
  every depthwise layer's per-channel ranges after folding and after CLE;
* ``vit_study``: ``ptqlab.ptq.vit_activations`` statistics, a sample of each site's values, and the accuracy
  with each site alone quantized (uniform per-tensor vs its fix) at 8 and 4 bits.

Heavy results are cached on disk (``ptqlab.models.cache``) and in the process: a reopened lab shows them at once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import torch

from ptqlab.backends.hardware import cpuinfo_text, hardware_facts, parse_cpuinfo
from ptqlab.bench import architectures as arch
from ptqlab.labkit.layout import timed_bar
from ptqlab.models.cache import cache_path, load_or_build, read_entry, source_key, write_entry
from ptqlab.models.data import digits_split
from ptqlab.models.vision import VISION_LABELS
from ptqlab.models.vision_training import vision_model, vision_training_key
from ptqlab.ptq import dfq, vit_activations
from ptqlab.ptq.cle import equalize
from ptqlab.ptq.folding import bn_scale_factors, fold_batchnorm, foldable_pairs

TABLE_MODELS = tuple(arch.MEASURED_MODELS.values())
TABLE_BATCHES = (1, 64)
TABLE_REPEATS = 5
TABLE_THREADS = min(2, os.cpu_count() or 1)  # the table is measured with this many torch threads
SPREAD_FACTORS = (1, 30, 300, 3000)  # 1 = the trained model as it is
VIT_BITS = (8, 4)
SPREAD_OPTIONS = {f"×{f}": f for f in SPREAD_FACTORS[1:]}  # dropdown label -> factor
VIT_BIT_OPTIONS = {f"{b} bits": b for b in VIT_BITS}
VIT_CALIBRATION = 64  # training images, batches of 64
MOBILENET_CALIBRATION = 64
SAMPLE = 20_000  # values per site kept for the histogram


# ---- the table ---------------------------------------------------------------------------------------------


def machine_key() -> str:
    """What the timings depend on: CPU model, logical cores, torch threads and version, the bench code."""
    cpu_model, flags = parse_cpuinfo(cpuinfo_text())  # (not hardware_facts: it imports torchao, seconds)
    return source_key(
        cpu_model, sorted(flags), os.cpu_count(), TABLE_THREADS,
        arch.measure_rows, arch.summarize, TABLE_BATCHES, TABLE_REPEATS,
    )  # fmt: skip


def _table_path():
    return cache_path("lab11_table", machine_key())


def _rows_of(saved) -> list[arch.ArchitectureRow]:
    if not (isinstance(saved, dict) and isinstance(saved.get("rows"), list)):
        raise ValueError("not a {rows: [...]} entry")
    return [arch.ArchitectureRow(**r) for r in saved["rows"]]


def cached_table() -> list[arch.ArchitectureRow] | None:
    """The table measured earlier on this machine (same CPU, threads, torch and code), else None."""
    return read_entry(_table_path(), _rows_of, what="architecture table")


class StepMeter:
    """A ``step(description)`` callback for ``measure_rows`` that passes one tick per stage to ``tick``
    (``labkit.layout.timed_bar``'s step: each stage's time, elapsed and ETA): one per recipe built and one
    per timing group, not one per timed call."""

    def __init__(self, tick: Callable[[str], None]) -> None:
        self.tick, self.done, self.timing = tick, 0, None

    def __call__(self, description: str) -> None:
        group = description.removesuffix(": timing")
        if description.endswith(": timing") and group == self.timing:
            return  # one stage per timing group, not per timed call
        self.timing = group if description.endswith(": timing") else None
        self.done += 1
        self.tick(description)


def table_stages(models=TABLE_MODELS, batches=TABLE_BATCHES) -> int:
    """Stages ``StepMeter`` counts: each recipe built, plus one timing group, per model and batch."""
    recipes = len(arch.BASELINES) + len(arch.ENGINE_RECIPES)
    return len(models) * len(batches) * (recipes + 1)


def measure_table(
    step: Callable[[str], None] | None = None, threads: int | None = None
) -> list[arch.ArchitectureRow]:
    """Measure the table's vision and BERT rows now (minutes) and keep them on disk for this machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(TABLE_THREADS)
    try:
        rows = arch.measure_rows(TABLE_MODELS, list(TABLE_BATCHES), repeats=TABLE_REPEATS, step=step)
    finally:
        torch.set_num_threads(previous)
    write_entry(_table_path(), {"rows": [r.as_dict() for r in rows]}, what="architecture table")
    return rows


def measure_table_with_progress() -> list[arch.ArchitectureRow]:
    """``measure_table`` under marimo's progress bar (``timed_bar``: per-stage time, elapsed, ETA)."""
    with timed_bar(table_stages(), "Quantizing and timing every architecture") as tick:
        return measure_table(StepMeter(tick))


# ---- ResNet: BatchNorm folding ----------------------------------------------------------------------------


@functools.cache
def data():
    return digits_split()


@functools.cache
def _model(name: str) -> torch.nn.Module:
    return vision_model(name, progress=False)


@functools.cache
def resnet_folding() -> dict:
    """Folding every BatchNorm of the ResNet-style model: pairs folded, max |logit difference| on the 360
    test digits, whether every prediction is the same, the accuracies and the BN factors s = γ/√(σ²+ε)."""
    model, d = _model("resnet"), data()
    folded = fold_batchnorm(model)
    with torch.no_grad():
        a, b = model(d.x_test), folded(d.x_test)
    factors = torch.cat(list(bn_scale_factors(model).values()))
    return {
        "pairs": len(foldable_pairs(model)),
        "max_abs_diff": float((a - b).abs().max()),
        "max_abs_logit": float(a.abs().max()),
        "same_predictions": bool(torch.equal(a.argmax(1), b.argmax(1))),
        "accuracy": float((a.argmax(1) == d.y_test).float().mean()),
        "accuracy_folded": float((b.argmax(1) == d.y_test).float().mean()),
        "factor_min": float(factors.min()),
        "factor_max": float(factors.max()),
        "n": len(d.y_test),
    }


# ---- MobileNetV2: per-tensor vs per-channel vs CLE + bias correction ----------------------------------------


def check_factor(factor) -> int:
    if factor not in SPREAD_FACTORS:
        raise ValueError(f"factor must be one of {SPREAD_FACTORS}, got {factor!r}")
    return factor


def _mobilenet_key(factor: int) -> str:
    return source_key(
        vision_training_key("mobilenetv2", 0), dfq.dfq_study, dfq.unequalize, dfq.empirical_bias_correction,
        dfq.channel_ranges, equalize, _build_mobilenet, factor, MOBILENET_CALIBRATION,
    )  # fmt: skip


def _build_mobilenet(factor: int) -> dict:
    model, d = _model("mobilenetv2"), data()
    subject = model if factor == 1 else dfq.unequalize(model, factor)
    study = dfq.dfq_study(subject, d.x_train[:MOBILENET_CALIBRATION], d.x_test, d.y_test)
    folded = fold_batchnorm(subject)
    equalized = fold_batchnorm(subject)
    equalize(equalized, relu6="replace")
    return {
        "study": study.as_dict(),
        "ranges": {k: v.clone() for k, v in dfq.channel_ranges(folded).items()},
        "ranges_cle": {k: v.clone() for k, v in dfq.channel_ranges(equalized).items()},
    }


@functools.cache
def mobilenet_study(factor: int = 1) -> dict:
    """{study: DFQStudy as a dict, ranges / ranges_cle: depthwise layer -> per-channel max|W_c|} for the
    trained model (``factor`` 1) or its ``unequalize``d copy; cached on disk."""
    check_factor(factor)
    result, _ = load_or_build(
        f"lab11_mobilenet_x{factor}", _mobilenet_key(factor), lambda: _build_mobilenet(factor)
    )
    return result


def spread_summary(ranges: dict[str, torch.Tensor]) -> dict:
    """Across the depthwise layers: the widest max/min channel-range ratio, its layer, and the fewest int8
    levels (127 · r_c / max r) a channel keeps under one per-tensor scale."""
    ratios = {k: float(r.max() / r.min().clamp(min=1e-30)) for k, r in ranges.items()}
    worst = max(ratios, key=ratios.get)
    levels = min(float(127 * r.min() / r.max()) for r in ranges.values())
    return {"ratio": ratios[worst], "layer": worst, "levels": levels, "layers": len(ranges)}


# ---- ViT: activations after LayerNorm, softmax and GELU -----------------------------------------------------


def _vit_key() -> str:
    return source_key(
        vision_training_key("vit", 0), vit_activations.site_statistics, vit_activations.site_accuracy,
        vit_activations.OutputQuantizer, vit_activations.log2_quantize, vit_activations.twin_uniform,
        _build_vit, VIT_BITS, VIT_CALIBRATION, SAMPLE,
    )  # fmt: skip


FIX = {"layernorm": "per_channel", "softmax": "log2", "gelu": "twin_uniform"}


def _build_vit() -> dict:
    model, d = _model("vit"), data()
    calibration = list(d.x_train[:VIT_CALIBRATION].split(64))
    fp32 = float((model(d.x_test).argmax(1) == d.y_test).float().mean())
    sites = {}
    for site in vit_activations.SITES:
        outputs = vit_activations.site_outputs(model, calibration, site)
        stats = vit_activations.site_statistics(model, calibration, site, outputs=outputs)
        flat = torch.cat([o.flatten() for o in outputs.values()])
        pick = torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(0))[:SAMPLE]
        accuracy = {}
        for bits in VIT_BITS:
            for scheme in ("uniform", FIX[site]):
                accuracy[f"{scheme}@{bits}"] = vit_activations.site_accuracy(
                    model,
                    calibration,
                    d.x_test,
                    d.y_test,
                    site=site,
                    scheme=scheme,
                    bits=bits,
                    outputs=outputs,
                )
        sites[site] = {"stats": stats.as_dict(), "sample": flat[pick].clone(), "accuracy": accuracy}
    return {"fp32": fp32, "sites": sites}


@functools.cache
def vit_study() -> dict:
    """{fp32, sites: {site: {stats (SiteStats dict), sample (values), accuracy {"scheme@bits": top-1}}}}."""
    with torch.no_grad():
        result, _ = load_or_build("lab11_vit", _vit_key(), _build_vit)
    return result


def labels() -> dict[str, str]:
    return dict(VISION_LABELS)


def n_test() -> int:
    """Test images every accuracy here is measured on (one image = 100 / n_test points)."""
    return len(data().y_test)


def facts():
    """This machine's CPU, cores, threads and int8 instruction flags, read now."""
    return hardware_facts("cpu")


__all__ = [
    "FIX",
    "SPREAD_FACTORS",
    "StepMeter",
    "cached_table",
    "measure_table",
    "measure_table_with_progress",
    "mobilenet_study",
    "resnet_folding",
    "spread_summary",
    "vit_study",
]
