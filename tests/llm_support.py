"""A tiny random-init LlamaForCausalLM (RMSNorm, grouped-query attention, rotary, tied embeddings) for tests
that need a Llama block but not SmolLM2's weights."""

import torch

VOCAB = 97


def tiny_llama(hidden_size: int, intermediate_size: int, seed: int = 0):
    """Two decoder layers, 4 query / 2 KV heads, vocabulary ``VOCAB``, context 64; eval mode."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()
