"""Lab 04's sentences against the rows and CPU facts they describe: "the fastest" only when it is faster,
the smallest by measured bytes, the CPU's int8 instructions as its flags list them, roofline percentages
with real precision or "not meaningful" when the weights fit in the last-level cache; its self-checks."""

import pytest

from ptqlab.backends import RECIPES, hardware
from ptqlab.backends.hardware import hardware_facts
from ptqlab.bench import report
from ptqlab.bench.run import BenchRow
from ptqlab.lessons.full_model import questions as fc
from ptqlab.lessons.full_model import text as full_model_text
from ptqlab.lessons.full_model.numbers import LabMeasurement, measurement_markdown, narrate
from ptqlab.models.membound import memory_bound_mlp


def _row(
    variant, bits, ms, speedup, size, family="torch.ao (x86/fbgemm)", weight_bytes=None, attained=0.0123
):
    return BenchRow(
        "mlp", 64, variant, variant, variant, family, bits, False, True,
        median_ms=ms, p10_ms=ms * 0.9, p90_ms=ms * 1.1, repeats=5, speedup=speedup, size_bytes=size,
        weight_bytes=weight_bytes or size, floor_ms=0.01, attained=attained, quality={"accuracy": 0.99},
    )  # fmt: skip


def _measurement(rows, llc=None):
    return LabMeasurement("mlp", "digits MLP", 64, 5, "minmax", rows, hardware_facts("cpu"), 20e9, "x", llc)


def test_no_fastest_when_every_variant_is_slower():
    rows = [_row("fp32", 32, 1.0, 1.0, 800_000, "baseline"), _row("ao-dynamic-int8", 8, 1.111, 0.9, 240_000)]
    text = narrate(_measurement(rows))
    assert "The fastest variant" not in text and "No variant beats fp32 here" in text and "0.90×" in text
    rows[1] = _row("ao-dynamic-int8", 8, 0.8, 1.25, 240_000)
    assert "The fastest variant is **ao-dynamic-int8**" in narrate(_measurement(rows))


def test_size_sentence_names_the_smallest_by_measured_bytes():
    rows = [
        _row("fp32", 32, 1.0, 1.0, 817_000, "baseline"),
        _row("ao-static-int8", 8, 1.0, 1.0, 70_000),
        _row("torchao-int4-weight-only", 4, 1.0, 1.0, 80_000, "torchao"),
    ]
    text = full_model_text.size_sentence(rows)
    assert "smallest variant measured is **ao-static-int8** (0.070 MB)" in text
    assert "**torchao-int4-weight-only** takes 0.080 MB, 10.2× smaller than fp32's 0.817 MB" in text
    rows[2] = _row("torchao-int4-weight-only", 4, 1.0, 1.0, 40_000, "torchao")
    assert "**torchao-int4-weight-only** (0.040 MB)" in full_model_text.size_sentence(rows)


@pytest.mark.parametrize(
    "flags,says",
    [
        ({"avx2": True}, "lists none of avx512_vnni, avx_vnni, amx_int8 (AVX2)"),
        ({"avx2": True, "avx512_vnni": True}, "lists avx512_vnni (not avx_vnni, amx_int8)"),
        ({"avx512_vnni": True, "avx_vnni": True, "amx_int8": True}, "lists avx512_vnni, avx_vnni, amx_int8:"),
    ],
)
def test_isa_sentence_reads_the_flags(flags, says):
    assert says in full_model_text.isa_sentence(flags)
    assert "VNNI/AMX" not in full_model_text.isa_sentence(flags)


def test_narration_isa_matches_the_hardware_table():
    facts = hardware_facts("cpu")
    assert full_model_text.isa_sentence(facts.isa) in narrate(
        _measurement(
            [
                _row("fp32", 32, 1.0, 1.0, 800_000, "baseline"),
                _row("ao-dynamic-int8", 8, 0.8, 1.25, 240_000),
                _row("torchao-int8-dynamic", 8, 8.0, 0.125, 230_000, "torchao"),
            ]
        )
    )


def test_roofline_cells_have_real_precision_or_say_not_meaningful():
    row = _row("fp32", 32, 1.0, 1.0, 800_000, "baseline", attained=0.0123)
    assert report.roofline_cell(row, None) == "1.23%"  # not "0%"
    assert report.roofline_cell(row, 32 << 20) == "not meaningful (fits in cache)"
    big = _row("fp32", 32, 1.0, 1.0, 268_000_000, "baseline", attained=0.456)
    assert report.roofline_cell(big, 32 << 20) == "45.6%"
    m = _measurement([row], llc=32 << 20)
    assert "not meaningful (fits in cache)" in measurement_markdown(
        m
    ) and "| 0% |" not in measurement_markdown(m)
    assert "**not meaningful** here" in narrate(m)


def test_last_level_cache_is_read_from_sysfs(tmp_path):
    for i, (level, size) in enumerate([(1, "32K"), (2, "512K"), (3, "32768K")]):
        (tmp_path / f"index{i}").mkdir()
        (tmp_path / f"index{i}" / "level").write_text(f"{level}\n")
        (tmp_path / f"index{i}" / "size").write_text(f"{size}\n")
    assert hardware.last_level_cache_bytes(str(tmp_path)) == 32 << 20
    assert hardware.last_level_cache_bytes(str(tmp_path / "missing")) is None


def test_lab04_questions_expect_what_ptqlab_counts(monkeypatch):
    from ptqlab.lessons.full_model import numbers as fm

    monkeypatch.setattr(fc, "bandwidth_now", lambda: 20e9)
    rows = [_row("fp32", 32, 1.0, 1.0, 800_000, "baseline"), _row("ao-dynamic-int8", 8, 1.2, 0.83, 240_000)]
    monkeypatch.setattr(fc, "quick_measurement", lambda: _measurement(rows))
    assert fm.LabMeasurement is LabMeasurement
    q = fc.lab04_questions()
    assert q[0].expected == "ao-static-int8" and RECIPES["ao-static-int8"].calibrates
    params = sum(p.numel() for p in memory_bound_mlp().parameters())
    assert q[1].expected == pytest.approx(params * 4 / 20e9 * 1e3)
    assert q[2].expected == pytest.approx(params / 1e6)
    assert q[3].expected == fc.NO
    assert all(x.options is None or x.expected in x.options for x in q)


def test_figures_cap_accuracy_at_100_ring_the_front_and_keep_legends_inside():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ptqlab.bench import charts as pf

    rows = [
        _row("fp32", 32, 1.0, 1.0, 800_000, "baseline"),
        _row("ao-static-int8", 8, 0.9, 1 / 0.9, 240_000),
        _row("torchao-int8-dynamic", 8, 9.0, 1 / 9.0, 230_000, "torchao"),
    ]
    for r in rows:
        r.model = "mlp"
    fig = pf.size_quality_figure(rows, "mlp", 64)
    ax = fig.axes[0]
    assert ax.get_ylim()[1] == 100.0
    labels = ax.get_legend_handles_labels()[1]
    assert "Pareto front" in labels and "Pareto-optimal" in labels
    roof = pf.roofline_figure(rows, 20e9, "mlp", 64, llc_bytes=32 << 20)
    assert "fp32: not meaningful (fits in cache)" in roof.axes[0].get_legend_handles_labels()[1]
    speed = pf.speedup_figure(rows, "mlp")
    for f in (fig, roof, speed):
        renderer = f.canvas.get_renderer() if hasattr(f.canvas, "get_renderer") else None
        renderer = renderer or FigureCanvasAgg(f).get_renderer()
        for a in f.axes:
            if a.get_legend() is not None:
                box, frame = a.get_legend().get_window_extent(renderer), a.get_window_extent(renderer)
                assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        assert not f.legends  # no figure-level legend outside the axes
