"""The Llama decode step with a KV cache (``backends.onnx_decoder``), its ONNX Runtime runner and quantized
graphs (``backends.ort_decoder``), and its rows in the LLM speed table — on the tiny random Llama."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from llm_support import VOCAB, tiny_llama

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from ptqlab.backends.base import RecipeUnavailable  # noqa: E402
from ptqlab.backends.onnx_decoder import DecodeStep, check_llama, export_decoder  # noqa: E402
from ptqlab.backends.onnx_export import op_counts  # noqa: E402
from ptqlab.backends.ort_decoder import OrtDecoder, quantize_decoder, weight_matmuls  # noqa: E402

TOL = 1e-4
LINEARS_PER_LAYER = 7  # q, k, v, o, gate, up, down


@pytest.fixture(scope="module")
def model():
    return tiny_llama(64, 128)


@pytest.fixture(scope="module")
def proto(model):
    return export_decoder(model)


@pytest.fixture(scope="module")
def decoder(model, proto):
    return OrtDecoder(proto, context=model.config.max_position_embeddings)


def _prompt(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (1, n), generator=torch.Generator().manual_seed(seed))


def _hf_greedy(model, ids, new_tokens):
    with torch.no_grad():
        return model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,  # no stop token, like OrtDecoder.generate
        )


def test_decode_step_equals_hf_in_prefill_and_step_by_step_against_hfs_cache(model):
    step, ids = DecodeStep(model).eval(), _prompt()
    with torch.no_grad():
        hf = model(ids, use_cache=True)
        ours = step(ids, *step.empty_cache())
        assert (ours[0] - hf.logits).abs().max() < TOL
        for _ in range(5):
            token = hf.logits[:, -1:].argmax(-1)
            hf = model(token, cache=hf.cache, use_cache=True)
            ours = step(token, *ours[1:])
            assert (ours[0] - hf.logits).abs().max() < TOL
        for i, layer in enumerate(hf.cache.layers):  # the presents are HF's own cache
            assert (ours[1 + 2 * i] - layer.keys).abs().max() < TOL
            assert (ours[2 + 2 * i] - layer.values).abs().max() < TOL
    assert ours[1].shape == (1, 2, ids.shape[1] + 5, 16)


def test_exported_graph_equals_hf_and_greedy_tokens_match_hf_generate(model, proto, decoder):
    ids = _prompt()
    with torch.no_grad():
        reference = model(ids).logits
    assert (decoder.prefill(ids) - reference).abs().max() < TOL
    assert (decoder.prefill(ids[:, :1]) - reference[:, :1]).abs().max() < TOL  # T = 1, P = 0
    hf = _hf_greedy(model, ids, 20)
    assert torch.equal(decoder.generate(ids, 20), hf)
    bound = OrtDecoder(proto, context=64, io_binding=True)
    assert torch.equal(bound.generate(ids.numpy(), 20), hf)


def test_the_tied_head_is_its_own_matmul_and_the_embedding_gather_stays_fp32(model, proto):
    from onnx import TensorProto

    inits = {t.name: t for t in proto.graph.initializer}
    assert len(weight_matmuls(proto)) == LINEARS_PER_LAYER * 2 + 1
    head = next(n for n in proto.graph.node if n.op_type == "MatMul" and "lm_head" in n.name)
    gather = next(n for n in proto.graph.node if n.op_type == "Gather" and n.input[0] in inits)
    assert head.input[1] in inits and head.input[1] != gather.input[0]
    assert inits[gather.input[0]].data_type == TensorProto.FLOAT
    assert model.lm_head.weight is model.model.embed_tokens.weight  # the model itself is left tied


@pytest.mark.parametrize(
    ("scheme", "op", "options"),
    [
        ("int4-nbits", "MatMulNBits", {"block_size": 32}),
        ("int8-nbits", "MatMulNBits", {"block_size": 64}),
        ("int8-dynamic", "MatMulInteger", {}),
    ],
)
def test_quantized_graphs_rewrite_every_linear_and_the_head(model, proto, scheme, op, options):
    before = len(weight_matmuls(proto))
    q = quantize_decoder(proto, scheme, **options)
    assert op_counts(q)[op] == before == LINEARS_PER_LAYER * 2 + 1
    assert weight_matmuls(q) == [] and len(weight_matmuls(proto)) == before  # the fp32 graph is untouched
    assert op_counts(q)["MatMul"] == 2 * 2  # attention's q·kᵀ and p·v stay fp32
    out = OrtDecoder(q, context=64).generate(_prompt(), 3)
    assert out.shape == (1, 9) and out.dtype == torch.int64


def test_a_quantizer_that_leaves_a_weight_matmul_is_not_reported_as_quantized(proto, monkeypatch):
    from onnxruntime.quantization import matmul_nbits_quantizer as mnq

    real = mnq.MatMulNBitsQuantizer
    monkeypatch.setattr(
        mnq, "MatMulNBitsQuantizer", lambda m, **kw: real(m, **kw, nodes_to_exclude=["/lm_head/MatMul"])
    )
    with pytest.raises(RecipeUnavailable, match="1 left fp32"):
        quantize_decoder(proto, "int4-nbits")


def test_hostile_models_are_refused_by_name(model):
    with pytest.raises(TypeError, match="model"):
        check_llama(torch.nn.Linear(4, 4))
    imposter = torch.nn.Module()
    imposter.config = types.SimpleNamespace(model_type="gpt2")
    with pytest.raises(TypeError, match="model"):
        DecodeStep(imposter)
    half = tiny_llama(32, 64).to(torch.bfloat16)
    with pytest.raises(ValueError, match="model must be float32"):
        export_decoder(half)


@pytest.mark.parametrize(
    ("ids", "error", "match"),
    [
        (torch.zeros(1, 0, dtype=torch.int64), ValueError, "ids is empty"),
        (torch.zeros(1, 3, dtype=torch.int32), TypeError, "ids must hold int64"),
        (np.zeros((1, 3)), TypeError, "ids must hold int64"),
        ([[1, 2]], TypeError, "ids must be a torch.Tensor"),
        (torch.zeros(2, 3, dtype=torch.int64), ValueError, r"ids must have shape \[1, T\]"),
        (torch.zeros(3, dtype=torch.int64), ValueError, r"ids must have shape \[1, T\]"),
        (torch.tensor([[1, VOCAB]]), ValueError, "ids must lie in"),
        (torch.ones(1, 65, dtype=torch.int64), ValueError, "longer than the model's context of 64"),
    ],
)
def test_hostile_ids_are_refused_by_name(decoder, ids, error, match):
    with pytest.raises(error, match=match):
        decoder.generate(ids, 1)
    with pytest.raises(error, match=match):
        decoder.prefill(ids)


@pytest.mark.parametrize(
    ("new_tokens", "error", "match"),
    [(0, ValueError, ">= 1"), (-2, ValueError, ">= 1"), (True, TypeError, "int"), (1.5, TypeError, "int")],
)
def test_hostile_new_tokens_are_refused_by_name(decoder, new_tokens, error, match):
    with pytest.raises(error, match=f"new_tokens must be .*{match}"):
        decoder.generate(_prompt(), new_tokens)


def test_generation_past_the_context_and_bad_options_are_refused(decoder, proto):
    with pytest.raises(ValueError, match="exceed the context of 64"):
        decoder.generate(_prompt(60), 5)
    with pytest.raises(ValueError, match="scheme"):
        quantize_decoder(proto, "int3")
    with pytest.raises(ValueError, match="block_size"):
        quantize_decoder(proto, "int4-nbits", block_size=48)


def test_speed_table_times_the_ort_rows_with_the_graphs_bytes_and_reports_failures(model, monkeypatch):
    from ptqlab.bench import llm_speed

    monkeypatch.setattr(llm_speed, "measure_read_bandwidth", lambda nbytes: (10e9, None))
    recipes = ["ORT fp32", "ORT int4 MatMulNBits", "ORT int8 dynamic"]
    rows, bandwidth = llm_speed.speed_table(model, prompt_tokens=8, new_tokens=2, repeats=1, recipes=recipes)
    by_name = {r.name: r for r in rows}
    assert bandwidth == 10e9 and set(by_name) == {"fp32 eager", *recipes}
    fp32, int4 = by_name["ORT fp32"], by_name["ORT int4 MatMulNBits"]
    assert not fp32.note and "KV cache" in fp32.detail and "block 64, acc. level 4" in int4.detail
    assert 0 < int4.weight_bytes < fp32.weight_bytes  # read from the graphs, the embedding table left out
    assert fp32.decode_tokens_per_s > 0 and fp32.roofline_fraction > 0
    with pytest.raises(ValueError, match="recipes"):
        llm_speed.speed_table(model, recipes=["ORT int2"])

    def broken(*args, **kw):
        raise RecipeUnavailable("no MatMul")

    monkeypatch.setattr("ptqlab.backends.ort_decoder.quantize_decoder", broken)
    rows, _ = llm_speed.speed_table(
        model, prompt_tokens=8, new_tokens=2, repeats=1, recipes=["ORT int8 dynamic"]
    )
    assert rows[-1].name == "ORT int8 dynamic" and "not run" in rows[-1].note and "no MatMul" in rows[-1].note
