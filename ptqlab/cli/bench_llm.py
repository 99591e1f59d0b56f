"""``ptqlab bench llm``: every scheme on SmolLM2-135M — perplexity, KL, top-1, quantize time and peak
memory (the RSS high-water mark during the quantize call) — beside the seed's LLaMA-7B row. The reference is
"the published weights (dequantized Q4_1)". ``--json`` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import time

from ptqlab.backends.quiet import silence_torchao_import_noise
from ptqlab.bench.llm_schemes import SCHEMES, scheme_table
from ptqlab.bench.llm_speed import best_speedup, speed_table, weight_bytes
from ptqlab.models.llm_text import BENCH_EVAL_TOKENS, calibration_batches, corpus_tokens
from ptqlab.models.smollm2 import load_smollm2
from ptqlab.ptq.llm_eval import greedy_completions, make_windows, reference_logprobs, score_lm

silence_torchao_import_noise()  # transformers and the int8 engines import torchao: its CPU-irrelevant messages

SEED_ROW = {"model": "LLaMA-7B (seed)", "fp_ppl": 45.3, "int8_ppl": 46.1, "speedup": 2.1, "size_ratio": 4.0}
NOTE = "135 M parameters are not 7 B: small models lose more per bit, and the seed's numbers are not ours."


def rtn_key(key: str) -> str:
    """The RTN scheme an algorithm row is compared with: gptq-w4g64 -> rtn-w4g64."""
    return "rtn-" + key.split("-", 1)[1] if "-" in key else key


def gap_closed(reference: float, rtn: float | None, ppl: float) -> str:
    """The share of RTN's PPL excess over the reference that a row removes, (RTN − PPL) / (RTN − ref)."""
    if rtn is None or ppl == rtn or rtn <= reference:
        return ""
    return f"{100 * (rtn - ppl) / (rtn - reference):.0f} %"


def _markdown(reference, rows) -> str:
    lines = [
        "| scheme | PPL | gap closed | KL mean | KL p99 | KL max | top-1 | quantize s | peak RSS MB (rise) |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| the published weights (dequantized Q4_1) | {reference.ppl:.2f} | | 0 | 0 | 0 | 1 | – | – |",
    ]
    baselines = {r.key: r.score.ppl for r in rows if r.key.startswith("rtn-")}
    for r in rows:
        s = r.score
        closed = gap_closed(reference.ppl, baselines.get(rtn_key(r.key)), s.ppl)
        memory = "–" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f} ({r.rss_rise_mb:+.0f})"
        lines.append(
            f"| {r.label} | {s.ppl:.2f} | {closed} | {s.kl_mean:.4f} | {s.kl_p99:.3f} | {s.kl_max:.2f} | "
            f"{s.top1:.3f} | {r.quantize_seconds:.1f} | {memory} |"
        )
    return "\n".join(lines)


def _speed_markdown(rows) -> str:
    lines = [
        "| engine | prefill 1×128 ms | decode tok/s | × fp32 eager | weight MB/token | roofline tok/s | "
        "% of roofline | what |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fp32 = next((r for r in rows if r.name == "fp32 eager" and not r.note), None)
    for r in rows:
        if r.note:
            lines.append(f"| {r.name} | {r.note} | | | | | | |")
            continue
        ratio = f"{r.decode_tokens_per_s / fp32.decode_tokens_per_s:.2f}×" if fp32 else ""
        lines.append(
            f"| {r.name} | {r.prefill_ms:.0f} ± {r.prefill_spread_ms / 2:.0f} | {r.decode_tokens_per_s:.1f} | "
            f"{ratio} | {r.weight_bytes / 1e6:.0f} | {r.roofline_tokens_per_s:.1f} | "
            f"{100 * r.roofline_fraction:.0f} % | {r.detail} |"
        )
    return "\n".join(lines)


def _our_row(model, ref_score, w8, speed) -> dict:
    """The seed's LLM row measured here: fp / RTN W8 PPL, ΔPPL, the best int8 (and int4) engine's decode
    speedup over fp32 eager, and the bytes read per decoded token fp32 / int8 (every Linear, the head included;
    the embedding lookup reads one row, so unlike a state dict it does not count)."""
    row = {"model": "SmolLM2-135M (measured)", "fp_ppl": round(ref_score.ppl, 3)}
    if w8 is not None:
        row |= {"int8_ppl": round(w8.score.ppl, 3), "delta_ppl": round(w8.score.ppl - ref_score.ppl, 3)}
    for kind in ("int8", "int4"):
        best = best_speedup(speed, kind)
        if best is not None:
            row[f"{kind}_speedup"], row[f"{kind}_engine"] = round(best[1], 2), best[0]
    row["weights_read_ratio"] = round(weight_bytes(model, 4.0) / weight_bytes(model, 1.0), 2)
    return row


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ptqlab bench llm", description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=BENCH_EVAL_TOKENS, help="evaluation tokens")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--calibration", type=int, default=16, help="calibration sequences")
    parser.add_argument("--calibration-length", type=int, default=256, help="tokens per calibration sequence")
    parser.add_argument("--schemes", nargs="+", choices=sorted(SCHEMES), default=list(SCHEMES))
    parser.add_argument("--no-speed", action="store_true", help="skip the prefill/decode speed table")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    model, tokenizer = load_smollm2()
    windows = make_windows(corpus_tokens(tokenizer, args.tokens), args.window)
    reference = reference_logprobs(model, windows, progress=True)
    ref_score = score_lm(model, windows)
    calibration = calibration_batches(tokenizer, args.calibration, args.calibration_length)
    rows = scheme_table(model, windows, reference, calibration, keys=args.schemes, progress=True)
    w8 = next((r for r in rows if r.key == "rtn-w8"), None)
    speed, bandwidth = ([], 0.0) if args.no_speed else speed_table(model)
    ours = _our_row(model, ref_score, w8, speed)
    if args.json:
        payload = {
            "speed": [r._asdict() for r in speed],
            "bandwidth_gb_s": bandwidth / 1e9,
            "slice": f"first {args.tokens} tokens of pydoc_data.topics, windows of {args.window}",
            "calibration": f"{args.calibration} × {args.calibration_length} tokens from token 65,536 on",
            "reference": ref_score._asdict(),
            "schemes": [
                {
                    "key": r.key,
                    "label": r.label,
                    "seconds": r.quantize_seconds,
                    "peak_rss_mb": r.peak_rss_mb,
                    "rss_rise_mb": r.rss_rise_mb,
                    **r.score._asdict(),
                }
                for r in rows
            ],
            "llm_row": [SEED_ROW, ours],
            "note": NOTE,
            "completions": greedy_completions(model, tokenizer),
        }
        print(json.dumps(payload, indent=2))
        return 0
    print(f"SmolLM2-135M on the first {args.tokens} tokens of pydoc_data.topics (windows of {args.window})")
    print(_markdown(ref_score, rows))
    if speed:
        print(f"\nbatch-1 speed (bandwidth measured: {bandwidth / 1e9:.1f} GB/s)")
        print(_speed_markdown(speed))
    print(f"\nseed: {SEED_ROW}\nours: {ours}\n{NOTE}")
    print(f"\n({time.perf_counter() - start:.1f} s)")
    return 0
