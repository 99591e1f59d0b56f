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
    from ptqlab.lessons.architectures import exercise, figures, numbers, questions, text

    return exercise, figures, labkit, mo, numbers, questions, text, with_hint


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 11 — The seed's architecture table, measured

    The seed tutorial claims, for five architectures, what int8 PTQ costs in quality and buys in speed and
    size. Here every claim is measured on this machine — on small models that keep each family's building
    blocks (ImageNet and its weights cannot be downloaded here), so they are labelled "ResNet-style on
    digits", never "ResNet-50" — and each family's known way of breaking PTQ is made visible with its fix.

    **After this lab you can**

    1. read the seed's table against measurements and say which claims hold on your CPU, and why;
    2. fold a BatchNorm into the convolution before it (and have the lab check it against torch);
    3. explain when per-tensor int8 collapses a MobileNetV2 (the depthwise channels' range spread) and how
       per-channel scales or cross-layer equalization + bias correction fix it;
    4. say what LayerNorm, softmax and GELU outputs look like, what each calibrator clips, and which of
       the fixes (per-channel, log2, twin-uniform, keep in float) an engine can actually run.

    Folding: $W' = s \odot W,\ b' = s\,(b-\mu)+\beta,\ s=\gamma/\sqrt{\sigma^2+\epsilon}$ ·
    CLE: $s_i=\sqrt{r_{1,i}/r_{2,i}}$ · log2: $\hat p = 2^{-\mathrm{clamp}(\mathrm{round}(-\log_2 p),\,0,\,2^b-1)}$.
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 1. The seed's table beside the one measured here

    Each model below is quantized with static int8 PTQ (per-channel symmetric int8 weights, uint8
    activations calibrated with min/max) on every real engine that applies — torch.ao x86, pt2e with
    X86InductorQuantizer, ONNX Runtime — and timed interleaved with fp32 eager at batch 1 and 64; the row
    keeps the fastest engine at batch 64. Size is fp32 / int8 serialized bytes. The LLaMA row (SmolLM2-135M)
    takes minutes more: `ptqlab bench architectures --models resnet,mobilenetv2,minilm,vit,llama`.
    """)
    return


@app.cell
def _(mo):
    table_run = mo.ui.run_button(label="Measure the table on this machine (minutes)")
    table_run
    return (table_run,)


@app.cell
def _(mo, numbers, table_run, text):
    if table_run.value:
        table_rows = numbers.measure_table_with_progress()
        table_origin = "measured just now"
    else:
        table_rows = numbers.cached_table()
        table_origin = "measured earlier on this machine (press the button to measure again)"
    mo.stop(
        table_rows is None,
        mo.md(
            "*Not measured on this machine yet: press the button (it quantizes and times four models, "
            "minutes on 2 cores). The seed's claims:*\n\n" + text.seed_markdown()
        ),
    )
    mo.md(text.table_section(table_rows, table_origin, numbers.facts()))
    return


@app.cell(hide_code=True)
def _(mo, numbers, text):
    mo.md("## 2. ResNet: BatchNorm folds away exactly\n\n" + text.folding_markdown(numbers.resnet_folding()))
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 3. MobileNetV2: per-tensor vs per-channel vs CLE + bias correction

    After folding, a depthwise 3×3 channel is its own 9-weight filter scaled by its BatchNorm's
    $s_c=\gamma_c/\sqrt{\sigma_c^2+\epsilon}$. One per-tensor scale $\Delta=\max_c r_c/127$ must cover the
    widest channel, and a narrow channel keeps only $127\,r_c/\max r$ levels. Nagel et al. (2019) found
    ImageNet MobileNetV2's ranges so uneven that per-tensor int8 fell to chance; cross-layer equalization
    (CLE) rescales channel pairs so that one grid fits, and bias correction removes the mean shift rounding
    leaves. Below: the trained MobileNetV2-style model, every depthwise channel's range.
    """)
    return


@app.cell
def _(figures, mo, numbers, text):
    trained = numbers.mobilenet_study(1)
    trained_spread = numbers.spread_summary(trained["ranges"])
    mo.vstack(
        [
            figures.spread_chart(
                trained["ranges"],
                trained["ranges_cle"],
                "MobileNetV2-style on digits: depthwise channel ranges",
            ),
            mo.md(text.mobilenet_table(trained["study"])),
            mo.md(text.mobilenet_verdict(trained["study"], trained_spread, 1)),
        ]
    )
    return trained, trained_spread


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ### What if the ranges were as uneven as ImageNet's?

    `unequalize` runs CLE backwards on every expand → depthwise pair: $W_1 \leftarrow S W_1$,
    $W_{dw} \leftarrow S^{-1} W_{dw}$ with $\log s_c$ spread over $\pm\tfrac12\log(\text{factor})$. ReLU is
    positively homogeneous, so the float model computes the same function (ReLU6 is swapped for ReLU first,
    as Nagel et al. do); only the ranges change. This is a constructed case, labelled as such.
    """)
    return


@app.cell
def _(mo, numbers, with_hint):
    spread_factor = mo.ui.dropdown(numbers.SPREAD_OPTIONS, value="×300", label="spread factor")
    spread_run = mo.ui.run_button(label="Unequalize and measure (seconds)")
    mo.vstack(
        [
            with_hint(
                spread_factor, "predict at which factor per-tensor collapses, then measure ×30 and ×3000."
            ),
            spread_run,
        ]
    )
    return spread_factor, spread_run


@app.cell
def _(figures, mo, numbers, spread_factor, spread_run, text):
    mo.stop(not spread_run.value, mo.md("*Press the button to build and measure the unequalized model.*"))
    stressed = numbers.mobilenet_study(spread_factor.value)
    mo.vstack(
        [
            figures.spread_chart(
                stressed["ranges"],
                stressed["ranges_cle"],
                f"Unequalized ×{spread_factor.value}: depthwise channel ranges",
            ),
            mo.md(text.mobilenet_table(stressed["study"])),
            mo.md(
                text.mobilenet_verdict(
                    stressed["study"], numbers.spread_summary(stressed["ranges"]), spread_factor.value
                )
            ),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 4. ViT: activations after LayerNorm, softmax and GELU

    LayerNorm's output has per-channel ranges set by $\gamma, \beta$; softmax puts most probabilities near 0
    and a few near 1; GELU's output is lopsided, $[-0.17, \max]$. Below, each site's values and the uint8
    range each calibrator picks for them; then each site alone quantized, uniform per-tensor against the
    fix proposed for it (per-channel for LayerNorm, log2 for softmax, twin-uniform for GELU; PTQ4ViT,
    RepQ-ViT, FQ-ViT).
    """)
    return


@app.cell
def _(figures, numbers):
    vit = numbers.vit_study()
    figures.vit_chart(vit)
    return (vit,)


@app.cell
def _(mo, numbers, with_hint):
    vit_bits = mo.ui.dropdown(numbers.VIT_BIT_OPTIONS, value="4 bits", label="activation bits")
    with_hint(vit_bits, "at 8 bits, does any site lose accuracy? At 4, which one suffers most?")
    return (vit_bits,)


@app.cell
def _(mo, numbers, text, vit, vit_bits):
    mo.md(text.vit_section(vit, vit_bits.value, numbers.n_test()))
    return


@app.cell
def _(exercise, labkit, questions, trained, trained_spread):
    checks = labkit.Checks(
        questions.lab11_questions(
            trained["study"]["accuracy"]["per-tensor W8A8"],
            trained["study"]["accuracy"]["per-channel W8A8"],
            trained_spread["ratio"],
        ),
        exercise.EXERCISES,
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
def _(mo, numbers, text, trained, trained_spread, vit):
    mo.md(text.recap_markdown(numbers.resnet_folding(), trained, trained_spread, vit, numbers.n_test()))
    return


if __name__ == "__main__":
    app.run()
