"""k-means codebooks (deterministic, never worse than the linear grid with as many levels) and NF4 (the 16
values equal QLoRA/bitsandbytes' table and torchao's constants)."""

import pytest
import torch

from ptqlab.core.codebook import (
    codebook_bits_per_weight,
    kmeans_quantize,
    linear_quantize,
    nf4_quantize,
    normal_float_codebook,
)
from ptqlab.core.metrics import mse

# bitsandbytes' NF4 table (functional.py, create_normal_map / the QLoRA paper's appendix), float32
BNB_NF4 = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
]  # fmt: skip


def tensors():
    g = torch.Generator().manual_seed(5)
    return {
        "gaussian": torch.randn(4096, generator=g) * 0.05,
        "heavy_tail": torch.distributions.StudentT(2.0).sample((4096,)) * 0.02,
        "bimodal": torch.cat(
            [torch.randn(2000, generator=g) * 0.01 - 0.1, torch.randn(2000, generator=g) * 0.01 + 0.1]
        ),
        "uniform": torch.rand(3000, generator=g) * 2 - 1,
        "relu_acts": torch.relu(torch.randn(64, 64, generator=g)),
    }


@pytest.mark.parametrize("bits", [2, 3, 4])
@pytest.mark.parametrize("name", list(tensors()))
def test_kmeans_never_worse_than_linear_at_the_same_levels(name, bits):
    x = tensors()[name]
    book = kmeans_quantize(x, bits)
    assert len(book.centroids) <= 2**bits and int(book.indices.max()) < 2**bits
    assert mse(x, book.dequantize()) <= mse(x, linear_quantize(x, bits)) * (1 + 1e-6)


@pytest.mark.parametrize("init", ["linear", "random"])
def test_kmeans_is_deterministic_with_a_seed(init):
    x = tensors()["heavy_tail"]
    a, b = kmeans_quantize(x, 3, seed=7, init=init), kmeans_quantize(x, 3, seed=7, init=init)
    assert torch.equal(a.centroids, b.centroids) and torch.equal(a.indices, b.indices)


def test_kmeans_centroids_are_cluster_means_at_convergence():
    x = tensors()["bimodal"]
    book = kmeans_quantize(x, 2, iterations=200)
    for j, c in enumerate(book.centroids):
        members = x[book.indices == j]
        if len(members):
            assert torch.isclose(members.mean(), c, atol=1e-6)


def test_nf4_values_match_bitsandbytes_and_torchao():
    ours = normal_float_codebook()
    assert torch.allclose(ours, torch.tensor(BNB_NF4), atol=1e-7, rtol=0)
    import inspect

    from torchao.quantization.quantize_.workflows.nf4 import nf4_tensor

    source = inspect.getsource(nf4_tensor)
    start = source.index("nf4 = torch.tensor(")
    rounded = [float(v) for v in source[start:].split("[", 1)[1].split("]", 1)[0].replace(",", " ").split()]
    assert torch.allclose(ours, torch.tensor(rounded), atol=5e-5, rtol=0)


def test_nf4_blocks_and_bits():
    x = tensors()["gaussian"]
    idx, absmax, x_hat = nf4_quantize(x, 64)
    assert idx.shape == x.shape and absmax.shape == (64,)
    assert torch.equal(x_hat.abs().reshape(-1, 64).amax(1), absmax)  # ±1 is in the table: absmax is exact
    assert mse(x, x_hat) < mse(x, linear_quantize(x, 4))  # block-wise NF4 beats per-tensor int4 on weights
    assert codebook_bits_per_weight(4096, 4) == 4 + 16 * 16 / 4096


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"^block_size=64 does not divide the 100 elements of x"):
        nf4_quantize(torch.randn(100), 64)
    with pytest.raises(ValueError, match=r"^bits must be an int in \[2, 8\]"):
        kmeans_quantize(torch.randn(10), 9)
    with pytest.raises(ValueError, match=r"^init must be"):
        kmeans_quantize(torch.randn(10), 2, init="kmeans++")
