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
    from ptqlab.lessons.calibration import cache, exercise, figures, numbers, questions, text
    from ptqlab.widgets import ClippingExplorer

    return (
        ClippingExplorer,
        cache,
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
    # Lab 02 — Calibration: choosing the clipping range from data

    Lab 01 showed that a quantizer is fixed by its range $[\,lo, hi\,]$: a wide range rounds coarsely,
    a narrow one clips. **Calibration** picks that range by watching activations. Every toolkit does it
    differently, and here they all run side by side on the same data, with `ptqlab`'s implementations
    (each cross-checked against the original: torch.ao's observers and L2 search, TensorRT's entropy
    pseudocode, `numpy.percentile`):

    | calibrator | range | from |
    |---|---|---|
    | **minmax** | smallest and largest value seen | torch.ao, ONNX Runtime |
    | **moving_average** | running average of each batch's min and max (c = 0.01) | torch.ao QAT |
    | **percentile** | the p-th percentile of $\lvert x \rvert$ (or of both tails) | ONNX Runtime, modelopt |
    | **entropy** | the threshold whose quantized histogram is closest in KL divergence | TensorRT |
    | **mse** | the range whose grid gives the least rounding + clipping error on the histogram | modelopt, AIMET |
    | **l2** | torch.ao's greedy shrinking of the range, stopped at the first error increase | torch.ao |

    > **The data here is synthetic**, clearly not a real layer: a body (Gaussian by default) in which a
    > small share of values is replaced by outliers. Real activations look like this: BERT-style
    > transformers have a few huge outlier channels; post-ReLU activations are one-sided.
    """)
    return


@app.cell
def _(mo, text):
    mo.md(text.GOALS)
    return


@app.cell
def _(mo, with_hint):
    body = mo.ui.dropdown(["gaussian", "uniform", "relu"], value="gaussian", label="body of the data")
    with_hint(body, "**uniform** has no tail at all: nothing is gained by clipping.")
    return (body,)


@app.cell
def _(mo, with_hint):
    outlier_size = mo.ui.slider(
        0.0, 100.0, step=1.0, value=20.0, label="outlier size (× body σ)", show_value=True, full_width=True
    )
    with_hint(
        outlier_size,
        "push it to **100**: min/max spends the whole grid on a few values.",
    )
    return (outlier_size,)


@app.cell
def _(mo, with_hint):
    outlier_percent = mo.ui.slider(
        steps=[0.0, 0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0],
        value=0.01,
        label="outlier share (%)",
        show_value=True,
        full_width=True,
    )
    with_hint(
        outlier_percent,
        "at **0 %** the searches only trim the Gaussian's own tail; at **1 %** the outliers are no longer rare, and KL (entropy) still clips them.",
    )
    return (outlier_percent,)


@app.cell
def _(mo, with_hint):
    n_batches = mo.ui.slider(
        1, 64, value=8, label="calibration batches (4,096 values each)", show_value=True, full_width=True
    )
    with_hint(
        n_batches,
        "with **1 batch** the rare outliers may not be seen at all; moving_average forgets them.",
    )
    return (n_batches,)


@app.cell
def _(mo, text, with_hint):
    bits = mo.ui.slider(2, 16, value=4, label="bits", show_value=True, full_width=True)
    with_hint(
        bits,
        text.bits_hint(),
    )
    return (bits,)


@app.cell
def _(mo, with_hint):
    p = mo.ui.slider(
        steps=[99.0, 99.9, 99.99, 99.999, 100.0],
        value=99.99,
        label="percentile p",
        show_value=True,
        full_width=True,
    )
    with_hint(p, "**p = 100** is min/max; **p = 99** throws away 1 % of the values.")
    return (p,)


@app.cell
def _(mo, with_hint):
    mode = mo.ui.radio(
        ["symmetric (int, range [−T, T])", "asymmetric (uint, range [lo, hi])"],
        value="symmetric (int, range [−T, T])",
        label="grid",
    )
    with_hint(
        mode,
        "switch to **asymmetric** with the **relu** body: the symmetric grid wastes its negative half on one-sided data.",
    )
    return (mode,)


@app.cell
def _(body, cache, n_batches, outlier_percent, outlier_size):
    setting = cache.data_setting(body.value, outlier_size.value, outlier_percent.value, n_batches.value)
    stats, x_eval, calibration_ms = cache.timed_data(setting)  # cached per data setting
    return calibration_ms, setting, stats, x_eval


@app.cell
def _(bits, mode, numbers):
    symmetric = mode.value.startswith("symmetric")
    spec = numbers.lab_grid(bits.value, symmetric)
    return spec, symmetric


@app.cell
def _(cache, p, setting, spec):
    # each calibrator's range is cached per (data, grid) — p only re-runs the percentile — and so is its score
    results, search_ms = cache.timed_comparison(setting, spec, float(p.value))
    return results, search_ms


@app.cell
def _(figures, mo, results, spec, text):
    mo.vstack(
        [
            mo.md(f"## Every calibrator on the same data — `{spec}`"),
            mo.md("### Measured error per calibrator (best SQNR in bold)"),
            mo.md(figures.calibrators_markdown(results)),
            mo.md(text.minmax_clip_note(results, spec)),
            mo.md(text.ceiling_note(results, spec)),
        ]
    )
    return


@app.cell
def _(figures, results, stats):
    figures.ranges_chart(stats, results)
    return


@app.cell
def _(calibration_ms, mo, search_ms, x_eval):
    mo.md(
        f"SQNR is measured on {x_eval.numel():,} fresh values from the same mixture (not the calibration set). "
        f"Searches + evaluation: {search_ms:.0f} ms; observing the stream: {calibration_ms:.0f} ms "
        "(both cached: moving back to a setting you have seen costs about nothing)."
    )
    return


@app.cell
def _(cache, setting, spec):
    curve = cache.curve_for(setting, spec)  # the histogram's error curve: p does not move it
    return (curve,)


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Error versus threshold

    From the same histogram, for many thresholds at once: each bin's values are rounded to that
    range's actual grid (its scale, zero point and $2^{bits}$ levels), and values outside the grid are
    clipped to its edge. Widening the range trades clipping error (red) for rounding error (blue).
    The circles are where each calibrator landed; the legend gives each one's threshold (picks at the
    same threshold draw on top of each other). **mse** searches this same error for its range, so it
    sits at the minimum of the black curve, up to the histogram's resolution (the table's SQNR is
    measured on fresh data).
    """)
    return


@app.cell
def _(curve, figures, results, symmetric):
    figures.error_curve_chart(curve, results, symmetric)
    return


@app.cell
def _(cache, mo, p, setting, spec):
    mo.vstack(
        [
            mo.md("## The vendors' answers on the same sample"),
            mo.md(
                "TensorRT's and ONNX Runtime's calibrators (ORT's reproduced by `ort_entropy` and "
                "`ort_percentile`, checked against ORT itself within one bin), each observing the "
                "evaluation sample below, scored on the same grid:"
            ),
            cache.lazy_vendors_view(setting, spec, float(p.value)),
        ]
    )
    return


@app.cell
def _(ClippingExplorer, cache, mo, p, setting, spec, x_eval):
    # rebuilt only when the data, the grid or p change; the markers are the table's (cached) ranges
    explorer = mo.ui.anywidget(
        ClippingExplorer(x_eval, spec=spec, observers=cache.cached_observers(setting, float(p.value)))
    )
    return (explorer,)


@app.cell
def _(explorer, mo):
    mo.vstack(
        [
            mo.md(
                r"""
    ## Your turn: pick the range by hand

    The evaluation data again, with the two ends of the range as handles: **drag lo and hi** (or
    click a calibrator's button to start from its range). Bars outside the grid turn red. The dotted
    lines are the ranges the calibrators picked for this grid; the numbers under the plot are computed
    by `ptqlab.error_split` each time you let go. On the symmetric grid the larger of $|lo|$ and $|hi|$
    sets the range for both sides: pull **both** handles in. Can you beat every calibrator?
    """
            ),
            mo.lazy(
                explorer
            ),  # drawn once scrolled into view: moving a slider above does not rebuild it off-screen
        ]
    )
    return


@app.cell
def _(cache, explorer, mo, numbers, p, results, setting, spec, x_eval):
    _spec = explorer.widget.current_spec  # the lab's grid, with the bits typed in the widget
    _mine = numbers.score_range("your range", explorer.value["lo"], explorer.value["hi"], x_eval, _spec)
    _rivals = results if _spec == spec else cache.comparison(setting, _spec, float(p.value))
    mo.md(numbers.verdict_markdown(_mine, _rivals, _spec))
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## No single calibrator wins everywhere

    Move the sliders and watch the bold row change (numbers in these bullets are measured on the default data):
    """)
    return


@app.cell
def _(mo, text):
    mo.md(text.rules_markdown())
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    * **Outliers more common than 100 − p** (share 0.1 % with p = 99.99): the percentile cannot cut
      them; at p = 99.9 it can. At 1 % they are part of the distribution and KL still clips them: KL
      compares *shapes* and never sees how far a clipped value was from the threshold.
    * **Batches**: one batch may miss the rare outliers (min/max is then *better*); 64 batches find the
      largest ones, and min/max gets worse with more data. The moving average forgets single spikes.

    ## Why the libraries disagree

    The same *name* hides different algorithms (the algorithms each toolkit documents, summarised here):

    * **Entropy.** TensorRT histograms $|x|$ in 2048 bins, tries 128…2048 kept bins and sets the
      threshold half a bin *past* the chosen edge; modelopt uses the bin edge itself and the *last*
      argmin; ONNX Runtime builds a signed histogram of only 128 bins with windows centred on zero and
      smooths it; Intel Neural Compressor merges into 255 levels and starts at 70 % of the bins.
    * **Percentile.** Symmetric on $|x|$, or (ONNX Runtime) $(100-p)/2$ cut from each tail; defaults range
      from 99.99 to 99.999.
    * **MSE.** modelopt fake-quantizes bin centres; AIMET scores 101 candidates and weights clipped bins
      ×3; `ptqlab` uses the uniform-in-bin model above over all 2048 thresholds.
    * **L2** (torch.ao): a greedy walk that stops at the first increase, not a global minimum; which of
      two torch.ao histogram-merge implementations a version ships changes its answer.
    * **Streaming.** Histograms are re-binned when the range grows, so batch order and size leak into
      the result (TensorRT#1411 reports batch-size sensitivity).

    Users see it too: min/max beat entropy on YOLO (TensorRT#3922); percentile ruined BERT-SQuAD
    (onnxruntime#10571). Calibrate with several methods and **measure** — which is what this page does.
    """)
    return


@app.cell
def _(exercise, labkit, questions):
    checks = labkit.Checks(questions.lab02_questions(), exercise.EXERCISES)
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
def _(mo, text):
    mo.md(text.RECAP)
    return


if __name__ == "__main__":
    app.run()
