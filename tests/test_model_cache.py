"""Issue 14 §1: the trained-model cache never loses a run. A damaged entry is set aside and the model
retrained (one warning line); an unwritable cache still returns the trained model (one warning line)."""

import shutil
import warnings

import pytest
import torch

from ptqlab.models import digits as models


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache in tmp_path, a 1-epoch recipe, and a counter of real trainings."""
    monkeypatch.setenv("PTQLAB_CACHE", str(tmp_path))
    monkeypatch.setitem(models.RECIPES, "mlp", {**models.RECIPES["mlp"], "epochs": 1})
    monkeypatch.setattr(models, "_TRAINED", {})
    calls = []
    real = models.train_digits_model

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "train_digits_model", counting)
    return tmp_path, calls


def entry(tmp_path):
    return tmp_path / f"digits_mlp_seed5_{models.training_key('mlp', 5)[:16]}.pt"


def good_file(tmp_path, monkeypatch) -> bytes:
    models.digits_mlp(seed=5, progress=False)
    monkeypatch.setattr(models, "_TRAINED", {})
    return entry(tmp_path).read_bytes()


def damage(path, kind: str, good: bytes) -> None:
    path.unlink()
    if kind == "truncated":
        path.write_bytes(good[:1000])
    elif kind == "random bytes":
        path.write_bytes(bytes(torch.randint(0, 256, (5000,), dtype=torch.uint8).tolist()))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong keys":
        torch.save({"weights": {}, "meta": 1}, path)
    elif kind == "missing info":
        torch.save({"state_dict": models.DigitsMLP().state_dict()}, path)
    elif kind == "wrong state_dict":
        torch.save({"state_dict": {"fc1.weight": torch.zeros(2)}, "info": {}}, path)
    elif kind == "directory":
        path.mkdir()
        (path / "x").write_text("not a model")


KINDS = ["truncated", "random bytes", "empty", "wrong keys", "missing info", "wrong state_dict", "directory"]


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_entry_is_set_aside_and_the_model_retrained(cache, monkeypatch, kind):
    tmp_path, calls = cache
    good = good_file(tmp_path, monkeypatch)
    damage(entry(tmp_path), kind, good)
    with pytest.warns(RuntimeWarning, match="damaged model cache") as record:
        model = models.digits_mlp(seed=5, progress=False)
    assert len([w for w in record if "ptqlab" in str(w.message)]) == 1
    assert "\n" not in str(record[0].message) and "weights_only=False" not in str(record[0].message)
    assert len(calls) == 2 and isinstance(model, models.DigitsMLP)
    # the entry is repaired (a loadable checkpoint again) and the damaged one kept aside
    assert entry(tmp_path).is_file()
    assert set(torch.load(entry(tmp_path), weights_only=True)) == {"state_dict", "info"}
    assert len(list(tmp_path.glob("*.damaged-*"))) == 1
    monkeypatch.setattr(models, "_TRAINED", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        models.digits_mlp(seed=5, progress=False)
    assert len(calls) == 2  # loaded from the repaired entry


def test_loading_never_unpickles_objects(cache, monkeypatch):
    tmp_path, calls = cache
    good_file(tmp_path, monkeypatch)

    class Evil:
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    torch.save({"state_dict": Evil(), "info": {}}, entry(tmp_path))
    with pytest.warns(RuntimeWarning, match="damaged"):
        models.digits_mlp(seed=5, progress=False)
    assert (tmp_path / "victim").is_dir()


def test_unwritable_cache_still_returns_the_trained_model(tmp_path, monkeypatch, cache):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("PTQLAB_CACHE", str(blocker / "cache"))  # mkdir fails: a file is in the way
    with pytest.warns(RuntimeWarning, match="could not cache") as record:
        model = models.digits_mlp(seed=5, progress=False)
    assert len(record) == 1 and isinstance(model, models.DigitsMLP)
    assert models.training_info("mlp", 5)["test_accuracy"] > 0.1


def test_read_only_cache_warns_once_and_leaves_no_temporary_file(cache, monkeypatch):
    tmp_path, calls = cache

    def read_only(src, dst):
        raise PermissionError(13, "Permission denied")

    import ptqlab.models.cache as cache_module

    monkeypatch.setattr(cache_module.os, "replace", read_only)
    with pytest.warns(RuntimeWarning, match="could not cache.*Permission denied"):
        model = models.digits_mlp(seed=5, progress=False)
    assert isinstance(model, models.DigitsMLP) and list(tmp_path.iterdir()) == []


def test_cache_directory_vanishing_mid_run_loses_nothing(cache, monkeypatch):
    tmp_path, calls = cache
    real = models.train_digits_model

    def train_then_delete(*args, **kwargs):
        result = real(*args, **kwargs)
        shutil.rmtree(tmp_path)
        return result

    monkeypatch.setattr(models, "train_digits_model", train_then_delete)
    model = models.digits_mlp(seed=5, progress=False)
    assert isinstance(model, models.DigitsMLP) and entry(tmp_path).is_file()


def test_training_key_refuses_unknown_names():
    with pytest.raises(ValueError, match="name must be one of"):
        models.training_key("nope", 0)
    with pytest.raises(TypeError, match="seed"):
        models.training_key("mlp", "0")


def test_variant_cache_heals_a_damaged_entry_too(tmp_path, monkeypatch):
    """QAT and training-dynamics results share the model cache's file mechanics: damage is set aside."""
    import ptqlab.models.cache as cache_module

    monkeypatch.setattr(cache_module, "cache_dir", lambda: tmp_path)
    path = cache_module.cache_path("variant", "0" * 64)
    path.write_bytes(b"\x00garbage")
    with pytest.warns(RuntimeWarning, match="damaged cache entry"):
        result, from_cache = cache_module.load_or_build("variant", "0" * 64, lambda: {"x": torch.ones(2)})
    assert not from_cache and torch.equal(result["x"], torch.ones(2))
    again, from_cache = cache_module.load_or_build("variant", "0" * 64, lambda: pytest.fail("rebuilt"))
    assert from_cache and torch.equal(again["x"], torch.ones(2))
    assert len(list(tmp_path.glob("variant_*.damaged-*"))) == 1
