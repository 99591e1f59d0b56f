"""The accuracy of every real model under the standard simulated schemes (``ptqlab bench accuracy``).

Prints the digits models' test accuracy (fp32 and fake-quantized) and MiniLM's embedding agreement with
fp32 (mean cosine, nearest-neighbour agreement) on the project's sentences.
"""

from __future__ import annotations

from ptqlab.core.spec import PerChannel, PerGroup, PerTensor, QuantSpec
from ptqlab.models import digits_cnn, digits_mlp, load_minilm, training_info
from ptqlab.models.data import digits_split, sentences
from ptqlab.ptq.simulate import embedding_agreement, evaluate_accuracy, simulate

A8 = QuantSpec(bits=8, signed=False, symmetric=False)


def _w(bits: int, grain=PerChannel(0)) -> QuantSpec:
    return QuantSpec(bits=bits, granularity=grain)


DIGITS_SCHEMES = {
    "W8 per-channel": dict(weight_spec=_w(8)),
    "W8 per-channel + A8 (BN folded)": dict(weight_spec=_w(8), act_spec=A8, fold_bn=True),
    "W4 per-channel": dict(weight_spec=_w(4)),
    "W4 per-tensor (BN folded)": dict(weight_spec=_w(4, PerTensor()), fold_bn=True),
    "W2 per-tensor (BN folded)": dict(weight_spec=_w(2, PerTensor()), fold_bn=True),
    "W2 per-channel (BN folded)": dict(weight_spec=_w(2), fold_bn=True),
}

MINILM_SCHEMES = {
    "int8 per-tensor": dict(weight_spec=_w(8, PerTensor())),
    "int8 per-channel": dict(weight_spec=_w(8)),
    "int4 per-tensor": dict(weight_spec=_w(4, PerTensor())),
    "int4 per-channel": dict(weight_spec=_w(4)),
    "int4 group-32": dict(weight_spec=_w(4, PerGroup(32))),
    "W8 per-channel + A8": dict(weight_spec=_w(8), act_spec=A8),
}


def digits_table() -> list[str]:
    data = digits_split()
    lines = [f"{'digits model / scheme':<40} {'test accuracy':>14}"]
    for name, load in (("mlp", digits_mlp), ("cnn", digits_cnn)):
        model = load()
        info = training_info(name)
        lines.append(
            f"{name + ' fp32':<40} {100 * evaluate_accuracy(model, data.x_test, data.y_test):>13.2f}%"
        )
        lines[-1] += f"   (trained in {info['seconds']:.1f} s when first built)"
        for label, kw in DIGITS_SCHEMES.items():
            calibration = data.x_train[:256] if kw.get("act_spec") else None
            q = simulate(model, calibration=calibration, **kw)
            lines.append(
                f"{name + ' ' + label:<40} {100 * evaluate_accuracy(q, data.x_test, data.y_test):>13.2f}%"
            )
    return lines


def minilm_table() -> list[str]:
    model, text = load_minilm(), sentences()
    reference = model.encode(text)
    lines = [f"{'MiniLM weights (320 sentences)':<32} {'mean cos':>9} {'min cos':>9} {'NN agree':>9}"]
    for label, kw in MINILM_SCHEMES.items():
        calibration = model.batches(text[1::4], 20) if kw.get("act_spec") else None
        a = embedding_agreement(reference, simulate(model, calibration=calibration, **kw).encode(text))
        lines.append(f"{label:<32} {a.mean_cosine:>9.4f} {a.min_cosine:>9.4f} {a.neighbour_agreement:>9.3f}")
    return lines
