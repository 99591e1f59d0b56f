import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import ptqlab  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch starts its threads)

    # isort: split
    import marimo as mo

    from ptqlab.lessons import sensitivity as lesson
    from ptqlab.lessons.models import LABELS
    from ptqlab.plots import sensitivity as plots_sensitivity

    return LABELS, lesson, mo, plots_sensitivity


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 05 — Per-layer sensitivity and mixed precision

    Layers do not suffer equally from quantization. **Sensitivity** measures it one layer at a time:

    $$\text{drop}(\ell, b) = \text{acc}(\text{fp32}) - \text{acc}(\text{only layer } \ell \text{ at } b \text{ bits})$$

    **Mixed precision** then gives the bits to the layers that need them. A greedy allocation starts
    with every layer at 8 bits and repeatedly lowers, by one step of {8, 6, 4, 3, 2}, the layer whose
    lowering costs the least accuracy per byte saved — measured for real each time, not assumed additive.
    The sizes count every parameter: weight codes plus one fp32 scale and zero point per block; biases
    (BatchNorm is folded into them first) stay fp32.

    *Caveat:* the accuracy here is the 360-image digits test set (one image = 0.28 points). A real
    pipeline would choose the allocation on a separate validation set and report the test set once.
    """)
    return


@app.cell
def _(LABELS, mo):
    model_picker = mo.ui.dropdown(
        {LABELS["cnn"]: "cnn", LABELS["mlp"]: "mlp"}, value=LABELS["cnn"], label="model"
    )
    model_picker
    return (model_picker,)


@app.cell
def _(lesson, mo):
    granularity_picker = mo.ui.dropdown(
        list(lesson.GRANULARITIES), value="per-channel", label="weight scales"
    )
    granularity_picker
    return (granularity_picker,)


@app.cell
def _(LABELS, granularity_picker, lesson, mo, model_picker, plots_sensitivity):
    _report = lesson.lab_sensitivity(model_picker.value, granularity_picker.value)
    mo.vstack(
        [
            plots_sensitivity.sensitivity_figure(
                _report,
                f"{LABELS[model_picker.value]}: one layer quantized at a time ({granularity_picker.value}, BN folded)",
            ),
            mo.md(lesson.sensitivity_note(_report)),
        ]
    )
    return


@app.cell
def _(granularity_picker, lesson, mo, model_picker):
    _start, _stop, _value = lesson.budget_slider_range(
        lesson.lab_mixed_precision(model_picker.value, granularity_picker.value)
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
    budget
    return (budget,)


@app.cell
def _(LABELS, budget, granularity_picker, lesson, mo, model_picker, plots_sensitivity):
    _result = lesson.lab_mixed_precision(model_picker.value, granularity_picker.value)
    mo.vstack(
        [
            plots_sensitivity.mixed_precision_figure(
                _result,
                _result.for_budget(budget.value * 1024),
                budget.value * 1024,
                f"{LABELS[model_picker.value]}: size vs accuracy ({granularity_picker.value})",
            ),
            mo.md(lesson.budget_markdown(_result, budget.value)),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## How many calibration samples, chosen how?

    Activation ranges come from a calibration set. Three ways to pick $n$ images from the 1437 training
    images: **random**, **stratified** (the class mix of the pool), and **k-means** on the model's
    penultimate features with the image nearest each centroid (SelectQ-style: cover the feature space
    rather than its dense middle). Below, the CNN with W8 per-channel weights and **A4** asymmetric
    activations (min/max), three seeds per point.
    """)
    return


@app.cell
def _(lesson, mo, plots_sensitivity):
    mo.vstack(
        [
            plots_sensitivity.calibration_figure(
                lesson.lab_calibration_points(), "digits CNN, W8A4: accuracy vs calibration set"
            ),
            mo.md(lesson.calibration_note(lesson.lab_calibration_points())),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
