"""The machinery labs share: the runner that contains student code (and, merged later, the rest)."""
