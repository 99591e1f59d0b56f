"""The teaching half: one package per lab, each with the same role-named modules.

    numbers.py    what the lab computes (calling the library floors)
    text.py       goals, recap and the sentences that carry measured numbers
    questions.py  the self-checks (``labkit.Question``), every expected answer computed by ptqlab
    exercise.py   ``EXERCISES``: coding exercises (``labkit.Exercise``) checked through ``labkit.runner``
    figures.py    the lab's figures (Vega-Lite charts drawn by the browser, or PNGs)

A lab that needs more splits inside its own folder by role. No lab package imports another (a test
enforces it); what labs share lives one floor down, in ``ptqlab.labkit``.

affine_map (01), calibration (02), schemes (03), full_model (04), sensitivity (05),
direct_manipulation (06), beyond_rtn (07), ptq_vs_qat (08), real_integers (09), llm (10),
architectures (11).
"""
