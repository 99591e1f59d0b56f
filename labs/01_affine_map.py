import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import ptqlab  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch starts its threads)

    # isort: split
    import marimo as mo
    import torch

    from ptqlab.lessons import affine_map as la
    from ptqlab.lessons.controls import with_hint
    from ptqlab.plots import affine_map as plots

    return la, mo, plots, torch, with_hint


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 01 — The affine map: from real numbers to integers and back

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
def _(mo, with_hint):
    symmetric = mo.ui.switch(value=False, label="symmetric (zero point fixed at the middle code)")
    with_hint(
        symmetric,
        "with min = −1, max = 2.5, switch symmetric **on**: the grid is centred on 0, "
        "so the codes below −2.5 are wasted and the scale grows.",
    )
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
def _(bits, hi, la, lo, mo, signed, symmetric):
    spec = la.per_tensor_spec(bits.value, signed.value, symmetric.value)
    _problem = la.range_problem(lo.value, hi.value)
    mo.stop(_problem is not None, mo.callout(mo.md(_problem or ""), kind="warn"))
    curve = la.affine_curve(spec, lo.value, hi.value)
    return curve, spec


@app.cell
def _(curve, la, mo, spec):
    mo.vstack(
        [
            mo.md(f"## The quantization parameters of `{spec}`"),
            mo.hstack(
                [
                    mo.stat(la.fmt(curve.scale), label="scale", caption="real units per integer step"),
                    mo.stat(str(curve.zero_point), label="zero point", caption="the code of 0.0"),
                    mo.stat(f"[{spec.qmin}, {spec.qmax}]", label="integer range", caption="qmin, qmax"),
                    mo.stat(f"{spec.levels:,}", label="codes", caption=f"2^{spec.bits}"),
                ],
                widths="equal",
            ),
            mo.md(la.qparams_markdown(curve)),
        ]
    )
    return


@app.cell
def _(curve, la, mo):
    mo.accordion({"The integer grid (code → real value)": mo.md(la.grid_markdown(curve.qparams, curve.spec))})
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
def _(curve, plots):
    plots.affine_figure(curve.spec, curve.lo, curve.hi)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## A worked example

    Seven numbers go through the two formulas with the current settings.
    """)
    return


@app.cell
def _(curve, la, mo, torch):
    _example = torch.tensor(la.EXAMPLE_VALUES)
    mo.md(la.worked_example_markdown(la.worked_example(_example, curve.spec, curve.qparams)))
    return


@app.cell
def _(mo):
    answer = mo.ui.text(placeholder="an integer code", label="your answer")
    return (answer,)


@app.cell
def _(answer, curve, la, mo):
    _probe = 1.3
    _correct, _feedback = la.check_code_answer(answer.value, la.code_of(_probe, curve.spec, curve.qparams))
    _kind = {True: "success", False: "danger", None: "neutral"}[_correct]
    mo.vstack(
        [
            mo.md(
                f"## Self-check\n\nWith the current settings (scale = {la.fmt(curve.scale)}, zero point = "
                f"{curve.zero_point}, codes {curve.spec.qmin} … {curve.spec.qmax}), which integer code does "
                f"**x = {_probe}** get? Work it out by hand, then type it. Change the settings and try again."
            ),
            answer,
            mo.callout(mo.md(_feedback), kind=_kind),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
