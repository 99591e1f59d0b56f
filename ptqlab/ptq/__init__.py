"""Model-level PTQ: calibration, set selection, BatchNorm folding, fake-quant simulation, sensitivity and
mixed precision, the PTQ algorithms beyond RTN, QAT and how training shapes quantizability.

adaround           AdaRound (Nagel et al., 2020, "Up or Down? Adaptive Rounding for Post-Training …
algorithms         One entry point for the PTQ algorithms that go beyond round-to-nearest, so "RTN vs X" is …
awq                AWQ, activation-aware weight quantization (Lin et al., 2023, "AWQ
bias_correction    Empirical bias correction (Nagel et al., 2019, "Data-Free Quantization Through Weight …
calibrate          Calibration
cle                Cross-layer equalization (Nagel et al., 2019, "Data-Free Quantization Through Weight …
dfq                The MobileNetV2 failure and its data-free fix, measured
folding            BatchNorm folding
gptq               GPTQ (Frantar et al., 2022, "GPTQ
layer_data         What the layer-wise PTQ algorithms share
layerwise          The sequential layer-by-layer loop that GPTQ, AdaRound and bias correction share
llm_eval           Language-model quality, on any causal LM whose forward returns ``.logits`` (1, T, vocab)
measure            Running a model for measurement
qat                Quantization-aware training (QAT) of the digits models with torchao's maintained QAT API
quality            How good is a (quantized) model? Top-1 accuracy on labelled inputs, and agreement …
selection          Which samples to calibrate with
sensitivity        Per-layer sensitivity and greedy mixed precision under a model-size budget
simulate           Whole-model simulated quantization (fake-quant)
smoothquant        SmoothQuant (Xiao et al., 2022, "SmoothQuant
training_dynamics  How training shapes quantizability
vit_activations    The ViT failure, measured
"""
