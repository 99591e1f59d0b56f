"""Lab 07, beyond round-to-nearest: the same model, spec and calibration data through each PTQ algorithm.

Digits models: calibrated on the 1437 training images, scored by test accuracy on the 360 held-out ones.
MiniLM: calibrated on the even-indexed half of the 320 sentences, scored on the odd half by the cosine
between fp32 and quantized embeddings and by nearest-neighbour agreement (``embedding_agreement``).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch

from ptqlab.core.progress import track
from ptqlab.core.spec import PerChannel, PerGroup, PerTensor, QuantSpec
from ptqlab.labkit.layout import marimo_progress
from ptqlab.labkit.models import LABELS, lab_model
from ptqlab.models import digits_split, sentences
from ptqlab.ptq.adaround import per_element_qparams
from ptqlab.ptq.algorithms import ALGORITHMS, AlgorithmRun, run_algorithm
from ptqlab.ptq.cle import equalizable_pairs, equalize, output_ranges
from ptqlab.ptq.folding import fold_batchnorm
from ptqlab.ptq.layer_data import algorithm_layers, capture_rows, rtn, weight_matrix
from ptqlab.ptq.simulate import embedding_agreement, evaluate_accuracy

MODEL_CHOICES = {LABELS[k]: k for k in ("cnn", "mlp", "minilm")}
GRANULARITIES = ("per-channel", "per-tensor", "per-group")
NAMES = {
    "rtn": "RTN",
    "bias_correction": "bias correction",
    "cle": "CLE",
    "adaround": "AdaRound",
    "gptq": "GPTQ",
    "awq": "AWQ",
    "smoothquant": "SmoothQuant",
}
ALGORITHM_CHOICES = {NAMES[a]: a for a in ALGORITHMS if a != "rtn"}
QUICK = ("bias_correction", "cle", "gptq", "awq")
LAB_OPTIONS = {"adaround": {"iters": 300}}  # fewer Adam steps than the default 1000: seconds, not minutes


class Row(NamedTuple):
    algorithm: str
    score: float  # test accuracy (digits) or mean cosine (MiniLM)
    neighbours: float | None  # MiniLM nearest-neighbour agreement
    seconds: float
    notes: list[str]


class Comparison(NamedTuple):
    model: str
    spec: QuantSpec
    fp32_score: float
    rows: list[Row]
    runs: dict[str, AlgorithmRun]
    skipped: list[str]  # layers kept in float because the group size does not divide their input


def weight_spec(bits: int, granularity: str, group_size: int) -> QuantSpec:
    grain = {"per-tensor": PerTensor(), "per-channel": PerChannel(0), "per-group": PerGroup(group_size)}
    if granularity not in grain:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    return QuantSpec(bits=bits, granularity=grain[granularity])


def _calibration(model_name: str):
    if model_name == "minilm":
        return lab_model("minilm").batches(sentences()[::2], 32)
    return digits_split().x_train


def _score(model_name: str, model) -> tuple[float, float | None]:
    if model_name == "minilm":
        held = sentences()[1::2]
        agreement = embedding_agreement(_fp32_embeddings(), model.encode(held))
        return agreement.mean_cosine, agreement.neighbour_agreement
    data = digits_split()
    return evaluate_accuracy(model, data.x_test, data.y_test), None


@functools.cache
def _fp32_embeddings() -> torch.Tensor:
    return lab_model("minilm").encode(sentences()[1::2])


def undivided_layers(model_name: str, spec: QuantSpec) -> list[str]:
    """Layers whose input dimension the group size does not divide (kept in float, said so)."""
    if not isinstance(spec.granularity, PerGroup):
        return []
    model = lab_model(model_name)
    modules = dict(model.named_modules())
    names = algorithm_layers(model, None, ())
    return [n for n in names if weight_matrix(modules[n]).shape[1] % spec.granularity.group_size]


@functools.cache
def compare(model_name: str, bits: int, granularity: str, group_size: int, algorithms: tuple[str, ...]):
    """RTN and each algorithm on ``model_name`` with one spec and one calibration set (cached per setting)."""
    spec = weight_spec(bits, granularity, group_size)
    model, calibration = lab_model(model_name), _calibration(model_name)
    skipped = undivided_layers(model_name, spec)
    fp32 = _score(model_name, model)[0] if model_name != "minilm" else 1.0
    rows, runs = [], {}
    todo = ("rtn",) + tuple(a for a in algorithms if a != "rtn")
    for name in track(todo, marimo_progress(f"Running {len(todo)} algorithm(s) on {LABELS[model_name]}")):
        options = LAB_OPTIONS.get(name, {})
        layers_bar = marimo_progress(f"{NAMES[name]}: layer by layer")
        run = run_algorithm(
            name,
            model,
            weight_spec=spec,
            calibration=calibration,
            skip=skipped,
            progress=layers_bar,
            **options,
        )
        score, neighbours = _score(model_name, run.model)
        rows.append(Row(name, score, neighbours, run.seconds, run.notes))
        runs[name] = run
    return Comparison(model_name, spec, fp32, rows, runs, skipped)


def run(model_name: str, bits: int, granularity: str, group_size: int, algorithms) -> Comparison:
    """``compare`` for a lab's multiselect value (any iterable of algorithm names)."""
    return compare(model_name, bits, granularity, group_size, tuple(algorithms))


def quick_comparison() -> Comparison:
    """The default shown before the button is pressed: digits CNN, W2 per-channel, the fast algorithms."""
    return compare("cnn", 2, "per-channel", 32, QUICK)


class WeightViews(NamedTuple):
    """What each algorithm did to one layer's weights (None where the algorithm was not run)."""

    layer: str
    flips: torch.Tensor | None  # AdaRound: code − RTN code per weight (−1, 0, +1)
    gptq_columns: tuple[torch.Tensor, torch.Tensor] | None  # mean |Ŵ − W| per input column: (RTN, GPTQ)
    awq: tuple[torch.Tensor, torch.Tensor] | None  # (mean |x_j|, AWQ scale s_j) per input channel
    cle: tuple[torch.Tensor, torch.Tensor] | None  # per-output-channel max|W| before / after equalisation
    awq_ran: bool = False  # the algorithm ran (its view can still be None on this layer)
    cle_ran: bool = False


def layer_names(comp: Comparison) -> list[str]:
    return list(comp.runs["rtn"].layer_errors) or algorithm_layers(
        fold_batchnorm(lab_model(comp.model)), None, ()
    )


def default_layer(comp: Comparison) -> str:
    """The first layer with more than one input channel (a single-channel first conv gives AWQ one point)."""
    names = layer_names(comp)
    modules = dict(fold_batchnorm(lab_model(comp.model)).named_modules())
    for name in names:
        m = modules.get(name)
        if getattr(m, "in_channels", getattr(m, "in_features", 2)) > 1:
            return name
    return names[0]


def settings_key(model_name: str, bits: int, granularity: str, group_size: int, algorithms) -> tuple:
    """The inputs that produce a comparison, hashable (``run`` takes them in this order)."""
    return (model_name, int(bits), granularity, int(group_size), tuple(algorithms))


def _weight_of(run: AlgorithmRun, layer: str) -> torch.Tensor:
    modules = dict(run.model.named_modules())
    module = modules.get(layer + ".inner", modules[layer])
    return weight_matrix(module)


def weight_views(comp: Comparison, layer: str) -> WeightViews:
    folded = fold_batchnorm(lab_model(comp.model))
    w = weight_matrix(dict(folded.named_modules())[layer])
    w_rtn = rtn(w, comp.spec)
    flips = gptq = awq = cle = None
    if "adaround" in comp.runs:
        scale, _ = per_element_qparams(w, comp.spec)
        flips = torch.round((_weight_of(comp.runs["adaround"], layer) - w_rtn) / scale)
    if "gptq" in comp.runs:
        w_gptq = _weight_of(comp.runs["gptq"], layer)
        gptq = ((w_rtn - w).abs().mean(0), (w_gptq - w).abs().mean(0))
    if "awq" in comp.runs:
        inner = dict(comp.runs["awq"].model.named_modules()).get(layer)
        if inner is not None and hasattr(inner, "inv_scale"):
            x = capture_rows(folded, _calibration(comp.model), [layer], max_rows=2048).rows[layer]
            s = 1.0 / inner.inv_scale.flatten()
            awq = (x.abs().mean(0).reshape(len(s), -1).mean(1), s)
    if "cle" in comp.runs:
        pairs = dict(equalizable_pairs(folded))
        if layer in pairs:
            before = output_ranges(dict(folded.named_modules())[layer])
            equalize(folded)
            cle = (before, output_ranges(dict(folded.named_modules())[layer]))
    return WeightViews(layer, flips, gptq, awq, cle, "awq" in comp.runs, "cle" in comp.runs)
