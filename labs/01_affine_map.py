import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import ptqlab  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch starts its threads)

    # isort: split
    import marimo as mo
    import torch

    from ptqlab import labkit
    from ptqlab.labkit import with_hint
    from ptqlab.lessons.affine_map import exercise, figures, numbers, questions, text

    return (
        exercise,
        figures,
        labkit,
        mo,
        numbers,
        questions,
        text,
        torch,
        with_hint,
    )


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 01 — The affine map: from real numbers to integers and back

    **After this lab you can**

    1. compute a scale and a zero point from a range $[\min, \max]$ and a bit width, by hand;
    2. quantize and dequantize a number with the two formulas below, and write them as code;
    3. tell rounding error (at most scale/2) from clipping error (unbounded) on a plot;
    4. explain what symmetric and unsigned grids cost, and the two conventions for the symmetric scale.

    Quantization stores a real tensor as small integers plus two numbers, a **scale** and a
    **zero point**. Two formulas do all the work:

    $$x_q = \operatorname{clamp}\big(\operatorname{round}(x / \text{scale}) + \text{zero\_point},\ q_{\min},\ q_{\max}\big)
    \qquad\qquad
    \hat{x} = (x_q - \text{zero\_point}) \cdot \text{scale}$$

    The integers $q_{\min} \dots q_{\max}$ form a **grid** of real values spaced one *scale* apart.
    Every $x$ inside the grid's range lands on its nearest grid point — a **rounding error** of at most
    scale/2. Every $x$ outside is pushed to the nearest end — a **clipping error** that grows without
    bound. Choosing the range $[\min, \max]$ trades one for the other; that trade-off is what every
    calibrator in the later labs is about.

    Move the controls below. Every number on this page is computed by `ptqlab`, the same code that is
    checked bit for bit against PyTorch's and torchao's kernels.
    """)
    return


@app.cell
def _(mo, with_hint):
    bits = mo.ui.slider(2, 16, value=4, label="bits", show_value=True, full_width=True)
    with_hint(
        bits,
        "drop to **2 bits** and count the steps; at **16 bits** the steps are too "
        "fine to see, so read the scale instead.",
    )
    return (bits,)


@app.cell
def _(mo, with_hint):
    lo = mo.ui.slider(
        -10.0, 10.0, step=0.1, value=-1.0, label="clipping range min", show_value=True, full_width=True
    )
    with_hint(
        lo,
        "move min **above 0** (say 2): the grid still reaches down to 0, because "
        "0.0 must be exactly representable.",
    )
    return (lo,)


@app.cell
def _(mo, with_hint):
    hi = mo.ui.slider(
        -10.0, 10.0, step=0.1, value=2.5, label="clipping range max", show_value=True, full_width=True
    )
    with_hint(
        hi,
        "pull max **below 2.2** and watch the worked example's 2.2 change from *rounded* to *clipped*.",
    )
    return (hi,)


@app.cell
def _(mo, text, with_hint):
    symmetric = mo.ui.switch(value=False, label="symmetric (zero point fixed at the middle code)")
    with_hint(symmetric, text.symmetric_hint())
    return (symmetric,)


@app.cell
def _(mo, with_hint):
    signed = mo.ui.switch(value=True, label="signed integers")
    with_hint(
        signed,
        "turn signed **off** with min = 0: unsigned integers spend every code on "
        "x ≥ 0, the natural fit for ReLU outputs.",
    )
    return (signed,)


@app.cell
def _(bits, hi, lo, mo, numbers, signed, symmetric):
    spec = numbers.per_tensor_spec(bits.value, signed.value, symmetric.value)
    _problem = numbers.range_problem(lo.value, hi.value)
    mo.stop(_problem is not None, mo.callout(mo.md(_problem or ""), kind="warn"))
    curve = numbers.lab_curve(spec, lo.value, hi.value)
    return curve, spec


@app.cell
def _(curve, mo, numbers, spec, text):
    mo.vstack(
        [
            mo.md(f"## The quantization parameters of `{spec}`"),
            mo.hstack(
                [
                    mo.stat(numbers.fmt(curve.scale), label="scale", caption="real units per integer step"),
                    mo.stat(str(curve.zero_point), label="zero point", caption="the code of 0.0"),
                    mo.stat(f"[{spec.qmin}, {spec.qmax}]", label="integer range", caption="qmin, qmax"),
                    mo.stat(f"{spec.levels:,}", label="codes", caption=f"2^{spec.bits}"),
                ],
                widths="equal",
            ),
            mo.md(text.qparams_markdown(curve)),
        ]
    )
    return


@app.cell
def _(curve, mo, text):
    mo.accordion(
        {"The integer grid (code → real value)": mo.md(text.grid_markdown(curve.qparams, curve.spec))}
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## The staircase and its error

    Top: the input $x$ against what the network sees, $\hat{x}$. Inside the grid's range the line is a
    staircase that hugs the diagonal; in the shaded regions it is flat — those inputs are **clipped**.
    Bottom: the error $\hat{x} - x$, blue where it is rounding error (a saw-tooth between ±scale/2)
    and red where it is clipping error. The MSEs in the legend are those of an input spread uniformly
    over the plotted axis.
    """)
    return


@app.cell
def _(curve, figures):
    figures.affine_map_chart(curve)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## A worked example

    Seven numbers go through the two formulas with the current settings.
    """)
    return


@app.cell
def _(curve, mo, numbers, text, torch):
    _example = torch.tensor(numbers.EXAMPLE_VALUES)
    mo.md(text.worked_example_markdown(numbers.worked_example(_example, curve.spec, curve.qparams)))
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Two conventions for the symmetric scale

    A symmetric signed grid has one more code below its zero point than above it ($-2^{b-1} \dots 2^{b-1}-1$).
    ptqlab, torch.ao and torchao divide max|x| by $(q_{\max} - q_{\min})/2 = 2^{b-1} - \tfrac12$ (127.5 at
    8 bits): every code is used, and the positive max lands half a step beyond the top code, so it is clipped.
    The tutorial and TensorRT use the **narrow range** $[-(2^{b-1}-1),\ 2^{b-1}-1]$ and divide by
    $2^{b-1} - 1$ (127): the grid is exactly symmetric and max|x| is on it, but one code is never used and the
    step is larger. The table uses the current bits and range:
    """)
    return


@app.cell
def _(curve, mo, text):
    mo.md(text.symmetric_conventions_markdown(curve.spec, curve.lo, curve.hi))
    return


@app.cell
def _(mo):
    code_answer = mo.ui.text(placeholder="an integer code", label="your answer")
    return (code_answer,)


@app.cell
def _(code_answer, curve, labkit, questions):
    labkit.question_block(questions.code_question(curve), code_answer)
    return


@app.cell
def _(exercise, labkit, questions):
    checks = labkit.Checks(questions.lab01_questions(), exercise.EXERCISES)
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

    - A range $[\min, \max]$ (widened to contain 0) and $b$ bits fix the scale, $(\max' - \min')/(q_{\max} - q_{\min})$,
      and the zero point, the integer code of 0.0.
    - $x_q = \operatorname{clamp}(\operatorname{round}(x/s) + z)$ and $\hat x = (x_q - z)\,s$: inside the grid
      the error is rounding, at most $s/2$; outside it is clipping, without bound.
    - Each extra bit halves the step. Symmetric grids fix $z$ and pay for it with unused codes when the data
      is one-sided; unsigned grids fit data $\ge 0$.
    - Symmetric scales come in two conventions: divide by $(q_{\max} - q_{\min})/2$ (every code, max clipped
      by half a step) or by $2^{b-1}-1$ (narrow range, exactly symmetric).

    Next, lab 02: where the range $[\min, \max]$ comes from — calibrators.
    """)
    return


if __name__ == "__main__":
    app.run()
