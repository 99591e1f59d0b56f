"""GPTQ / AWQ / SmoothQuant on a Llama block: a tiny random-init LlamaForCausalLM (RMSNorm, GQA, rotary,
tied embeddings) for the behaviour checks, torch.ao / torch casts as oracles for the new pieces."""

import pytest
import torch

from ptqlab.bench.llm_schemes import fp8_weight, int_w, peak_rss, quantizable_layers
from ptqlab.core.spec import QuantSpec
from ptqlab.ptq.algorithms import run_algorithm
from ptqlab.ptq.blockwise import blockwise_rows, chained
from ptqlab.ptq.dynamic_act import DynamicActFakeQuant, dynamic_fake_quantize
from ptqlab.ptq.layer_data import capture_rows, layer_blocks
from tests import llm_support

A8 = QuantSpec(bits=8, signed=False, symmetric=False)


@pytest.fixture(scope="module")
def tiny_llama():
    model = llm_support.tiny_llama(hidden_size=64, intermediate_size=128)
    g = torch.Generator().manual_seed(1)
    calibration = [torch.randint(0, 97, (1, 32), generator=g) for _ in range(4)]
    return model, calibration


def test_layer_blocks_cut_a_decoder_into_its_layers(tiny_llama):
    model, _ = tiny_llama
    blocks = layer_blocks(quantizable_layers(model))
    assert [len(b) for b in blocks] == [7, 7]
    assert all(n.startswith("model.layers.1.") for n in blocks[1])
    assert layer_blocks(["fc1", "features.3", "features.6"]) == [["fc1"], ["features.3"], ["features.6"]]


def test_decoder_layers_replay_as_a_chain(tiny_llama):
    model, calibration = tiny_llama
    layers = quantizable_layers(model)
    assert chained(model, calibration, layer_blocks(layers))
    assert not chained(model, calibration, layer_blocks(layers)[::-1])  # out of order: not a chain
    got = {}
    for _, rows in blockwise_rows(
        model, calibration, layers, max_rows=10_000
    ):  # nothing quantized: float rows
        got.update(rows)
    ref = capture_rows(model, calibration, layers, max_rows=10_000).rows
    assert sorted(got) == sorted(layers)
    for name in layers:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-5, atol=1e-6)


def test_per_token_dynamic_fake_quant_matches_torch_ao_per_channel_on_rows():
    x = torch.randn(3, 5, 16) * torch.logspace(-2, 2, 16)
    rows = x.reshape(-1, 16)
    observer = torch.ao.quantization.PerChannelMinMaxObserver(
        ch_axis=0, dtype=torch.quint8, qscheme=torch.per_channel_affine
    )
    observer(rows)
    scale, zp = observer.calculate_qparams()
    expected = torch.fake_quantize_per_channel_affine(rows, scale.float(), zp.int(), 0, 0, 255)
    assert torch.equal(dynamic_fake_quantize(x, A8, per_token=True), expected.reshape(x.shape))
    tensor = torch.ao.quantization.MinMaxObserver(dtype=torch.quint8)
    tensor(rows)
    s, z = tensor.calculate_qparams()
    expected = torch.fake_quantize_per_tensor_affine(rows, float(s), int(z), 0, 255)
    assert torch.equal(dynamic_fake_quantize(x, A8, per_token=False), expected.reshape(x.shape))


def test_dynamic_activations_reject_bad_input():
    with pytest.raises(ValueError, match="empty"):
        dynamic_fake_quantize(torch.empty(0, 4), A8, True)
    with pytest.raises(TypeError, match="floating-point"):
        dynamic_fake_quantize(torch.ones(2, 4, dtype=torch.int64), A8, True)
    with pytest.raises(ValueError):
        dynamic_fake_quantize(torch.tensor([[1.0, float("nan")]]), A8, True)
    with pytest.raises(ValueError):
        dynamic_fake_quantize(torch.tensor([[1.0, float("inf")]]), A8, True)
    with pytest.raises(ValueError, match="act_spec"):
        DynamicActFakeQuant(int_w(8), per_token=True)


def test_run_algorithm_rejects_bad_act_mode(tiny_llama):
    model, calibration = tiny_llama
    with pytest.raises(ValueError, match="act_mode"):
        run_algorithm("rtn", model, weight_spec=int_w(8), calibration=None, act_mode="per-row")
    with pytest.raises(ValueError, match="act_spec"):
        run_algorithm("rtn", model, weight_spec=int_w(8), calibration=None, act_mode="per-token")
    with pytest.raises(ValueError, match="sequential"):
        run_algorithm("gptq", model, weight_spec=int_w(4, 32), calibration=calibration, sequential="all")
    with pytest.raises(ValueError, match="alpha"):
        run_algorithm("smoothquant", model, weight_spec=int_w(8), calibration=calibration, alpha="best")


def test_gptq_blocks_first_block_sees_float_inputs_later_blocks_quantized_ones(tiny_llama):
    model, calibration = tiny_llama
    layers = quantizable_layers(model)
    runs = {
        mode: run_algorithm(
            "gptq",
            model,
            weight_spec=int_w(4, 32),
            calibration=calibration,
            fold_bn=False,
            layers=layers,
            sequential=mode,
        )
        for mode in (False, "blocks")
    }
    weights = {m: dict(r.model.named_parameters()) for m, r in runs.items()}
    first = "model.layers.0.mlp.down_proj.weight"
    second = "model.layers.1.self_attn.q_proj.weight"
    assert torch.equal(weights[False][first], weights["blocks"][first])
    assert not torch.equal(weights[False][second], weights["blocks"][second])
    for name, (rtn_error, gptq_error) in runs["blocks"].layer_errors.items():
        assert gptq_error < rtn_error, name


def test_awq_blocks_and_dynamic_smoothquant_run_on_a_llama_block(tiny_llama):
    model, calibration = tiny_llama
    layers = quantizable_layers(model)
    ids = calibration[0]
    with torch.no_grad():
        ref = model(ids).logits
    awq = run_algorithm(
        "awq",
        model,
        weight_spec=int_w(4, 32),
        calibration=calibration,
        fold_bn=False,
        layers=layers,
        sequential="blocks",
    )
    assert all(a <= r * 1.0001 for r, a in awq.layer_errors.values())
    sq = run_algorithm(
        "smoothquant",
        model,
        weight_spec=int_w(8),
        act_spec=A8,
        act_mode="per-token",
        calibration=calibration,
        fold_bn=False,
        layers=layers,
        alpha="search",
    )
    with torch.no_grad():
        out = sq.model(ids).logits
    assert (out - ref).pow(2).mean() < 1e-3 * ref.pow(2).mean()
    assert any("searched" in n for n in sq.notes) and any("per-token" in n for n in sq.notes)


def test_fp8_weights_equal_torch_cast_per_row():
    w = torch.randn(8, 64) * torch.logspace(-3, 1, 8)[:, None]
    w[3] = 0.0
    scale = w.abs().amax(1, keepdim=True) / 448
    scale[3] = 1.0
    expected = (w / scale).to(torch.float8_e4m3fn).float() * scale
    assert torch.equal(fp8_weight(w), expected)
    big = torch.full((2, 4), 3e38)
    assert torch.equal(fp8_weight(big), big)  # 3e38 / (3e38 / 448) = 448: on the grid
    for bad, error in ((torch.tensor([[1.0, float("nan")]]), ValueError), (torch.tensor([[float("inf")]]), ValueError),
                       (torch.ones(4), TypeError), (torch.ones(2, 2, dtype=torch.int8), TypeError),
                       (torch.empty(0, 3), TypeError)):  # fmt: skip
        with pytest.raises(error):
            fp8_weight(bad)


def test_peak_rss_sees_a_large_allocation():
    def allocate():
        # 200 MB of fresh anonymous pages, each touched: a torch tensor may reuse memory the allocator still
        # holds resident from earlier tests (RSS then does not rise, correctly), which made this order-dependent
        import mmap

        size = 200_000_000
        buf = mmap.mmap(-1, size)
        buf[::4096] = b"\1" * len(range(0, size, 4096))
        return float(buf[0])

    value, peak, before = peak_rss(allocate)
    assert value == 1.0 and peak - before > 100e6
    # a spike between two samples: the kernel's high-water mark (VmHWM, reset before the call) still sees it
    _, peak, before = peak_rss(allocate, interval=60)
    assert peak - before > 100e6
    with pytest.raises(TypeError, match="callable"):
        peak_rss(None)


def test_awq_gram_shortcut_equals_the_loss_over_rows():
    from ptqlab.ptq.awq import awq_scales, clip_search, gram_matrix

    torch.manual_seed(0)
    w = torch.randn(24, 64)
    x = torch.randn(300, 64) * torch.linspace(0.1, 5, 64)
    spec = int_w(4, 16)
    s_rows, a_rows, l_rows = awq_scales(w, x, None, spec, grid=10)
    s_gram, a_gram, l_gram = awq_scales(w, x, None, spec, grid=10, gram=gram_matrix(x.double()))
    torch.testing.assert_close(torch.tensor(l_gram), torch.tensor(l_rows), rtol=1e-4, atol=0)
    assert a_rows == a_gram and torch.equal(s_rows, s_gram)
    assert torch.equal(clip_search(w, x, spec), clip_search(w, x, spec, gram=gram_matrix(x.double())))
