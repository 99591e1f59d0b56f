"""Model-level PTQ: calibration hooks and set selection, BatchNorm folding, whole-model fake-quant
simulation, per-layer sensitivity and mixed precision."""
