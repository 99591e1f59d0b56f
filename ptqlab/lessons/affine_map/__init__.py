"""Lab 01 — the affine map: scale, zero point, the grid, the staircase, rounding vs clipping error.

Roles: numbers (what the lab computes), text (goals, recap, sentences carrying numbers), questions
(self-checks), exercise (EXERCISES), figures.
"""
