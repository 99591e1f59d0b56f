"""Lab 10's sentences and tables: every number in them comes from a result the lab measured (passed in),
so the prose follows the machine and the slice instead of quoting one run."""

from __future__ import annotations

import math

from ptqlab.core.gguf_formats import FORMATS

GOALS = r"""
# Lab 10 — A real LLM, offline: SmolLM2-135M

Everything so far ran on small models. Here the model is a real pretrained decoder LLM —
SmolLM2-135M-Instruct (`LlamaForCausalLM`: 30 blocks, hidden 576, grouped-query attention, tied
embeddings), read from the GGUF file inside a Python wheel, so nothing is downloaded at run time.

**After this lab you can**

1. say what the "full-precision" reference of a published GGUF model really is, and why re-quantizing it
   to its own format changes nothing while "more bits" on another grid loses;
2. read perplexity, KL divergence (mean and 99th percentile) and top-1 agreement — the numbers llama.cpp's
   `perplexity --kl-divergence` prints — and see them in the model's own completions;
3. choose bits, group size and algorithm (RTN, GPTQ, AWQ) for a 4-bit LLM, and count what each costs in
   bits per weight;
4. show why activations, not weights, are the hard part of W8A8 (outlier channels), and what SmoothQuant's
   smoothing does to them;
5. pick the decoder blocks to keep at 8 bits under a size budget from a measured sensitivity;
6. compute llama.cpp's Q8_0 for a block of 32 weights bit for bit.

Every score uses the same slice — the first tokens of the Python standard library's own help text
(`pydoc_data.topics`, in every CPython) — and the same reference:

$$\text{PPL} = \exp\Big(-\tfrac{1}{N}\sum_t \log p(x_t \mid x_{<t})\Big), \qquad
\text{KL}_t = \sum_v P_\text{ref}(v \mid x_{<t})\,\big(\log P_\text{ref} - \log P_q\big), \qquad
\text{top-1} = \tfrac{1}{N}\sum_t [\arg\max P_\text{ref} = \arg\max P_q]$$
"""


def fmt_ppl(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "∞"


def q4_1_markdown(facts: dict) -> str:
    """The Q4_1-origin lesson, with the counts measured on the published weights."""
    hist, blocks, weights = facts["distinct_histogram"], facts["blocks"], facts["weights"]
    most = int(max((i for i in range(len(hist)) if hist[i] > 0), default=0))
    at_16 = int(hist[16]) if len(hist) > 16 else 0
    changed, mse = facts["changed"], facts["relative_mse"]
    rows = ["| re-quantized to | weights that moved | relative error ‖Ŵ − W‖² / ‖W‖² |", "|:---|---:|---:|"]
    for name in changed:
        rows.append(
            f"| {name} | {changed[name]:,} of {weights:,} ({changed[name] / weights:.2%}) | {mse[name]:.2e} |"
        )
    return "\n".join([
        f"Measured on {weights:,} weights ({blocks:,} blocks of 32, the Linears of three of the 30 blocks): "
        f"no block holds more than **{most}** distinct values ({at_16:,} blocks hold exactly 16). A Q4_1 "
        "block stores $\\hat x = d\\,q + m$ with $q \\in 0…15$, $d = (\\max - \\min)/15$ and $m = \\min$, both fp16 — "
        "these weights *are* Q4_1 blocks, dequantized. So the reference of this lab is **the published "
        "weights (dequantized Q4_1)**, not an fp32 training checkpoint.",
        "",
        *rows,
        "",
        f"- **Idempotence.** Q4_1 of a Q4_1 block finds the same min, max, d and m: {changed[next(iter(changed))]:,} weights "
        "move. Re-quantizing to the format a model was published in is free — and tells you nothing about Q4_1's "
        "real cost, which was paid before you got the file.",
        "- **Integer vs float zero point.** ptqlab's asymmetric uint4 (group 32, the same 16 levels) puts its "
        "points at $s\\,(q - z)$ with an *integer* $z$: 0 is on that grid, the block's minimum $m$ is not, so the "
        f"grid sits shifted against the published one and {changed['uint4 g32, integer zero point'] / weights:.1%} "
        "of the weights move.",
        "- **More bits, another grid.** Q5_1's 32 levels $m + k\\,(\\max-\\min)/31$ meet the published "
        "$m + j\\,(\\max-\\min)/15$ only at the two ends (31 and 15 share no factor): "
        f"{changed['GGUF Q5_1 (5 bits, another grid)'] / weights:.1%} of the weights move, and the model gets "
        "worse than the 4-bit file it came from (the scores below).",
    ])  # fmt: skip


def block_caption(values, grids: dict) -> str:
    """How many of the block's 32 weights lie exactly on each grid."""
    parts = []
    for name, points in grids.items():
        on = int(sum(bool((points == v).any()) for v in values))
        parts.append(f"{name}: **{on}** of 32")
    return "Weights exactly on each grid — " + "; ".join(parts) + "."


def result_markdown(label: str, result: dict, reference: dict) -> str:
    """The setting's scores against the reference's."""
    delta = result["ppl"] - reference["ppl"]
    return (
        f"**{label}** — {result['bits_per_weight']:.3g} bits per weight, quantized in {result['seconds']:.1f} s "
        f"(on this machine, under its current load)\n\n"
        f"| | PPL | ΔPPL | KL mean | KL p99 | top-1 agreement |\n|:---|---:|---:|---:|---:|---:|\n"
        f"| the published weights (dequantized Q4_1) | {fmt_ppl(reference['ppl'])} | | | | |\n"
        f"| {label} | {fmt_ppl(result['ppl'])} | {delta:+.2f} | {result['kl_mean']:.4f} | {result['kl_p99']:.3f} | "
        f"{result['top1']:.1%} |\n\n"
        f"Scored on {result['tokens']} tokens."
    )


def completions_markdown(prompts, reference: dict, result: dict, label: str) -> str:
    """The greedy completions side by side (newlines shown as ⏎)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", "⏎").replace("`", "\\`") or "∅"

    rows = [f"| prompt | the published weights | {label} |", "|:---|:---|:---|"]
    for p, a, b in zip(prompts, reference["completions"], result["completions"], strict=True):
        same = " (same)" if a == b else ""
        rows.append(f"| {cell(p)} | {cell(a)} | {cell(b)}{same} |")
    return "\n".join(rows)


def scores_table(rows: list, reference_label: str) -> str:
    """Every scored setting at hand, best PPL first."""
    lines = [
        "| setting | bits / weight | PPL | KL mean | KL p99 | top-1 |",
        "|:---|---:|---:|---:|---:|---:|",
    ]
    for s, r in rows:
        name = reference_label if s is None else s.label
        if s is None:
            lines.append(f"| **{name}** | {r['bits_per_weight']:.3g} | {fmt_ppl(r['ppl'])} | 0 | 0 | 100% |")
            continue
        lines.append(f"| {name} | {r['bits_per_weight']:.3g} | {fmt_ppl(r['ppl'])} | {r['kl_mean']:.4f} | "
                     f"{r['kl_p99']:.3f} | {r['top1']:.1%} |")  # fmt: skip
    return "\n".join(lines)


def gguf_table(rows: list[dict]) -> str:
    """Block layout → bits per weight (always), and the scores of the formats already scored."""
    lines = ["| format | code bits | stores per block of 32 | bytes / block | bits / weight | PPL | KL mean | top-1 |",
             "|:---|---:|:---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        f = FORMATS[r["format"]]
        layout = (
            "fp16 d" + (", fp16 m" if f.offset else "") + (", 4 bytes of 5th bits" if f.bits == 5 else "")
        )
        layout += f", {32 * min(f.bits, 8) // 8 if f.bits != 5 else 16} bytes of codes"
        scored = "ppl" in r
        tail = f"{fmt_ppl(r['ppl'])} | {r['kl_mean']:.4f} | {r['top1']:.1%}" if scored else "— | — | —"
        lines.append(
            f"| {r['format']} | {f.bits} | {layout} | {f.block_bytes} | {f.bits_per_weight:g} | {tail} |"
        )
    return "\n".join(lines)


def outlier_markdown(layer: str, stats: dict, alpha: float) -> str:
    return (
        f"**{layer}**: the largest activation channel is **{stats['ratio']:.1f}×** the median channel "
        f"(channels {', '.join(map(str, stats['top_channels']))} lead), so one per-tensor int8 scale leaves the "
        f"median channel about **{stats['levels']:.0f}** of 255 levels. After smoothing with α = {alpha:g}: "
        f"**{stats['ratio_after']:.1f}×**, about **{stats['levels_after']:.0f}** levels — the weights' columns "
        "grow by the same factors s_j, and per-channel weight scales absorb them."
    )


def w8a8_markdown(reference: dict, rtn: dict, smooth: dict) -> str:
    gap = (smooth["ppl"] - reference["ppl"]) / reference["ppl"]
    return (
        "| W8A8 (per-channel int8 weights, per-tensor uint8 activations) | PPL | KL mean | top-1 |\n"
        "|:---|---:|---:|---:|\n"
        f"| RTN | {fmt_ppl(rtn['ppl'])} | {rtn['kl_mean']:.4f} | {rtn['top1']:.1%} |\n"
        f"| SmoothQuant | {fmt_ppl(smooth['ppl'])} | {smooth['kl_mean']:.4f} | {smooth['top1']:.1%} |\n\n"
        f"SmoothQuant's PPL is {gap:+.1%} from the reference's {fmt_ppl(reference['ppl'])} on this slice "
        f"(RTN W8A8: {(rtn['ppl'] - reference['ppl']) / reference['ppl']:+.1%})."
    )


def sensitivity_markdown(choice: dict, k: int, total_blocks: int) -> str:
    g, c = choice["greedy"], choice["control"]
    blocks = ", ".join(map(str, choice["blocks"])) or "none"
    return (
        f"Keeping **{k}** of {total_blocks} blocks at 8 bits (the rest W4 g64) costs **{choice['megabytes']:.1f} MB** "
        f"of Linear weights. Kept: {blocks}.\n\n"
        "| which blocks stay at 8 bits | PPL | KL mean | top-1 |\n|:---|---:|---:|---:|\n"
        f"| the {k} most sensitive (greedy) | {fmt_ppl(g['ppl'])} | {g['kl_mean']:.4f} | {g['top1']:.1%} |\n"
        f"| the {k} least sensitive (control) | {fmt_ppl(c['ppl'])} | {c['kl_mean']:.4f} | {c['top1']:.1%} |"
    )


def speed_findings(rows, isa: dict[str, bool]) -> str:
    """What the measured speed table says, filled from its rows: the fastest int8 and int4 engines against
    fp32 eager, how much of an ONNX Runtime speedup is the runtime (ORT fp32) rather than the bits, and the
    CPU features the int8 kernels depend on."""
    from ptqlab.bench.llm_speed import best_speedup

    lines = []
    for kind in ("int8", "int4"):
        best = best_speedup(rows, kind)
        lines.append(f"- Fastest {kind} engine here: **{best[0]}**, {best[1]:.2f}× fp32 eager decode tokens/s."
                     if best else f"- No {kind} engine ran here (see the table's notes).")  # fmt: skip
    runtime = best_speedup(rows, "ORT fp32")
    if runtime is not None:
        lines.append(
            f"- ONNX Runtime *without* quantization already decodes {runtime[1]:.2f}× fp32 eager: one graph, no "
            "Python between operations. What the bits add is each quantized ORT row's speed over ORT fp32"
            + "".join(f"; {k}: {b[1] / runtime[1]:.2f}×" for k in ("int8", "int4")
                      if (b := best_speedup([r for r in rows if "ORT" in r.name or r.name == "fp32 eager"], k)))
            + "."
        )  # fmt: skip
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in isa.items())
    lines.append(
        f"- This CPU: {flags}. The int8 kernels (ORT's MatMulNBits at accuracy level 4, quantize_dynamic, "
        "torchao's int8) use int8 dot products where VNNI/AMX exist and slower paths where they do not: the "
        "ratios above belong to this machine, under its current load."
    )
    lines.append(
        "- torch's threads here wait passively (`OMP_WAIT_POLICY=PASSIVE`, set by ptqlab so that timings "
        "on 2 cores do not fight spinning threads); a torch whose threads spin decodes faster in eager mode, "
        "so fp32 eager is a fair baseline, not torch's best."
    )
    return "\n".join(lines)


def speed_markdown(rows, bandwidth: float, isa: dict[str, bool] | None = None) -> str:
    """The batch-1 speed table with each row's share of the decode roofline and what each engine is; with
    the CPU's ``isa`` flags, followed by ``speed_findings``."""
    lines = [f"Read bandwidth measured now: **{bandwidth / 1e9:.1f} GB/s**. Decode roofline = that ÷ weight bytes read "
             "per token.", "",
             "| engine | prefill 128 tok (ms) | decode tok/s | weight MB / token | roofline tok/s | % of roofline | what it is |",
             "|:---|---:|---:|---:|---:|---:|:---|"]  # fmt: skip
    fp32 = next((r for r in rows if r.name == "fp32 eager"), None)
    for r in rows:
        if r.note:
            lines.append(f"| {r.name} | {r.note} | | | | | |")
            continue
        speed = (
            f" ({r.decode_tokens_per_s / fp32.decode_tokens_per_s:.2f}× fp32)"
            if fp32 and r is not fp32
            else ""
        )
        lines.append(f"| {r.name} | {r.prefill_ms:.0f} ± {r.prefill_spread_ms / 2:.0f} | {r.decode_tokens_per_s:.1f}{speed} | "
                     f"{r.weight_bytes / 1e6:.0f} | {r.roofline_tokens_per_s:.1f} | {r.roofline_fraction:.0%} | "
                     f"{r.detail} |")  # fmt: skip
    if isa is not None:
        lines += ["", speed_findings(rows, isa)]
    return "\n".join(lines)


def recap_markdown(reference: dict, results: dict, facts: dict) -> str:
    """The recap from the measured results (``results``: setting label → result, those at hand)."""
    weights = facts["weights"]
    lines = ["## Recap", "",
             f"- The reference is the published Q4_1 model (PPL {fmt_ppl(reference['ppl'])} on the lab's slice); "
             f"re-quantizing it to Q4_1 moved {facts['changed']['GGUF Q4_1 (the published grid)']:,} of {weights:,} "
             f"weights, to Q5_1 {facts['changed']['GGUF Q5_1 (5 bits, another grid)'] / weights:.1%} of them."]  # fmt: skip
    for label, r in results.items():
        lines.append(f"- {label}: PPL {fmt_ppl(r['ppl'])}, KL mean {r['kl_mean']:.3f}, top-1 {r['top1']:.0%} at "
                     f"{r['bits_per_weight']:.3g} bits per weight.")  # fmt: skip
    lines.append(
        "- Decode at batch 1 reads every weight once per token: its speed limit is bandwidth ÷ bytes, "
        "which is why 4-bit formats exist — measure the engines here before believing a speedup."
    )
    return "\n".join(lines)


def disagreement_markdown(rows: list) -> str:
    """Where PPL and KL rank two scored settings in opposite orders (the pair with the widest KL gap), or
    that they agree everywhere."""
    scored = [(s.label, r) for s, r in rows if s is not None]
    worst = None
    for i, (a, ra) in enumerate(scored):
        for b, rb in scored[i + 1 :]:
            if (ra["ppl"] - rb["ppl"]) * (ra["kl_mean"] - rb["kl_mean"]) < 0:
                gap = abs(ra["kl_mean"] - rb["kl_mean"])
                if worst is None or gap > worst[0]:
                    worst = (gap, (a, ra), (b, rb))
    if worst is None:
        return f"On these {len(scored)} settings PPL and KL mean rank every pair in the same order."
    (_, (a, ra), (b, rb)) = worst
    lo_ppl, hi_ppl = sorted([(a, ra), (b, rb)], key=lambda t: t[1]["ppl"])
    return (
        f"**PPL and KL disagree:** {lo_ppl[0]} has the lower PPL ({fmt_ppl(lo_ppl[1]['ppl'])} vs "
        f"{fmt_ppl(hi_ppl[1]['ppl'])}) but the *higher* KL ({lo_ppl[1]['kl_mean']:.3f} vs {hi_ppl[1]['kl_mean']:.3f}). "
        f"PPL on {lo_ppl[1]['tokens']} tokens moves with which tokens happen to get likelier; KL compares the whole "
        "next-token distribution with the reference at every position, which is why llama.cpp reports it for "
        "near-lossless formats."
    )
