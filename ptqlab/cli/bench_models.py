"""``ptqlab bench models``: every recipe on every model, measured side by side in one process.

ptqlab bench models [--models mlp,cnn,minilm,membound] [--recipes ...] [--compile fp32,ao-dynamic-int8]
                    [--batch 1,64] [--repeats 20] [--threads 2] [--json out.json] [--charts DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from ptqlab.backends import RECIPES
from ptqlab.backends.hardware import hardware_facts
from ptqlab.bench import run as bench
from ptqlab.bench.models import MODEL_NAMES, ModelUnavailable, load_bench_model
from ptqlab.bench.report import bench_table, evaluate_goals, goals_text
from ptqlab.bench.timing import measure_read_bandwidth


def _csv(text: str, allowed, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad:
        raise SystemExit(f"unknown {what} {bad}; choose from {', '.join(allowed)}")
    return items


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected positive integers separated by commas, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def writable_target(path: str, *, is_dir: bool) -> str | None:
    """None when ``path`` can be written, else why not: a file's folder must exist; a charts folder may
    be created (its nearest existing ancestor is probed). Probing creates and removes a temporary file."""
    target = Path(path)
    if is_dir and target.exists() and not target.is_dir():
        return f"{path} exists and is not a folder"
    if not is_dir and target.is_dir():
        return f"{path} is a folder"
    if not is_dir and not target.parent.is_dir():
        return f"cannot write under {target.parent} (no such folder)"
    probe = target if is_dir else target.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        if is_dir and probe != target:
            tempfile.TemporaryDirectory(dir=probe).cleanup()
        else:
            with tempfile.TemporaryFile(dir=probe):
                pass
    except OSError as e:
        return f"cannot write under {probe} ({e.strerror or e})"
    return None


def device_problem(text: str) -> str | None:
    """None when ``text`` names a device torch can use here, else why not."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        return f"unknown device {text!r} (try cpu or cuda)"
    if device.type == "cuda" and not torch.cuda.is_available():
        return "--device cuda, but CUDA is not available here (torch.cuda.is_available() is False)"
    if device.type not in ("cpu", "cuda"):
        return f"--device {text}: only cpu and cuda are supported"
    return None


def _check(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from ptqlab.observers import OBSERVERS

    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.warmup < 0:
        p.error(f"--warmup must be >= 0, got {args.warmup}")
    if not (math.isfinite(args.budget) and args.budget > 0):
        p.error(f"--budget must be a positive number of seconds, got {args.budget}")
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    if args.bandwidth_mib < 1:
        p.error(f"--bandwidth-mib must be >= 1, got {args.bandwidth_mib}")
    if args.observer not in OBSERVERS:
        p.error(f"unknown --observer {args.observer!r}; choose from {', '.join(sorted(OBSERVERS))}")
    problem = device_problem(args.device)
    if problem:
        p.error(problem)
    for flag, path, is_dir in (("--json", args.json_path, False), ("--charts", args.charts_dir, True)):
        why = path and writable_target(path, is_dir=is_dir)
        if why:
            p.error(f"{flag}: {why}")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ptqlab bench models", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--models", default=",".join(MODEL_NAMES))
    p.add_argument("--recipes", default=",".join(RECIPES))
    p.add_argument(
        "--compile",
        default=",".join(bench.DEFAULT_COMPILED),
        help="recipes to also time under torch.compile ('' for none)",
    )
    p.add_argument("--batch", type=_positive_ints, default=[1, 64])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument(
        "--budget",
        type=float,
        default=20.0,
        help="max seconds of timed calls per variant (slow ones get fewer repeats)",
    )
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--observer", default="minmax", help="ptqlab observer for calibrated activation ranges")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--bandwidth-mib", type=int, default=1024, help="size of the tensor summed to measure bandwidth"
    )
    p.add_argument("--json", dest="json_path")
    p.add_argument("--charts", dest="charts_dir")
    args = p.parse_args(argv)
    _check(p, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(list(sys.argv[1:] if argv is None else argv))
    models = _csv(args.models, MODEL_NAMES, "model(s)")
    recipes = _csv(args.recipes, list(RECIPES), "recipe(s)")
    compiled = _csv(args.compile, list(RECIPES), "recipe(s) to compile")
    batches = args.batch
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    facts = hardware_facts(device)
    print(f"hardware: {facts.summary()}")
    for note in facts.notes:
        print(f"  note: {note}")
    bench.dynamo_for_benchmarks()
    bandwidth, bw_stats = measure_read_bandwidth(args.bandwidth_mib << 20, device=device)
    median_bw = args.bandwidth_mib * 2**20 / bw_stats.median_s / 1e9
    print(
        f"memory read bandwidth: {bandwidth / 1e9:.1f} GB/s (fastest of {bw_stats.n} passes of sum / GEMV "
        f"over {args.bandwidth_mib} MiB; median {median_bw:.1f} GB/s)"
    )
    started = time.time()
    rows, skipped = _measure_all(
        args, models, batches, recipes=recipes, compiled=compiled, bandwidth=bandwidth
    )
    print(
        f"\n{len(rows)} rows in {time.time() - started:.0f} s; speedup = fp32 eager median / variant median, "
        f"same run; roofline = (weight bytes / {bandwidth / 1e9:.1f} GB/s) / median"
    )
    print(bench_table(rows, args.repeats))
    goals = evaluate_goals(rows)
    print("\ngoals\n" + goals_text(goals))
    report = {
        "hardware": facts.as_dict(),
        "bandwidth_bytes_per_s": bandwidth,
        "settings": dict(vars(args)),
        "rows": [r.as_dict() for r in rows],
        "skipped_models": skipped,
        "goals": [g.__dict__ for g in goals],
    }
    return _write_outputs(args, report, rows, bandwidth)


def _measure_all(args, models, batches, *, recipes, compiled, bandwidth) -> tuple[list, list[dict]]:
    """Every model × batch group, one progress bar; models that cannot load become skipped entries."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(models) * len(batches), desc="bench", unit="group", file=sys.stderr)
    rows, skipped = [], []
    for name in models:
        try:
            bm = load_bench_model(name)
        except ModelUnavailable as e:
            skipped.append({"model": name, "reason": str(e)})
            print(f"\n{name}: not available — {e}")
            bar.update(len(batches))
            continue
        tqdm.write(f"{name}: quality on {bm.eval_set}", file=sys.stderr)
        cache: dict = {}
        for b in batches:
            bar.set_postfix_str(f"{name} b{b}")
            rows += bench.run_group(
                bm,
                b,
                recipes=recipes,
                compiled=compiled,
                repeats=args.repeats,
                warmup=args.warmup,
                budget_s=args.budget,
                bandwidth=bandwidth,
                device=args.device,
                observer=args.observer,
                cache=cache,
                step=lambda desc: bar.set_postfix_str(desc, refresh=False),
            )
            bench.reset_compiled()
            bar.update(1)
        del cache, bm
    bar.close()
    return rows, skipped


def _write_outputs(args, report: dict, rows, bandwidth: float) -> int:
    """Write the JSON report and the charts; a failure is one line (the table above is already printed)."""
    failed = 0
    if args.json_path:
        try:
            tmp = f"{args.json_path}.tmp"
            with open(tmp, "w") as f:
                json.dump(report, f, indent=1)
            os.replace(tmp, args.json_path)
            print(f"wrote {args.json_path}")
        except OSError as e:
            failed = 1
            print(
                f"could not write --json {args.json_path}: {e} (the table above has the results)",
                file=sys.stderr,
            )
    if args.charts_dir:
        from ptqlab.bench.charts import save_charts

        try:
            for path in save_charts(rows, bandwidth, args.charts_dir):
                print(f"wrote {path}")
        except OSError as e:
            failed = 1
            print(
                f"could not write --charts {args.charts_dir}: {e} (the table above has the results)",
                file=sys.stderr,
            )
    return failed
