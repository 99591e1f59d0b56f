"""GGUF block formats: ptqlab.core.gguf_formats byte for byte against the gguf package's numpy reference."""

import numpy as np
import pytest
import torch

from ptqlab.core.gguf_formats import FORMATS, dequantize_gguf, fake_quantize_gguf, quantize_gguf

gguf = pytest.importorskip("gguf")
from gguf import quants  # noqa: E402


def _reference(x: torch.Tensor, name: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        return quants.quantize(x.numpy(), getattr(gguf.GGMLQuantizationType, name))


def _hostile() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    spikes = torch.where(torch.rand(4, 64, generator=g) < 0.05, 100.0, 1.0)
    return {
        "randn": torch.randn(16, 256, generator=g),
        "exact ties": torch.randint(-40, 40, (8, 64), generator=g).float() * 0.5,
        "zeros": torch.zeros(4, 64),
        "constant": torch.full((4, 64), -3.0),
        "beyond fp16": torch.randn(4, 64, generator=g) * 1e6,
        "subnormal": torch.randn(4, 64, generator=g) * 1e-30,
        "spiky": torch.randn(4, 64, generator=g) * spikes,
        "3-d": torch.randn(2, 3, 96, generator=g),
    }


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_bytes_and_values_equal_gguf_reference(name):
    for case, x in _hostile().items():
        ref = _reference(x, name)
        assert np.array_equal(quantize_gguf(x, name).numpy(), ref), (name, case)
        with np.errstate(all="ignore"):
            back = quants.dequantize(ref, getattr(gguf.GGMLQuantizationType, name))
        mine = dequantize_gguf(torch.from_numpy(ref), name).numpy()
        assert np.array_equal(mine.view(np.uint32), back.view(np.uint32)), (name, case)


def test_bits_per_weight_from_block_layout():
    bpw = {n: f.bits_per_weight for n, f in FORMATS.items()}
    assert bpw == {"Q8_0": 8.5, "Q4_0": 4.5, "Q4_1": 5.0, "Q5_0": 5.5, "Q5_1": 6.0}
    for name, f in FORMATS.items():
        assert f.block_bytes == gguf.GGML_QUANT_SIZES[getattr(gguf.GGMLQuantizationType, name)][1]


def test_q8_0_rounds_ties_away_from_zero_and_q4_0_scale_is_negative():
    x = torch.zeros(1, 32)
    x[0, 0], x[0, 1], x[0, 2] = 127.0, 2.5, -2.5  # d = 1: ties at ±2.5
    q = quantize_gguf(x, "Q8_0")[0, 2:].view(torch.int8)
    assert q[:3].tolist() == [127, 3, -3]  # torch.round would give 2, -2
    y = torch.linspace(-1, 2, 32)[None]
    d = quantize_gguf(y, "Q4_0")[0, :2].view(torch.float16)
    assert float(d) == pytest.approx(2 / -8, rel=1e-3)  # the signed max over −8
    assert float(fake_quantize_gguf(y, "Q4_0")[0, -1]) == pytest.approx(2.0, rel=1e-3)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="multiple of 32"):
        quantize_gguf(torch.randn(3, 33), "Q8_0")
    with pytest.raises(ValueError, match="non-finite"):
        quantize_gguf(torch.full((1, 32), float("nan")), "Q4_1")
    with pytest.raises(TypeError, match="floating-point"):
        quantize_gguf(torch.ones(1, 32, dtype=torch.int32), "Q4_0")
    with pytest.raises(ValueError, match="fmt must be one of"):
        quantize_gguf(torch.randn(1, 32), "Q3_K")
    with pytest.raises(TypeError, match="data must be a uint8"):
        dequantize_gguf(torch.zeros(1, 34), "Q8_0")
    with pytest.raises(ValueError, match="empty"):
        quantize_gguf(torch.zeros(0, 32), "Q8_0")


@pytest.mark.slow
def test_real_smollm2_weights_bit_exact_and_q4_1_idempotent():
    from ptqlab.models.smollm2 import load_smollm2

    model = load_smollm2().model
    layers = model.model.layers
    for layer in (layers[0], layers[-1]):
        for lin in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.mlp.down_proj):
            w = lin.weight.detach()
            for name in ("Q8_0", "Q4_0", "Q4_1"):
                assert np.array_equal(quantize_gguf(w, name).numpy(), _reference(w, name)), name
            # the published weights are a Q4_1 grid: re-quantizing returns them bit for bit
            assert torch.equal(fake_quantize_gguf(w, "Q4_1"), w)
            assert not torch.equal(fake_quantize_gguf(w, "Q4_0"), w)
    emb = model.model.embed_tokens.weight.detach()[:4096]  # published as Q8_0
    assert torch.equal(fake_quantize_gguf(emb, "Q8_0"), emb)
