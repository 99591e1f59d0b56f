"""The ViT failure, measured: activations after LayerNorm, softmax and GELU, the range each calibrator picks
for them, and what a better grid (or keeping them in float) buys in accuracy.

Why these three (PTQ4ViT, Yuan et al. 2022; RepQ-ViT, Li et al. 2023; FQ-ViT, Lin et al. 2022):
* LayerNorm output y = γ ⊙ (x − μ)/σ + β has per-CHANNEL ranges set by γ, β: one per-tensor scale spends
  its levels on the widest channel. Fix: per-channel scales (one per embedding dimension).
* softmax output p ∈ (0, 1], most mass near 0, a few large: a uniform grid with Δ = max/255 zeroes every
  p < Δ/2. Fix: log2 quantization, p̂ = 2^(−q), q = clamp(round(−log2 p), 0, 2^b − 1) (codes at the end
  mean 0), i.e. relative precision for small probabilities.
* GELU output lies in [−0.17, max]: asymmetric but lopsided. Fix ("twin uniform", PTQ4ViT): separate grids
  for the negative and the positive part, 2^(b−1) levels each.
Keeping those ops in float is the third fix, and the one the int8 engines here run: torch.ao x86, pt2e's
X86InductorQuantizer and ONNX Runtime's QDQ quantize the Linear/MatMul inputs and keep LayerNorm, softmax
and GELU in float by default; none of them ships a log2 or twin-uniform activation kernel.

``activation_study(model, calibration)`` gives the statistics; ``site_accuracy(...)`` fake-quantizes the
outputs of every module of one kind with one scheme and measures top-1 accuracy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ptqlab.core.affine import fake_quantize
from ptqlab.core.metrics import sqnr_db
from ptqlab.core.spec import PerChannel, QuantSpec
from ptqlab.observers import make_observer

SITES: dict[str, type[nn.Module]] = {"layernorm": nn.LayerNorm, "softmax": nn.Softmax, "gelu": nn.GELU}
SCHEMES = ("uniform", "per_channel", "log2", "twin_uniform")
CALIBRATORS = ("minmax", "percentile", "entropy", "mse")
MAX_SAMPLES = 1 << 20


@dataclass
class SiteStats:
    """One kind of activation (all modules of that kind pooled): its distribution and each calibrator's range."""

    site: str
    modules: int
    values: int
    lo: float
    hi: float
    p001: float  # 0.1th percentile
    p999: float  # 99.9th percentile
    below_first_step: float  # share of values smaller than (max − min) / 255 away from min: one uint8 level
    channel_spread: float  # max over channels of per-channel |range| / median (last dim)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # calibrator -> (lo, hi)
    sqnr_db: dict[str, float] = field(default_factory=dict)  # calibrator (or fix) -> SQNR of 8-bit fake quant

    def as_dict(self) -> dict:
        return asdict(self)


def _check_site(site) -> str:
    if site not in SITES:
        raise ValueError(f"site must be one of {', '.join(SITES)}, got {site!r}")
    return site


@torch.no_grad()
def site_outputs(model: nn.Module, batches: list, site: str) -> dict[str, torch.Tensor]:
    """Module name -> its outputs over all ``batches`` (concatenated along dim 0) for every module of ``site``."""
    _check_site(site)
    outs: dict[str, list[torch.Tensor]] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _a, out, n=n: outs.setdefault(n, []).append(out.detach()))
        for n, m in model.named_modules()
        if isinstance(m, SITES[site])
    ]
    if not hooks:
        raise ValueError(f"the model has no {SITES[site].__name__} module (site {site!r})")
    try:
        for b in batches:
            model.eval()(b)
    finally:
        for h in hooks:
            h.remove()
    return {n: torch.cat(v) for n, v in outs.items()}


def log2_quantize(p: torch.Tensor, bits: int) -> torch.Tensor:
    """p̂ = 2^(−q) with q = clamp(round(−log2 p), 0, 2^bits − 1); the last code (and p ≤ 0) means 0."""
    levels = 2**bits - 1
    q = torch.round(-torch.log2(p.clamp(min=torch.finfo(p.dtype).tiny))).clamp(0, levels)
    return torch.where((q >= levels) | (p <= 0), torch.zeros_like(p), torch.exp2(-q))


def twin_uniform(x: torch.Tensor, lo: float, hi: float, bits: int) -> torch.Tensor:
    """Negative values on a grid of 2^(bits−1) levels over [lo, 0], the rest on 2^(bits−1) over [0, hi]."""
    half = 2 ** (bits - 1) - 1
    neg = (x.clamp(min=lo, max=0) / (-lo / half if lo < 0 else 1.0)).round() * (-lo / half if lo < 0 else 1.0)
    step = hi / half if hi > 0 else 1.0
    pos = (x.clamp(min=0, max=hi) / step).round() * step
    return torch.where(x < 0, neg, pos)


class OutputQuantizer:
    """Calibrated on a module's outputs, then applied to them (a forward hook): ``scheme`` on ``bits``."""

    def __init__(self, scheme: str, bits: int, calibrator: str, outputs: torch.Tensor) -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        self.scheme, self.bits = scheme, bits
        self.lo, self.hi = float(outputs.min()), float(outputs.max())
        if scheme in ("uniform", "per_channel"):
            per_channel = scheme == "per_channel"
            obs = make_observer("per_channel", axis=-1) if per_channel else make_observer(calibrator)
            obs.observe(outputs)
            self.spec = QuantSpec(bits=bits, signed=False, symmetric=False)
            if per_channel:
                self.spec = QuantSpec(bits=bits, signed=False, symmetric=False, granularity=PerChannel(-1))
            self.qparams = obs.qparams(self.spec)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.scheme == "log2":
            return log2_quantize(x, self.bits)
        if self.scheme == "twin_uniform":
            return twin_uniform(x, self.lo, self.hi, self.bits)
        return fake_quantize(x, self.qparams, self.spec)


def _pooled(outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    flat = torch.cat([o.flatten() for o in outputs.values()])
    if flat.numel() > MAX_SAMPLES:
        flat = flat[torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(0))[:MAX_SAMPLES]]
    return flat


def site_statistics(
    model: nn.Module, batches: list, site: str, calibrators=CALIBRATORS, *, outputs: dict | None = None
) -> SiteStats:
    """Distribution of ``site``'s outputs and, per calibrator, its uint8 range and the SQNR it gives
    (pooled over every module of that kind; each module is quantized with its own range for the SQNR).
    ``outputs``: ``site_outputs(model, batches, site)`` when the caller already has them."""
    outputs = site_outputs(model, batches, site) if outputs is None else outputs
    flat = _pooled(outputs)
    lo, hi = float(flat.min()), float(flat.max())
    q = torch.quantile(flat.double(), torch.tensor([0.001, 0.999], dtype=torch.float64))
    per_channel = [o.flatten(0, -2).abs().amax(0) for o in outputs.values()]
    spread = max(float(r.max() / r.median().clamp(min=1e-12)) for r in per_channel)
    stats = SiteStats(
        site,
        len(outputs),
        int(sum(o.numel() for o in outputs.values())),
        lo,
        hi,
        float(q[0]),
        float(q[1]),
        float(((flat - lo) < (hi - lo) / 255).float().mean()),
        spread,
    )
    schemes = [("uniform", c) for c in calibrators] + [(_FIX[site], "minmax")]
    for scheme, calibrator in schemes:
        key = calibrator if scheme == "uniform" else scheme
        quantizers = {n: OutputQuantizer(scheme, 8, calibrator, o) for n, o in outputs.items()}
        if scheme == "uniform":
            ranges = [quantizers[n].qparams for n in outputs]
            lo_hi = [_range_of(qp, quantizers[n].spec) for n, qp in zip(outputs, ranges, strict=True)]
            stats.ranges[key] = (min(a for a, _ in lo_hi), max(b for _, b in lo_hi))
        x = torch.cat([o.flatten() for o in outputs.values()])
        x_hat = torch.cat([quantizers[n](o).flatten() for n, o in outputs.items()])
        stats.sqnr_db[key] = sqnr_db(x, x_hat)
    return stats


def _range_of(qparams, spec: QuantSpec) -> tuple[float, float]:
    scale, zp = float(qparams.scale.flatten()[0]), float(qparams.zero_point.flatten()[0])
    return (spec.qmin - zp) * scale, (spec.qmax - zp) * scale


_FIX = {"layernorm": "per_channel", "softmax": "log2", "gelu": "twin_uniform"}


@torch.no_grad()
def site_accuracy(
    model: nn.Module,
    calibration: list,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    site: str,
    scheme: str,
    bits: int = 8,
    calibrator: str = "minmax",
    outputs: dict | None = None,
) -> float:
    """Top-1 accuracy with the outputs of every ``site`` module fake-quantized by ``scheme`` at ``bits``
    (everything else in float), quantizers calibrated on ``calibration`` batches (or on ``outputs``,
    ``site_outputs(model, calibration, site)`` computed by the caller)."""
    outputs = site_outputs(model, calibration, site) if outputs is None else outputs
    modules = dict(model.named_modules())
    quantizers = {n: OutputQuantizer(scheme, bits, calibrator, o) for n, o in outputs.items()}
    hooks = [modules[n].register_forward_hook(lambda _m, _a, out, q=q: q(out)) for n, q in quantizers.items()]
    try:
        return float((model.eval()(x_test).argmax(-1) == y_test).float().mean())
    finally:
        for h in hooks:
            h.remove()


__all__ = [
    "CALIBRATORS",
    "SCHEMES",
    "SITES",
    "OutputQuantizer",
    "SiteStats",
    "log2_quantize",
    "site_accuracy",
    "site_outputs",
    "site_statistics",
    "twin_uniform",
]
