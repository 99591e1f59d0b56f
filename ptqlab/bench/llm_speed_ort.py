"""The ONNX Runtime rows of the LLM speed table: the model's decode step with a KV cache
(``backends.onnx_decoder``) on ORT's CPU provider, fp32 and quantized (``backends.ort_decoder``).

One export serves every row; each recipe quantizes it and must rewrite every Linear and the head (or the row
says why not). Weight bytes per token are read from the graph: every initializer but the embedding table
that ``Gather`` reads one row of (``onnx_export.initializer_bytes(exclude_gather_tables=True)``).

Choices, measured on SmolLM2-135M on a shared, noisy 2-core machine (rerun ``ptqlab bench llm`` before
trusting them): both MatMulNBits rows use block 64, the group size of the scheme table's W4 rows and of
torchao's int4 recipe. In interleaved runs blocks 32 and 64 decoded at the same speed within the noise;
block 128 was a little faster but had the higher KL to fp32 and pads K = 576 to 640 (576 = 9 × 64).
accuracy_level 4 (int8 activations inside the kernel): level 0 decoded slower for int4, far slower for int8.
Both int8 flavours are rows: they decoded at about the same speed, and ``quantize_dynamic`` takes one
activation scale per call — per token in decode, one for the whole prompt in prefill (a larger KL there).
The KV cache travels as numpy arrays: IO binding (the presents bound as ORT values as the next pasts) was
not consistently faster (faster in one run, slower in the next).
"""

from __future__ import annotations

from typing import NamedTuple

NBITS_BLOCK = 64
NBITS_ACCURACY = 4

# name -> (ort_decoder scheme, options, what the row is)
ORT_RECIPES = {
    "ORT fp32": ("fp32", {}, "ONNX Runtime, KV cache, fp32 MatMul"),
    "ORT int8 dynamic": (
        "int8-dynamic",
        {},
        "ONNX Runtime, KV cache, quantize_dynamic int8 per-channel weights, activations per call "
        "(DynamicQuantizeMatMul)",
    ),
    "ORT int8 MatMulNBits": (
        "int8-nbits",
        {"block_size": NBITS_BLOCK, "accuracy_level": NBITS_ACCURACY},
        f"ONNX Runtime, KV cache, int8 MatMulNBits block {NBITS_BLOCK}, acc. level {NBITS_ACCURACY}",
    ),
    "ORT int4 MatMulNBits": (
        "int4-nbits",
        {"block_size": NBITS_BLOCK, "accuracy_level": NBITS_ACCURACY},
        f"ONNX Runtime, KV cache, int4 MatMulNBits block {NBITS_BLOCK}, acc. level {NBITS_ACCURACY}",
    ),
}


class Variant(NamedTuple):
    """What the speed table times: a prefill call, a decode call, the bytes one token reads, what it is."""

    prefill: object
    decode: object
    weight_bytes: int
    detail: str


def ort_variants(
    model, names, prompt, new_tokens: int, *, step=None
) -> tuple[dict[str, Variant], dict[str, str]]:
    """({name: Variant}, {name: why it did not run}) for the ORT recipes in ``names``; decode = greedy
    ``generate`` of ``new_tokens`` from the prompt's first token, prefill = the logits of ``prompt``.
    ``step(desc)`` is called after the export and after each recipe (a progress bar's tick)."""
    step = step or (lambda desc="": None)
    from ptqlab.backends.onnx_decoder import export_decoder
    from ptqlab.backends.ort_decoder import OrtDecoder, quantize_decoder

    names = list(names)
    if not names:
        return {}, {}
    try:
        proto = export_decoder(model)
    except Exception as error:  # every ORT row says why
        return {}, dict.fromkeys(names, _reason("export", error))
    finally:
        step("ONNX export")
    variants, failed, one = {}, {}, prompt[:, :1]
    for name in names:
        scheme, options, detail = ORT_RECIPES[name]
        try:
            decoder = OrtDecoder(
                quantize_decoder(proto, scheme, **options), context=model.config.max_position_embeddings
            )
            decoder.generate(one, 1)
        except Exception as error:
            failed[name] = _reason(scheme, error)
            continue
        finally:
            step(name)
        variants[name] = Variant(
            lambda d=decoder: d.prefill(prompt),
            lambda d=decoder: d.generate(one, new_tokens),
            decoder.weight_bytes,
            detail,
        )
    return variants, failed


def _reason(what: str, error: Exception) -> str:
    return (
        f"not run: {what}: {type(error).__name__}: {str(error).splitlines()[0][:100] if str(error) else ''}"
    )


__all__ = ["NBITS_ACCURACY", "NBITS_BLOCK", "ORT_RECIPES", "Variant", "ort_variants"]
