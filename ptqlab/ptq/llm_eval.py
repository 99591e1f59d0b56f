"""Language-model quality, on any causal LM whose forward returns ``.logits`` (1, T, vocab): perplexity,
KL(reference ‖ quantized) of next-token distributions, top-1 agreement, greedy completions.

Windows: token t is scored (predicted from tokens < t of its window) once; window w covers
[w·stride, w·stride + window) and scores its tokens not scored by an earlier window, except its first
token, which has no context inside the window — stride = window: disjoint windows, window − 1 tokens
scored each; stride < window: more context per token (the Hugging Face sliding-window recipe).

    PPL = exp( Σ_t −log p(x_t | x_<t) / N )               (token-weighted over all scored tokens)
    KL_t = Σ_v P_ref(v | x_<t) · (log P_ref − log P_q)    reported as mean, 99th percentile and max
    top-1 agreement = mean_t [argmax P_ref = argmax P_q]

— the numbers llama.cpp's ``perplexity --kl-divergence`` reports. PPL equals exp of transformers' mean
``labels=`` loss over the same windows, weighted by each window's scored-token count (tested to 1e-4).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ptqlab.core.progress import Progress, track


class Window(NamedTuple):
    ids: torch.Tensor  # (1, L) int64 input tokens
    first_scored: int  # logits at positions ≥ first_scored − 1 predict the scored tokens


def make_windows(ids: torch.Tensor, window: int, stride: int | None = None, *, context: int | None = None):
    """The windows over ``ids`` (1-D int64) described in the module docstring."""
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.int64 or ids.dim() != 1:
        raise TypeError(
            f"ids must be a 1-D int64 tensor of token ids, got {getattr(ids, 'dtype', type(ids))}"
        )
    if len(ids) < 2:
        raise ValueError(f"ids: need at least 2 tokens to score one, got {len(ids)} (empty text?)")
    stride = window if stride is None else stride
    for name, value in (("window", window), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{name} must be an int >= 2, got {value!r}")
    if stride > window:
        raise ValueError(f"stride ({stride}) must not exceed window ({window}): tokens would go unscored")
    if context is not None and window > context:
        raise ValueError(f"window ({window}) is longer than the model's context ({context} positions)")
    windows, scored_to = [], 1
    for begin in range(0, len(ids), stride):
        end = min(begin + window, len(ids))
        if end <= scored_to:
            break
        windows.append(Window(ids[begin:end][None], max(1, scored_to - begin)))
        scored_to = end
    return windows


def model_context(model: nn.Module) -> int | None:
    """The model's maximum number of positions, if its config says."""
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)


@torch.no_grad()
def window_logprobs(model: nn.Module, w: Window) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs (n, vocab) of the scored tokens' predictions, their targets (n,))."""
    try:
        out = model(w.ids)
    except (RuntimeError, TypeError, IndexError) as error:
        raise TypeError(
            f"model must be a causal LM whose output has .logits of shape (1, T, vocab) for token ids (1, T); "
            f"it failed on them: {str(error).splitlines()[0][:120]}"
        ) from None
    logits = getattr(out, "logits", out)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or logits.shape[:2] != w.ids.shape:
        raise TypeError(
            f"model must be a causal LM whose output has .logits of shape (1, {w.ids.shape[1]}, vocab), "
            f"got {type(out).__name__}"
        )
    pred = logits[0, w.first_scored - 1 : -1].float()
    if not torch.isfinite(pred).all():
        raise ValueError("model produced non-finite logits (NaN or Inf weights?)")
    return torch.log_softmax(pred, -1), w.ids[0, w.first_scored :]


@torch.no_grad()
def check_causal(model: nn.Module, ids: torch.Tensor, probe: int = 8) -> None:
    """ValueError unless changing the last of ``probe`` tokens leaves every earlier position's logits alone."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x = ids[:probe][None].clone()
    a = window_logprobs(model, Window(x, 1))[0]
    x[0, -1] = (x[0, -1] + 1) % a.shape[-1]
    b = window_logprobs(model, Window(x, 1))[0]
    if not torch.allclose(a[:-1], b[:-1], atol=1e-4, rtol=1e-4):
        raise ValueError("model is not causal: a later token changed the predictions at earlier positions")


class LMScore(NamedTuple):
    ppl: float
    nll: float  # mean negative log-likelihood (nats per token)
    tokens: int  # scored tokens
    kl_mean: float | None = None
    kl_p99: float | None = None
    kl_max: float | None = None
    top1: float | None = None  # agreement of the argmax with the reference


def reference_logprobs(model: nn.Module, windows: list, progress: Progress = None) -> list[torch.Tensor]:
    """The reference model's log-probs per window, kept to compare every quantized model against."""
    return [window_logprobs(model, w)[0] for w in track(windows, progress, "reference")]


def score_lm(
    model: nn.Module, windows: list, reference: list | None = None, *, progress: Progress = None
) -> LMScore:
    """Perplexity over ``windows`` (and KL / top-1 against ``reference`` log-probs, if given)."""
    if not windows:
        raise ValueError("windows is empty: nothing to score")
    if reference is not None and len(reference) != len(windows):
        raise ValueError(f"reference has {len(reference)} windows, windows has {len(windows)}")
    context = model_context(model)
    longest = max(w.ids.shape[1] for w in windows)
    if context is not None and longest > context:
        raise ValueError(
            f"windows: a window of {longest} tokens is longer than the model's context ({context})"
        )
    check_causal(model, windows[0].ids[0])
    nll, count, kls, agree = 0.0, 0, [], 0
    for i, w in enumerate(track(windows, progress, "perplexity")):
        logp, target = window_logprobs(model, w)
        nll += float(-logp.gather(1, target[:, None]).double().sum())
        count += len(target)
        if reference is not None:
            ref = reference[i]
            kls.append((ref.exp() * (ref - logp)).sum(-1).clamp(min=0))
            agree += int((ref.argmax(-1) == logp.argmax(-1)).sum())
    mean = nll / count
    if reference is None:
        return LMScore(math.exp(mean), mean, count)
    kl = torch.cat(kls).double()
    return LMScore(
        math.exp(mean),
        mean,
        count,
        float(kl.mean()),
        float(torch.quantile(kl, 0.99)),
        float(kl.max()),
        agree / count,
    )


PROMPTS = (
    "The capital of France is",
    "def fibonacci(n):",
    "A for loop in Python",
)


@torch.no_grad()
def greedy_completions(model, tokenizer, prompts=PROMPTS, max_new_tokens: int = 12) -> list[str]:
    """The greedy (argmax) continuation of each prompt, without the prompt (HF ``generate`` when the model
    has it, else a plain loop without KV cache)."""
    if isinstance(prompts, str):
        raise TypeError("prompts must be a sequence of str, not a single str")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    texts = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        start = ids.shape[1]
        if hasattr(model, "generate"):  # a Hugging Face model: its KV cache makes each step one token
            ids = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.eos_token_id,
            )
            texts.append(tokenizer.decode(ids[0, start:], skip_special_tokens=True))
            continue
        for _ in range(max_new_tokens):
            logits = getattr(model(ids), "logits", None)
            ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], 1)
        texts.append(tokenizer.decode(ids[0, start:], skip_special_tokens=True))
    return texts


__all__ = [
    "PROMPTS",
    "LMScore",
    "Window",
    "check_causal",
    "greedy_completions",
    "make_windows",
    "model_context",
    "reference_logprobs",
    "score_lm",
    "window_logprobs",
]
