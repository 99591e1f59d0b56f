"""Measurement: interleaved timing, hardware facts, roofline, model size, the benchmark runner, its
reports and tables.

accuracy           The accuracy of every real model under the standard simulated schemes (``ptqlab bench …
algorithm_goals    The issue-10 goals for the PTQ algorithms, measured (not timed tests)
architectures      The seed's "Quantization Impact Across Architectures" table, side by side with the one …
charts             Figures for measured benchmark rows
dynamics_table     The training-dynamics table
figure             The one figure factory every plot module uses, and the axis helpers they share
llm_schemes        Every scheme on a causal LM, one table
llm_speed          Batch-1 speed of a causal LM
models             The benchmark's models, each with example inputs, calibration batches and a quality measure
observers          Time one observe() and one range() per observer, beside torch.ao's (``ptqlab bench …
ptq_vs_qat         The measured PTQ-vs-QAT table
report             Turn benchmark rows into a text table, goal verdicts and a JSON document
roofline           The memory roofline of a forward pass
run                Measure every PTQ recipe side by side on this machine
size               How big is a quantized model? Serialize it and count the bytes
timing             Honest timing
weight_only        ptqlab's Python weight-only layers (W8A16Linear, W4A16Linear) next to the engines' …
"""
