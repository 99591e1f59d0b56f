import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import ptqlab  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch starts its threads)

    # isort: split
    import marimo as mo

    from ptqlab.core.spec import QuantSpec
    from ptqlab.lessons import direct_manipulation as lesson
    from ptqlab.observers import PER_TENSOR
    from ptqlab.widgets import AffineStaircase, ClippingExplorer

    return AffineStaircase, ClippingExplorer, PER_TENSOR, QuantSpec, lesson, mo


@app.cell
def _(mo):
    mo.md(r"""
    # Lab 06 — Direct manipulation: drag the range, watch the error

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
def _(lesson):
    x = lesson.heavy_tailed_activations()  # Student-t, 3 degrees of freedom: a few huge values
    return (x,)


@app.cell
def _(ClippingExplorer, PER_TENSOR, QuantSpec, mo, x):
    # every per-tensor calibrator in ptqlab.observers, each calibrated on x, as a marker
    explorer = mo.ui.anywidget(
        ClippingExplorer(x, spec=QuantSpec(bits=4, symmetric=False), observers=PER_TENSOR)
    )
    return (explorer,)


@app.cell
def _(explorer, mo):
    mo.vstack(
        [
            mo.md("## 1. Clipping explorer (4-bit, asymmetric)"),
            explorer,
        ]
    )
    return


@app.cell
def _(explorer, lesson, mo, x):
    _spec = explorer.widget.current_spec  # the lab's QuantSpec with the bits typed in the widget
    mo.md(lesson.thresholds_markdown(x, explorer.value["lo"], explorer.value["hi"], _spec))
    return


@app.cell
def _(AffineStaircase, mo):
    staircase = mo.ui.anywidget(AffineStaircase(lo=-1.0, hi=1.0, bits=3))
    return (staircase,)


@app.cell
def _(mo, staircase):
    mo.vstack([mo.md("## 2. Affine staircase"), staircase])
    return


@app.cell
def _(lesson, mo, staircase):
    mo.md(lesson.staircase_markdown(staircase.value["stats"], staircase.value["bits"]))
    return


if __name__ == "__main__":
    app.run()
