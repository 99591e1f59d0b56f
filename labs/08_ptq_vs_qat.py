import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import ptqlab  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch starts its threads)

    # isort: split
    import marimo as mo

    from ptqlab import labkit
    from ptqlab.bench import dynamics_table, ptq_vs_qat
    from ptqlab.labkit import with_hint
    from ptqlab.lessons.ptq_vs_qat import decision, exercise, figures, numbers, questions, text

    return (
        decision,
        dynamics_table,
        exercise,
        figures,
        labkit,
        mo,
        numbers,
        ptq_vs_qat,
        questions,
        text,
        with_hint,
    )


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 08 — PTQ vs QAT, and how training shapes quantizability

    **After this lab you can**

    1. read a measured PTQ-vs-QAT table — accuracy, time to deploy, data needed, backward passes — instead
       of a rule of thumb;
    2. choose a method from your own constraints;
    3. say, with the spread across seeds, whether weight averaging (LAWA) or an LR cooldown makes a model
       survive round-to-nearest better;
    4. write the straight-through estimator's gradient and check it against torch's autograd.

    **The two routes.** *Post-training quantization* rounds a trained model's weights,
    $\hat W = s\,\mathrm{clamp}(\mathrm{round}(W/s), q_{\min}, q_{\max})$, after a few forward passes to
    calibrate the activation ranges. *Quantization-aware training* fine-tunes with that rounding in the
    forward pass and lets the gradient through it (the straight-through estimator):
    $\partial \hat w/\partial w = 1$ where $\mathrm{round}(w/s)$ lies on the grid, 0 where it is clamped.
    Here QAT uses torchao's maintained fake quantizers (`torchao.quantization.qat`), and every row — PTQ or
    QAT — is deployed by the same call: BatchNorm folded, int$b$ symmetric per-channel weights, uint8
    per-tensor activations calibrated on 256 training images.
    """)
    return


@app.cell
def _(mo, with_hint):
    model_picker = mo.ui.dropdown(
        {"digits CNN": "cnn", "digits MLP": "mlp"}, value="digits CNN", label="model"
    )
    with_hint(model_picker, "compare W2A8 on the CNN and on the MLP: which one needs QAT?")
    return (model_picker,)


@app.cell
def _(mo, with_hint):
    qat_button = mo.ui.run_button(label="Run the PTQ algorithms and fine-tune with QAT (W4A8, W3A8, W2A8)")
    with_hint(
        qat_button,
        "QAT fine-tunes each bit width the first time (its measured time lands in the table), then comes "
        "from the disk cache; "
        "the PTQ algorithms run each time (AdaRound is the slowest).",
    )
    return (qat_button,)


@app.cell
def _(model_picker, numbers, qat_button):
    comparison = numbers.lab_comparison(model_picker.value, qat_button.value)
    return (comparison,)


@app.cell
def _(comparison, figures, mo, model_picker, ptq_vs_qat):
    mo.vstack(
        [
            mo.md(f"## The measured table — digits {model_picker.value}, fp32 {comparison.fp32:.2%}"),
            mo.md(f"*{comparison.status}* {ptq_vs_qat.registry_note()}"),
            mo.md(ptq_vs_qat.table_markdown(comparison.rows, comparison.fp32)),
            figures.comparison_figure(
                comparison.rows, comparison.fp32, f"digits {model_picker.value}: PTQ vs QAT"
            ),
            mo.md(
                "**The tutorial said** PTQ loses 1–3 %, QAT < 1 %, and PTQ struggles at ≤ 4 bits. **Measured:**"
            ),
            mo.md(ptq_vs_qat.tutorial_check(comparison.rows, comparison.fp32)),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Which one should *you* use?

    The tutorial's decision framework — *time-constrained and 1–3 % loss acceptable → PTQ; ≤ 4 bits or
    accuracy-critical → PTQ + QAT fine-tuning; training from scratch → QAT* — answered from the rows above:
    among the methods that fit your time and data and lose at most your accuracy budget, the fastest to
    deploy. Move the constraints and watch which measured row answers. (The third branch, *training from
    scratch*, is not measured here: every row starts from the trained fp32 model.)
    """)
    return


@app.cell
def _(mo, with_hint):
    bits_picker = mo.ui.dropdown({"W4A8": 4, "W3A8": 3, "W2A8": 2}, value="W2A8", label="bit width")
    with_hint(bits_picker, "at W4A8 plain RTN is usually enough; at W2A8 see what it takes.")
    return (bits_picker,)


@app.cell
def _(mo, with_hint):
    time_budget = mo.ui.slider(
        steps=[0.1, 0.3, 1, 3, 10, 30, 100, 1000], value=30, label="time to deploy (s)", show_value=True
    )
    with_hint(time_budget, "drop the budget to 1 s: QAT no longer fits, what is left?")
    return (time_budget,)


@app.cell
def _(decision, mo, with_hint):
    data_picker = mo.ui.dropdown(
        list(decision.DATA_CHOICES), value="the labelled training set (1437 images)", label="data you have"
    )
    with_hint(data_picker, "with only 256 unlabelled images, QAT is out: labels are what it needs.")
    return (data_picker,)


@app.cell
def _(mo, with_hint):
    max_drop = mo.ui.slider(
        0.0, 10.0, value=1.5, step=0.5, label="accuracy you may lose (points)", show_value=True
    )
    with_hint(max_drop, "set 0: does any method match fp32?")
    return (max_drop,)


@app.cell
def _(
    bits_picker,
    comparison,
    data_picker,
    decision,
    max_drop,
    mo,
    time_budget,
):
    _answer = decision.recommend(
        comparison.rows,
        comparison.fp32,
        bits=bits_picker.value,
        time_budget_s=time_budget.value,
        data=data_picker.value,
        max_drop=max_drop.value,
    )
    mo.callout(mo.md(_answer.markdown), kind="success" if _answer.choice is not None else "warn")
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## How training shapes quantizability

    The tutorial also claims that *weight averaging (LAWA): +2–5 % PTQ robustness* and that *intermediate LR
    cooldowns* give better quantization stability. Here every digits model is trained three ways from the
    same initialisation and data order, for 3 seeds:

    * **standard** — the shipped one-cycle schedule;
    * **LAWA** — the same run, averaging its last 10 epoch checkpoints, $\theta = \frac1k \sum_{i} \theta_i$,
      then re-estimating BatchNorm statistics (Kaddour 2022; Sanyal et al. 2023);
    * **cooldown** — warm-up, a constant peak rate, then a linear cooldown over the last 20 % of the steps.

    Each is then rounded to W4, W3 and W2 (BatchNorm folded, activations in float). A gain is only a gain if
    it exceeds the spread between seeds. Keep in mind what LAWA was made for: averaging checkpoints taken at a
    *high* learning rate (Sanyal et al. average LLM pre-training checkpoints before any decay). The standard
    recipe here anneals the rate to ~0, so its last checkpoints are nearly one point in weight space and their
    average can only differ a little; the cooldown run is the schedule that changes the end of training.
    """)
    return


@app.cell
def _(mo, with_hint):
    granularity_picker = mo.ui.dropdown(
        ["per-channel", "per-tensor"], value="per-channel", label="weight scales"
    )
    dynamics_button = mo.ui.run_button(label="Train the variants (3 seeds)")
    mo.vstack(
        [
            with_hint(granularity_picker, "per-tensor W2 is where training differences show most."),
            with_hint(
                dynamics_button,
                "the first time it trains (the bar shows each seed's time, the elapsed time and an estimate "
                "of the time left); then it comes from the disk cache.",
            ),
        ]
    )
    return dynamics_button, granularity_picker


@app.cell
def _(dynamics_button, model_picker, numbers):
    dynamics = numbers.lab_study(model_picker.value, dynamics_button.value)
    return (dynamics,)


@app.cell
def _(
    dynamics,
    dynamics_table,
    figures,
    granularity_picker,
    mo,
    model_picker,
    text,
):
    mo.stop(dynamics is None, mo.md(text.not_measured_markdown(model_picker.value)))
    mo.vstack(
        [
            mo.md(dynamics_table.dynamics_markdown(dynamics, granularity_picker.value)),
            figures.dynamics_figure(
                dynamics, granularity_picker.value, f"digits {model_picker.value}: RTN accuracy per seed"
            ),
            mo.md(dynamics_table.lawa_verdict(dynamics, granularity_picker.value)),
            mo.md(dynamics_table.seconds_markdown(dynamics)),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Predict, then measure

    Answer first, then open the measured answer.
    """)
    return


@app.cell
def _(comparison, mo, numbers):
    mo.accordion(numbers.self_check(comparison))
    return


@app.cell
def _(comparison, exercise, labkit, model_picker, questions):
    checks = labkit.Checks(questions.lab08_questions(comparison, model_picker.value), exercise.EXERCISES)
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
