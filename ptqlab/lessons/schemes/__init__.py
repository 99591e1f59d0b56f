"""Lab 03 — schemes: per-tensor / per-channel / per-group, symmetric vs asymmetric, BatchNorm folding, bits
per weight (folding_figure: the BatchNorm-folding raster figure).

Roles: numbers (what the lab computes), text (goals, recap, sentences carrying numbers), questions
(self-checks), exercise (EXERCISES), figures.
"""
