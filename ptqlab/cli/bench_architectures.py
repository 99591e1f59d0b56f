"""``ptqlab bench architectures``: the seed's architecture table next to the one measured on this machine.

ptqlab bench architectures [--models resnet,mobilenetv2,minilm,vit] [--batch 1,64] [--repeats 10]
                           [--threads 2] [--json out.json]

Vision rows are small models trained on the 8×8 digits ("ResNet-style on digits", …), not ImageNet models;
the BERT row is MiniLM; the LLaMA row is pending SmolLM2 (issue 20). See ``ptqlab.bench.architectures``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from ptqlab.bench import run as bench
from ptqlab.bench.architectures import (
    BASELINES,
    CALIBRATOR,
    ENGINE_RECIPES,
    MEASURED_MODELS,
    format_table,
    llm_row,
    summarize,
)
from ptqlab.bench.models import ModelUnavailable, load_bench_model
from ptqlab.cli.bench_models import writable_target

ARCH_MODELS = tuple(MEASURED_MODELS.values())


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
    p.add_argument("--models", default=",".join(ARCH_MODELS))
    p.add_argument("--batch", type=positive_ints, default=[1, 64], help="the last one should fill the cores")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--budget", type=float, default=10.0, help="max seconds of timed calls per variant")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--json", dest="json_path")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in args.models if m not in ARCH_MODELS]
    if bad or not args.models:
        p.error(f"--models: unknown {bad}; choose from {', '.join(ARCH_MODELS)}")
    if args.repeats < 1 or args.threads < 1 or not args.budget > 0:
        p.error("--repeats and --threads must be >= 1, --budget > 0")
    why = args.json_path and writable_target(args.json_path, is_dir=False)
    if why:
        p.error(f"--json: {why}")
    return args


def measure(args) -> list:
    """One ArchitectureRow per seed row (the LLaMA row from the hook)."""
    rows = []
    for seed_name, name in MEASURED_MODELS.items():
        if name not in args.models:
            continue
        try:
            bm = load_bench_model(name)
        except ModelUnavailable as e:
            from ptqlab.bench.architectures import ArchitectureRow

            rows.append(ArchitectureRow(seed_name, name, why=[f"model unavailable: {e}"]))
            continue
        print(f"{bm.title}: quality on {bm.eval_set}", file=sys.stderr, flush=True)
        measured, cache = [], {}
        for b in args.batch:
            measured += bench.run_group(
                bm,
                b,
                recipes=[*BASELINES, *ENGINE_RECIPES],
                compiled=[],
                repeats=args.repeats,
                budget_s=args.budget,
                observer=CALIBRATOR,
                cache=cache,
            )
            bench.reset_compiled()
        rows.append(summarize(bm, seed_name, measured, args.batch))
        if seed_name == "BERT-Base":
            rows.append(llm_row())
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse(list(sys.argv[1:] if argv is None else argv))
    torch.set_num_threads(args.threads)
    bench.dynamo_for_benchmarks()
    rows = measure(args)
    order = [n for n in ("ResNet-50", "MobileNetV2", "BERT-Base", "LLaMA-7B", "Vision Transformer")]
    rows.sort(key=lambda r: order.index(r.seed_name))
    print(format_table(rows))
    print(
        f"\nint8: static PTQ, per-channel symmetric int8 weights, uint8 activations calibrated with ptqlab's "
        f"{CALIBRATOR!r} observer; engine = fastest of {', '.join(ENGINE_RECIPES)} at batch {args.batch[-1]}; "
        "speedup vs fp32 eager in the same interleaved run; size = fp32 / int8 serialized bytes. "
        "Vision rows: small models on the 8×8 digits, not ImageNet."
    )
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump({"settings": vars(args), "rows": [r.as_dict() for r in rows]}, f, indent=1)
        print(f"wrote {args.json_path}")
    return 0
