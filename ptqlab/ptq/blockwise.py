"""Block-by-block calibration inputs for a model built from a chain of repeated blocks (a decoder's layers).

GPTQ's and AWQ's reference code quantize an LLM one decoder layer at a time: the inputs of layer i are
captured once, the layers inside it quantized, and layer i's (now quantized) output becomes layer i+1's
input — so every block sees what the model quantized so far produces, at the cost of ONE forward pass in
all (a partial forward per block from the embeddings would cost ~n_blocks / 2 passes).

Generic, no model named: the blocks are ``layer_data.layer_blocks`` of the layer names (``model.layers.3``
holds ``model.layers.3.mlp.up_proj``); each block module's positional args and keyword args are captured
with a forward pre-hook on the first block (a KV cache argument is dropped, ``use_cache`` set False), and the
chain is checked once on the float model — block i's output must equal the input the model itself hands
block i+1 (batch 0, within 1e-4) — else the caller falls back to one partial forward per block.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from ptqlab.core.progress import Progress, track
from ptqlab.ptq.layer_data import StopForward, capture_rows, layer_blocks
from ptqlab.ptq.measure import eval_mode, run_named


def block_prefix(group: list[str]) -> str:
    """The module that holds a block's layers: the common name up to the last numeric component."""
    parts = group[0].split(".")
    index = max((i for i, p in enumerate(parts[:-1]) if p.isdigit()), default=None)
    return ".".join(parts[: index + 1]) if index is not None else ""


def _clean(kwargs: dict) -> dict:
    out = {}
    for k, v in kwargs.items():
        if "cache" in k and not isinstance(v, torch.Tensor | bool | type(None)):
            v = None  # a KV cache object: re-running a block must not append to it
        out[k] = False if k == "use_cache" else v
    return out


@torch.no_grad()
def capture_block_inputs(model: nn.Module, batches: list, prefixes: list[str]) -> dict[str, list]:
    """For each block module named in ``prefixes``: one (args, kwargs) per batch, from a float forward."""
    modules = dict(model.named_modules())
    seen: dict[str, list] = {p: [] for p in prefixes}

    def hook(prefix):
        def record(module, args, kwargs):
            seen[prefix].append((tuple(args), _clean(kwargs)))
            if prefix == prefixes[-1]:
                raise StopForward

        return record

    handles = [modules[p].register_forward_pre_hook(hook(p), with_kwargs=True) for p in prefixes]
    try:
        with eval_mode(model):
            for i, batch in enumerate(batches):
                try:
                    run_named(model, batch, i)
                except StopForward:
                    pass
    finally:
        for h in handles:
            h.remove()
    return seen


def _first(output):
    return output[0] if isinstance(output, tuple | list) else output


class _Replay(nn.Module):
    """block(*args_i, **kwargs_i) for "batch" i: lets ``capture_rows`` hook a block fed cached inputs."""

    def __init__(self, block: nn.Module, inputs: list):
        super().__init__()
        self.block, self.inputs = block, inputs

    def forward(self, index: torch.Tensor):
        args, kwargs = self.inputs[int(index)]
        return self.block(*args, **kwargs)


@torch.no_grad()
def chained(model: nn.Module, batches: list, groups: list[list[str]]) -> bool:
    """Whether the blocks of ``groups`` form a chain (checked on batch 0 of the float model)."""
    prefixes = [block_prefix(g) for g in groups]
    modules = dict(model.named_modules())
    if len(groups) < 2 or "" in prefixes or len(set(prefixes)) != len(prefixes):
        return False
    if any(not all(n.startswith(p + ".") for n in g) for p, g in zip(prefixes, groups, strict=True)):
        return False
    try:
        seen = capture_block_inputs(model, batches[:1], prefixes)
        for p, q in zip(prefixes, prefixes[1:], strict=False):
            (args, kwargs), (nxt, _) = seen[p][0], seen[q][0]
            out = _first(modules[p](*args, **kwargs))
            if not (isinstance(out, torch.Tensor) and out.shape == nxt[0].shape):
                return False
            if not torch.allclose(out, nxt[0], rtol=1e-4, atol=1e-5):
                return False
    except Exception:  # any block that cannot be replayed on its own: not a chain
        return False
    return True


def blockwise_rows(
    model: nn.Module,
    batches: list,
    names: list[str],
    *,
    max_rows: int,
    progress: Progress = None,
    title: str = "",
) -> Iterator[tuple[list[str], dict[str, torch.Tensor]]]:
    """Yield (a block's layer names, their input rows) block by block; quantize them in place before
    asking for the next block: its inputs are the outputs of the blocks as they are then."""
    groups = layer_blocks(names)
    modules = dict(model.named_modules())
    if not chained(model, batches, groups):  # fallback: one partial forward per block
        for group in track(groups, progress, title):
            yield group, capture_rows(model, batches, group, max_rows=max_rows).rows
        return
    prefixes = [block_prefix(g) for g in groups]
    inputs = capture_block_inputs(model, batches, prefixes[:1])[prefixes[0]]
    for prefix, group in zip(prefixes, track(groups, progress, title), strict=True):
        block = modules[prefix]
        local = [n[len(prefix) + 1 :] for n in group]
        replay = _Replay(block, inputs)
        rows = capture_rows(
            replay, [torch.tensor([i]) for i in range(len(inputs))], ["block." + n for n in local]
        )
        yield group, {n: rows.rows["block." + n[len(prefix) + 1 :]] for n in group}
        with torch.no_grad(), eval_mode(block):  # no graph: the outputs are the next block's data
            inputs = [((_first(block(*a, **k)), *a[1:]), k) for a, k in inputs]


__all__ = ["block_prefix", "blockwise_rows", "capture_block_inputs", "chained"]
