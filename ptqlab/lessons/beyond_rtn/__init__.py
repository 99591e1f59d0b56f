"""Lab 07 — beyond round-to-nearest: bias correction, CLE, AdaRound, GPTQ, AWQ, SmoothQuant on one model
(smoothquant_exercise: the second coding exercise).

Roles: numbers (what the lab computes), text (goals, recap, sentences carrying numbers), questions
(self-checks), exercise (EXERCISES), figures.
"""
