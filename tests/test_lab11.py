"""Lab 11: the BatchNorm-folding exercise against two oracles (1,000 seeds in-process), prose that follows
the measurement (contradicting cases), the table cache, the LLaMA row's summary, unequalize and bad input."""

import math

import pytest
import torch

from ptqlab.bench import architecture_llm_row as llm
from ptqlab.bench import architectures as arch
from ptqlab.bench.llm_speed import SpeedRow
from ptqlab.lessons.architectures import exercise, numbers, questions, text
from ptqlab.models.vision import MobileNetV2Style
from ptqlab.ptq import dfq

FLOAT64_LOOPS = """\
def fold_batchnorm(w, b, gamma, beta, mean, var, eps):
    w_folded, b_folded = torch.empty_like(w), torch.empty_like(mean)
    for c in range(w.shape[0]):
        s = float(gamma[c]) / math.sqrt(float(var[c]) + eps)
        w_folded[c] = (w[c].double() * s).float()
        b_folded[c] = s * ((0.0 if b is None else float(b[c])) - float(mean[c])) + float(beta[c])
    return w_folded, b_folded
"""


def test_two_correct_answers_pass_on_1000_seeds():
    """The reference on 1,000 seeds, an independently written float64 loop on every fourth."""
    for seed in range(1000):
        assert exercise.compare(exercise.SOLUTION, seed).ok is True, seed
        if seed % 4 == 0:
            assert exercise.compare(FLOAT64_LOOPS, seed).ok is True, seed


def test_oracles_agree_and_hostile_answers_never_pass():
    for seed in range(50):
        for case in exercise.seeded_cases(seed):
            torch.testing.assert_close(exercise.reference(case), exercise.torch_reference(case))
    hostile = [None, ..., (None, None), "text", (torch.tensor(math.nan), 1.0), 3e38, (1, 2, 3),
               lambda *a: (a[0] * math.inf, a[3]), lambda *a: 1 / 0, lambda *a: (a[0][:0], a[3][:0])]  # fmt: skip
    for answer in hostile:
        candidate = answer if callable(answer) else (lambda *a, answer=answer: answer)
        verdict = exercise.compare(candidate, 7)
        assert verdict.ok is False and "checker itself failed" not in verdict.message, answer


def test_named_mistakes():
    case = exercise.random_case(torch.Generator().manual_seed(0), "tiny variances")
    s = case.gamma / torch.sqrt(case.var + case.eps)
    w_ok, b_ok = case.w * s.reshape(-1, 1, 1, 1), s * (case.b - case.mean) + case.beta
    no_eps = (case.gamma / case.var.sqrt()).reshape(-1, 1, 1, 1) * case.w
    assert "left out ε" in exercise.judge_result(case, (no_eps, b_ok))
    no_sqrt = (case.gamma / (case.var + case.eps)).reshape(-1, 1, 1, 1) * case.w
    assert "standard deviation" in exercise.judge_result(case, (no_sqrt, b_ok))
    assert "running mean" in exercise.judge_result(case, (w_ok, s * case.b + case.beta))
    assert "scaled by s too" in exercise.judge_result(case, (w_ok, case.b - case.mean + case.beta))
    assert "must return a pair" in exercise.judge_result(case, w_ok)
    assert "fill in every" in exercise.judge_result(case, (..., b_ok))
    assert "expected" in exercise.judge_result(case, (w_ok[:1], b_ok))


def test_check_runs_the_contained_runner():
    assert exercise.check(exercise.SOLUTION, seed=3).ok is True
    verdict = exercise.check(exercise.STARTER, seed=3)
    assert verdict.ok is False and "reshape it to (-1, 1, 1, 1)" in verdict.message
    assert exercise.check("   ").ok is None
    with pytest.raises(ValueError, match="kind must be one of"):
        exercise.random_case(torch.Generator(), "linear")


def _study(per_tensor, per_channel, cle):
    acc = {}
    for tag in ("W8", "W8A8"):
        acc[f"per-tensor {tag}"], acc[f"per-channel {tag}"] = per_tensor, per_channel
        acc[f"CLE + per-tensor {tag}"] = acc[f"CLE + bias correction + per-tensor {tag}"] = cle
    return {"accuracy": acc, "fp32": per_channel, "fp32_relu": per_channel, "notes": ["n"]}


SPREAD = {"ratio": 400.0, "layer": "block1.conv.dw_conv", "levels": 0.3, "layers": 6}


def test_mobilenet_prose_follows_the_measurement():
    collapsed = text.mobilenet_verdict(_study(0.6, 0.99, 0.985), SPREAD, 300)
    assert "**collapses**: 60.00 %" in collapsed and "recovers it: 98.50 %" in collapsed
    assert "does **not** recover" in text.mobilenet_verdict(_study(0.6, 0.99, 0.9), SPREAD, 300)
    fine = text.mobilenet_verdict(_study(0.99, 0.99, 0.99), {**SPREAD, "ratio": 4.8, "levels": 26.0}, 1)
    assert "does **not** collapse" in fine and "4.8×" in fine and "trained" in fine
    q = questions.collapse_question(0.6, 0.99, 400.0)
    assert q.expected.startswith("Yes") and questions.collapse_question(0.99, 0.99, 4.8).expected.startswith(
        "No"
    )


def test_vit_and_folding_prose_follow_the_measurement():
    sites = {
        site: {
            "accuracy": {"uniform@4": u, f"{numbers.FIX[site]}@4": f},
            "stats": {"below_first_step": 0.15},
        }
        for site, (u, f) in {"layernorm": (0.9, 0.97), "softmax": (0.98, 0.9), "gelu": (0.98, 0.981)}.items()
    }
    verdict = text.vit_verdict({"fp32": 0.98, "sites": sites}, 4, 360)
    assert "per-channel (one scale per embedding dim) **helps**" in verdict and "**-8.00** points" in verdict
    assert "log2 grid is **worse**" in verdict and "no difference beyond noise: 98.10 %" in verdict
    r = {"pairs": 9, "max_abs_diff": 0.5, "max_abs_logit": 10.0, "same_predictions": False, "accuracy": 0.99,
         "accuracy_folded": 0.9, "factor_min": 0.5, "factor_max": 9.0, "n": 360}  # fmt: skip
    assert "**not** exact" in text.folding_markdown(r) and "predictions differ" in text.folding_markdown(r)
    exact = text.folding_markdown({**r, "max_abs_diff": 3e-6, "same_predictions": True})
    assert "exact up to float rounding" in exact and "every prediction is the same" in exact


def _facts(vnni):
    from ptqlab.backends.hardware import hardware_facts

    facts = hardware_facts(
        "cpu", cpuinfo="model name : Test CPU\nflags : avx2" + (" avx512_vnni" if vnni else "")
    )
    return facts


def test_table_prose_says_whether_the_seed_holds():
    row = arch.ArchitectureRow("ResNet-50", "ResNet-style on digits", "test accuracy", 0.99, 0.985, -0.005,
                               "ort-int8-static", {1: 1.2, 64: 3.1}, 3.7)  # fmt: skip
    slow = arch.ArchitectureRow("MobileNetV2", "MobileNetV2-style", "acc", 0.99, 0.97, -0.02, "x", {64: 1.1})
    verdict = text.table_verdict([row, slow, arch.pending_llm_row()], _facts(vnni=False))
    assert "the seed's 2.8× holds here" in verdict and "within 1 point" in verdict
    assert "the seed's 3.2× does not hold" in verdict and "more than 1 point" in verdict
    assert "Without VNNI" in verdict and "With VNNI" in text.table_verdict([row], _facts(vnni=True))
    table = text.table_markdown([row, arch.pending_llm_row()])
    assert "3.10× (b64)" in table and "not measured in this run" in table


def test_table_cache_round_trip_and_damage(tmp_path, monkeypatch):
    monkeypatch.setenv("PTQLAB_CACHE", str(tmp_path))
    assert numbers.cached_table() is None
    rows = [arch.ArchitectureRow("ResNet-50", "r", "acc", 0.9, 0.9, 0.0, "e", {1: 2.0, 64: 3.0}, 3.5)]
    monkeypatch.setattr(numbers.arch, "measure_rows", lambda *a, **k: rows)
    assert numbers.measure_table() == rows and numbers.cached_table() == rows
    next(tmp_path.glob("lab11_table_*.pt")).write_bytes(b"not a torch file")
    with pytest.warns(RuntimeWarning, match="damaged architecture table"):
        assert numbers.cached_table() is None


def test_step_meter_counts_recipes_and_timing_groups():
    ticks = []
    meter = numbers.StepMeter(ticks.append)
    for d in [
        "resnet b1: fp32",
        "resnet b1: ort-fp32",
        "resnet b1: timing",
        "resnet b1: timing",
        "resnet b64: timing",
    ]:
        meter(d)
    assert meter.done == 4 and ticks == [
        "resnet b1: fp32",
        "resnet b1: ort-fp32",
        "resnet b1: timing",
        "resnet b64: timing",
    ]
    assert numbers.table_stages() == 4 * 2 * 6


def _speed(name, tps, note=""):
    return SpeedRow(name, 1.0, 0.1, tps, 0.1, 10, 100.0, 0.5, note)


def test_llm_row_summary():
    rows = [
        _speed("fp32 eager", 20.0),
        _speed("torchao int8 weight-only", 30.0),
        _speed("torchao int8 dynamic", 25.0),
    ]
    row = llm.summarize_llm(20.5, 20.7, rows, 2.1)
    assert (
        row.engine == "torchao int8 weight-only"
        and row.speedup == {1: 1.5}
        and row.delta == pytest.approx(0.2)
    )
    assert row.seed_name == "LLaMA-7B" and "135 M" in row.measured_on and row.size_ratio == 2.1
    assert row.ort_int8_vs_ort_fp32 == {}  # no ORT rows
    ort = [
        *rows,
        _speed("ORT fp32", 40.0),
        _speed("ORT int8 dynamic", 80.0),
        _speed("ORT int8 MatMulNBits", 60.0),
    ]
    with_ort = llm.summarize_llm(20.5, 20.7, ort, 2.1)
    assert with_ort.engine == "ORT int8 dynamic" and with_ort.speedup == {1: 4.0}
    assert with_ort.ort_int8_vs_ort_fp32 == {1: 2.0} and "ORT fp32" not in with_ort.engines
    broken = llm.summarize_llm(
        20.5, 20.7, [_speed("fp32 eager", 20.0), _speed("torchao int8 dynamic", math.nan, "not run: X")], None
    )
    assert broken.speedup == {} and any("not run: X" in w for w in broken.why)
    assert any("no int8 engine ran" in w for w in broken.why)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="tokens must be a positive int"):
            llm.measure_llm_row(tokens=bad)


def test_measure_rows_bad_input_and_pending_llama():
    with pytest.raises(ValueError, match=r"unknown \['resnet50'\]"):
        arch.measure_rows(["resnet50"], [1])
    with pytest.raises(ValueError, match="batches must be positive ints"):
        arch.measure_rows(["llama"], [0])
    monkeypatch_free = arch.measure_rows(["llama"], [1])
    assert [r.seed_name for r in monkeypatch_free] == ["LLaMA-7B"] and monkeypatch_free[0].fp32 is None
    from ptqlab.cli.bench_architectures import parse

    assert parse(["--models", "resnet,llama"]).models == ["resnet", "llama"]


def _random_bn(model):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.num_features, generator=g) + 0.5
            m.running_var = torch.rand(m.num_features, generator=g) + 0.1
    return model.eval()


def test_unequalize_keeps_the_function_and_widens_the_spread():
    model = _random_bn(MobileNetV2Style())
    x = torch.rand(4, 1, 8, 8)
    reference = dfq.fold_batchnorm(model)
    dfq.replace_relu6(reference)
    wide = dfq.unequalize(model, 1000)
    with torch.no_grad():
        assert torch.allclose(wide(x), reference(x), rtol=1e-4, atol=1e-5)
    before, after = dfq.channel_ranges(reference), dfq.channel_ranges(wide)
    assert max(float(r.max() / r.min()) for r in after.values()) > 50 * max(
        float(r.max() / r.min()) for r in before.values()
    )
    for bad in (0.5, math.nan, math.inf, 3e38, True, "10"):
        with pytest.raises(ValueError, match="factor must be a number"):
            dfq.unequalize(model, bad)
    with pytest.raises(TypeError, match="model must be"):
        dfq.unequalize("model", 10)
    with pytest.raises(ValueError, match="factor must be one of"):
        numbers.mobilenet_study(7)


@pytest.mark.slow
def test_per_tensor_collapse_and_cle_recovery_on_the_unequalized_trained_model():
    """The trained MobileNetV2-style model does not collapse (its depthwise spread is ~5×); its ×300
    unequalized copy (same float function) does, and CLE + bias correction recovers within 2 points."""
    from ptqlab.models.data import digits_split
    from ptqlab.models.vision_training import vision_model

    d = digits_split()
    study = dfq.dfq_study(dfq.unequalize(vision_model("mobilenetv2", progress=False), 300), d.x_train[:64],
                          d.x_test, d.y_test, with_activations=False)  # fmt: skip
    acc = study.accuracy
    assert acc["per-channel W8"] - acc["per-tensor W8"] > 0.05
    assert acc["CLE + bias correction + per-tensor W8"] >= acc["per-channel W8"] - 0.02


def test_bias_correction_means_stop_early_but_equal_a_full_forward():
    model = dfq.fold_batchnorm(_random_bn(MobileNetV2Style()))
    batches = [torch.rand(3, 1, 8, 8), torch.rand(2, 1, 8, 8)]
    name = "block1.conv.dw_conv"
    outs = []
    hook = dict(model.named_modules())[name].register_forward_hook(lambda m, a, out: outs.append(out))
    with torch.no_grad():
        for b in batches:
            model(b)
    hook.remove()
    full = torch.cat(outs).transpose(0, 1).flatten(1).mean(1)
    torch.testing.assert_close(dfq._layer_output_means(model, batches, [name])[name], full)
