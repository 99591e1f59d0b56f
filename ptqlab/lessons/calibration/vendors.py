"""Lab 02's vendors side by side: TensorRT-style entropy and ptqlab's percentile vs ONNX Runtime's own
calibrators (``ort_entropy``, ``ort_percentile``, which match ORT's ``create_calibrator`` within one bin),
all observing the same sample, each range scored on the lab's grid. The prose is filled from the numbers."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ptqlab.core.spec import QuantSpec
from ptqlab.lessons.calibration.numbers import ObserverResult, score_range
from ptqlab.observers import make_observer

ORT_SEARCH_BINS = 2048  # the bin count the ORT docs suggest for entropy; its default is 128


@dataclass(frozen=True)
class VendorAnswer:
    library: str
    method: str
    settings: str
    result: ObserverResult


def vendor_rows(p: float = 99.99) -> list[tuple[str, str, str, str, dict]]:
    """(library, method, settings, observer name, observer kwargs) of each vendor's calibrator."""
    return [
        ("TensorRT (ptqlab entropy)", "entropy", "|x|, 2048 bins, 128 levels, (i + ½)·w", "entropy", {}),
        ("ONNX Runtime", "entropy", "ORT defaults: 128 bins, 128 quantized", "ort_entropy", {}),
        (
            "ONNX Runtime",
            "entropy",
            f"{ORT_SEARCH_BINS} bins, 128 quantized",
            "ort_entropy",
            {"num_bins": ORT_SEARCH_BINS},
        ),
        ("ptqlab", "percentile", f"p = {p:g}, CDF interpolated in the bin", "percentile", {"p": p}),
        ("ONNX Runtime", "percentile", f"p = {p:g}, left edge of the bin", "ort_percentile", {"p": p}),
        ("ONNX Runtime", "percentile", "ORT default p = 99.999", "ort_percentile", {}),
        ("everyone", "min/max", "running min and max", "minmax", {}),
    ]


def vendor_answers(x: torch.Tensor, spec: QuantSpec, p: float = 99.99) -> list[VendorAnswer]:
    """Each library's calibrator on ``x``, its range scored (SQNR, MSE) on ``spec``'s grid."""
    out = []
    for library, method, settings, name, kw in vendor_rows(p):
        obs = make_observer(name, **kw)
        obs.observe(x)
        lo, hi = (float(v) for v in obs.range_for(spec))
        out.append(VendorAnswer(library, method, settings, score_range(name, lo, hi, x, spec)))
    return out


def vendors_markdown(answers: list[VendorAnswer]) -> str:
    """The side-by-side table: library, method, settings, range, SQNR."""
    lines = ["| library | method | settings | range | SQNR dB |", "|---|---|---|---|---|"]
    for a in answers:
        r, settings = a.result, a.settings.replace("|", "\\|")  # a "|x|" must not split the cell
        lines.append(
            f"| {a.library} | {a.method} | {settings} | [{r.lo:.4g}, {r.hi:.4g}] | {r.sqnr_db:.2f} |"
        )
    return "\n".join(lines)


def why_they_differ(answers: list[VendorAnswer]) -> str:
    """Why the answers differ, with this sample's numbers."""
    trt, ort_default, ort_search, pct, ort_pct, ort_pct_default, minmax = (a.result for a in answers)
    keeps = "keeps more" if ort_pct_default.hi > ort_pct.hi else "keeps no more"
    return (
        f"**Entropy.** TensorRT's search (ptqlab's `entropy`) folds the data into a histogram of |x| and "
        f"clips at **{trt.hi:.4g}**. ONNX Runtime keeps the sign: its windows are centred on zero and its "
        f"threshold is a bin *edge*, clipped to the data's min/max. With ORT's default of 128 bins for 128 "
        f"quantized bins only the full window exists, so it returns [{ort_default.lo:.4g}, "
        f"{ort_default.hi:.4g}] (min/max is [{minmax.lo:.4g}, {minmax.hi:.4g}]); with "
        f"{ORT_SEARCH_BINS} bins it keeps [{ort_search.lo:.4g}, {ort_search.hi:.4g}]. Same name, "
        f"different histogram, different answer: {trt.sqnr_db:.2f} vs {ort_search.sqnr_db:.2f} dB here.\n\n"
        f"**Percentile.** Both cut the same fraction of the tail, but ptqlab interpolates inside the bin "
        f"(hi {pct.hi:.4g}) while ORT snaps to the bin's left edge (hi {ort_pct.hi:.4g}) and clips each side "
        f"to the data separately; ORT's default p = 99.999 {keeps} of the tail: hi {ort_pct_default.hi:.4g}."
    )
