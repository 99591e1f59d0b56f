"""Lab 04 — full-model PTQ on real engines, measured here: latency, size, quality, roofline
(mistakes: the named mistakes the dynamic-int8 exercise recognises).

Roles: numbers (what the lab computes), text (goals, recap, sentences carrying numbers), questions
(self-checks), exercise (EXERCISES), figures.
"""
