"""The ``ptqlab`` command (``main``), its benchmark commands, and the Jupyter notebook export."""
