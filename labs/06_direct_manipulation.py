import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import ptqlab  # noqa: I001 — first: sets OMP_WAIT_POLICY before torch is imported
    import marimo as mo
    import torch

    from ptqlab.observers import PER_TENSOR
    from ptqlab.spec import QuantSpec
    from ptqlab.widgets import AffineStaircase, ClippingExplorer

    return AffineStaircase, ClippingExplorer, PER_TENSOR, QuantSpec, mo, ptqlab, torch


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
def _(torch):
    # A heavy-tailed "activation": Student-t with 3 degrees of freedom, t = z / sqrt(v / 3) with
    # z ~ N(0, 1) and v ~ chi²(3). Most values are small, a few are huge.
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(20_000, generator=generator)
    v = torch.randn(3, 20_000, generator=generator).pow(2).sum(dim=0)
    x = z / (v / 3).sqrt()
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
def _(explorer, mo, ptqlab, x):
    lo, hi = explorer.value["lo"], explorer.value["hi"]
    spec = explorer.widget.current_spec  # the lab's QuantSpec with the bits typed in the widget
    split = ptqlab.error_split(x, ptqlab.choose_qparams(lo, hi, spec), spec)
    minmax = ptqlab.error_split(x, ptqlab.qparams_for(x, spec), spec)
    mo.md(
        f"""
    **Your thresholds:** <span id="ptq-thresholds">lo = {lo:.4f}, hi = {hi:.4f}</span>

    **SQNR:** <span id="ptq-sqnr">{split.sqnr_db:.2f} dB</span> with your range, against
    {minmax.sqnr_db:.2f} dB for min-max ({split.sqnr_db - minmax.sqnr_db:+.2f} dB);
    {100 * split.clipped_fraction:.2f} % of the values are clipped, and clipping makes
    {100 * split.clipping_mse / split.total_mse:.0f} % of the error.
    """
    )
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
def _(mo, staircase):
    stair = staircase.value["stats"]
    mo.md(
        f"""
    With {staircase.value["bits"]} bits the grid has {stair["levels"]} levels, one every
    **s = <span id="ptq-scale">{stair["scale"]:.4g}</span>**; the real number 0 is stored as the code **z = {stair["zero_point"]}**, so
    it survives quantization exactly. Try lo > 0: the range is widened to include 0 first.
    """
    )
    return


if __name__ == "__main__":
    app.run()
