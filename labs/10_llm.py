import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import ptqlab  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch starts its threads)

    # isort: split
    import marimo as mo

    from ptqlab import labkit
    from ptqlab.labkit import with_hint
    from ptqlab.lessons.llm import (
        exercise,
        figures,
        numbers,
        outliers,
        q4_1,
        questions,
        scores,
        sensitivity,
        text,
    )

    return (
        exercise,
        figures,
        labkit,
        mo,
        numbers,
        outliers,
        q4_1,
        questions,
        scores,
        sensitivity,
        text,
        with_hint,
    )


@app.cell(hide_code=True)
def _(mo, text):
    mo.md(text.GOALS)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 1. The reference is already quantized

    SmolLM2 ships as a GGUF file in llama.cpp's **Q4_1** format: before this lab quantizes anything, every
    weight already sits on a 4-bit grid. Loading the file *dequantizes* those blocks into float32 — that is
    the model every score below is compared with.
    """)
    return


@app.cell
def _(mo, q4_1, text):
    facts = q4_1.facts()
    mo.md(text.q4_1_markdown(facts))
    return (facts,)


@app.cell
def _(mo, q4_1, with_hint):
    block = mo.ui.slider(0, q4_1.EXAMPLE_BLOCKS - 1, value=0, label="block of 32 weights", show_value=True)
    with_hint(block, "find a block where the integer-zero-point grid keeps none of the 32 weights.")
    return (block,)


@app.cell
def _(block, figures, mo, q4_1, text):
    _b = q4_1.block_grids(block.value)
    mo.vstack(
        [
            figures.block_chart(
                _b["values"],
                _b["grids"],
                f"{q4_1.EXAMPLE_LAYER}, block {block.value}: values and grid points",
            ),
            mo.md(text.block_caption(_b["values"], _b["grids"])),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 2. Bits, groups, algorithms: what the model loses

    Pick a scheme; every Linear but the tied output head is quantized, and the model is scored on the lab's
    slice against the published weights. A setting scored before (by anyone on this machine) comes from the
    cache at once; a new one runs when you press the button (RTN: seconds to a minute; GPTQ and AWQ:
    minutes on 2 cores).
    """)
    return


@app.cell
def _(mo, numbers, with_hint):
    method = mo.ui.dropdown(numbers.METHOD_CHOICES, value=numbers.METHODS["rtn"], label="method")
    bits = mo.ui.dropdown(numbers.BIT_CHOICES, value="4", label="weight bits")
    group = mo.ui.dropdown(list(numbers.GROUPS), value="64", label="group (weights per fp16 scale)")
    run_setting = mo.ui.run_button(label="Quantize and score this setting")
    mo.vstack(
        [
            with_hint(method, "compare **RTN** with **GPTQ** at 4 and 3 bits: how much of the gap closes?"),
            with_hint(bits, "drop to **3** bits: watch the completions, not just the PPL."),
            with_hint(group, "at 4 bits, go from **per-channel** to **32**: what do the extra scales buy?"),
            run_setting,
        ]
    )
    return bits, group, method, run_setting


@app.cell
def _(bits, group, labkit, method, numbers, run_setting):
    chosen = numbers.setting(method.value, bits.value, group.value)
    result = numbers.result_or_run(chosen, run_setting.value, labkit.marimo_progress("Quantize and score"))
    return chosen, result


@app.cell
def _(chosen, mo, numbers, result, text):
    mo.stop(
        result is None,
        mo.callout(
            mo.md(f"**{chosen.label}** has not been scored on this machine yet: press the button above."),
            kind="info",
        ),
    )
    mo.vstack(
        [
            mo.md(text.result_markdown(chosen.label, result, numbers.reference())),
            mo.md(text.completions_markdown(numbers.PROMPTS, numbers.reference(), result, chosen.label)),
        ]
    )
    return


@app.cell
def _(chosen, figures, mo, numbers, scores, text):
    mo.vstack(
        [
            figures.scheme_chart(scores.chart_points(), chosen.label),
            mo.md(text.scores_table(scores.table_rows(), numbers.REFERENCE_LABEL)),
            mo.md(text.disagreement_markdown(scores.table_rows())),
        ]
    )
    return


@app.cell
def _(mo, scores):
    run_grid = mo.ui.run_button(label="Score the whole grid (RTN and GGUF settings not cached yet)")
    mo.vstack([mo.md(scores.grid_note()), run_grid])
    return (run_grid,)


@app.cell
def _(labkit, mo, numbers, run_grid, scores):
    mo.stop(not run_grid.value)
    mo.md(scores.grid_done(numbers.precompute_grid(labkit.marimo_progress("Scoring the grid"))))
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 3. The GGUF formats

    llama.cpp's formats cut every row into blocks of 32 weights and store fp16 metadata per block; the bits
    per weight follow from the block layout alone. ptqlab's `core.gguf_formats` writes the same bytes as the
    `gguf` package's reference quantizers (tested byte for byte).
    """)
    return


@app.cell
def _(mo, scores, text):
    mo.md(text.gguf_table(scores.gguf_rows()))
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 4. Why activations are the hard part (W8A8)

    Weights are known in advance and get one scale per channel; activations arrive at run time, and an int8
    engine gives a whole tensor one scale. A few input channels of a transformer's Linears carry values tens
    of times larger than the rest. SmoothQuant moves that difficulty into the weights:
    $s_j = \max|X_j|^\alpha / \max|W_{:,j}|^{1-\alpha}$, $X' = X/s$, $W' = W \cdot s$ — the product is unchanged.
    """)
    return


@app.cell
def _(mo, outliers, with_hint):
    site = mo.ui.dropdown(list(outliers.LAYERS), value=list(outliers.LAYERS)[6], label="Linear input")
    alpha = mo.ui.slider(0.0, 1.0, step=0.05, value=0.5, label="α (migration strength)", show_value=True)
    mo.vstack(
        [
            with_hint(site, "the last block's **down_proj** has the widest spread: compare it with block 0."),
            with_hint(alpha, "at **α = 1** the activations are flat: where did their range go?"),
        ]
    )
    return alpha, site


@app.cell
def _(alpha, figures, mo, outliers, site, text):
    _stats = outliers.smoothed(site.value, alpha.value)
    mo.vstack(
        [
            figures.outlier_chart(_stats, f"{site.value}: per-channel maxima on the calibration slice"),
            mo.md(text.outlier_markdown(site.value, _stats, alpha.value)),
        ]
    )
    return


@app.cell
def _(mo):
    run_w8a8 = mo.ui.run_button(label="Score RTN W8A8 and SmoothQuant W8A8 (minutes)")
    run_w8a8
    return (run_w8a8,)


@app.cell
def _(labkit, mo, numbers, run_w8a8, text):
    _pair = numbers.w8a8_pair(run_w8a8.value, labkit.marimo_progress("W8A8"))
    mo.stop(
        _pair is None, mo.md("*Press the button to score both (they calibrate activation ranges first).*")
    )
    mo.md(text.w8a8_markdown(numbers.reference(), *_pair))
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 5. Which blocks to keep at 8 bits

    Quantize one decoder block at a time to W4 g64 (the rest as published) and measure the KL: that is the
    block's sensitivity. All blocks cost the same bytes, so under a budget of *k* blocks at 8 bits the greedy
    choice keeps the *k* most sensitive; each choice is then measured for real, beside a control that keeps
    the *k* least sensitive.
    """)
    return


@app.cell
def _(mo, sensitivity, with_hint):
    run_sens = mo.ui.run_button(label="Measure the block sensitivity (about 40 forwards)")
    keep = mo.ui.slider(
        steps=list(sensitivity.BUDGETS), value=4, label="blocks kept at 8 bits", show_value=True
    )
    mo.vstack(
        [run_sens, with_hint(keep, "how many blocks before the greedy choice beats the control clearly?")]
    )
    return keep, run_sens


@app.cell
def _(labkit, run_sens, sensitivity):
    study = sensitivity.study_or_run(run_sens.value, labkit.marimo_progress("Sensitivity"))
    return (study,)


@app.cell
def _(figures, keep, mo, sensitivity, study, text):
    mo.stop(
        study is None, mo.md("*Press the button to measure (or open the lab again once it was measured).*")
    )
    _choice = sensitivity.budget(study, keep.value)
    mo.vstack(
        [
            figures.sensitivity_chart(study["per_block"], _choice["blocks"]),
            mo.md(text.sensitivity_markdown(_choice, keep.value, len(study["order"]))),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 6. How fast does it decode here?

    Decoding one token at batch 1 reads every weight once, so its ceiling is the memory bandwidth divided by
    the weight bytes — the decode roofline. The button times fp32 eager, torchao's int8 / int4 recipes and
    the model's decode step exported to ONNX Runtime with a KV cache (fp32, int8, int4) interleaved (prefill
    of 128 tokens, 16 decoded tokens; median, spread) and measures the bandwidth in the same run. Numbers
    are this machine's, under its current load.
    """)
    return


@app.cell
def _(mo):
    run_speed = mo.ui.run_button(label="Measure prefill and decode speed (slow: minutes)")
    run_speed
    return (run_speed,)


@app.cell
def _(mo, numbers, run_speed, text):
    mo.stop(not run_speed.value, mo.md("*Press the button to measure.*"))
    _rows, _bandwidth, _isa = numbers.measure_speed(run_speed.value)
    mo.md(text.speed_markdown(_rows, _bandwidth, _isa))
    return


@app.cell
def _(exercise, facts, labkit, numbers, questions):
    checks = labkit.Checks(
        questions.lab10_questions(facts, numbers.reference()["weight_bytes_fp32"]), exercise.EXERCISES
    )
    return (checks,)


@app.cell
def _(checks):
    check_controls = checks.controls
    return (check_controls,)


@app.cell
def _(check_controls, checks):
    checks.view(check_controls)
    return


@app.cell
def _(facts, mo, numbers, scores, text):
    mo.md(text.recap_markdown(numbers.reference(), scores.recap_results(), facts))
    return


if __name__ == "__main__":
    app.run()
