"""Measurement: interleaved timing, hardware facts, roofline, model size, and the benchmark runner and report.

run        run_group: every recipe on one model and batch, timed interleaved in one process
models     the benchmark's models with inputs, calibration batches and a quality measure
report     the table and the goals
accuracy   simulated PTQ accuracy of the real models (``ptqlab bench accuracy``)
observers  observe()/range() per observer vs torch.ao (``ptqlab bench observers``)
"""
