"""Lab 06 — direct manipulation: drag clipping thresholds and range ends (anywidget); the lab shows lab
01's coding exercise again, so this package has no exercise of its own.

Roles: numbers (what the lab computes), text (goals, recap, sentences carrying numbers), questions
(self-checks), exercise (EXERCISES), figures.
"""
