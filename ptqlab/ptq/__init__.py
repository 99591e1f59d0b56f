"""Model-level PTQ: calibration hooks and set selection, BatchNorm folding, whole-model fake-quant
simulation, per-layer sensitivity and mixed precision; quantization-aware training (qat) and how training
shapes quantizability (training_dynamics)."""
