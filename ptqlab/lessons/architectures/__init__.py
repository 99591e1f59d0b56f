"""Lab 11 — the seed's architecture table measured (ResNet-, MobileNetV2-, ViT-style on digits, MiniLM,
SmolLM2), each family's failure shown and its fix measured.

Roles: numbers (what the lab computes), text (goals, recap, sentences carrying numbers), questions
(self-checks), exercise (EXERCISES: fold a BatchNorm), figures.
"""
