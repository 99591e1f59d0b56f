"""Lab 05 — per-layer sensitivity, mixed precision under a size budget, calibration-set size and selection
(selection: where calibration-set selection matters, a pool with glitched images).

Roles: numbers (what the lab computes), text (goals, recap, sentences carrying numbers), questions
(self-checks), exercise (EXERCISES), figures.
"""
