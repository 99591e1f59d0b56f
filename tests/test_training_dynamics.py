"""Training dynamics (ptqlab.ptq.training_dynamics): the standard loop reproduces the shipped recipe bit for
bit, LAWA is the mean of the checkpoints, the cooldown schedule has the documented shape, spreads and paired
gains are computed as stated, and the variants are cached on disk."""

import pytest
import torch

import ptqlab.models.cache as cache_module
import ptqlab.models.digits as digits
from ptqlab.ptq import training_dynamics as td

SHORT = {"epochs": 2, "lr": 3e-3, "weight_decay": 1e-4, "batch_size": 64}


def test_one_cycle_loop_is_the_shipped_training_bit_for_bit(monkeypatch):
    monkeypatch.setitem(digits.RECIPES, "cnn", dict(SHORT))
    shipped, _ = digits.train_digits_model("cnn", seed=3, progress=False)
    mine, checkpoints, _ = td.train_with_checkpoints("cnn", "one-cycle", seed=3, recipe=SHORT)
    assert len(checkpoints) == 2
    for key, value in shipped.state_dict().items():
        assert torch.equal(value, mine.state_dict()[key]), key
        assert torch.equal(value, checkpoints[-1][key]), key


def test_lawa_is_the_mean_of_the_checkpoints_with_bn_recomputed_dropout_off():
    states = []
    for seed in range(3):
        torch.manual_seed(seed)
        states.append(digits.DigitsMLP().state_dict())
    averaged = td.average_checkpoints(states)
    expected = (states[0]["fc2.weight"] + states[1]["fc2.weight"] + states[2]["fc2.weight"]) / 3
    assert torch.allclose(averaged["fc2.weight"], expected, atol=1e-7)
    # running stats = plain average over batches of 64 of each batch's statistics, Dropout off
    model = digits.DigitsMLP()
    model.load_state_dict(averaged)
    td.recompute_batchnorm(model, digits.digits_split().x_train)
    batches = digits.digits_split().x_train.split(64)
    with torch.no_grad():
        probe = digits.DigitsMLP()
        probe.load_state_dict(model.state_dict())
        inputs = []
        for b in batches:
            probe.train()
            probe.drop1.eval()
            h = probe.relu1(probe.bn1(probe.fc1(probe.flatten(b))))
            inputs.append(probe.fc2(h))
    assert torch.allclose(model.bn2.running_mean, torch.stack([z.mean(0) for z in inputs]).mean(0), atol=1e-6)
    assert torch.allclose(model.bn2.running_var, torch.stack([z.var(0) for z in inputs]).mean(0), atol=1e-5)
    assert not model.training and model.bn2.momentum == 0.1
    with pytest.raises(ValueError, match="checkpoints"):
        td.average_checkpoints([])
    a, b = td.lawa_model("mlp", averaged, seed=1), td.lawa_model("mlp", averaged, seed=1)
    assert torch.equal(a.bn2.running_var, b.bn2.running_var)
    assert torch.equal(a.fc2.weight, model.fc2.weight) and not torch.equal(
        a.bn2.running_var, model.bn2.running_var
    )


def test_warmup_stable_decay_shape():
    total = 100
    values = [td.warmup_stable_decay(s, total) for s in range(total)]
    assert values[0] == pytest.approx(1 / 5) and values[4] == 1.0
    assert all(v == 1.0 for v in values[5:80])
    assert values[80] == 1.0 and values[90] == pytest.approx(0.5) and values[99] == pytest.approx(0.05)
    assert all(a >= b for a, b in zip(values[80:], values[81:], strict=False))


def test_spread_and_paired_gain_in_points():
    s = td.spread([0.90, 0.92, 0.94])
    assert (s.mean, s.low, s.high) == pytest.approx((92.0, 90.0, 94.0))
    assert s.std == pytest.approx(2.0)
    assert td.spread([0.5]).std == 0.0
    study = td.DynamicsStudy(
        "mlp",
        (0, 1),
        {
            "standard": {"per-channel": {2: [0.50, 0.60]}},
            "lawa": {"per-channel": {2: [0.55, 0.70]}},
        },
        {},
        True,
    )
    gain = td.paired_gain(study, "lawa", 2)
    assert (
        gain.mean == pytest.approx(7.5)
        and gain.low == pytest.approx(5.0)
        and gain.high == pytest.approx(10.0)
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="schedule"):
        td.train_with_checkpoints("mlp", "linear", recipe=SHORT)
    with pytest.raises(ValueError, match="digits model"):
        td.trained_variants("resnet")
    with pytest.raises(TypeError, match="seed"):
        td.trained_variants("mlp", seed=1.5)
    with pytest.raises(ValueError, match="granularity"):
        td.rtn_accuracy(digits.DigitsMLP(), 4, "per-group")
    with pytest.raises(ValueError, match="seeds"):
        td.dynamics_study("mlp", seeds=())


@pytest.mark.slow
def test_study_of_a_short_recipe_is_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "cache_dir", lambda: tmp_path)
    recipe = {**SHORT, "epochs": 1}
    study = td.dynamics_study("cnn", seeds=(0,), recipe=recipe)
    assert not study.from_cache
    assert set(study.accuracy) == set(td.VARIANTS)
    assert all(len(v) == 1 for v in study.accuracy["lawa"]["per-tensor"].values())
    again = td.dynamics_study("cnn", seeds=(0,), recipe=recipe)
    assert again.from_cache and again.accuracy == study.accuracy
    models, _, _ = td.trained_variants("cnn", 0, recipe)
    data = digits.digits_split()
    accuracy = float((models["cooldown"](data.x_test).argmax(1) == data.y_test).float().mean())
    assert accuracy == pytest.approx(study.accuracy["cooldown"]["per-channel"][32][0])
