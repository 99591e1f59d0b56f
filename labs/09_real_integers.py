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
    from ptqlab.lessons.real_integers import exercise, figures, numbers, questions, text

    return exercise, figures, labkit, mo, numbers, questions, text, with_hint


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Lab 09 — From fake quantization to real integers

    Every lab so far simulated quantization in float (quantize → dequantize) or called an engine as a black
    box. Here the integers do the work.

    **After this lab you can**

    1. run a quantized layer with integers only — int32 accumulation, zero-point cross terms, an int32 bias,
       requantization with a fixed-point multiplier — and check it against torch.ao's x86 kernel;
    2. say where an int32 accumulator would overflow, and why it practically never does;
    3. pack 2-, 3-, 4- and 8-bit codes into bytes, and predict a packed file's size to the byte;
    4. compare float grids (fp16, bf16, fp8) with integer grids, and codebooks (k-means, NF4) with both;
    5. explain why a weight-only layer written in Python saves memory but not time.

    The integer-only layer computes, for K inputs per output,

    $$\text{acc} = \sum x_q w_q - z_w \sum x_q - z_x \sum w_q + K z_x z_w + b_q, \qquad b_q = \operatorname{round}\!\big(b / (s_x s_w)\big)$$

    $$y_q = \operatorname{clamp}\!\big(z_y + \lfloor (\text{acc} \cdot M_0 + 2^{n-1}) / 2^{n} \rfloor,\ 0,\ 255\big), \qquad M_0 \cdot 2^{-n} \approx M = s_x s_w / s_y,\ M_0 \in [2^{30}, 2^{31})$$
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 1. One real layer, step by step

    The digits MLP with its BatchNorms folded, quantized by torch.ao's x86 engine (static int8, per-channel
    weights). ptqlab reads the engine's integers — weight codes, scales, zero points — and redoes the
    arithmetic with integers only.
    """)
    return


@app.cell
def _(mo, numbers, with_hint):
    layer = mo.ui.dropdown(list(numbers.LAYERS), value="fc2", label="layer")
    sample = mo.ui.slider(0, 359, value=0, label="test digit", show_value=True)
    channel = mo.ui.slider(0, 511, value=0, label="output channel", show_value=True)
    mo.vstack(
        [
            with_hint(layer, "compare fc1 (64 inputs) with fc2 (512): how many bits of headroom are left?"),
            with_hint(
                sample, "pick another digit: the histogram (all digits) stays, the walkthrough below changes."
            ),
            with_hint(channel, "find a channel whose ReLU clamp fires (the code equals z_y)."),
        ]
    )
    return channel, layer, sample


@app.cell
def _(figures, layer, numbers, sample):
    walk = numbers.layer_walkthrough(layer.value, sample.value)
    figures.accumulator_chart(
        walk["acc"], walk["worst_case"], f"digits MLP {layer.value}: int32 accumulators"
    )
    return (walk,)


@app.cell
def _(channel, mo, text, walk):
    mo.md(text.walkthrough_markdown(walk, channel.value))
    return


@app.cell
def _(mo, text):
    mo.md("### The whole MLP in integers\n\n" + text.whole_model_markdown())
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 2. Bit packing, byte by byte

    Codes narrower than a byte are packed as a little-endian bit stream: code $i$ takes bits
    $[i b, (i+1) b)$, least significant bit first, so 4-bit codes sit low nibble first and 3-bit codes
    straddle byte boundaries. Below: the first eight codes of the MLP's `fc1` weights (symmetric
    per-tensor, offset to unsigned).
    """)
    return


@app.cell
def _(mo, with_hint):
    pack_bits = mo.ui.slider(steps=[2, 3, 4, 8], value=4, label="bits per code", show_value=True)
    group = mo.ui.slider(
        steps=[16, 32, 64, 128], value=32, label="group size (one fp16 scale each)", show_value=True
    )
    mo.vstack(
        [
            with_hint(pack_bits, "at 3 bits, which bytes hold pieces of two codes?"),
            with_hint(group, "predict the bits per weight at group 128 before you move the slider."),
        ]
    )
    return group, pack_bits


@app.cell
def _(group, mo, pack_bits, text):
    mo.vstack(
        [
            mo.md(text.packing_markdown(pack_bits.value)),
            mo.md("**A packed file on disk.** " + text.packed_file_markdown(pack_bits.value, group.value)),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo, text):
    mo.md(
        r"""
    ## 3. Float formats against integer grids

    A float format keeps a constant *relative* precision $2^{-m}$: its points crowd near 0 and thin out
    towards its maximum. An integer grid keeps a constant *absolute* step. fp8 is used with a per-tensor
    scale (amax ↦ the format's maximum), as below.

    """
        + text.format_table_markdown()
    )
    return


@app.cell
def _(mo, with_hint):
    fmt = mo.ui.dropdown(["fp8_e4m3", "fp8_e5m2"], value="fp8_e4m3", label="float format")
    int_bits = mo.ui.slider(steps=[4, 8], value=8, label="integer bits", show_value=True)
    kind = mo.ui.dropdown(["weight", "activation"], value="weight", label="tensor (MLP fc2)")
    mo.vstack(
        [
            with_hint(fmt, "e5m2 trades a mantissa bit for range: where do its gaps grow?"),
            with_hint(int_bits, "drop to **4 bits**: the integer gap widens; which grid now wins near 0?"),
            with_hint(kind, "switch to the **activation** (post-ReLU, one-sided): which grid wastes codes?"),
        ]
    )
    return fmt, int_bits, kind


@app.cell
def _(figures, fmt, int_bits, kind, mo, numbers, text):
    _x, _fg, _ig = numbers.grids(kind.value, fmt.value, int_bits.value)
    mo.vstack(
        [
            figures.grids_chart(_x, _fg, _ig, (fmt.value, f"int{int_bits.value}"), f"MLP fc2 {kind.value}"),
            mo.md(
                "**Round-trip error, same tensors** (fp8 and int scaled to the tensor's absmax):\n\n"
                + text.format_error_markdown()
            ),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 4. Non-uniform grids: k-means codebooks and NF4

    A codebook stores $2^b$ float centroids and a $b$-bit index per weight; Lloyd's algorithm moves the
    centroids to where the weights are. Started from the linear grid, it can only lower the error. NF4 is
    a fixed codebook at the quantiles of a normal distribution, one absmax per block of 64. The catch:
    hardware needs a table lookup before every multiply — there is no integer GEMM over a codebook.
    """)
    return


@app.cell
def _(mo, with_hint):
    book_bits = mo.ui.slider(2, 4, value=2, label="index bits", show_value=True)
    with_hint(book_bits, "at 2 bits, compare the digits accuracy of linear vs k-means weights.")
    return (book_bits,)


@app.cell
def _(book_bits, mo, text):
    mo.vstack(
        [
            mo.md(text.codebook_markdown(book_bits.value)),
            mo.md(text.codebook_accuracy_markdown(book_bits.value)),
        ]
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## 5. A weight-only Linear you can read (W8A16 / W4A16)

    `ptqlab.backends.weight_only_linear` stores int8 or packed int4 weights with fp16 scales and
    dequantizes them on every call. It shrinks the model, but each forward unpacks the whole weight matrix
    into a fresh float tensor, then runs the ordinary float GEMM on it: *more* memory traffic than fp32,
    plus Python overhead per layer. The engines' kernels (torchao's, and ONNX Runtime's `MatMulNBits`)
    dequantize small tiles in registers inside the GEMM loop, so the weights cross the memory bus once, at
    8 or 4 bits — but they still dequantize on every call, so whether they beat fp32 depends on the CPU and
    the batch. Press the button to measure both here (interleaved with fp32, medians with p10/p90); the
    sentence under the table says what this machine showed, and why.
    """)
    return


@app.cell
def _(mo, with_hint):
    wo_model = mo.ui.dropdown(["mlp", "minilm"], value="mlp", label="model")
    wo_batch = mo.ui.slider(steps=[1, 8, 64], value=64, label="batch", show_value=True)
    wo_run = mo.ui.run_button(label="Measure W8A16 / W4A16 vs the engines")
    mo.vstack(
        [
            with_hint(
                wo_model, "**minilm** is large enough for memory traffic to matter: compare it with the MLP."
            ),
            with_hint(
                wo_batch,
                "batch **1** reads every weight per row (memory-bound): does weight-only gain more there than at **64**?",
            ),
            wo_run,
        ]
    )
    return wo_batch, wo_model, wo_run


@app.cell
def _(mo, text, wo_batch, wo_model, wo_run):
    mo.stop(
        not wo_run.value,
        mo.md(
            "*Press the button to measure; the bar shows each variant's time and an estimate of the time left.*"
        ),
    )
    mo.md(text.weight_only_markdown(wo_model.value, wo_batch.value))
    return


@app.cell
def _(exercise, labkit, questions):
    checks = labkit.Checks(questions.lab09_questions(), exercise.EXERCISES)
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
    mo.md(text.recap_markdown())
    return


if __name__ == "__main__":
    app.run()
