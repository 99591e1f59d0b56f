"""Benchmark machinery on synthetic inputs: statistics, roofline arithmetic, hardware parsing, report, CLI."""

import json

import pytest
import torch
from torch import nn

from ptqlab.backends.hardware import has_vnni, parse_cpuinfo, should_reduce_range
from ptqlab.bench import roofline
from ptqlab.bench.charts import roofline_figure, size_quality_figure, speedup_figure
from ptqlab.bench.models import BenchModel
from ptqlab.bench.report import bench_table, evaluate_goals
from ptqlab.bench.run import BenchRow, run_group
from ptqlab.bench.size import serialized_bytes
from ptqlab.bench.timing import percentile, repeats_within_budget, summarize, time_interleaved
from ptqlab.core.pareto import pareto_front


def test_summary_statistics_are_exact():
    s = summarize([float(v) for v in [10, 1, 9, 2, 8, 3, 7, 4, 6, 5]])
    assert (s.median_s, s.p10_s, s.p90_s, s.mean_s, s.min_s, s.n) == (5.5, 1.9, 9.1, 5.5, 1.0, 10)
    assert summarize([0.02]).p90_s == 0.02
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.25) == 2.0
    with pytest.raises(ValueError, match="empty"):
        summarize([])
    with pytest.raises(ValueError, match="non-negative"):
        summarize([1.0, -1.0])
    with pytest.raises(ValueError, match="q must"):
        percentile([1.0], 1.5)


def test_budget_reduces_repeats_of_slow_variants_only():
    assert repeats_within_budget(0.001, 20, 10.0) == 20
    assert repeats_within_budget(2.0, 20, 10.0) == 5
    assert repeats_within_budget(60.0, 20, 10.0) == 3
    assert repeats_within_budget(60.0, 20, None) == 20


def test_time_interleaved_round_robin_order_and_counts():
    calls = []
    fns = {k: (lambda k=k: calls.append(k)) for k in "abc"}
    stats = time_interleaved(fns, repeats=3, warmup=1)
    assert calls[:3] == ["a", "b", "c"]  # warm-up
    assert calls[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # rotating start
    assert all(s.n == 3 for s in stats.values())


def test_roofline_arithmetic():
    assert roofline.memory_floor_s(268e6, 13.4e9) == pytest.approx(0.02)
    assert roofline.attained_fraction(0.02, 0.025) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="bandwidth"):
        roofline.memory_floor_s(1.0, 0.0)


def test_cpuinfo_parsing_and_reduce_range():
    text = "processor: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma\n\nprocessor: 1\nmodel name: other\n"
    model, flags = parse_cpuinfo(text)
    assert model == "AMD EPYC 7B13" and {"avx2", "fma"} <= flags
    assert should_reduce_range({"avx2", "fma"}) and not has_vnni({"avx2"})
    assert not should_reduce_range({"avx2", "avx512_vnni"}) and not should_reduce_range({"avx2", "amx_int8"})


def test_serialized_size_counts_bytes_and_can_skip_embeddings():
    lin = nn.Linear(1000, 1000)
    assert 4_004_000 <= serialized_bytes(lin) < 4_004_000 + 4_000
    model = nn.Sequential(nn.Embedding(10_000, 100), nn.Linear(100, 100))
    assert serialized_bytes(model) > 4_000_000
    assert serialized_bytes(model, exclude_embeddings=True) < 50_000


def _tiny_bench_model() -> BenchModel:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(96, 96), nn.ReLU(), nn.Linear(96, 10)).eval()  # K=96: no int4 kernel
    x = torch.randn(32, 96)

    def quality(m, batch):
        with torch.inference_mode():
            return {
                "cosine": float(
                    torch.nn.functional.cosine_similarity(
                        m(x[:batch]).flatten(), model(x[:batch]).flatten(), dim=0
                    )
                )
            }

    return BenchModel("tiny", "tiny", model, lambda b: (x[:b],), [(x,)], quality, "cosine", "cosine")


def test_run_group_rows_report_and_goals():
    rows = run_group(
        _tiny_bench_model(),
        4,
        recipes=["ao-dynamic-int8", "torchao-int4-weight-only"],
        compiled=[],
        repeats=3,
        warmup=1,
        bandwidth=10e9,
    )
    by = {r.variant: r for r in rows}
    assert by["fp32"].speedup == 1.0 and by["fp32"].quality["cosine"] == pytest.approx(1.0)
    dyn = by["ao-dynamic-int8"]
    assert dyn.available and dyn.repeats == 3 and dyn.quality["cosine"] > 0.99
    assert dyn.size_bytes < by["fp32"].size_bytes / 2 and dyn.floor_ms > 0 and dyn.attained > 0
    int4 = by["torchao-int4-weight-only"]
    assert not int4.available and "128" in int4.reason
    table = bench_table(rows, repeats=3)
    assert "unavailable" in table and "ao-dynamic-int8" in table
    json.dumps([r.as_dict() for r in rows])  # serializable
    assert [g.met for g in evaluate_goals(rows)][:3] == [None, None, None]  # nothing to judge on "tiny"


def _row(model, batch, variant, bits, speedup, cos=1.0, family="torch.ao (x86/fbgemm)"):
    return BenchRow(
        model,
        batch,
        variant,
        variant,
        variant,
        family,
        bits,
        False,
        True,
        median_ms=1.0 / speedup,
        p10_ms=0.9 / speedup,
        p90_ms=1.1 / speedup,
        repeats=20,
        speedup=speedup,
        size_bytes=int(1e6 * bits),
        weight_bytes=int(1e6 * bits),
        attained=0.5,
        quality={"cosine": cos},
    )


def test_goal_verdicts():
    rows = [
        _row("membound", 1, "fp32", 32, 1.0, family="baseline"),
        _row("membound", 1, "dyn", 8, 4.5),
        _row("membound", 64, "dyn", 8, 1.5),
        _row("minilm", 1, "dyn", 8, 1.7, cos=0.98),
        _row("minilm", 1, "sq", 8, 1.4, cos=0.9995),
        _row("membound", 1, "int4", 4, 0.3, family="torchao"),
    ]
    goals = evaluate_goals(rows)
    assert [g.met for g in goals[:3]] == [True, False, False]
    assert goals[1].line().startswith("[MISSED]") and "1.33×" in goals[1].line()
    assert goals[2].measured == pytest.approx(1.4)  # only variants with cosine >= 0.999 count
    assert any(g.variant == "int4" for g in goals[3:])


def test_figures_and_pareto_front():
    pts = [(4.0, 0.99), (1.0, 0.98), (2.0, 0.97), (8.0, 1.0)]
    assert pareto_front(range(4), cost=lambda i: pts[i][0], value=lambda i: pts[i][1]) == [1, 0, 3]
    rows = [_row("m", 1, "fp32", 32, 1.0, family="baseline"), _row("m", 1, "dyn", 8, 3.0, cos=0.999)]
    for fig in (
        speedup_figure(rows, "m"),
        size_quality_figure(rows, "m", 1),
        roofline_figure(rows, 10e9, "m", 1),
    ):
        assert fig.axes[0].get_xlabel() and fig.axes[0].get_title()


def test_cli_writes_json(tmp_path, capsys):
    from ptqlab.cli.main import BENCHMARKS, main

    assert "models" in BENCHMARKS
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "models",
            "--models",
            "mlp",
            "--recipes",
            "fp32,ao-dynamic-int8",
            "--compile",
            "",
            "--batch",
            "8",
            "--repeats",
            "2",
            "--warmup",
            "1",
            "--bandwidth-mib",
            "16",
            "--json",
            str(out),
            "--charts",
            str(tmp_path / "charts"),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert {r["variant"] for r in report["rows"]} == {"fp32", "ao-dynamic-int8"}
    assert report["hardware"]["torch_version"].startswith("2.")
    assert (tmp_path / "charts" / "speedup_mlp.png").exists()
    assert "goals" in capsys.readouterr().out
