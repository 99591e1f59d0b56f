import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import ptqlab  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch starts its threads)

    # isort: split
    import marimo as mo

    from ptqlab import labkit
    from ptqlab.backends import RECIPES
    from ptqlab.labkit import with_hint
    from ptqlab.lessons.full_model import exercise, figures, numbers, questions, text
    from ptqlab.observers import OBSERVERS

    return (
        OBSERVERS,
        RECIPES,
        exercise,
        figures,
        labkit,
        mo,
        numbers,
        questions,
        text,
        with_hint,
    )


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 04 — Full-model PTQ on real int8/int4 kernels, measured

    Everything so far *simulated* quantization in float. Here the same calibrators drive **real integer
    kernels**, and we measure what they buy on *this* machine: latency, speedup, size and quality, side by side
    in one process. Nothing below is a quoted number — every figure and every number in the prose is measured
    when you press the button (a quick default measurement is shown until then).

    Recipes (each works on a copy of the model; an unavailable one says why):

    | recipe | what it does |
    |---|---|
    | `ao-dynamic-int8` | torch.ao `quantize_dynamic`: int8 weights, activations quantized per batch at run time (fbgemm/oneDNN kernels) |
    | `ao-dynamic-int8-sq` | the same after **SmoothQuant** ($x/s$, $W\cdot s$), keeping the most sensitive layers in fp32 |
    | `ao-static-int8` | torch.ao static eager PTQ: int8 activations whose ranges come from **your calibrator** |
    | `pt2e-x86-int8` | torch.export + X86InductorQuantizer, compiled with inductor freezing |
    | `torchao-*` | torchao `quantize_`: int8 dynamic, int8 weight-only, int4 weight-only (bf16 activations), int8 static |
    | `ort-fp32` | the exported ONNX graph on **ONNX Runtime** (MiniLM: its transformer fusions) — the engine's own gain |
    | `ort-int8-dynamic` / `ort-int8-static` | ORT `quantize_dynamic` (per-channel int8) / `quantize_static` (QDQ, ranges from **your calibrator**) |
    | `ort-int4-weight-only` | ORT `MatMulNBits`: int4 weights in blocks of 128; a graph it did not quantize is reported, never shown as int4 |

    The torch.ao, torchao and ORT static recipes take every activation range from a **ptqlab observer** — the
    calibrators of Lab 02 set the scales of the real kernels. ORT rows also show their speedup against ORT
    fp32 (the table's *vs ORT fp32* column), separating what the engine gains from what quantization gains.
    """)
    return


@app.cell
def _(mo, text):
    mo.vstack(
        [
            mo.md(text.GOALS),
            mo.md(
                "## Static, dynamic, weight-only: what is an integer, and when its scale is chosen\n\n"
                "**Static** fixes the activation scale at calibration time (your calibrator), **dynamic** "
                "measures it on every batch at run time, **weight-only** never quantizes activations at all: "
                "it saves bytes, not arithmetic."
            ),
            text.diagram_view(),
        ]
    )
    return


@app.cell
def _(mo, with_hint):
    model_picker = mo.ui.dropdown(
        {
            "digits MLP": "mlp",
            "digits CNN": "cnn",
            "MiniLM-L6 (seq 32)": "minilm",
            "memory-bound MLP (268 MB)": "membound",
        },
        value="digits MLP",
        label="model",
    )
    with_hint(
        model_picker,
        "the **memory-bound MLP (268 MB)** at batch 1: its weights do not fit in the cache; see whether int8’s 4× fewer bytes show up as speed.",
    )
    return (model_picker,)


@app.cell
def _(OBSERVERS, mo, with_hint):
    observer_picker = mo.ui.dropdown(
        sorted(OBSERVERS), value="minmax", label="calibrator (activation ranges)"
    )
    with_hint(
        observer_picker,
        "switch **minmax → percentile** and compare the static recipes' quality: only they read the calibrator.",
    )
    return (observer_picker,)


@app.cell
def _(RECIPES, mo, with_hint):
    recipe_picker = mo.ui.multiselect(
        list(RECIPES),
        value=[
            "ao-dynamic-int8",
            "ao-static-int8",
            "torchao-int8-dynamic",
            "torchao-int4-weight-only",
            "bf16",
            "ort-fp32",
            "ort-int8-dynamic",
            "ort-int4-weight-only",
        ],
        label="recipes (fp32 is always measured)",
    )
    with_hint(
        recipe_picker,
        "add **pt2e-x86-int8** (a compiled graph) or **ao-dynamic-int8-sq** (SmoothQuant) and see what the extra setup buys.",
    )
    return (recipe_picker,)


@app.cell
def _(mo, with_hint):
    batch_picker = mo.ui.dropdown({"1": 1, "8": 8, "64": 64}, value="64", label="batch size")
    with_hint(
        batch_picker,
        "batch **1** vs **64**: at batch 1 every weight feeds 2 FLOPs, so bytes matter most.",
    )
    return (batch_picker,)


@app.cell
def _(mo, numbers, with_hint):
    _options, _current = numbers.thread_choices()
    threads_picker = mo.ui.dropdown(_options, value=_current, label="torch threads")
    with_hint(
        threads_picker,
        "MiniLM at batch 1 with **1** thread. Its many small ops each pay for waking a "
        "sleeping second thread (ptqlab sets `OMP_WAIT_POLICY=PASSIVE`, so idle threads do not spin "
        "and steal the core from other processes); one thread can be the faster choice.",
    )
    return (threads_picker,)


@app.cell
def _(mo, with_hint):
    repeats_slider = mo.ui.slider(5, 30, value=10, step=1, label="timed repeats per variant", show_value=True)
    with_hint(
        repeats_slider,
        "**5** repeats vs **30**: watch the p10–p90 spread narrow before trusting a 1.1× speedup.",
    )
    return (repeats_slider,)


@app.cell
def _(mo, with_hint):
    run_button = mo.ui.run_button(label="Calibrate, quantize and measure")
    mo.vstack(
        [
            with_hint(
                run_button,
                "predict first: will **ao-static-int8** beat **ao-dynamic-int8** on this model? Then press.",
            ),
            mo.md(
                "While it runs, the bar names each recipe as it finishes with its own time, the elapsed time "
                "and an estimate of the time left; MiniLM and the 268 MB MLP take far longer than the digits "
                "models (`pt2e-x86-int8` adds a compile, `ao-dynamic-int8-sq` a sensitivity search). "
                "Few repeats on a shared machine are noisy: read the p10–p90 spread."
            ),
        ]
    )
    return (run_button,)


@app.cell
def _(mo):
    get_measured, set_measured = mo.state({})
    return get_measured, set_measured


@app.cell
def _(
    batch_picker,
    get_measured,
    model_picker,
    numbers,
    observer_picker,
    recipe_picker,
    repeats_slider,
    run_button,
    set_measured,
    threads_picker,
):
    settings = numbers.settings_key(
        model_picker.value,
        recipe_picker.value,
        batch_picker.value,
        repeats=repeats_slider.value,
        observer=observer_picker.value,
        threads=threads_picker.value,
    )
    if run_button.value:
        result = numbers.measure_settings(settings)
        set_measured(get_measured() | {settings: result})
        origin = "your settings"
    elif settings in get_measured():
        result = get_measured()[settings]
        origin = "your settings, measured earlier in this session (press the button to measure again)"
    else:
        result = numbers.quick_measurement()
        origin = "the quick default (digits MLP, batch 64, 5 repeats) — press the button for your settings"
    return origin, result


@app.cell
def _(mo, numbers, origin, result):
    mo.md(
        f"""
    ## Measured: {result.title}, batch {result.batch}, {result.repeats} repeats

    *Showing {origin}. Calibrator: `{result.observer}`. Speedup = fp32 median ÷ variant median, same run,
    variants interleaved round-robin. Size = `torch.save(state_dict)` bytes. Roofline = memory floor ÷
    measured time. Quality is measured on {result.eval_set}, in chunks of the batch size (the last one
    padded with copies of its rows, whose outputs are dropped).*

    {numbers.measurement_markdown(result)}

    {numbers.run_time_sentence(result)}

    **Hardware**

    {numbers.hardware_markdown(result.facts, result.bandwidth)}
    """
    )
    return


@app.cell(hide_code=True)
def _(mo, numbers, result):
    mo.md(numbers.narrate(result))
    return


@app.cell
def _(figures, result):
    figures.speedup_figure(result.rows, result.model)
    return


@app.cell
def _(figures, result):
    figures.size_quality_figure(result.rows, result.model, result.batch)
    return


@app.cell
def _(figures, result):
    figures.roofline_figure(
        result.rows, result.bandwidth, result.model, result.batch, llc_bytes=result.llc_bytes
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Reading the three charts

    * **Speedup bars** — a bar reaching right of the dashed line at 1× is a recipe faster than fp32; whiskers
      are the p10–p90 latency spread turned into speedups; the colours are the engines, named in the legend.
    * **Size vs quality** — the dashed Pareto front joins the recipes no other recipe beats on both size and
      quality; accuracy stops at 100 %. Whether the smallest one's quality is acceptable is the model's call.
    * **Roofline** — the line is $t = \text{bytes}/\text{bandwidth}$, the fastest any forward streaming those
      weights can be. Points near the line are memory-bound and can only get faster by moving fewer bytes;
      points far above it are limited by something else (overheads, compute, an untuned kernel).

    For every model and both batch sizes at once — with `torch.compile` variants and a JSON report — run
    `ptqlab bench models --json bench.json --charts charts/` in a terminal.
    """)
    return


@app.cell
def _(mo, result, text):
    mo.md(text.size_sentence(result.rows))
    return


@app.cell
def _(exercise, labkit, questions):
    checks = labkit.Checks(questions.lab04_questions(), exercise.EXERCISES)
    return (checks,)


@app.cell
def _(checks):
    check_controls = checks.controls
    return (check_controls,)


@app.cell
def _(check_controls, checks, result):
    checks.view(check_controls, rows=result.rows)
    return


@app.cell
def _(mo, text):
    mo.md(text.RECAP)
    return


if __name__ == "__main__":
    app.run()
