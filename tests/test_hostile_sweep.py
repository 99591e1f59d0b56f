"""Issue 14: a hostile-input sweep. Every public entry point that takes a tensor × {NaN, ±Inf, ±3e38,
subnormal, empty, 0-d, int, bool, meta, non-contiguous}: each call must either give the right answer,
checked against an independent reference (torch's quantize/fake-quant kernels, torch.ao observers, numpy
in float64, or an exact power-of-two rescaling for the histogram searches), or raise a TypeError/ValueError
whose message names the hostile argument. Run with ``-s`` to see the counts."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn
from torch.ao.quantization.observer import MinMaxObserver as AoMinMax
from torch.ao.quantization.observer import PerChannelMinMaxObserver as AoPerChannel

from ptqlab import ManualQuantizer, PerChannel, QuantSpec
from ptqlab.core import affine, metrics
from ptqlab.observers import StreamingHistogram, make_observer
from ptqlab.ptq.simulate import embedding_agreement, evaluate_accuracy, simulate

pytestmark = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")  # torch's deprecation

SYM, ASYM = QuantSpec(), QuantSpec(symmetric=False)
A8 = QuantSpec(signed=False, symmetric=False)
QP = affine.QParams(torch.tensor(0.05), torch.tensor(3, dtype=torch.int32))


def _with(value: float, seed: int) -> torch.Tensor:
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(seed))
    x[1, 2] = value
    return x


VALUES = {
    "nan": lambda: _with(float("nan"), 1),
    "+inf": lambda: _with(float("inf"), 2),
    "-inf": lambda: _with(float("-inf"), 3),
    "+3e38": lambda: _with(3e38, 4),
    "-3e38": lambda: _with(-3e38, 5),
    "subnormal": lambda: _with(1e-40, 6),
    "empty": lambda: torch.zeros(0, 6),
    "0-d": lambda: torch.tensor(1.5),
    "int": lambda: torch.randint(-5, 6, (4, 6), generator=torch.Generator().manual_seed(7)),
    "bool": lambda: torch.rand(4, 6, generator=torch.Generator().manual_seed(8)) > 0.5,
    "meta": lambda: torch.randn(4, 6, device="meta"),
    "non-contiguous": lambda: torch.randn(6, 4, generator=torch.Generator().manual_seed(9)).t(),
}


def f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).numpy()


def ao_qparams(x: torch.Tensor, qscheme=torch.per_tensor_affine, dtype=torch.qint8):
    obs = AoMinMax(dtype=dtype, qscheme=qscheme)
    obs(x.detach().float().reshape(-1))
    return obs.calculate_qparams()


def same_qparams(ours, ref) -> bool:
    return torch.equal(ours[0].reshape(-1), ref[0].reshape(-1)) and torch.equal(
        ours[1].reshape(-1).to(torch.int64), ref[1].reshape(-1).to(torch.int64)
    )


def close(a: float, b: float, rel: float = 1e-12) -> bool:
    return a == pytest.approx(b, rel=rel, abs=1e-300)


def equivariant(name: str, x: torch.Tensor, **kwargs) -> bool:
    """range(x) == 2^k · range(x · 2^-k): an exact rescaling must rescale the searched range exactly."""
    k = 100 if float(x.abs().max()) > 1e30 else -20
    ours = make_observer(name, **kwargs).observe(x).range()
    scaled = make_observer(name, **kwargs).observe(x * 2.0**-k).range()
    return all(float(a) == float(b) * 2.0**k for a, b in zip(ours, scaled, strict=True))


def _linear(n_in: int, n_out: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n_in, n_out)).eval()


# ---- the entry points: (hostile argument's name, call, check of the result) ----------------------------------
def _quantize_check(x, q):
    return torch.equal(
        q.to(torch.int32), torch.quantize_per_tensor(x.float(), 0.05, 3, torch.qint8).int_repr().int()
    )


def _dequantize_check(x, r):
    ref = torch._make_per_tensor_quantized_tensor(x.to(torch.int8), 0.05, 3).dequantize()
    return torch.equal(r, ref)


def _rr_check(s, r):
    s64 = s.detach().double()
    return torch.equal(r[0], ((-128 - 3) * s64).float()) and torch.equal(r[1], ((127 - 3) * s64).float())


def _hist_check(x, h):
    return (
        float(h.counts.sum()) == x.numel()
        and float(h.data_min) == float(x.min())
        and float(h.data_max) == float(x.max())
    )


def _simulate_calibration(x):
    q = simulate(_linear(6, 3), None, A8, calibration=x)
    return q[0].input_quantizer.scale, q[0].input_quantizer.zero_point


def _simulate_weight(w):
    model = _linear(6, 4)
    model[0].weight = nn.Parameter(w, requires_grad=False)
    return simulate(model, QuantSpec(granularity=PerChannel(0)))[0].weight


def _weight_check(w, got):
    ao = AoPerChannel(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    ao(w.float())
    s, z = ao.calculate_qparams()
    return torch.equal(got, torch.fake_quantize_per_channel_affine(w.float(), s, z.int(), 0, -128, 127))


def _accuracy(x):
    y = torch.zeros(x.shape[0] if x.dim() else 1, dtype=torch.long)
    return evaluate_accuracy(_linear(6, 3), x, y), y


def _accuracy_check(x, result):
    acc, y = result
    with torch.no_grad():
        return acc == float((_linear(6, 3)(x.float()).argmax(-1) == y).float().mean())


def _agreement_check(x, r):
    a = f64(x)
    b = a * 0.75
    a, b = a / np.abs(a).max(1, keepdims=True), b / np.abs(b).max(1, keepdims=True)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return close(r.mean_cosine, float(cos.mean()), 1e-12) and r.neighbour_agreement == 1.0


def _observer_check(name):
    def check(x, r):
        x = x.float()
        if name in ("minmax", "moving_average"):
            ao = AoMinMax()
            ao(x)
            return torch.equal(r[0], ao.min_val) and torch.equal(r[1], ao.max_val)
        if name == "per_channel":
            return torch.equal(r[0], x.amin(1)) and torch.equal(r[1], x.amax(1))
        if name == "percentile100":
            return float(r[0]) == -float(x.abs().max()) and float(r[1]) == float(x.abs().max())
        return equivariant(name, x)

    return check


def _metric(name):
    def ref(x, xh):
        a, b = f64(x).ravel(), f64(xh).ravel()
        m = max(np.abs(a).max(), np.abs(b).max())
        if name == "mse":
            return float(np.mean((a - b) ** 2))
        if name == "max_abs_error":
            return float(np.abs(a - b).max())
        a, b = a / m, b / m
        if name == "sqnr_db":
            return float(10 * np.log10((a * a).sum() / ((a - b) ** 2).sum()))
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

    return ref


def _scaled(x):
    return x * 0.75 if x.is_floating_point() else x.clone()


def _clean(x):
    """A finite float tensor of x's shape (one value if x is empty): x when x_hat is the hostile one."""
    return torch.linspace(-1.0, 2.0, x.numel()).reshape(x.shape) if x.numel() else torch.ones(1)


CASES = {
    "min_max": (
        "x",
        lambda x: affine.min_max(x, SYM),
        lambda x, r: (
            torch.equal(r[0].reshape(()), x.float().amin())
            and torch.equal(r[1].reshape(()), x.float().amax())
        ),
    ),
    "qparams_for(sym)": (
        "x",
        lambda x: affine.qparams_for(x, SYM),
        lambda x, r: same_qparams(r, ao_qparams(x, torch.per_tensor_symmetric)),
    ),
    "qparams_for(asym)": (
        "x",
        lambda x: affine.qparams_for(x, ASYM),
        lambda x, r: same_qparams(r, ao_qparams(x)),
    ),
    "choose_qparams": (
        "min_val",
        lambda x: affine.choose_qparams(x, x, ASYM),
        lambda x, r: same_qparams(
            r, AoMinMax(dtype=torch.qint8)._calculate_qparams(x.float().reshape(-1), x.float().reshape(-1))
        ),
    ),
    "quantize": ("x", lambda x: affine.quantize(x, QP, SYM), _quantize_check),
    "fake_quantize": (
        "x",
        lambda x: affine.fake_quantize(x, QP, SYM),
        lambda x, r: torch.equal(r, torch.fake_quantize_per_tensor_affine(x.float(), 0.05, 3, -128, 127)),
    ),
    "dequantize": ("x_q", lambda x: affine.dequantize(x, QP, SYM), _dequantize_check),
    "representable_range": (
        "scale",
        lambda x: affine.representable_range((x.abs() if x.is_floating_point() else x, torch.tensor(3)), SYM),
        lambda x, r: _rr_check(x.abs() if x.is_floating_point() else x, r),
    ),
    "error_split": (
        "x",
        lambda x: metrics.error_split(x, QP, SYM),
        lambda x, r: close(
            r.total_mse,
            float(
                np.mean(
                    (f64(x) - f64(torch.fake_quantize_per_tensor_affine(x.float(), 0.05, 3, -128, 127))) ** 2
                )
            ),
            1e-9,
        ),
    ),
    "ManualQuantizer.quantize_tensor": (
        "tensor",
        lambda x: ManualQuantizer.quantize_tensor(x),
        lambda x, r: (
            same_qparams((torch.tensor(r[1]), torch.tensor(r[2])), ao_qparams(x))
            and torch.equal(
                r[0].int(), torch.quantize_per_tensor(x.float(), r[1], r[2], torch.qint8).int_repr().int()
            )
        ),
    ),
    "StreamingHistogram.of": ("x", lambda x: StreamingHistogram.of(x), _hist_check),
    "simulate(calibration=)": (
        "calibration",
        _simulate_calibration,
        lambda x, r: same_qparams(r, ao_qparams(x, dtype=torch.quint8)),
    ),
    "simulate(weight)": ("weight", _simulate_weight, _weight_check),
    "evaluate_accuracy": ("x", _accuracy, _accuracy_check),
    "embedding_agreement": ("reference", lambda x: embedding_agreement(x, _scaled(x)), _agreement_check),
}
for _name in ("mse", "max_abs_error", "sqnr_db", "cosine_similarity"):
    _fn, _ref = getattr(metrics, _name), _metric(_name)
    CASES[f"{_name}(x)"] = (
        "x",
        lambda x, f=_fn: f(x, _scaled(x)),
        lambda x, r, g=_ref: close(r, g(x, _scaled(x))),
    )
    CASES[f"{_name}(x_hat)"] = (
        "x_hat",
        lambda x, f=_fn: f(_clean(x), x),
        lambda x, r, g=_ref: close(r, g(_clean(x), x)),
    )
for _obs in ("minmax", "moving_average", "per_channel", "percentile", "entropy", "mse", "l2"):
    CASES[f"{_obs}.observe/range"] = (
        "x",
        lambda x, n=_obs: make_observer(n).observe(x).range(),
        _observer_check(_obs),
    )
CASES["percentile(p=100).observe/range"] = (
    "x",
    lambda x: make_observer("percentile", p=100).observe(x).range(),
    _observer_check("percentile100"),
)


def attempt(argument: str, call, check, x) -> str:
    try:
        result = call(x)
    except (TypeError, ValueError) as error:
        named = re.search(rf"(?<![\w.]){re.escape(argument)}(?!\w)", str(error))
        return "refused" if named else f"refused without naming {argument!r}: {error}"
    except Exception as error:  # noqa: BLE001 — anything else is a finding
        return f"crashed: {type(error).__name__}: {error}"
    try:
        return "correct" if check(x, result) else f"WRONG: {result!r}"
    except Exception as error:  # noqa: BLE001
        return f"check failed: {type(error).__name__}: {error}"


def test_hostile_sweep(capsys):
    outcomes = {
        (f, v): attempt(arg, call, check, VALUES[v]())
        for f, (arg, call, check) in CASES.items()
        for v in VALUES
    }
    counts = Counter(o if o in ("correct", "refused") else "other" for o in outcomes.values())
    with capsys.disabled():
        print(
            f"\nhostile sweep: {len(outcomes)} calls, {counts['correct']} correct, {counts['refused']} clearly refused, {counts['other']} other"
        )
    for v in VALUES:  # which value each entry point refused, for the record
        refused = [f for f in CASES if outcomes[(f, v)] == "refused"]
        print(f"  {v:>15}: {len(CASES) - len(refused)} correct, refused by {len(refused)}")
    bad = {k: o for k, o in outcomes.items() if o not in ("correct", "refused")}
    assert not bad, "\n".join(f"{f} × {v}: {o}" for (f, v), o in bad.items())
    assert len(outcomes) == len(CASES) * len(VALUES) and counts["correct"] >= 100
