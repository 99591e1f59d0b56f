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
    from ptqlab.lessons.sensitivity import exercise, figures, numbers, questions, selection, text

    return (
        LABELS,
        exercise,
        figures,
        labkit,
        mo,
        numbers,
        questions,
        selection,
        text,
        with_hint,
    )


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 05 — Per-layer sensitivity and mixed precision

    **After this lab you can**

    1. measure each layer's sensitivity by quantizing it alone, and write that loop yourself;
    2. read a size-vs-accuracy chart: the greedy path, the Pareto front, a budget;
    3. tell a real accuracy difference from test-set noise (one image = a fixed number of points);
    4. recognise a negative control: a study whose flat result is the expected one.

    Layers do not suffer equally from quantization. **Sensitivity** measures it one layer at a time:

    $$\text{drop}(\ell, b) = \text{acc}(\text{fp32}) - \text{acc}(\text{only layer } \ell \text{ at } b \text{ bits})$$

    **Mixed precision** then gives the bits to the layers that need them. A greedy allocation starts
    with every layer at 8 bits and repeatedly lowers, by one step of {8, 6, 4, 3, 2}, the layer whose
    lowering costs the least accuracy per byte saved — measured for real each time, not assumed additive.
    The sizes count every parameter: weight codes plus one fp16 scale per block (per channel or per
    tensor, as chosen below: the scale width int8/int4 engines store; the symmetric grid's zero point is
    the constant 0, not stored); biases (BatchNorm is folded into them first) stay fp32.

    *Caveat:* the accuracy here is the 360-image digits test set (one image = 0.28 points). A real
    pipeline would choose the allocation on a separate validation set and report the test set once.
    """)
    return


@app.cell
def _(LABELS, mo, with_hint):
    model_picker = mo.ui.dropdown(
        {LABELS["cnn"]: "cnn", LABELS["mlp"]: "mlp"}, value=LABELS["cnn"], label="model"
    )
    with_hint(model_picker, "switch to the **MLP**: does its first layer still top the list?")
    return (model_picker,)


@app.cell
def _(mo, numbers, with_hint):
    granularity_picker = mo.ui.dropdown(
        list(numbers.GRANULARITIES), value="per-channel", label="weight scales"
    )
    with_hint(granularity_picker, "pick **per-tensor**: which layer's bars grow the most?")
    return (granularity_picker,)


@app.cell
def _(figures, granularity_picker, mo, model_picker, numbers, text):
    mo.vstack(
        [
            figures.sensitivity_image(model_picker.value, granularity_picker.value),
            mo.md(
                text.sensitivity_note(
                    numbers.lab_sensitivity(model_picker.value, granularity_picker.value), model_picker.value
                )
            ),
        ]
    )
    return


@app.cell
def _(granularity_picker, mo, model_picker, numbers, with_hint):
    _start, _stop, _value = numbers.budget_slider_range(
        numbers.lab_mixed_precision(model_picker.value, granularity_picker.value)
    )
    budget = mo.ui.slider(
        start=_start,
        stop=_stop,
        step=0.1,
        value=_value,
        label="size budget (KiB)",
        show_value=True,
        full_width=True,
    )
    with_hint(budget, "drag to the **minimum** (all-W2), then up until the accuracy stops rising.")
    return (budget,)


@app.cell
def _(budget, granularity_picker, mo, model_picker, numbers, text):
    mo.md(
        text.budget_markdown(
            numbers.lab_mixed_precision(model_picker.value, granularity_picker.value), budget.value
        )
    )
    return


@app.cell
def _(budget, figures, granularity_picker, model_picker):
    figures.lab_mixed_precision_chart(model_picker.value, granularity_picker.value, budget.value)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## How many calibration samples, chosen how? A negative control

    Activation ranges come from a calibration set. Three ways to pick $n$ images from the 1437 training
    images: **random**, **stratified** (the class mix of the pool), and **k-means** on the model's
    penultimate features with the image nearest each centroid (SelectQ-style: cover the feature space
    rather than its dense middle). Below, the CNN with W8 per-channel weights and **A4** asymmetric
    activations (min/max), three seeds per point.
    """)
    return


@app.cell
def _(figures, mo, numbers, text):
    mo.vstack(
        [
            figures.calibration_figure(
                numbers.lab_calibration_points(), "digits CNN, W8A4: accuracy vs calibration set"
            ),
            mo.md(text.calibration_note(numbers.lab_calibration_points())),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Where selection does matter: a pool with a few glitched images

    Real calibration pools are rarely clean: a preprocessing bug or a sensor glitch leaves a few inputs far
    outside the normal range. Below, the same study on a pool in which a few training images are
    **overexposed** (every pixel multiplied; the share and factor are in the figure's title). Before you
    look: which selection method do you expect to pick the glitched images most often, and why?
    """)
    return


@app.cell
def _(figures, mo, numbers, selection):
    _clean = numbers.lab_calibration_points()
    _minmax = selection.lab_glitch_points("minmax")
    _percentile = selection.lab_glitch_points("percentile")
    _picks = selection.lab_glitch_picks()
    mo.vstack(
        [
            figures.calibration_figure(_minmax, selection.glitch_figure_title()),
            mo.md(selection.glitch_table(_clean, _minmax, _percentile, _picks)),
            mo.md(selection.glitch_note(_clean, _minmax, _percentile, _picks)),
        ]
    )
    return


@app.cell
def _(exercise, granularity_picker, labkit, model_picker, questions):
    checks = labkit.Checks(
        questions.lab05_questions(model_picker.value, granularity_picker.value), exercise.EXERCISES
    )
    return (checks,)


@app.cell
def _(checks):
    check_controls = checks.controls
    return (check_controls,)


@app.cell
def _(check_controls, checks, granularity_picker, model_picker, numbers, text):
    checks.view(
        check_controls,
        measured=text.measured_table(numbers.lab_sensitivity(model_picker.value, granularity_picker.value)),
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Recap

    - Sensitivity quantizes one layer at a time; the first layer and layers with few inputs per output
      usually lose the most, but the bar chart, not the rule, decides.
    - Mixed precision spends bits where sensitivity is high; the greedy path measures every step instead of
      assuming drops add up.
    - On a small test set one image is a fixed step of accuracy: a "gain" of one image is noise.
    - A flat result can be the right result: the calibration-set study is a negative control on digits.
      A few glitched images in the pool make selection matter: min/max stretches to fit any one of them.

    Next, lab 06: drag the range yourself and watch rounding and clipping trade off.
    """)
    return


if __name__ == "__main__":
    app.run()
