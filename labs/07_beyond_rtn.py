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
    from ptqlab.lessons.beyond_rtn import exercise, figures, numbers, questions, text

    return exercise, figures, labkit, mo, numbers, questions, text, with_hint


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 07 — Beyond round-to-nearest

    At 2–4 bits, rounding every weight to its nearest grid point (RTN) breaks models. The algorithms below
    keep the same integer grid and change **which** grid point each weight gets, or **what** is put on the
    grid, using a few hundred calibration inputs.

    **After this lab you can**

    1. say what each algorithm minimizes, and which ones leave the float function unchanged;
    2. read an algorithm's effect on one layer's weights;
    3. pick one for a model and a bit width from measured accuracy and runtime;
    4. write bias correction (and SmoothQuant's factor) yourself and have the lab check them.

    | algorithm | objective / update rule | paper |
    |---|---|---|
    | bias correction | $b \leftarrow b - (\tilde W\,\mathbb{E}[\tilde x] - W\,\mathbb{E}[x])$: the mean output shift removed | Nagel et al. 2019 |
    | CLE | $W_1 \leftarrow S^{-1}W_1$, $W_2 \leftarrow W_2 S$, $s_i=\sqrt{r_{1,i}/r_{2,i}}$: equal channel ranges, same float function | Nagel et al. 2019 |
    | AdaRound | learn up/down per weight: $\min_V \lVert XW^\top - X\tilde W^\top\rVert^2 + \lambda\sum(1-\lvert 2h(V)-1\rvert^\beta)$ | Nagel et al. 2020 |
    | GPTQ | column by column, $e_i=(w_i-q_i)/U_{ii}$, later columns $w_{j>i} \leftarrow w_{j>i} - e_i U_{i,j>i}$ ($U$: Cholesky of $H^{-1}$, $H=2X^\top X/n$) | Frantar et al. 2022 |
    | AWQ | $s=\bar{\lvert x\rvert}^{\alpha}$, $\alpha^*=\arg\min \lVert XW^\top - (X/s)\,Q(W s)^\top\rVert^2$, then a per-group clipping search | Lin et al. 2023 |
    | SmoothQuant | $s_j=\max\lvert X_j\rvert^\alpha/\max\lvert W_j\rvert^{1-\alpha}$: activation outliers moved into the weights (made for W8A8) | Xiao et al. 2022 |
    """)
    return


@app.cell
def _(mo, numbers, with_hint):
    model_picker = mo.ui.dropdown(numbers.MODEL_CHOICES, value="digits CNN", label="model")
    with_hint(model_picker, "start with the digits CNN at 2 bits, then MiniLM at 4 bits per-group 128.")
    return (model_picker,)


@app.cell
def _(mo, with_hint):
    bits = mo.ui.slider(2, 8, value=2, label="weight bits", show_value=True)
    with_hint(bits, "slide to 8: every algorithm converges to RTN — there is nothing left to rescue.")
    return (bits,)


@app.cell
def _(mo, numbers, with_hint):
    granularity_picker = mo.ui.dropdown(numbers.GRANULARITIES, value="per-channel", label="granularity")
    group_size = mo.ui.slider(
        steps=[16, 32, 64, 128], value=128, label="group size (per-group)", show_value=True
    )
    mo.vstack(
        [
            with_hint(granularity_picker, "switch to **per-group**: does RTN still need rescuing at 2 bits?"),
            with_hint(group_size, "halve the group: which algorithm's lead over RTN shrinks first?"),
        ]
    )
    return granularity_picker, group_size


@app.cell
def _(mo, numbers, with_hint):
    algorithm_picker = mo.ui.multiselect(
        numbers.ALGORITHM_CHOICES, value=["bias correction", "CLE", "GPTQ", "AWQ"], label="algorithms"
    )
    with_hint(algorithm_picker, "add AdaRound (slowest: it trains) and compare its runtime with GPTQ's.")
    return (algorithm_picker,)


@app.cell
def _(mo):
    run_button = mo.ui.run_button(label="Run RTN and the chosen algorithms")
    mo.vstack(
        [
            run_button,
            mo.md(
                "While it runs, the bar names each algorithm as it finishes with its own time, the elapsed "
                "time and an estimate of the time left; the table's runtime column is measured. AdaRound "
                "trains, so it is the slowest. Results are cached per setting."
            ),
        ]
    )
    return (run_button,)


@app.cell
def _(mo):
    get_compared, set_compared = mo.state({})
    return get_compared, set_compared


@app.cell
def _(
    algorithm_picker,
    bits,
    get_compared,
    granularity_picker,
    group_size,
    model_picker,
    numbers,
    run_button,
    set_compared,
):
    settings = numbers.settings_key(
        model_picker.value,
        bits.value,
        granularity_picker.value,
        group_size.value,
        algorithm_picker.value,
    )
    if run_button.value:
        comparison = numbers.run(*settings)
        set_compared(get_compared() | {settings: comparison})
        origin = "your settings"
    elif settings in get_compared():
        comparison = get_compared()[settings]
        origin = "your settings, run earlier in this session"
    else:
        comparison = numbers.quick_comparison()
        origin = "the quick default (digits CNN, W2 per-channel) — press the button for your settings"
    return comparison, origin


@app.cell
def _(comparison, mo, origin, text):
    mo.md(
        f"""
    ## Measured: {origin}

    {text.comparison_markdown(comparison)}

    {text.best_markdown(comparison)}
    """
    )
    return


@app.cell
def _(comparison, figures):
    figures.layer_error_figure(comparison)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## What each algorithm does to the weights

    Pick a layer; one panel per algorithm that ran and has something to show on it. **AdaRound**: the
    weights it rounded the *other* way than RTN (red up, blue down). **GPTQ**: mean weight error per input
    column — it grows along the sweep, because every column absorbs the rounding error of the ones before
    it, yet the *output* error above is lower. **AWQ**: the per-channel scale against the channel's mean
    activation. **CLE**: the per-channel ranges before and after equalization.
    """)
    return


@app.cell
def _(comparison, mo, numbers, with_hint):
    layer_picker = mo.ui.dropdown(
        numbers.layer_names(comparison), value=numbers.default_layer(comparison), label="layer"
    )
    with_hint(
        layer_picker,
        "with AdaRound run (add it, press the button), pick the last layer: are its flips as many as in the first?",
    )
    return (layer_picker,)


@app.cell
def _(comparison, figures, layer_picker, numbers):
    figures.weights_view(numbers.weight_views(comparison, layer_picker.value))
    return


@app.cell
def _(exercise, labkit, questions):
    checks = labkit.Checks(questions.lab07_questions(), exercise.EXERCISES)
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
def _(comparison, mo, text):
    mo.md(text.recap_markdown(comparison))
    return


if __name__ == "__main__":
    app.run()
