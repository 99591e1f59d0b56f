"""Lab 10 (SmolLM2): the Q8_0 exercise against the gguf reference, the self-checks' expected answers, the
sentences fed contradicting cases, and hostile inputs. No test here loads the model (the lab's headless run
and the browser test do, through the cache)."""

import math

import numpy as np
import pytest
import torch

from ptqlab.labkit.runner import execute
from ptqlab.lessons.llm import exercise, numbers, outliers, q4_1, questions, sensitivity, text

gguf = pytest.importorskip("gguf")


def _independent_q8_0(x):
    """Written apart from the lab: plain Python floats (float64 holds every float32 product exactly enough
    to decide ties the same way), C's roundf by hand, d to fp16 by numpy."""
    xs = [float(v) for v in x.tolist()]
    amax = np.float32(max(abs(v) for v in xs))
    d = np.float32(amax / np.float32(127))
    inv = np.float32(0) if d == 0 else np.float32(np.float32(1) / d)
    codes = []
    for v in xs:
        y = float(np.float32(np.float32(v) * inv))
        whole = math.floor(abs(y))
        codes.append(int(math.copysign(whole + (abs(y) - whole >= 0.5), y)))
    return torch.tensor(np.float16(d)), torch.tensor(codes, dtype=torch.int8)


def _solution():
    namespace = {"torch": torch, "math": math}
    exec(exercise.SOLUTION, namespace)
    return namespace["q8_0_block"]


def test_solution_and_an_independent_answer_pass_on_1000_seeds():
    solution = _solution()
    for seed in range(1000):
        blocks = exercise.fresh_blocks(seed, n=8)
        assert exercise.verdict(blocks, [solution(b) for b in blocks]).ok is True, seed
        if seed % 10 == 0:  # the slow pure-Python answer on every tenth seed
            assert exercise.verdict(blocks, [_independent_q8_0(b) for b in blocks]).ok is True, seed


MISTAKES = {
    "torch.round": "    q = torch.round(y)\n",
    "fp16-rounded d": "    y = x * (1 / d.half().float()) if d > 0 else x * 0\n"
    "    whole = torch.floor(y.abs())\n    q = torch.sign(y) * (whole + (y.abs() - whole >= 0.5))\n",
    "uses 127": "    y = x * (1 / (x.abs().max() / 128)) if d > 0 else x * 0\n"
    "    whole = torch.floor(y.abs())\n    q = torch.sign(y) * (whole + (y.abs() - whole >= 0.5))\n"
    "    d = x.abs().max() / 128\n",
    "truncated toward zero": "    q = torch.trunc(y)\n",
    "0.49999997": "    q = torch.sign(y) * torch.floor(y.abs() + 0.5)\n",
    "round half up": "    q = torch.floor(y + 0.5)\n",
}


@pytest.mark.parametrize("named", list(MISTAKES))
def test_each_named_mistake_gets_its_verdict(named):
    source = (
        "def q8_0_block(x):\n    d = x.abs().max() / 127\n    y = x * (1 / d) if d > 0 else x * 0\n"
        + MISTAKES[named]
        + "    return d.to(torch.float16), q.to(torch.int8)\n"
    )
    blocks = exercise.fresh_blocks(3)
    status, results = execute(source, [("q8_0_block", (b,)) for b in blocks])
    assert status == "ok", results
    v = exercise.verdict(blocks, results)
    assert v.ok is False and named in v.message, v.message


def test_signed_max_and_wrong_types_are_named():
    blocks = exercise.fresh_blocks(5)
    source = (
        "def q8_0_block(x):\n    d = x.max() / 127\n    y = x * (1 / d) if d != 0 else x * 0\n"
        "    whole = torch.floor(y.abs())\n    q = torch.sign(y) * (whole + (y.abs() - whole >= 0.5))\n"
        "    return d.to(torch.float16), q.clamp(-128, 127).to(torch.int8)\n"
    )
    status, results = execute(source, [("q8_0_block", (b,)) for b in blocks])
    assert "signed max" in exercise.verdict(blocks, results).message
    solution = _solution()
    as_float32 = [(d.float(), q) for d, q in (solution(b) for b in blocks)]
    assert "torch.float16" in exercise.verdict(blocks, as_float32).message
    assert (
        "int8" in exercise.verdict(blocks, [(d, q.long()) for d, q in (solution(b) for b in blocks)]).message
    )
    assert "pair" in exercise.verdict(blocks, [None] * len(blocks)).message


def test_check_through_the_runner_names_the_starters_mistake():
    starter = exercise.check(exercise.STARTER, seed=1)
    assert starter.ok is False and "torch.round" in starter.message
    assert exercise.check("", seed=1).ok is None


def test_fresh_blocks_hold_exact_ties_and_the_edge_blocks():
    blocks = exercise.fresh_blocks(0, n=4)
    d = blocks[:3].abs().amax(1, keepdim=True) / 127
    y = blocks[:3] * (1 / d)
    assert ((y - y.floor()) == 0.5).sum() >= 3 * 20  # exact ties, as gguf sees them
    assert (blocks[-4] == 0).all() and blocks[-3].abs().argmax() == 0 and blocks[-3, 0] < 0


# ---- self-checks: expected answers from ptqlab, against independent arithmetic ---------------------------


def test_question_answers():
    assert questions.q4_1_bits_question().expected == (2 + 2 + 16) * 8 / 32
    block = np.zeros((1, 32), np.float32)
    block[0, 0], block[0, 1] = 127 * questions.TIE_D, questions.TIE_X
    ref = gguf.quants.quantize(block, gguf.GGMLQuantizationType.Q8_0)
    assert questions.tie_question().expected == int(ref[0, 3].view(np.int8)) == -3
    assert questions.roofline_question(500_000_000).expected == pytest.approx(40.0)


def _facts(q4_1_moved=0, q5_1_error=1e-3):
    names = list(q4_1.REQUANTIZERS)
    hist = torch.zeros(33, dtype=torch.int64)
    hist[16], hist[12] = 7, 3
    return {"weights": 320, "blocks": 10, "distinct_histogram": hist,
            "changed": dict(zip(names, [q4_1_moved, 300, 290, 310], strict=True)),
            "relative_mse": dict(zip(names, [0.0, 7e-3, q5_1_error, 8e-3], strict=True))}  # fmt: skip


def test_q5_1_question_follows_the_measurement():
    assert questions.q5_1_question(_facts()).expected.startswith("It gets worse")
    assert questions.q5_1_question(_facts(q5_1_error=0.0)).expected.startswith("Nothing")


# ---- sentences fed contradicting cases --------------------------------------------------------------------


def _result(ppl, kl=0.1, top1=0.8, completions=("a", "b", "c")):
    return {"ppl": ppl, "kl_mean": kl, "kl_p99": 10 * kl, "top1": top1, "tokens": 255, "seconds": 1.5,
            "bits_per_weight": 4.25, "completions": list(completions)}  # fmt: skip


def test_result_and_completion_sentences():
    ref = _result(17.0, completions=("x", "b", "c|d"))
    assert "+3.00" in text.result_markdown("S", _result(20.0), ref)
    assert "-1.00" in text.result_markdown("S", _result(16.0), ref)
    table = text.completions_markdown(
        ("p1", "p2", "p3"), ref, _result(20.0, completions=("x", "y", "c|d")), "S"
    )
    assert table.count("(same)") == 2 and "c\\|d" in table


def test_q4_1_sentences_carry_the_measured_counts():
    assert "16** distinct" in text.q4_1_markdown(_facts()) and "0 weights move" in text.q4_1_markdown(
        _facts()
    )
    assert "5 weights move" in text.q4_1_markdown(_facts(q4_1_moved=5))


def test_w8a8_and_sensitivity_sentences_follow_the_signs():
    ref, rtn = _result(10.0), _result(12.0)
    assert "+5.0%" in text.w8a8_markdown(ref, rtn, _result(10.5)) and "+20.0%" in text.w8a8_markdown(
        ref, rtn, rtn
    )
    assert "-5.0%" in text.w8a8_markdown(ref, rtn, _result(9.5))
    choice = {"blocks": [3, 7], "megabytes": 12.345, "greedy": _result(18.0), "control": _result(19.0)}
    s = text.sensitivity_markdown(choice, 2, 30)
    assert "12.3 MB" in s and "Kept: 3, 7" in s and "| 18.00 |" in s and "| 19.00 |" in s


def test_gguf_table_bits_from_the_layout_and_dashes_when_unscored():
    rows = [{"format": "Q4_1"}, {"format": "Q8_0", **_result(17.5)}]
    table = text.gguf_table(rows)
    assert "| Q4_1 | 4 | fp16 d, fp16 m, 16 bytes of codes | 20 | 5 | — | — | — |" in table
    assert "| Q8_0 | 8 | fp16 d, 32 bytes of codes | 34 | 8.5 | 17.50 |" in table


def test_distinct_per_block_against_numpy():
    w = torch.randint(-3, 3, (4, 64)).float()
    expected = [len(np.unique(b)) for b in w.numpy().reshape(-1, 32)]
    assert q4_1.distinct_per_block(w).tolist() == expected


# ---- hostile inputs name the argument ----------------------------------------------------------------------


def test_hostile_inputs():
    with pytest.raises(ValueError, match="method"):
        numbers.setting("nope", 4, "64")
    with pytest.raises(ValueError, match="bits"):
        numbers.setting("rtn", 5, "64")
    with pytest.raises(ValueError, match="group"):
        numbers.setting("rtn", 4, "128")
    assert numbers.setting("rtn", 4, "per-channel") == numbers.Setting("rtn", 4, None)
    with pytest.raises(ValueError, match="layer"):
        outliers.smoothed("nope", 0.5)
    for alpha in (float("nan"), -0.1, 1.5, True, "0.5"):
        with pytest.raises(ValueError, match="alpha"):
            outliers.smoothed(list(outliers.LAYERS)[0], alpha)
    with pytest.raises(ValueError, match="k must be one of"):
        sensitivity.budget({}, 3)
    for block in (-1, q4_1.EXAMPLE_BLOCKS, 1.0, True):
        with pytest.raises(ValueError, match="block must be"):
            q4_1.block_grids(block)


def test_setting_keys_are_distinct_and_the_grid_holds_the_lessons():
    keys = [s.key for s in numbers.GRID]
    assert len(set(keys)) == len(keys)
    assert numbers.DEFAULT in numbers.GRID and numbers.Setting("gguf", fmt="Q4_1") in numbers.GRID


def test_figures_are_strict_json_with_the_data_they_were_given():
    import json

    from ptqlab.lessons.llm import figures

    act = torch.tensor([1.0, 2.0, 50.0, 0.0])
    stats = {"act": act, "act_after": act / 2, "weight": act + 1, "weight_after": act * 2 + 1}
    spec = json.loads(figures.outlier_chart(stats, "t").to_json())
    histogram = spec["vconcat"][0]["hconcat"][1]["layer"][0]["data"]["values"]
    assert sum(r["count"] for r in histogram) == 2 * len(act)  # every channel counted, before and after
    grids = {"GGUF Q4_1 (the published grid)": torch.linspace(0, 1, 16)}
    assert "tick" in figures.block_chart(torch.rand(32), grids, "t").to_json()
    points = [{"label": "a", "bits_per_weight": 4.25, "kl_mean": 0.0, "ppl": 20.0, "family": "RTN"}]
    assert (
        json.loads(figures.scheme_chart(points, "a").to_json())["layer"][1]["data"]["values"][0]["kl"] == 1e-6
    )
    per_block = [{"kl_mean": float(b)} for b in range(30)]
    kept = json.loads(figures.sensitivity_chart(per_block, [3]).to_json())["layer"][0]["data"]["values"]
    assert [r["kept"] for r in kept].count("kept at 8 bits") == 1 and kept[3]["kept"] == "kept at 8 bits"


def test_speed_table_states_the_ratio_and_the_recipes_that_did_not_run():
    from ptqlab.bench.llm_speed import SpeedRow

    fp32 = SpeedRow("fp32 eager", 900.0, 40.0, 10.0, 2.0, 540_000_000, 37.0, 0.27)
    int8 = SpeedRow("torchao int8 weight-only", 950.0, 30.0, 5.0, 3.0, 135_000_000, 148.0, 0.034)
    gone = SpeedRow("torchao int4 weight-only", math.nan, 0, math.nan, 0, 0, math.nan, math.nan, "not run: X")
    table = text.speed_markdown([fp32, int8, gone], 20e9)
    assert "20.0 GB/s" in table and "5.0 (0.50× fp32)" in table and "| 27% |" in table
    assert "| torchao int4 weight-only | not run: X |" in table
    assert "Fastest" not in table and "Fastest int8 engine here" in text.speed_markdown(
        [fp32, int8], 20e9, {}
    )


def test_speed_findings_separate_the_runtime_from_the_bits():
    from ptqlab.bench.llm_speed import SpeedRow

    def row(name, tps, note=""):
        return SpeedRow(name, 100.0, 1.0, tps, 0.1, 1, 1.0, 0.5, note)

    rows = [row("fp32 eager", 10.0), row("torchao int8 weight-only", 6.0), row("ORT fp32", 20.0),
            row("ORT int8 dynamic", 40.0), row("ORT int4 MatMulNBits", 50.0),
            row("torchao int4 weight-only", math.nan, "not run: X")]  # fmt: skip
    s = text.speed_findings(rows, {"avx2": True, "avx512_vnni": False})
    assert "**ORT int8 dynamic**, 4.00× fp32 eager" in s and "**ORT int4 MatMulNBits**, 5.00×" in s
    assert "already decodes 2.00× fp32 eager" in s and "int8: 2.00×; int4: 2.50×" in s
    assert "avx2 yes, avx512_vnni no" in s and "PASSIVE" in s
    only_eager = text.speed_findings([rows[0], rows[-1]], {})
    assert "No int8 engine ran here" in only_eager and "No int4 engine ran here" in only_eager
    assert "without* quantization" not in only_eager


def test_best_speedup_and_speed_steps_on_edge_cases():
    from ptqlab.bench.llm_speed import ENGINE_RECIPES, ORT_RECIPES, SpeedRow, best_speedup, speed_steps

    fp32 = SpeedRow("fp32 eager", 1.0, 0.0, 10.0, 0.0, 1, 1.0, 1.0)
    gone = SpeedRow("ORT int8 dynamic", math.nan, 0, math.nan, 0, 0, math.nan, math.nan, "not run: X")
    assert best_speedup([], "int8") is None and best_speedup([fp32, gone], "int8") is None
    assert best_speedup([gone._replace(note="", decode_tokens_per_s=30.0)], "int8") is None  # no fp32 row
    assert best_speedup([fp32, gone._replace(note="", decode_tokens_per_s=30.0)], "int8") == (
        "ORT int8 dynamic",
        3.0,
    )
    assert speed_steps([]) == 2 and speed_steps(["torchao int8 dynamic"]) == 3
    assert speed_steps() == 2 + len(ENGINE_RECIPES) + len(ORT_RECIPES) + 1  # + the ONNX export


def test_disagreement_names_the_discordant_pair_or_says_they_agree():
    a, b, c = (numbers.Setting("gguf", fmt=f) for f in ("Q5_1", "Q4_0", "Q8_0"))
    rows = [
        (None, _result(17.0)),
        (a, _result(21.5, kl=0.13)),
        (b, _result(19.4, kl=0.32)),
        (c, _result(17.2, kl=0.001)),
    ]
    s = text.disagreement_markdown(rows)
    assert "GGUF Q4_0 has the lower PPL (19.40 vs 21.50) but the *higher* KL (0.320 vs 0.130)" in s
    rows[1] = (a, _result(21.5, kl=0.5))
    assert "same order" in text.disagreement_markdown(rows)
