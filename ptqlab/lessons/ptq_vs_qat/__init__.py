"""Lab 08 — PTQ vs QAT measured, a decision from your constraints, training dynamics (LAWA, cooldown)
(decision: the recommendation from constraints; the tables themselves live in ptqlab.bench).

Roles: numbers (what the lab computes), text (goals, recap, sentences carrying numbers), questions
(self-checks), exercise (EXERCISES), figures.
"""
