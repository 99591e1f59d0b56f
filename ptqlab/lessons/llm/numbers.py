"""What lab 10 computes on SmolLM2-135M: the evaluation slice, the reference, and one result per setting.

A *setting* is (method, bits, group): RTN with symmetric int weights (``ptqlab.bench.llm_schemes.int_w``),
RTN with an asymmetric uint grid and an integer zero point, GPTQ, AWQ, SmoothQuant/RTN W8A8, or a GGUF
format (``core.gguf_formats``). Every setting quantizes every Linear but the tied output head and is
scored on the same slice against the same reference — "the published weights (dequantized Q4_1)":

    PPL = exp(mean NLL over the scored tokens)      KL_t = Σ_v P_ref · (log P_ref − log P_q)
    top-1 = mean_t [argmax P_ref = argmax P_q]      + the greedy completions of PROMPTS

The slice: tokens [0, EVAL_TOKENS) of ``pydoc_data.topics`` (``models.llm_text``) in one window; calibration
(GPTQ, AWQ, SmoothQuant, activation ranges) on CALIBRATION sequences from the calibration slice. GRID is
Each result is one entry of ``$PTQLAB_CACHE``, keyed by everything that determines it (the slice, the prompts,
the source of the evaluation, the quantizers and the algorithms): a setting computed once — by the lab's
button, or ``precompute_grid`` for GRID — is a file read (then a dict lookup) forever after; opening the lab
computes only the reference and DEFAULT.
"""

from __future__ import annotations

import functools
import inspect
import time
from typing import NamedTuple

from ptqlab.backends.quiet import silence_torchao_import_noise
from ptqlab.bench import llm_schemes
from ptqlab.core.gguf_formats import FORMATS
from ptqlab.core.progress import Progress, track
from ptqlab.core.spec import PerChannel, PerGroup, QuantSpec
from ptqlab.models.cache import cache_path, read_entry, source_key, write_entry
from ptqlab.models.llm_text import calibration_batches, corpus_tokens
from ptqlab.models.smollm2 import GGUF_NAME, WHEEL, load_smollm2
from ptqlab.ptq import llm_eval
from ptqlab.ptq.algorithms import run_algorithm

silence_torchao_import_noise()  # transformers and the int8 engines import torchao: its CPU-irrelevant messages

VERSION = 1  # bump when a result's layout changes
EVAL_TOKENS = 256  # the interactive slice: tokens [0, 256) of the corpus, one window
CALIBRATION = (8, 128)  # sequences × tokens from the calibration slice
PROMPTS = ("The capital of France is", "def fibonacci(n):", "A for loop in Python")
NEW_TOKENS = 8
REFERENCE_LABEL = "the published weights (dequantized Q4_1)"

METHODS = {
    "rtn": "RTN, symmetric int",
    "rtn-asym": "RTN, asymmetric uint (integer zero point)",
    "gptq": "GPTQ (act-order, range search), symmetric int",
    "awq": "AWQ (scale + clip search), symmetric int",
}
METHOD_CHOICES = {label: key for key, label in METHODS.items()}  # what the lab's dropdown shows → key
BITS = (8, 4, 3)
BIT_CHOICES = {str(b): b for b in BITS}
GROUPS = {"per-channel": None, "32": 32, "64": 64, "192": 192}
GGUF = tuple(FORMATS)  # Q8_0, Q4_0, Q4_1, Q5_0, Q5_1
W8A8 = ("rtn-w8a8", "smoothquant-w8a8")


class Setting(NamedTuple):
    method: str  # a METHODS key, "gguf" or "w8a8"
    bits: int = 8
    group: int | None = None
    fmt: str = ""  # a GGUF format or a W8A8 scheme key

    @property
    def key(self) -> str:
        if self.method in ("gguf", "w8a8"):
            return f"{self.method}:{self.fmt}"
        return f"{self.method}:w{self.bits}:g{self.group or 'pc'}"

    @property
    def label(self) -> str:
        if self.method == "gguf":
            return f"GGUF {self.fmt}"
        if self.method == "w8a8":
            return llm_schemes.SCHEMES[self.fmt].label
        group = "per-channel" if self.group is None else f"group {self.group}"
        return f"{METHODS[self.method]} W{self.bits}, {group}"


def setting(method: str, bits: int, group: str | int | None) -> Setting:
    """The Setting of the lab's controls (``group`` as a GROUPS key or an int), with a clear error."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits!r}")
    size = GROUPS.get(group, group) if isinstance(group, str) else group
    if size is not None and (size not in GROUPS.values()):
        raise ValueError(f"group must be one of {list(GROUPS)}, got {group!r}")
    return Setting(method, bits, size)


DEFAULT = Setting("rtn", 4, 64)
GRID = (  # what "Precompute the grid" scores (W8A8 and GPTQ/AWQ: one button press each)
    *(Setting("rtn", b, g) for b in BITS for g in (None, 64)),
    Setting("rtn-asym", 4, 32),
    *(Setting("gguf", fmt=f) for f in GGUF),
)


def weight_spec(s: Setting) -> QuantSpec:
    granularity = PerChannel(0) if s.group is None else PerGroup(s.group)
    if s.method == "rtn-asym":
        return QuantSpec(bits=s.bits, signed=False, symmetric=False, granularity=granularity)
    return QuantSpec(bits=s.bits, granularity=granularity)


@functools.lru_cache(maxsize=1)
def lab_model():
    """(model, tokenizer): SmolLM2-135M-Instruct, loaded once per process."""
    return load_smollm2()


@functools.lru_cache(maxsize=1)
def eval_windows() -> list:
    _, tokenizer = lab_model()
    return llm_eval.make_windows(corpus_tokens(tokenizer, EVAL_TOKENS), EVAL_TOKENS)


@functools.lru_cache(maxsize=1)
def calibration() -> list:
    return calibration_batches(lab_model()[1], *CALIBRATION)


@functools.lru_cache(maxsize=1)
def reference_logprobs() -> list:
    return llm_eval.reference_logprobs(lab_model()[0], eval_windows())


def quantized_model(s: Setting, progress: Progress = None):
    """A quantized copy of the lab's model for setting ``s`` (every Linear but the head)."""
    model, _ = lab_model()
    if s.method == "gguf":
        return llm_schemes.gguf_copy(model, s.fmt)
    if s.method == "w8a8":
        return llm_schemes.run_scheme(s.fmt, model, calibration(), progress)[0]
    algorithm = "rtn" if s.method.startswith("rtn") else s.method
    run = run_algorithm(
        algorithm,
        model,
        weight_spec=weight_spec(s),
        calibration=calibration() if algorithm != "rtn" else None,
        fold_bn=False,
        layers=llm_schemes.quantizable_layers(model),
        progress=progress,
        **llm_schemes.ALGORITHM_OPTIONS.get(algorithm, {}),
    )
    return run.model


def bits_per_weight(s: Setting | None) -> float:
    """Storage of the quantized Linears (head excluded), bits per weight: codes plus fp16 scales (and zero
    points or offsets) from each block layout; the reference is Q4_1's 5.0."""
    if s is None:
        return FORMATS["Q4_1"].bits_per_weight
    if s.method == "gguf":
        return FORMATS[s.fmt].bits_per_weight
    model, _ = lab_model()
    spec = llm_schemes.SCHEMES[s.fmt].weight_spec if s.method == "w8a8" else weight_spec(s)
    modules = dict(model.named_modules())
    shapes = [tuple(modules[n].weight.shape) for n in llm_schemes.quantizable_layers(model)]
    total = sum(spec.bits_per_element(shape) * shape[0] * shape[1] for shape in shapes)
    return total / sum(shape[0] * shape[1] for shape in shapes)


def evaluate(s: Setting | None, progress: Progress = None) -> dict:
    """PPL, KL mean / p99 / max, top-1, completions and quantize seconds of ``s`` (None: the reference)."""
    model, tokenizer = lab_model()
    start = time.perf_counter()
    quantized = model if s is None else quantized_model(s, progress)
    seconds = time.perf_counter() - start
    score = llm_eval.score_lm(quantized, eval_windows(), None if s is None else reference_logprobs())
    completions = llm_eval.greedy_completions(quantized, tokenizer, PROMPTS, NEW_TOKENS)
    if s is None:  # what the roofline question needs: bytes read per decoded token in fp32
        from ptqlab.bench.llm_speed import weight_bytes

        extra = {"weight_bytes_fp32": weight_bytes(model)}
    else:
        extra = {}
    return {**extra, **{k: v for k, v in score._asdict().items() if v is not None},
            "completions": completions, "seconds": seconds, "bits_per_weight": bits_per_weight(s)}  # fmt: skip


@functools.cache
def _sources(method: str = "") -> tuple[str, ...]:
    """What a result depends on, as text: the scoring and the GGUF/affine quantizers always, the algorithm
    modules only for the settings that run them (so another engineer's GPTQ change keeps RTN results)."""
    from ptqlab.core import affine, gguf_formats
    from ptqlab.ptq import algorithms, awq, blockwise, gptq, range_search, simulate, smoothquant

    extra = {"gptq": (algorithms, simulate, blockwise, gptq, range_search), "awq": (algorithms, simulate, blockwise, awq),
             "w8a8": (algorithms, simulate, smoothquant), "gguf": ()}.get(method, (algorithms, simulate))  # fmt: skip
    return tuple(inspect.getsource(m) for m in (affine, gguf_formats, llm_eval, llm_schemes, *extra))


def cache_key(*parts, method: str = "") -> str:
    """The hash of everything a lab 10 entry depends on (``method``: the setting's, for its algorithm)."""
    return source_key(
        VERSION, WHEEL, GGUF_NAME, EVAL_TOKENS, CALIBRATION, PROMPTS, NEW_TOKENS, *_sources(method),
        evaluate, quantized_model, weight_spec, bits_per_weight, *parts,
    )  # fmt: skip


@functools.cache
def _path(s: Setting | None):
    if s is None:
        return cache_path("lab10-result", cache_key("reference", method="gguf"))
    return cache_path("lab10-result", cache_key(s.key, method=s.method))


def _a_result(saved) -> dict:
    if not isinstance(saved, dict) or "ppl" not in saved or "completions" not in saved:
        raise ValueError("not a lab 10 result")
    return saved


_MEMO: dict[str, dict] = {}  # results read or computed in this process


def cached_result(s: Setting | None) -> dict | None:
    """The result of ``s`` (None: the reference) if it was computed before, else None; never loads the model."""
    key = "reference" if s is None else s.key
    if key not in _MEMO and (found := read_entry(_path(s), _a_result, what="lab 10 result")) is not None:
        _MEMO[key] = found
    return _MEMO.get(key)


def compute_result(s: Setting | None, progress: Progress = None) -> dict:
    """The result of ``s``: from the cache, else computed now (the model loads) and written to the cache."""
    if (found := cached_result(s)) is not None:
        return found
    result = evaluate(s, progress)
    write_entry(_path(s), result, what="lab 10 result")
    _MEMO["reference" if s is None else s.key] = result
    return result


def result_or_run(s: Setting, run: bool, progress: Progress = None) -> dict | None:
    """The cached result of ``s``; when there is none, computed now if ``run`` (the lab's button) or if ``s``
    is DEFAULT (what the lab shows on opening), else None."""
    found = cached_result(s)
    return found if found is not None or not (run or s == DEFAULT) else compute_result(s, progress)


def measure_speed(run: bool) -> tuple | None:
    """(SpeedRow list, bandwidth, the CPU's ISA flags) of ``bench.llm_speed.speed_table`` on the lab's model
    when ``run``; timing is never cached (it is this machine, now)."""
    if not run:
        return None
    from ptqlab.backends.hardware import hardware_facts
    from ptqlab.bench.llm_speed import speed_steps, speed_table
    from ptqlab.labkit.layout import timed_bar

    title = "Building the engines (torchao, ONNX export and quantizers), then timing them interleaved"
    with timed_bar(speed_steps(), title) as step:
        rows, bandwidth = speed_table(lab_model()[0], prompt_tokens=128, new_tokens=16, repeats=3, step=step)
    return rows, bandwidth, hardware_facts("cpu").isa


def reference() -> dict:
    """The reference's PPL and completions (computed on first use, then read from the cache)."""
    return compute_result(None)


def precompute_grid(progress: Progress = None) -> int:
    """Compute every GRID setting not cached yet; returns how many were computed."""
    todo = [s for s in GRID if cached_result(s) is None]
    for s in track(todo, progress, "quantize and score the grid"):
        compute_result(s)
    return len(todo)


def missing_from_grid() -> list[Setting]:
    return [s for s in GRID if cached_result(s) is None]


def w8a8_pair(run: bool, progress: Progress = None) -> tuple[dict, dict] | None:
    """(RTN W8A8, SmoothQuant W8A8) results: cached, or computed now if ``run``, else None."""
    pair = [result_or_run(Setting("w8a8", fmt=k), run, progress) for k in W8A8]
    return None if any(r is None for r in pair) else (pair[0], pair[1])
