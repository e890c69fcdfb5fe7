import pytest

from lib.config import PROFILES, get_profile, results_dir


def test_profiles_exist():
    assert set(PROFILES) == {"smoke", "default", "gpu"}


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown profile 'laptop'; valid profiles: smoke, default, gpu"):
        get_profile("laptop")


def test_unknown_key_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown config key 'pretrain.stepz'.*pretrain\.steps"):
        get_profile("smoke", {"pretrain.stepz": 3})


def test_override_applies_to_one_field():
    p = get_profile("default", {"pretrain.steps": 7, "world.seed": 3})
    assert p.pretrain.steps == 7 and p.world.seed == 3
    assert p.sft == PROFILES["default"].sft


def test_smoke_results_never_go_to_committed_results(monkeypatch):
    monkeypatch.delenv("REPRO_RESULTS_DIR", raising=False)
    assert results_dir("smoke") != results_dir("default")
    assert "results" == results_dir("default").name
