"""Lab 02 — calibration: every calibrator on the same data, the vendors' conventions, error vs threshold
(cache: the slider path's cached comparisons; vendors: TensorRT's and ONNX Runtime's answers side by side).

Roles: numbers (what the lab computes), text (goals, recap, sentences carrying numbers), questions
(self-checks), exercise (EXERCISES), figures.
"""
