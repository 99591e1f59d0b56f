"""``ptqlab bench architectures``: the seed's architecture table next to the one measured on this machine.

ptqlab bench architectures [--models resnet,mobilenetv2,minilm,vit[,llama]] [--batch 1,64] [--repeats 10]
                           [--threads 2] [--json out.json]

Vision rows are small models trained on the 8×8 digits ("ResNet-style on digits", …), not ImageNet models;
the BERT row is MiniLM; the LLaMA row is SmolLM2-135M (135 M ≠ 7 B), measured only when ``--models``
names ``llama`` (minutes: perplexity, RTN W8, batch-1 decode speed). See ``ptqlab.bench.architectures``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from ptqlab.backends.quiet import silence_torchao_import_noise
from ptqlab.bench import architecture_llm_row
from ptqlab.bench import run as bench
from ptqlab.bench.architectures import (
    CALIBRATOR,
    ENGINE_RECIPES,
    LLM_MODEL,
    MEASURED_MODELS,
    format_table,
    measure_rows,
)
from ptqlab.cli.bench_models import writable_target

silence_torchao_import_noise()  # transformers and the int8 engines import torchao: its CPU-irrelevant messages

ARCH_MODELS = tuple(MEASURED_MODELS.values())
KNOWN_MODELS = (*ARCH_MODELS, LLM_MODEL)


def positive_ints(text: str) -> list[int]:
    """'1,64' -> [1, 64]; anything else is an argparse error."""
    try:
        values = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ptqlab bench architectures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--models", default=",".join(ARCH_MODELS), help=f"add {LLM_MODEL} for the LLaMA row (slow)"
    )
    p.add_argument("--batch", type=positive_ints, default=[1, 64], help="the last one should fill the cores")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--budget", type=float, default=10.0, help="max seconds of timed calls per variant")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--json", dest="json_path")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in args.models if m not in KNOWN_MODELS]
    if bad or not args.models:
        p.error(f"--models: unknown {bad}; choose from {', '.join(KNOWN_MODELS)}")
    if args.repeats < 1 or args.threads < 1 or not args.budget > 0:
        p.error("--repeats and --threads must be >= 1, --budget > 0")
    why = args.json_path and writable_target(args.json_path, is_dir=False)
    if why:
        p.error(f"--json: {why}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(list(sys.argv[1:] if argv is None else argv))
    torch.set_num_threads(args.threads)
    bench.dynamo_for_benchmarks()
    if LLM_MODEL in args.models:
        architecture_llm_row.register()
    rows = measure_rows(
        args.models,
        args.batch,
        repeats=args.repeats,
        budget_s=args.budget,
        log=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(format_table(rows))
    print(
        f"\nint8: static PTQ, per-channel symmetric int8 weights, uint8 activations calibrated with ptqlab's "
        f"{CALIBRATOR!r} observer; engine = fastest of {', '.join(ENGINE_RECIPES)} at batch {args.batch[-1]}; "
        "speedup vs fp32 eager in the same interleaved run; size = fp32 / int8 serialized bytes. "
        "Vision rows: small models on the 8×8 digits, not ImageNet. LLaMA row (with --models …,llama): "
        "SmolLM2-135M, RTN W8 per-channel weights (float activations), batch-1 decode speed of the int8 "
        "engines (torchao's, and ONNX Runtime's decode step with a KV cache); 135 M parameters are not 7 B."
    )
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump({"settings": vars(args), "rows": [r.as_dict() for r in rows]}, f, indent=1)
        print(f"wrote {args.json_path}")
    return 0
