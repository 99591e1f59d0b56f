"""Lab 02's goals, recap, self-checks and the sentences that carry numbers: every number is computed here
from ``ptqlab.lessons.calibration`` (the lab's own measurement), never typed in.
"""

from __future__ import annotations

from ptqlab.core.spec import QuantSpec
from ptqlab.lessons.calibration.cache import comparison, data_setting
from ptqlab.lessons.calibration.numbers import ObserverResult, best, lab_grid

DEFAULT_DATA = (
    "gaussian",
    20.0,
    0.01,
    8,
)  # body, outlier size (σ), outlier share (%), batches: the sliders' start
DEFAULT_P = 99.99

GOALS = r"""
**After this lab you can**

1. say what each of the six calibrators computes from the observed data (min/max, moving average,
   percentile, entropy, MSE, L2);
2. predict when clipping the tail wins (few bits, rare outliers) and when it loses (many bits);
3. read an error-vs-threshold curve as rounding error traded against clipping error;
4. write a percentile calibrator yourself and check it against ptqlab's;
5. explain why two libraries' "entropy" or "percentile" give different ranges on the same data.
"""

RECAP = r"""
## Recap

* A calibrator only picks **[lo, hi]**; the grid's scale and zero point follow from it.
* Wider range → coarser steps (rounding error); narrower → clipped values (clipping error). The best range
  balances the two, and where the balance lies depends on the **bits** and on the **tail** of the data.
* min/max is right when the range holds no rare outliers or when bits are plentiful; percentile, entropy
  and MSE clip the tail and win at low precision.
* Calibration sees a sample: values beyond what it saw are clipped at run time, whatever the bits.
* The same name hides different algorithms: calibrate with several and **measure**.
"""


def pct(fraction: float) -> str:
    """A share as a percentage with three significant digits (the widget's precision): 3.05e-05 -> '0.00305'."""
    return f"{100 * fraction:.3g}"


def measured_results(
    body: str, size: float, share: float, bits: int, symmetric: bool
) -> list[ObserverResult]:
    """The table the lab shows for these sliders (share in %), from the lab's own cache."""
    setting = data_setting(body, size, share, DEFAULT_DATA[3])
    return comparison(setting, lab_grid(bits, symmetric), DEFAULT_P)


def relu_numbers(share: float) -> tuple[float, float, float]:
    """(entropy's SQNR, the others' lowest, the others' highest) for the ReLU body on the 8-bit uint grid."""
    results = measured_results("relu", DEFAULT_DATA[1], share, 8, False)
    entropy = next(r.sqnr_db for r in results if r.name == "entropy")
    others = [r.sqnr_db for r in results if r.name != "entropy"]
    return entropy, min(others), max(others)


def relu_bullet() -> str:
    """The ReLU bullet, with entropy's SQNR against the others' at the default outliers and at share 0 %."""
    e, lo, hi = relu_numbers(DEFAULT_DATA[2])
    e0, lo0, hi0 = relu_numbers(0.0)
    return (
        "* **ReLU body**: half the values are exactly 0. Entropy's |x| histogram sees a giant spike in its "
        f"first bin, and on an 8-bit asymmetric grid it clips far too much: {e:.1f} dB against "
        f"{lo:.1f}–{hi:.1f} dB for the others with the default outliers, {e0:.1f} dB against "
        f"{lo0:.1f}–{hi0:.1f} dB at outlier share 0 % — NVIDIA modelopt overwrites bin 0 with bin 1 for this "
        "reason. An asymmetric uint grid fits one-sided data better than a symmetric one (compare the two "
        "grid modes)."
    )


def minmax_clip_note(results: list[ObserverResult], spec: QuantSpec) -> str:
    """On a symmetric grid min/max's own max is clipped: the top code is qmax·s = qmax/((qmax − qmin)/2)·T."""
    mm = next(r for r in results if r.name == "minmax")
    top = max(-mm.lo, mm.hi)
    if not spec.symmetric or mm.grid_hi >= top:
        return ""
    half = (spec.qmax - spec.qmin) / 2
    return (
        f"**Why min/max clips its own max here.** It observed max|x| = {top:.3f}, but the symmetric grid tops out "
        f"at {mm.grid_hi:.3f}: ptqlab (like torch.ao and torchao) sets s = T / ((qmax − qmin)/2) = T / {half:g}, "
        f"so the top code {spec.qmax} stands for {spec.qmax}·s = {spec.qmax}/{half:g}·T and the most negative "
        f"code reaches −T. The tutorial's narrow convention s = T / {spec.qmax} keeps T but never uses code "
        f"{spec.qmin}: one code fewer, no clipped max."
    )


def ceiling_note(results: list[ObserverResult], spec: QuantSpec) -> str:
    """When even min/max's error is mostly clipping, more bits cannot help: say so with the measured share."""
    mm = next(r for r in results if r.name == "minmax")
    if mm.clipping_mse <= mm.rounding_mse:
        return ""
    top = best(results)
    return (
        f"**A ceiling no calibrator breaks.** At {spec.bits} bits min/max's error is mostly *clipping* "
        f"({mm.clipping_mse:.3g} against {mm.rounding_mse:.3g} for rounding): {pct(mm.clipped_fraction)} % of the "
        f"fresh evaluation values lie beyond its grid [{mm.grid_lo:.3f}, {mm.grid_hi:.3f}], set by the largest "
        "values calibration saw. "
        f"More bits only shrink the rounding part, so the best SQNR stays near {top.sqnr_db:.1f} dB: "
        "calibrate on more (or more representative) data instead."
    )


def by_name(results: list[ObserverResult]) -> dict[str, ObserverResult]:
    return {r.name: r for r in results}


def _gain(results: list[ObserverResult], names=None) -> dict[str, float]:
    """SQNR over min/max (dB) per calibrator (all but min/max, or ``names``)."""
    mm = by_name(results)["minmax"].sqnr_db
    return {
        r.name: r.sqnr_db - mm
        for r in results
        if (names is None and r.name != "minmax") or r.name in (names or ())
    }


def _span(values) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.1f} dB" if round(lo, 1) == round(hi, 1) else f"{lo:.1f}–{hi:.1f} dB"


def rules_bullets() -> str:
    """The first three "no single calibrator wins" bullets, every dB measured on the lab's data."""
    body, size, share, _ = DEFAULT_DATA
    uni = {b: max(_gain(measured_results("uniform", size, 0.0, b, True)).values()) for b in (4, 8)}
    gauss = {b: max(_gain(measured_results(body, size, 0.0, b, True)).values()) for b in (4, 8)}
    clipping = ("mse", "entropy", "moving_average")
    win4 = _gain(measured_results(body, size, share, 4, True), clipping)
    at8 = measured_results(body, size, share, 8, True)
    top2 = sorted(at8, key=lambda r: -r.sqnr_db)[:2]
    lose8 = _gain(at8, ("entropy", "moving_average"))
    uniform = (
        "min/max is best at 4 and 8 bits"
        if max(uni.values()) < TIE
        else f"the best search gains only {uni[4]:.2f} dB at 4 bits and {uni[8]:.2f} dB at 8 over min/max"
    )
    return (
        f"* **No outliers** (share 0 %): on the **uniform** body the data's range *is* the right range: {uniform}. "
        f"On the Gaussian body the searches gain by trimming the Gaussian's own thin tail — {gauss[4]:.1f} dB at "
        f"4 bits, {gauss[8]:.1f} dB at 8.\n"
        f"* **Rare, large outliers at low precision** (the start: {share:g} %, size {size:g}, 4 bits): min/max "
        "stretches 15 steps over a few values and rounds everything else coarsely; **mse**, **entropy** and the "
        f"moving average clip the tail and win by {_span(win4.values())}.\n"
        "* **The same data at 8 bits**: now the grid is fine enough to keep the outliers, and clipping them costs "
        f"more than it saves. {top2[0].name} and {top2[1].name} lead ({top2[0].sqnr_db:.1f} and "
        f"{top2[1].sqnr_db:.1f} dB); entropy and the moving average, which clip, lose {_span([-v for v in lose8.values()])} "
        "against min/max. The error counted here is the tensor's own MSE, so outliers matter as much as their size."
    )


TIE = 0.05  # dB: a search this close to min/max is a tie at the table's precision


def bits_hint() -> str:
    """The bits slider's Try-this, with the measured margins at 4 and 8 bits."""
    body, size, share, _ = DEFAULT_DATA
    win4 = max(_gain(measured_results(body, size, share, 4, True)).values())
    at8 = measured_results(body, size, share, 8, True)
    mm8 = by_name(at8)["minmax"].sqnr_db
    lead8 = (
        "min/max wins"
        if best(at8).name == "minmax"
        else f"min/max is {best(at8).sqnr_db - mm8:.1f} dB behind"
    )
    return (
        f"at **4 bits** (the start) rounding is expensive and clipping the tail wins by {win4:.1f} dB; at **8 bits** "
        f"the same outliers are worth keeping and {lead8}; at **16 bits** see the note under the table."
    )


def rules_markdown() -> str:
    """The measured bullets of "No single calibrator wins everywhere": the three rules and the ReLU body."""
    return rules_bullets() + "\n" + relu_bullet()
