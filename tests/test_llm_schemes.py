"""Schemes on a few of SmolLM2's layers (6 MLP Linears, 126 scored tokens): cheap, slow-marked checks."""

import pytest

from ptqlab.bench.llm_schemes import run_scheme


@pytest.fixture(scope="module")
def setting():
    from ptqlab.models.llm_text import calibration_batches, corpus_tokens
    from ptqlab.models.smollm2 import load_smollm2
    from ptqlab.ptq.llm_eval import make_windows, reference_logprobs

    model, tokenizer = load_smollm2()
    windows = make_windows(corpus_tokens(tokenizer, 128), 64)
    layers = [f"model.layers.{i}.mlp.{p}" for i in range(2) for p in ("gate_proj", "up_proj", "down_proj")]
    return model, windows, reference_logprobs(model, windows), calibration_batches(tokenizer, 4, 64), layers


def _score(setting, key):
    from ptqlab.ptq.llm_eval import score_lm

    model, windows, reference, calibration, layers = setting
    quantized, _ = run_scheme(key, model, calibration, layers=layers)
    return score_lm(quantized, windows, reference)


@pytest.mark.slow
def test_more_bits_on_the_same_kind_of_grid_lose_less(setting):
    q8, q4, w8 = (_score(setting, k) for k in ("gguf-q8_0", "gguf-q4_0", "rtn-w8"))
    assert q8.kl_mean < q4.kl_mean and w8.kl_mean < q4.kl_mean
    assert q8.top1 > q4.top1


@pytest.mark.slow
def test_q4_1_round_trip_leaves_the_published_model_unchanged(setting):
    s = _score(setting, "gguf-q4_1")
    assert s.kl_max == 0.0 and s.top1 == 1.0


@pytest.fixture(scope="module")
def two_blocks():
    """SmolLM2's first two decoder blocks (14 Linears), 16 × 128 calibration tokens, 256 scored tokens."""
    from ptqlab.models.llm_text import calibration_batches, corpus_tokens
    from ptqlab.models.smollm2 import load_smollm2
    from ptqlab.ptq.llm_eval import make_windows, reference_logprobs

    model, tokenizer = load_smollm2()
    windows = make_windows(corpus_tokens(tokenizer, 256), 128)
    layers = [n for n, _ in model.named_modules() if n.startswith(("model.layers.0.", "model.layers.1."))]
    layers = [n for n in layers if n.rsplit(".", 1)[-1].endswith("_proj")]
    assert len(layers) == 14
    return model, windows, reference_logprobs(model, windows), calibration_batches(tokenizer, 16, 128), layers


@pytest.mark.slow
def test_gptq_and_awq_beat_rtn_on_a_real_llama_block(two_blocks):
    # W3: at W4 on two blocks and 254 tokens, PPL moves by less than its own noise (KL still ranks them);
    # `ptqlab bench llm` measures both widths on the whole model.
    scores = {k: _score(two_blocks, f"{k}-w3g64") for k in ("rtn", "gptq", "awq")}
    for k in ("gptq", "awq"):
        assert scores[k].kl_mean < scores["rtn"].kl_mean, (k, scores)
        assert scores[k].ppl < scores["rtn"].ppl, (k, scores)


@pytest.mark.slow
def test_smoothquant_beats_rtn_at_static_w8a8_on_a_real_llama_block(two_blocks):
    model, windows, reference, calibration, layers = two_blocks
    eight = (model, windows, reference, calibration[:8], layers)  # 8 × 128 tokens: static ranges need few
    rtn, smooth = (_score(eight, k) for k in ("rtn-w8a8", "smoothquant-w8a8"))
    assert smooth.kl_mean < rtn.kl_mean and smooth.ppl < rtn.ppl, (rtn, smooth)
