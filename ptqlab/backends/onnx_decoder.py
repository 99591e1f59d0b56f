"""A Hugging Face Llama causal LM as one ONNX decode step with a KV cache, for ONNX Runtime.

``DecodeStep(model)`` is built from the model's own submodules (embedding, RMSNorms, q/k/v/o and MLP
Linears, rotary embedding); per layer i it takes ``past_key_i`` / ``past_value_i`` [1, kv_heads, P, head_dim]
(P may be 0) and the new ``input_ids`` [1, T], and returns ``logits`` [1, T, vocab] and ``present_key_i`` /
``present_value_i`` = concat(past, new) along the sequence. Per layer (as HF's ``LlamaDecoderLayer``):

    h = x + o_proj(attention(rms_norm(x)))          out = h + down_proj(silu(gate_proj(n)) · up_proj(n)),
    attention = softmax(q kᵀ / √head_dim + mask) v   n = rms_norm(h), positions P..P+T−1,
    q, k rotated by the model's rotary cos/sin: q·cos + rotate_half(q)·sin; mask = −∞ where key > query.

Grouped-query attention without copying K/V (HF's ``repeat_kv``): query head h uses KV head h // groups, so
the queries are viewed as [1, kv_heads, groups·T, head_dim] against the KV heads; q and k are rotated
together. A tied head gets its own copy of the embedding matrix (the one weight copy), so the graph has
``MatMul(h, Wᵀ)`` on its own constant, which ORT's quantizers rewrite, while the embedding ``Gather`` stays
fp32 (it reads one row per token).
``export_decoder`` writes the step with dynamic T and P (TorchScript exporter, opset 17).
"""

from __future__ import annotations

import torch
from torch import nn

from ptqlab.backends.onnx_export import export_onnx, gemm_to_matmul

LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def check_llama(model) -> None:
    """TypeError/ValueError unless ``model`` is a float32 HF Llama causal LM (``config.model_type == "llama"``,
    ``model.model.layers``, ``lm_head``) whose rotary embedding does not depend on the sequence length."""
    config = getattr(model, "config", None)
    if not isinstance(model, nn.Module) or getattr(config, "model_type", None) != "llama":
        raise TypeError(
            f"model must be a Hugging Face Llama causal LM (config.model_type 'llama'), got {type(model).__name__}"
        )
    inner = getattr(model, "model", None)
    parts = ("embed_tokens", "layers", "norm", "rotary_emb")
    if not all(hasattr(inner, p) for p in parts) or not isinstance(
        getattr(model, "lm_head", None), nn.Linear
    ):
        raise TypeError(
            f"model must have model.{{{', '.join(parts)}}} and an nn.Linear lm_head (LlamaForCausalLM)"
        )
    for layer in inner.layers:
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        if not all(isinstance(getattr(attn, n, None) or getattr(mlp, n, None), nn.Linear) for n in LINEARS):
            raise TypeError(f"model's decoder layers must hold the Llama Linears {LINEARS}")
    rope = getattr(inner.rotary_emb, "rope_type", "default")
    if rope not in ("default", "linear", "llama3"):
        raise ValueError(
            f"model's rope_type {rope!r} depends on the sequence length; only static RoPE exports"
        )
    if any(p.dtype != torch.float32 for p in model.parameters()):
        raise ValueError("model must be float32 (call model.float() first)")


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, half: int) -> torch.Tensor:
    """RoPE as HF's ``apply_rotary_pos_emb``: x·cos + rotate_half(x)·sin, rotate_half(x) = (−x₂, x₁), with
    ``half`` = head_dim / 2 a Python int (``x.shape[-1]`` would be traced into Shape/Gather/Div nodes)."""
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class DecodeStep(nn.Module):
    """``forward(input_ids, *past) -> (logits, *present)``, past/present ordered key_0, value_0, key_1, …"""

    def __init__(self, model: nn.Module):
        super().__init__()
        check_llama(model)
        inner, cfg = model.model, model.config
        self.embed, self.layers, self.norm = inner.embed_tokens, inner.layers, inner.norm
        self.rotary = inner.rotary_emb
        self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.lm_head = model.lm_head
        if model.lm_head.weight.data_ptr() == inner.embed_tokens.weight.data_ptr():  # tied: own constant
            self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
            self.lm_head.weight = nn.Parameter(model.lm_head.weight.detach().clone(), requires_grad=False)

    def forward(self, input_ids: torch.Tensor, *past: torch.Tensor):
        t, p = input_ids.shape[1], past[0].shape[2]
        x = self.embed(input_ids)
        positions = torch.arange(t, dtype=torch.int64).unsqueeze(0) + p
        cos, sin = self.rotary(x, positions)
        cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)  # [1, T, 1, hd]: broadcast over the heads
        # mask[i, j] = key j comes after query i: positions P+i vs 0..P+T−1, tiled for the query groups
        mask = torch.arange(p + t, dtype=torch.int64).unsqueeze(0) > positions.transpose(0, 1)
        mask = mask.repeat(self.heads // self.kv_heads, 1)
        presents = []
        for i, layer in enumerate(self.layers):
            attn_out, k, v = self._attention(layer, x, (cos, sin), mask, past[2 * i : 2 * i + 2])
            x = x + attn_out
            x = x + layer.mlp(layer.post_attention_layernorm(x))
            presents += [k, v]
        return (self.lm_head(self.norm(x)), *presents)

    def _attention(self, layer, x, rope, mask, past):
        attn, hd = layer.self_attn, self.head_dim
        h = layer.input_layernorm(x)
        # q and k rotated together, [1, T, heads + kv_heads, hd] (fewer graph nodes than one by one)
        qk = torch.cat((attn.q_proj(h), attn.k_proj(h)), dim=-1).reshape(
            1, -1, self.heads + self.kv_heads, hd
        )
        q, k = rotate(qk, *rope, hd // 2).split((self.heads, self.kv_heads), dim=2)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = attn.v_proj(h).reshape(1, -1, self.kv_heads, hd).transpose(1, 2)
        k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
        q = q.reshape(1, self.kv_heads, -1, hd)  # [1, kv, groups·T, hd]: query head h -> KV head h // groups
        scores = torch.matmul(q, k.transpose(2, 3)) * (hd**-0.5)
        probs = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        out = torch.matmul(probs, v).reshape(1, self.heads, -1, hd).transpose(1, 2)
        return attn.o_proj(out.reshape(1, -1, self.heads * hd)), k, v

    def empty_cache(self, length: int = 0) -> list[torch.Tensor]:
        """Zeros [1, kv_heads, length, head_dim] for every past input (length 0: a fresh prompt)."""
        shape = (1, self.kv_heads, length, self.head_dim)
        return [torch.zeros(shape) for _ in range(2 * len(self.layers))]


def cache_names(layers: int, prefix: str) -> list[str]:
    return [f"{prefix}_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]


def export_decoder(model: nn.Module):
    """The ``DecodeStep`` of ``model`` as an ``onnx.ModelProto`` with dynamic T (new tokens) and P (past),
    every Linear and the head a ``MatMul`` with a constant weight (``gemm_to_matmul`` for safety)."""
    step = DecodeStep(model)  # torch.onnx.export traces in eval mode and restores the model's mode
    layers = len(step.layers)
    past_names, present_names = cache_names(layers, "past"), cache_names(layers, "present")
    dynamic = {"input_ids": {1: "T"}, "logits": {1: "T"}}
    dynamic |= {n: {2: "P"} for n in past_names} | {n: {2: "P+T"} for n in present_names}
    args = (torch.zeros(1, 3, dtype=torch.int64), *step.empty_cache(2))  # T=3, P=2: no size-1 axis to bake
    with torch.no_grad():
        proto = export_onnx(
            step,
            args,
            ["input_ids", *past_names],
            output_names=["logits", *present_names],
            dynamic_axes=dynamic,
        )
    gemm_to_matmul(proto)
    return proto
