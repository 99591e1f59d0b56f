"""Lab 09 — real integers: integer-only inference, fixed-point requantization, bit packing, float and
codebook grids, weight-only Linears.

Roles: numbers (what the lab computes), text (goals, recap, sentences carrying numbers), questions
(self-checks), exercise (EXERCISES), figures.
"""
