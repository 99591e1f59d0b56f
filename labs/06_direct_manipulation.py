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
    from ptqlab.lessons.affine_map import exercise  # lab 01's exercise, met again as the staircase
    from ptqlab.lessons.direct_manipulation import numbers, questions, text
    from ptqlab.observers import PER_TENSOR
    from ptqlab.widgets import AffineStaircase, ClippingExplorer

    return (
        AffineStaircase,
        ClippingExplorer,
        PER_TENSOR,
        exercise,
        labkit,
        mo,
        numbers,
        questions,
        text,
        with_hint,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # Lab 06 — Direct manipulation: drag the range, watch the error

    **After this lab you can**

    1. find, by hand, a clipping range that beats min/max on a heavy-tailed tensor;
    2. split the error into its rounding and clipping parts and say which one dominates;
    3. compare your range with the ones the calibrators of lab 02 pick;
    4. read the scale and zero point off the staircase for any range and bit width.

    Two widgets, both computed by `ptqlab` in Python while you drag (the browser only draws):

    1. **Clipping explorer.** A heavy-tailed tensor and the two thresholds $[lo, hi]$ that become the
       quantizer's range. Pull them in and the grid gets finer (less *rounding* error) but the tails are
       cut off (more *clipping* error). The coloured lines are the ranges every calibrator of lab 02
       picks for this grid; click one's button to start from it.
    2. **Affine staircase.** The map $x \mapsto \hat x = (\mathrm{clamp}(\mathrm{round}(x/s) + z,
       q_{min}, q_{max}) - z)\,s$ for the range you drag and the bit width you type.

    In the explorer the two parts add up to the total error, where $[r_{lo}, r_{hi}]$ is the real
    interval the integer grid covers (it contains $[lo, hi]$ widened to include 0, up to rounding of $z$):

    $$\text{MSE} = \underbrace{\tfrac1N \textstyle\sum_{x \in [r_{lo}, r_{hi}]} (x - \hat x)^2}_{\text{rounding}}
    \;+\; \underbrace{\tfrac1N \textstyle\sum_{x \notin [r_{lo}, r_{hi}]} (x - \hat x)^2}_{\text{clipping}}$$

    Both also work in JupyterLab and Colab: see `labs/jupyter/`.
    """)
    return


@app.cell
def _(numbers):
    x = numbers.lab_activations()  # Student-t, 3 degrees of freedom: a few huge values
    return (x,)


@app.cell
def _(ClippingExplorer, PER_TENSOR, mo, numbers, x):
    # every per-tensor calibrator in ptqlab.observers, each calibrated on x, as a marker
    explorer = mo.ui.anywidget(ClippingExplorer(x, spec=numbers.EXPLORER_SPEC, observers=PER_TENSOR))
    return (explorer,)


@app.cell
def _(explorer, mo, with_hint):
    mo.vstack(
        [
            mo.md("## 1. Clipping explorer (4-bit, asymmetric)"),
            with_hint(
                mo.md("*The handles are the range ends; the buttons start from a calibrator's range.*"),
                "drag **hi** in until the clipping share passes 50 % of the error, then press **mse**: "
                "how close did you get?",
            ),
            explorer,
        ]
    )
    return


@app.cell
def _(explorer, mo, text, x):
    _spec = explorer.widget.current_spec  # the lab's QuantSpec with the bits typed in the widget
    mo.md(text.thresholds_markdown(x, explorer.value["lo"], explorer.value["hi"], _spec))
    return


@app.cell
def _(AffineStaircase, mo, numbers):
    staircase = mo.ui.anywidget(AffineStaircase(*numbers.STAIRCASE_DEFAULT))
    return (staircase,)


@app.cell
def _(mo, staircase, with_hint):
    mo.vstack(
        [
            mo.md("## 2. Affine staircase"),
            with_hint(
                mo.md("*Drag the range ends; type the bits.*"),
                "drag **lo above 0**: the grid still reaches 0. Then type **2 bits** and count the steps.",
            ),
            staircase,
        ]
    )
    return


@app.cell
def _(mo, staircase, text):
    mo.md(text.staircase_markdown(staircase.value["stats"], staircase.value["bits"]))
    return


@app.cell
def _(exercise, labkit, questions):
    checks = labkit.Checks(questions.lab06_questions(), exercise.EXERCISES)
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

    - On a heavy-tailed tensor the min/max range wastes the grid on a few huge values; pulling the range in
      trades a little clipping error for a lot less rounding error.
    - The best range is where the two parts balance — what the MSE calibrator searches for.
    - The staircase's scale is (hi′ − lo′)/(2^b − 1) and its zero point the code of 0, whatever range you drag.

    Both widgets also run in JupyterLab and Colab (see `labs/jupyter/`).
    """)
    return


if __name__ == "__main__":
    app.run()
