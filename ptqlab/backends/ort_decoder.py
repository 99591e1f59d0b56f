"""Greedy batch-1 decoding of an exported Llama decode step (``onnx_decoder``) on ONNX Runtime, fp32 or quantized.

Schemes (every one must rewrite *all* weight MatMuls — each Linear and the head — or it raises):

    fp32          the exported graph
    int8-dynamic  ``quantize_dynamic``: int8 per-channel weights, uint8 activations with one scale per call
                  (per token in decode, per prompt in prefill) computed at run time (MatMulInteger; ORT fuses
                  it with DynamicQuantizeLinear into DynamicQuantizeMatMul when the session loads)
    int8-nbits    ``MatMulNBitsQuantizer(bits=8)``: symmetric int8 weights in blocks of ``block_size`` along K
    int4-nbits    ``MatMulNBitsQuantizer(bits=4)``: symmetric int4 weights in blocks of ``block_size`` along K

MatMulNBits' ``accuracy_level`` 4 quantizes the activations to int8 inside the kernel (MLAS's int8 path on
CPUs with VNNI). Attention's activation×activation MatMuls stay fp32; so does the embedding ``Gather``.
``OrtDecoder.generate`` carries the KV cache between ``session.run`` calls as numpy arrays; with
``io_binding=True`` the presents stay ORT values, bound as the next call's pasts (no numpy round trip).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ptqlab.backends.base import RecipeUnavailable
from ptqlab.backends.onnx_decoder import cache_names, export_decoder
from ptqlab.backends.onnx_export import initializer_bytes, op_counts
from ptqlab.backends.onnxruntime import dynamic_int8, nbits
from ptqlab.backends.ort_session import session_options

SCHEMES = ("fp32", "int8-dynamic", "int8-nbits", "int4-nbits")
QUANTIZED_OP = {"int8-dynamic": "MatMulInteger", "int8-nbits": "MatMulNBits", "int4-nbits": "MatMulNBits"}


def weight_matmuls(proto) -> list[str]:
    """Names of the MatMul nodes whose second input is a constant (the Linears and the head)."""
    inits = {t.name for t in proto.graph.initializer}
    return [n.name for n in proto.graph.node if n.op_type == "MatMul" and n.input[1] in inits]


def quantize_decoder(proto, scheme: str, *, block_size: int = 32, accuracy_level: int = 4):
    """The decode-step graph under ``scheme`` (see the module docstring); raises ``RecipeUnavailable`` unless
    every weight MatMul of ``proto`` became the scheme's quantized op."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if scheme == "fp32":
        return proto
    targets = weight_matmuls(proto)
    if scheme == "int8-dynamic":  # not attention's activation×activation MatMuls
        q = dynamic_int8(proto, nodes=targets)
    else:
        bits = 8 if scheme == "int8-nbits" else 4
        q = nbits(proto, bits=bits, block_size=block_size, accuracy_level=accuracy_level)
    done, left = op_counts(q)[QUANTIZED_OP[scheme]], weight_matmuls(q)
    if done != len(targets) or left:
        raise RecipeUnavailable(
            f"{scheme}: {done} {QUANTIZED_OP[scheme]} for {len(targets)} weight MatMuls, {len(left)} left fp32"
        )
    return q


def check_new_tokens(new_tokens) -> int:
    if isinstance(new_tokens, bool) or not isinstance(new_tokens, int | np.integer):
        raise TypeError(f"new_tokens must be an int, got {type(new_tokens).__name__}")
    if new_tokens < 1:
        raise ValueError(f"new_tokens must be >= 1, got {new_tokens}")
    return int(new_tokens)


def check_ids(ids, vocab: int, context: int) -> np.ndarray:
    """``ids`` as an int64 [1, T] numpy array, 1 <= T <= ``context``, every id in [0, ``vocab``)."""
    if isinstance(ids, torch.Tensor):
        if ids.dtype != torch.int64:
            raise TypeError(f"ids must hold int64 token ids, got dtype {ids.dtype}")
        ids = ids.detach().cpu().numpy()
    elif not isinstance(ids, np.ndarray):
        raise TypeError(
            f"ids must be a torch.Tensor or numpy array of int64 token ids, got {type(ids).__name__}"
        )
    if ids.dtype != np.int64:
        raise TypeError(f"ids must hold int64 token ids, got dtype {ids.dtype}")
    if ids.ndim != 2 or ids.shape[0] != 1:
        raise ValueError(f"ids must have shape [1, T] (batch 1), got {list(ids.shape)}")
    if ids.shape[1] == 0:
        raise ValueError("ids is empty: give at least one prompt token")
    if ids.shape[1] > context:
        raise ValueError(f"ids holds {ids.shape[1]} tokens, longer than the model's context of {context}")
    if ids.min() < 0 or ids.max() >= vocab:
        raise ValueError(f"ids must lie in [0, {vocab}), got {ids.min()}..{ids.max()}")
    return np.ascontiguousarray(ids)


class OrtDecoder:
    """An ONNX Runtime session of a decode-step graph: ``prefill(ids)`` logits, ``generate(ids, n)`` greedy."""

    def __init__(self, proto, *, context: int, threads: int | None = None, io_binding: bool = False):
        import onnxruntime as ort

        self.session = ort.InferenceSession(
            proto.SerializeToString(), session_options(threads), providers=["CPUExecutionProvider"]
        )
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        self.layers = sum(n.startswith("past_key_") for n in inputs)
        self.past, self.present = cache_names(self.layers, "past"), cache_names(self.layers, "present")
        _, kv_heads, _, head_dim = inputs["past_key_0"]
        self.empty = np.zeros((1, kv_heads, 0, head_dim), np.float32)
        self.vocab = int(self.session.get_outputs()[0].shape[-1])
        self.context, self.io_binding = int(context), bool(io_binding)
        self.weight_bytes = initializer_bytes(proto, exclude_gather_tables=True)  # streamed per token
        self.ops = op_counts(proto)

    def prefill(self, ids) -> torch.Tensor:
        """Logits [1, T, vocab] of the prompt ``ids`` (empty cache)."""
        ids = check_ids(ids, self.vocab, self.context)
        feeds = {"input_ids": ids} | dict.fromkeys(self.past, self.empty)
        return torch.from_numpy(self.session.run(["logits"], feeds)[0])

    def generate(self, ids, new_tokens: int) -> torch.Tensor:
        """``ids`` followed by ``new_tokens`` greedy tokens (argmax of the last logits; no stop token)."""
        ids, n = check_ids(ids, self.vocab, self.context), check_new_tokens(new_tokens)
        if ids.shape[1] + n > self.context:
            raise ValueError(f"{ids.shape[1]} prompt + {n} new tokens exceed the context of {self.context}")
        tokens = self._generate_bound(ids, n) if self.io_binding else self._generate_numpy(ids, n)
        return torch.from_numpy(np.concatenate([ids, np.array([tokens], np.int64)], axis=1))

    def _generate_numpy(self, ids: np.ndarray, n: int) -> list[int]:
        feeds, tokens = {"input_ids": ids} | dict.fromkeys(self.past, self.empty), []
        for _ in range(n):
            logits, *cache = self.session.run(None, feeds)
            tokens.append(int(logits[0, -1].argmax()))
            feeds = {"input_ids": np.array([[tokens[-1]]], np.int64)} | dict(
                zip(self.past, cache, strict=True)
            )
        return tokens

    def _generate_bound(self, ids: np.ndarray, n: int) -> list[int]:
        import onnxruntime as ort

        binding, tokens = self.session.io_binding(), []
        cache = [ort.OrtValue.ortvalue_from_numpy(self.empty)] * len(self.past)
        for _ in range(n):
            binding.bind_cpu_input("input_ids", ids)
            for name, value in zip(self.past, cache, strict=True):
                binding.bind_ortvalue_input(name, value)
            binding.clear_binding_outputs()
            for name in ("logits", *self.present):
                binding.bind_output(name, "cpu")
            self.session.run_with_iobinding(binding)
            logits, *cache = binding.get_outputs()
            tokens.append(int(logits.numpy()[0, -1].argmax()))
            ids = np.array([[tokens[-1]]], np.int64)
        return tokens


def build_decoder(model: nn.Module, scheme: str = "fp32", **kw) -> OrtDecoder:
    """Export ``model``'s decode step, quantize it under ``scheme`` and open a session. Keywords:
    ``block_size``, ``accuracy_level`` (the NBits schemes), ``threads``, ``io_binding``."""
    options = {k: kw.pop(k) for k in ("block_size", "accuracy_level") if k in kw}
    proto = quantize_decoder(export_decoder(model), scheme, **options)
    return OrtDecoder(proto, context=model.config.max_position_embeddings, **kw)
