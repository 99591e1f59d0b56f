import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import ptqlab  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch starts its threads)

    # isort: split
    import functools

    import marimo as mo

    from ptqlab import plots_models
    from ptqlab.calibration_study import accuracy_vs_calibration
    from ptqlab.data import digits_split
    from ptqlab.models import digits_cnn, digits_mlp
    from ptqlab.sensitivity import greedy_mixed_precision, layer_sensitivity
    from ptqlab.simulate import evaluate_accuracy
    from ptqlab.spec import PerChannel, PerTensor, QuantSpec

    return (
        PerChannel,
        PerTensor,
        QuantSpec,
        accuracy_vs_calibration,
        digits_cnn,
        digits_mlp,
        digits_split,
        evaluate_accuracy,
        functools,
        greedy_mixed_precision,
        layer_sensitivity,
        mo,
        plots_models,
    )


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
def _(mo):
    model_picker = mo.ui.dropdown(
        {"digits CNN": "cnn", "digits MLP": "mlp"}, value="digits CNN", label="model"
    )
    model_picker
    return (model_picker,)


@app.cell
def _(mo):
    granularity_picker = mo.ui.dropdown(
        ["per-channel", "per-tensor"], value="per-channel", label="weight scales"
    )
    granularity_picker
    return (granularity_picker,)


@app.cell
def _(
    PerChannel,
    PerTensor,
    QuantSpec,
    digits_cnn,
    digits_mlp,
    digits_split,
    evaluate_accuracy,
    functools,
    greedy_mixed_precision,
    layer_sensitivity,
    mo,
):
    CHOICES = (8, 6, 4, 3, 2)
    LABELS = {"cnn": "digits CNN", "mlp": "digits MLP"}

    @functools.lru_cache(maxsize=None)
    def model_of(name: str):
        bar = functools.partial(
            mo.status.progress_bar, title=f"Training the digits {name.upper()} (first run only)"
        )
        return {"mlp": digits_mlp, "cnn": digits_cnn}[name](progress=bar)

    def accuracy(model) -> float:
        data = digits_split()
        return evaluate_accuracy(model, data.x_test, data.y_test)

    def spec_of(granularity: str):
        return QuantSpec(bits=8, granularity=PerChannel(0) if granularity == "per-channel" else PerTensor())

    @functools.lru_cache(maxsize=None)
    def sensitivity(name: str, granularity: str):
        return layer_sensitivity(model_of(name), accuracy, (4, 3, 2), spec=spec_of(granularity), fold_bn=True)

    @functools.lru_cache(maxsize=None)
    def mixed(name: str, granularity: str):
        return greedy_mixed_precision(
            model_of(name), accuracy, CHOICES, spec=spec_of(granularity), fold_bn=True
        )

    return LABELS, mixed, model_of, sensitivity


@app.cell
def _(LABELS, granularity_picker, mo, model_picker, plots_models, sensitivity):
    _report = sensitivity(model_picker.value, granularity_picker.value)
    _top = _report.ranking(2)
    mo.vstack(
        [
            plots_models.sensitivity_figure(
                _report,
                f"{LABELS[model_picker.value]}: one layer quantized at a time ({granularity_picker.value}, BN folded)",
            ),
            mo.md(
                f"fp32 accuracy {100 * _report.baseline:.2f} %. Most sensitive at 2 bits: "
                + ", ".join(f"**{n}** ({100 * _report.drop(n, 2):.1f} points)" for n in _top[:3])
                + ". The first layer usually tops the list: it has the fewest inputs per output "
                "(a 3×3 kernel on one channel = 9 weights for conv1), so each rounding error weighs the most, "
                "and it has the fewest weights, so keeping it wide is cheap."
            ),
        ]
    )
    return


@app.cell
def _(granularity_picker, mixed, mo, model_picker):
    _result = mixed(model_picker.value, granularity_picker.value)
    _lo, _hi = _result.path[-1].size_bytes / 1024, _result.path[0].size_bytes / 1024
    budget = mo.ui.slider(
        start=round(_lo, 1),
        stop=round(_hi, 1) + 0.1,
        step=0.1,
        value=round(0.5 * (_lo + _hi), 1),
        label="size budget (KiB)",
        show_value=True,
        full_width=True,
    )
    budget
    return (budget,)


@app.cell
def _(LABELS, budget, granularity_picker, mixed, mo, model_picker, plots_models):
    _result = mixed(model_picker.value, granularity_picker.value)
    _budget = budget.value * 1024
    _chosen = _result.for_budget(_budget)
    _fig = plots_models.pareto_figure(
        _result,
        _chosen,
        _budget,
        f"{LABELS[model_picker.value]}: size vs accuracy ({granularity_picker.value})",
    )
    if _chosen is None:
        _summary = mo.md("No configuration on the greedy path fits this budget.")
    else:
        _bits = " | ".join(f"{n}: **W{b}**" for n, b in _chosen.bits.items())
        _uniform = ", ".join(
            f"all W{b}: {p.size_bytes / 1024:.1f} KiB, {100 * p.metric:.1f} %"
            for b, p in zip(_result.choices, _result.uniform, strict=True)
        )
        _summary = mo.md(
            f"""
    **Chosen:** {_bits}

    Size **{_chosen.size_bytes / 1024:.1f} KiB** ({_result.float_size_bytes / _chosen.size_bytes:.1f}× smaller
    than fp32's {_result.float_size_bytes / 1024:.1f} KiB), test accuracy **{100 * _chosen.metric:.2f} %**
    (fp32 {100 * _result.float_metric:.2f} %).

    Uniform widths for comparison: {_uniform}.
    """
        )
    mo.vstack([_fig, _summary])
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
def _(QuantSpec, accuracy_vs_calibration, digits_split, functools, mo, model_of):
    @functools.lru_cache(maxsize=None)
    def calibration_points():
        data = digits_split()
        return accuracy_vs_calibration(
            model_of("cnn"),
            data.x_train,
            data.y_train,
            data.x_test,
            data.y_test,
            sizes=(1, 4, 16, 64),
            seeds=(0, 1, 2),
            act_spec=QuantSpec(bits=4, signed=False, symmetric=False),
            progress=functools.partial(mo.status.progress_bar, title="Calibrating 36 quantized CNNs"),
        )

    return (calibration_points,)


@app.cell
def _(calibration_points, mo, plots_models):
    _points = calibration_points()
    _worst = min(p.accuracy for p in _points)
    mo.vstack(
        [
            plots_models.calibration_figure(_points, "digits CNN, W8A4: accuracy vs calibration set"),
            mo.md(
                f"Worst of all {len(_points)} runs: {100 * _worst:.1f} %. On 8×8 digits every image spans nearly "
                "the same pixel range and min/max ranges settle within a few images, so even one calibration "
                "image is enough here: the selection method matters when activations have rare large values "
                "(language models, detection heads), which a small random set can miss."
            ),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
