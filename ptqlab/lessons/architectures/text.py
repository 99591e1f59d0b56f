"""Lab 11's sentences and tables. Every number, and every verdict ("collapses", "recovers", "helps"), comes
from what the lab measured: the functions take the measured results and say what they show."""

from __future__ import annotations

from ptqlab.backends.hardware import HardwareFacts
from ptqlab.bench.architectures import ENGINE_RECIPES, SEED_TABLE, ArchitectureRow
from ptqlab.lessons.architectures.numbers import FIX

COLLAPSE_POINTS = 5.0  # per-tensor below per-channel by more than this: "collapses"
RECOVERY_POINTS = 2.0  # the bar: CLE (+ BC) within 2 points of per-channel
NOISE_IMAGES = 2  # accuracy differences of up to this many test images are called noise
SITE_NAMES = {"layernorm": "after LayerNorm", "softmax": "after softmax", "gelu": "after GELU"}
FIX_NAMES = {"per_channel": "per-channel (one scale per embedding dim)", "log2": "log2 grid",
             "twin_uniform": "twin-uniform (separate grids for < 0 and ≥ 0)"}  # fmt: skip


def _quality(row: ArchitectureRow, value: float | None) -> str:
    if value is None:
        return "—"
    if row.seed_name == "LLaMA-7B":
        return f"{value:.2f} PPL"
    if row.seed_name == "BERT-Base":
        return f"{value:.4f} cos"
    return f"{100 * value:.2f} %"


def _delta(row: ArchitectureRow) -> str:
    if row.delta is None:
        return "—"
    if row.seed_name == "LLaMA-7B":
        return f"{row.delta:+.2f} PPL"
    if row.seed_name == "BERT-Base":
        return f"{row.delta:+.4f}"
    return f"{100 * row.delta:+.2f} pts"


def seed_markdown() -> str:
    """The seed's table alone (before anything is measured)."""
    lines = ["| architecture | fp32 | int8 | Δ | speedup | size |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in SEED_TABLE]
    return "\n".join(lines)


def table_markdown(rows: list[ArchitectureRow]) -> str:
    """The seed's claims and the measured row side by side, then every reason a cell is empty."""
    seed = {s[0]: s for s in SEED_TABLE}
    lines = [
        "| seed row | seed: fp32 → int8 (Δ) | seed speedup | seed size | measured here on | fp32 | int8 | Δ | "
        "fastest int8 engine | speedup (batch) | size fp32/int8 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for r in rows:
        s = seed[r.seed_name]
        speed = ", ".join(f"{v:.2f}× (b{b})" for b, v in r.speedup.items()) or "—"
        size = f"{r.size_ratio:.2f}×" if r.size_ratio else "—"
        lines.append(
            f"| {r.seed_name} | {s[1]} → {s[2]} ({s[3]}) | {s[4]} | {s[5]} | {r.measured_on} | "
            f"{_quality(r, r.fp32)} | {_quality(r, r.int8)} | {_delta(r)} | {r.engine or '—'} | {speed} | {size} |"
        )
        notes += [f"- **{r.seed_name}**: {w}" for w in r.why]
    text = "\n".join(lines)
    if notes:
        text += "\n\n**Why a cell is empty or qualified:**\n\n" + "\n".join(notes)
    return text


def table_verdict(rows: list[ArchitectureRow], facts: HardwareFacts) -> str:
    """Per measured row: is int8 within 1 point (vision) of fp32, and does the seed's speedup hold here?"""
    seed = {s[0]: s for s in SEED_TABLE}
    out = []
    for r in rows:
        if r.fp32 is None or r.int8 is None or not r.speedup:
            continue
        claimed = float(seed[r.seed_name][4].rstrip("×"))
        batch, measured = max(r.speedup.items())
        held = "holds" if measured >= claimed else "does not hold"
        quality = ""
        if r.seed_name not in ("BERT-Base", "LLaMA-7B"):
            within = abs(100 * r.delta) <= 1.0
            quality = f"int8 is {'within' if within else 'more than'} 1 point of fp32 ({_delta(r)}); "
        out.append(
            f"- **{r.seed_name}** ({r.measured_on}): {quality}the seed's {claimed:.1f}× {held} here: "
            f"{r.engine} runs {measured:.2f}× fp32 eager at batch {batch}."
        )
    flags = [k for k, v in facts.isa.items() if v]
    vnni = any("vnni" in k for k in flags)
    out.append(
        f"\nMeasured on {facts.cpu_model} ({facts.logical_cores} logical cores, {facts.torch_threads} torch "
        f"threads; int8 instructions: {', '.join(flags) or 'none of the listed'}). "
        + (
            "With VNNI an int8 multiply-add is one instruction; "
            if vnni
            else "Without VNNI every int8 multiply-add takes several AVX2 instructions, which caps the int8 gain; "
        )  # fmt: skip
        + "the seed's numbers come from other hardware and other (much larger) models, so rerun this on "
        "yours before trusting either. Engines tried: " + ", ".join(ENGINE_RECIPES) + "."
    )
    return "\n".join(out)


def table_section(rows: list[ArchitectureRow], origin: str, facts: HardwareFacts) -> str:
    """Where the table comes from, the table, and its verdicts."""
    return f"**{origin}**\n\n" + table_markdown(rows) + "\n\n" + table_verdict(rows, facts)


def folding_markdown(r: dict) -> str:
    """The ResNet-style model with and without its BatchNorms, in one sentence pair."""
    same = (
        "every prediction is the same"
        if r["same_predictions"]
        else f"predictions differ (accuracy {100 * r['accuracy']:.2f} % → {100 * r['accuracy_folded']:.2f} %)"
    )
    exact = r["max_abs_diff"] <= 1e-4 * max(1.0, r["max_abs_logit"])
    return (
        f"Folding the {r['pairs']} BatchNorms of the ResNet-style model into their convolutions changes its "
        f"logits on the {r['n']} test digits by at most **{r['max_abs_diff']:.1e}** (logits up to "
        f"{r['max_abs_logit']:.1f}) and {same}: folding is "
        + ("exact up to float rounding" if exact else "**not** exact here")
        + f". The folded weights are what the engine quantizes: the factors s = γ/√(σ²+ε) range from "
        f"{r['factor_min']:.3g} to {r['factor_max']:.3g}, so folding also sets how uneven the channels' "
        "ranges are — which is exactly MobileNetV2's problem below."
    )


def _points(study: dict, key: str) -> float:
    return 100 * study["accuracy"][key]


def mobilenet_table(study: dict) -> str:
    """Accuracy of every DFQ variant (weights only, and with uint8 activations)."""
    lines = ["| variant | W8 (float activations) | W8A8 (uint8 min/max activations) |", "|---|---|---|"]
    for name in ("per-tensor", "per-channel", "CLE + per-tensor", "CLE + bias correction + per-tensor"):
        lines.append(
            f"| {name} | {_points(study, name + ' W8'):.2f} % | {_points(study, name + ' W8A8'):.2f} % |"
        )
    lines.append(
        f"\n*fp32: {100 * study['fp32']:.2f} %; with ReLU6 → ReLU (what CLE equalizes): "
        f"{100 * study['fp32_relu']:.2f} %. " + "; ".join(study["notes"]) + ".*"
    )
    return "\n".join(lines)


def mobilenet_verdict(study: dict, spread: dict, factor: int) -> str:
    """Did per-tensor collapse, did CLE (+ bias correction) recover, and the channel spread that decides it."""
    pt, pc = _points(study, "per-tensor W8A8"), _points(study, "per-channel W8A8")
    cle = _points(study, "CLE + bias correction + per-tensor W8A8")
    subject = (
        "the trained MobileNetV2-style model"
        if factor == 1
        else f"the model unequalized ×{factor} (same float function, channels rescaled)"
    )
    collapsed = pc - pt > COLLAPSE_POINTS
    lines = [
        f"On {subject}, the widest folded depthwise channel range is **{spread['ratio']:.1f}×** the narrowest "
        f"(in `{spread['layer']}`), so one per-tensor int8 scale leaves the narrowest channel about "
        f"**{spread['levels']:.1f}** of 127 levels.",
        (
            f"Per-tensor W8A8 **collapses**: {pt:.2f} % against {pc:.2f} % per-channel."
            if collapsed
            else f"Per-tensor W8A8 does **not** collapse: {pt:.2f} % against {pc:.2f} % per-channel "
            f"({pc - pt:+.2f} points) — {spread['levels']:.0f} levels are enough."
        ),
    ]
    if collapsed:
        recovered = pc - cle <= RECOVERY_POINTS
        lines.append(
            f"CLE + bias correction {'recovers' if recovered else 'does **not** recover'} it: "
            f"{cle:.2f} % ({cle - pc:+.2f} points vs per-channel)."
        )
    else:
        lines.append(f"CLE + bias correction gives {cle:.2f} % ({cle - pc:+.2f} points vs per-channel).")
    return " ".join(lines)


def vit_table(study: dict, bits: int) -> str:
    """Per site: the values' range, what each calibrator clips to, SQNR, and accuracy uniform vs the fix."""
    n = None
    lines = [
        "| site | values min … max | 0.1 % … 99.9 % | below one uint8 step | channel spread | range chosen by "
        "min/max · percentile · entropy · MSE | 8-bit SQNR per calibrator, then the fix (dB) | "
        f"top-1, {bits}-bit uniform | top-1, {bits}-bit fix |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for site, entry in study["sites"].items():
        s, acc = entry["stats"], entry["accuracy"]
        ranges = " · ".join(f"[{lo:.3g}, {hi:.3g}]" for lo, hi in s["ranges"].values())
        sqnr = " · ".join(f"{v:.1f}" for v in s["sqnr_db"].values())
        fix = FIX[site]
        lines.append(
            f"| {SITE_NAMES[site]} ({s['modules']} modules) | {s['lo']:.3g} … {s['hi']:.3g} | "
            f"{s['p001']:.3g} … {s['p999']:.3g} | {100 * s['below_first_step']:.1f} % | {s['channel_spread']:.1f}× | "
            f"{ranges} | {sqnr} | {100 * acc[f'uniform@{bits}']:.2f} % | {100 * acc[f'{fix}@{bits}']:.2f} % "
            f"({FIX_NAMES[fix]}) |"
        )
        n = n or s["values"]
    lines.append(
        f"\n*Each site alone is quantized (every module of that kind, its own range), everything else in float; "
        f"fp32 top-1 {100 * study['fp32']:.2f} %. Channel spread: max/median per-channel |range| (last dim).*"
    )
    return "\n".join(lines)


def vit_verdict(study: dict, bits: int, n_test: int) -> str:
    """Which sites a uniform grid hurts at ``bits`` and whether the fix helped (one test image = 1/n_test)."""
    noise = NOISE_IMAGES * 100 / n_test
    fp32 = 100 * study["fp32"]
    out = []
    for site, entry in study["sites"].items():
        uniform = 100 * entry["accuracy"][f"uniform@{bits}"]
        fixed = 100 * entry["accuracy"][f"{FIX[site]}@{bits}"]
        hurt = fp32 - uniform > noise
        if fixed - uniform > noise:
            verdict = f"the {FIX_NAMES[FIX[site]]} **helps**: {fixed:.2f} %"
        elif uniform - fixed > noise:
            verdict = f"the {FIX_NAMES[FIX[site]]} is **worse**: {fixed:.2f} %"
        else:
            verdict = f"the {FIX_NAMES[FIX[site]]} makes no difference beyond noise: {fixed:.2f} %"
        out.append(
            f"- {SITE_NAMES[site]}: uniform {bits}-bit gives {uniform:.2f} % "
            + (f"(**{uniform - fp32:+.2f}** points vs fp32)" if hurt else "(no loss beyond noise vs fp32)")
            + f"; {verdict}."
        )
    out.append(
        f"\n*Noise: {NOISE_IMAGES} of {n_test} test images = {noise:.2f} points; smaller differences are not "
        "called a loss or a gain.*"
    )
    return "\n".join(out)


ENGINES_NOTE = (
    "**What the engines run:** torch.ao's x86 backend, pt2e's X86InductorQuantizer and ONNX Runtime's QDQ "
    "quantize the inputs of Linear / MatMul and keep LayerNorm, softmax and GELU in float by default; none "
    "ships a log2 or twin-uniform activation kernel. So on these engines the fix you can deploy is the third "
    "one: keep those ops in float (which is what the table's ViT row measured)."
)


def vit_section(study: dict, bits: int, n_test: int) -> str:
    """The ViT table at ``bits``, its verdicts, and what the engines can run."""
    return vit_table(study, bits) + "\n\n" + vit_verdict(study, bits, n_test) + "\n\n" + ENGINES_NOTE


def recap_markdown(
    folding: dict, mobilenet: dict, spread: dict, vit: dict, n_test: int, *, bits: int = 4
) -> str:
    """The recap; each bullet carries the number the lab measured."""
    pt = _points(mobilenet["study"], "per-tensor W8A8")
    pc = _points(mobilenet["study"], "per-channel W8A8")
    worst = min(vit["sites"], key=lambda k: vit["sites"][k]["accuracy"][f"uniform@{bits}"])
    w = vit["sites"][worst]["accuracy"]
    loss = 100 * (vit["fp32"] - w[f"uniform@{bits}"])
    if loss > NOISE_IMAGES * 100 / n_test:
        vit_line = (
            f"- ViT activations: at {bits} bits {SITE_NAMES[worst]} suffers most here "
            f"({100 * w[f'uniform@{bits}']:.2f} % uniform, {100 * w[f'{FIX[worst]}@{bits}']:.2f} % with its fix, "
            f"fp32 {100 * vit['fp32']:.2f} %); the engines keep these ops in float."
        )
    else:
        vit_line = (
            f"- ViT activations: on this small model even {bits}-bit uniform grids at one site lose no more than "
            f"noise ({loss:+.2f} points at worst, {SITE_NAMES[worst]}), although {SITE_NAMES['softmax']} "
            f"{100 * vit['sites']['softmax']['stats']['below_first_step']:.0f} % of the values sit below one uint8 "
            "step; the engines keep these ops in float anyway."
        )
    return "\n".join([
        "## Recap",
        "",
        f"- BatchNorm folding is exact up to float rounding (max |Δlogit| {folding['max_abs_diff']:.1e} here) "
        "and it is what decides how uneven the channels' weight ranges become.",
        f"- Per-tensor int8 collapses when the folded depthwise channels' ranges are very uneven (see the "
        f"unequalized cases); on the trained MobileNetV2-style model they span {spread['ratio']:.1f}× and "
        f"per-tensor gives {pt:.2f} % vs {pc:.2f} % per-channel. Per-channel scales fix it in the engine; CLE "
        "fixes it in the weights.",
        vit_line,
        "- Small digits models are not ImageNet models and SmolLM2-135M is not LLaMA-7B: the table says what "
        "*this* machine does with *these* models — rerun it where you deploy.",
    ])  # fmt: skip
