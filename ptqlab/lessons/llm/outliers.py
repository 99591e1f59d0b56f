"""Why activations are the hard part: per-channel activation maxima of real SmolLM2 layers, before and
after SmoothQuant's smoothing (Xiao et al. 2022):

    s_j = max|X_j|^α / max|W_:,j|^(1−α)       X' = X / s  (channels flattened)      W' = W · s

One per-tensor int8 activation scale must cover the largest channel, so its step is max_j max|X_j| / 127:
a channel whose own max is r times smaller keeps only ~127 / r of the 255 levels. The lab shows the channel
maxima (from forward pre-hooks on the calibration slice, ``ptq.smoothquant.channel_absmax``), the weight
column maxima they are traded against, and what α does to both.
"""

from __future__ import annotations

import functools

from ptqlab.models.cache import load_or_build
from ptqlab.ptq.smoothquant import channel_absmax, smoothing_scale, weight_input_absmax

LAYERS = {
    "block 0 attention input (q_proj)": "model.layers.0.self_attn.q_proj",
    "block 0 MLP input (gate_proj)": "model.layers.0.mlp.gate_proj",
    "block 0 MLP output input (down_proj)": "model.layers.0.mlp.down_proj",
    "block 15 attention input (q_proj)": "model.layers.15.self_attn.q_proj",
    "block 15 MLP output input (down_proj)": "model.layers.15.mlp.down_proj",
    "block 29 MLP input (gate_proj)": "model.layers.29.mlp.gate_proj",
    "block 29 MLP output input (down_proj)": "model.layers.29.mlp.down_proj",
}


def _build() -> dict:
    from ptqlab.lessons.llm.numbers import calibration, lab_model

    model, _ = lab_model()
    modules = dict(model.named_modules())
    amax = channel_absmax(model, list(LAYERS.values()), [(b,) for b in calibration()])
    return {name: {"act": amax[name], "weight": weight_input_absmax(modules[name].weight)} for name in amax}


@functools.lru_cache(maxsize=1)
def channel_maxima() -> dict:
    """{layer: {"act": max|X_j| (in,), "weight": max|W_:,j| (in,)}} on the calibration slice (cached)."""
    from ptqlab.lessons.llm.numbers import cache_key

    return load_or_build(
        "lab10-outliers", cache_key("outliers", tuple(LAYERS.values()), _build, method="w8a8"), _build
    )[0]


def smoothed(layer: str, alpha: float) -> dict:
    """Channel maxima of X and W before and after smoothing with ``alpha`` for the layer labelled ``layer``,
    and the per-tensor int8 levels left to the median channel (255 · median / max, before and after)."""
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {list(LAYERS)}, got {layer!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    stats = channel_maxima()[LAYERS[layer]]
    act, w = stats["act"], stats["weight"]
    s = smoothing_scale(act, w[None, :], float(alpha))
    act_after, w_after = act / s, w * s

    def levels(v):
        return 255 * float(v.median() / v.max())

    return {
        "act": act,
        "act_after": act_after,
        "weight": w,
        "weight_after": w_after,
        "ratio": float(act.max() / act.median()),
        "ratio_after": float(act_after.max() / act_after.median()),
        "levels": levels(act),
        "levels_after": levels(act_after),
        "top_channels": [int(i) for i in act.argsort(descending=True)[:3]],
    }
