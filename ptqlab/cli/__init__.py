"""The ``ptqlab`` command (``main``), its benchmark commands (``bench_labs`` drives served labs through
``lab_controls``), and the Jupyter notebook export."""
