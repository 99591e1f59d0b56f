"""Lab 10's results at hand, as the lab shows them: the scores table, the GGUF table, the chart's points,
the grid's state and the recap's settings. Reads the cache only (``numbers.cached_result``): never loads the
model, never computes."""

from __future__ import annotations

from ptqlab.core.gguf_formats import FORMATS
from ptqlab.lessons.llm.numbers import (
    BITS,
    DEFAULT,
    GRID,
    GROUPS,
    W8A8,
    Setting,
    cached_result,
    missing_from_grid,
    reference,
    setting,
)

FAMILIES = {"rtn": "RTN, symmetric", "rtn-asym": "RTN, integer zero point", "gptq": "GPTQ", "awq": "AWQ",
            "gguf": "GGUF", "w8a8": "W8A8"}  # fmt: skip


def table_rows() -> list[tuple[Setting | None, dict]]:
    """(setting, result) for the reference and every GRID setting at hand, best PPL first."""
    rows = [(s, r) for s in GRID if (r := cached_result(s)) is not None]
    return [(None, reference())] + sorted(rows, key=lambda row: row[1]["ppl"])


def gguf_rows() -> list[dict]:
    """One row per GGUF format: block layout and bits per weight (always), PPL / KL / top-1 when scored."""
    out = []
    for name, f in FORMATS.items():
        r = cached_result(Setting("gguf", fmt=name)) or {}
        out.append({"format": name, "block_bytes": f.block_bytes, "bits_per_weight": f.bits_per_weight,
                    "code_bits": f.bits, "offset": f.offset, **r})  # fmt: skip
    return out


def chart_points() -> list[dict]:
    """Every scored setting at hand (the GRID and any setting computed before) for the KL-vs-bits chart."""
    settings = [*GRID, *(setting(m, b, g) for m in ("gptq", "awq") for b in BITS for g in GROUPS),
                *(Setting("w8a8", fmt=k) for k in W8A8)]  # fmt: skip
    points = []
    for s in dict.fromkeys(settings):
        if (r := cached_result(s)) is not None:
            family = FAMILIES.get(s.method, s.method)
            points.append({"label": s.label, "bits_per_weight": r["bits_per_weight"], "kl_mean": r["kl_mean"],
                           "ppl": r["ppl"], "family": family})  # fmt: skip
    return points


def grid_note() -> str:
    missing = missing_from_grid()
    if not missing:
        return f"All {len(GRID)} grid settings are scored (the table above)."
    return (f"{len(missing)} of the {len(GRID)} grid settings are not scored on this machine yet "
            f"({', '.join(s.label for s in missing[:4])}{', …' if len(missing) > 4 else ''}).")  # fmt: skip


def grid_done(computed: int) -> str:
    return f"Scored {computed} new setting(s); move a control (or reopen the lab) to see them in the table."


def recap_results() -> dict[str, dict]:
    """label → result for the recap: the settings that carry the lessons, those scored so far."""
    keys = [Setting("gguf", fmt="Q4_1"), Setting("gguf", fmt="Q5_1"), Setting("rtn-asym", 4, 32),
            Setting("rtn", 8, None), DEFAULT, Setting("gptq", 4, 64), Setting("rtn", 3, 64)]  # fmt: skip
    return {s.label: r for s in keys if (r := cached_result(s)) is not None}
