import re

import pytest

import lib.config
from lib.config import results_dir
from lib.pipeline import Pipeline
from lib.profiles import PRESETS, PROFILES, get_profile
from lib.runner import check_args


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


def test_smoke_results_never_go_to_committed_results(monkeypatch, tmp_path):
    monkeypatch.delenv("REPRO_RESULTS_DIR", raising=False)
    monkeypatch.setattr(lib.config, "ROOT", tmp_path)  # results_dir creates what it returns: not in the clone
    assert results_dir("smoke") != results_dir("default")
    assert "results" == results_dir("default").name


@pytest.mark.parametrize("overrides, message", [
    ({"pairs.n_train_posts": 9000}, r"pairs.n_train_posts = 9000 asks for more posts than the world has \(8000"),
    ({"pairs.source": "writers"}, r"unknown pairs.source 'writers'; valid: policy, dataset"),
    ({"pairs.k": 1}, r"pairs.k must be ≥ 2"),
    ({"rm.mode": "adapters"}, r"unknown rm.mode 'adapters'; valid: full, lora, qlora"),
    ({"rm.corruption": 0.6}, r"rm.corruption must be in \[0, 0.5\)"),
    ({"rm.corrupt_posts": 0}, r"rm.corrupt_posts must be ≥ 1 or None, got 0"),
    ({"rm.corrupt_posts": 800}, r"rm.corrupt_posts = 800 for each of rm.n_seeds = 3 corrupt pools \(disjoint "
                                r"blocks, 2400 posts\) asks for more posts than the training pairs have \(2200"),
    ({"pairs.ood_policy": "rl"}, r"unknown pairs.ood_policy 'rl'; valid: pretrain, sft"),
    ({"rm.corrupt_epochs": 0}, r"rm.corrupt_epochs must be positive or None, got 0"),
    ({"rm.clean_posts": 0}, r"rm.clean_posts must be ≥ 1 or None, got 0"),
    ({"rm.clean_posts": 2300}, r"rm.clean_posts = 2300 asks for more posts than the training pairs have \(2200"),
    ({"rm.ema_mu": 0.0}, r"rm.ema_mu must be in \(0, 1\] \(1: no EMA\), got 0.0"),
    ({"rm.ema_mu": 1.5}, r"rm.ema_mu must be in \(0, 1\]"),
    ({"rm.mode": "lora"}, r"rm.ema_mu = 0.03 \(an EMA of each RM's weights\) needs rm.mode 'full', got 'lora'"),
    ({"world.source": "tldr"}, r"pairs.source 'policy' labels SFT samples with the synthetic world's annotators"),
])
def test_an_rm_recipe_the_substrate_cannot_support_is_one_clear_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        get_profile("default", overrides)


def test_lora_rms_without_an_ema_are_accepted_in_either_order():
    for overrides in ({"rm.mode": "lora", "rm.ema_mu": 1.0}, {"rm.ema_mu": 1.0, "rm.mode": "lora"}):
        assert get_profile("default", overrides).rm.mode == "lora"


def test_overrides_may_be_json_text():
    assert get_profile("default", '{"pretrain.steps": 7}').pretrain.steps == 7
    assert get_profile("default", "") == get_profile("default")
    with pytest.raises(ValueError, match="overrides must be a dict or its JSON text"):
        get_profile("default", "{pretrain.steps: 7}")


def test_the_dead_keys_are_gone():
    for key in ("world.corruption", "model.load_in_4bit", "rm.steps", "rm.n_eval"):
        with pytest.raises(ValueError, match=f"unknown config key '{key}'"):
            get_profile("default", {key: 1})


@pytest.mark.parametrize("overrides, message", [
    ({"pretrain.steps": "abc"}, r"^config key 'pretrain.steps' expects int, got 'abc' \(str\)$"),
    ({"pretrain.steps": -5}, r"^config key 'pretrain.steps': steps must be ≥ 0, got -5$"),
    ({"rm.stepz": 1}, r"^unknown config key 'rm.stepz' for profile 'default'; nearest valid keys: .*rm\.epochs"),
])
def test_a_bad_override_is_one_line_naming_the_key(overrides, message):
    with pytest.raises(ValueError, match=message) as err:
        get_profile("default", overrides)
    assert "\n" not in str(err.value) and len(str(err.value)) < 200


def test_json_lists_become_tuples():
    assert get_profile("default", {"rm.lrs": [1e-4, 3e-4]}).rm.lrs == (1e-4, 3e-4)


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_is_its_overrides_from_every_entry_point_and_in_every_key_it_shapes(name):
    profile = get_profile("default", PRESETS[name])
    assert profile != PROFILES["default"]
    assert get_profile("default", {"preset": name}) == profile  # the notebooks' `overrides`
    assert check_args(["--preset", name]).profile_obj == profile  # run_all.sh (and the probe's flag)
    assert check_args(["--set", f"preset={name}"]).profile_obj == profile
    keys = [(Pipeline(p).world_key, Pipeline(p).pretrain_key, Pipeline(p).comparisons_key)
            for p in (PROFILES["default"], profile)]
    assert all(a != b for a, b in zip(*keys))  # its stages are cached apart from the profile's own


def test_overrides_beside_a_preset_win_over_its_keys():
    key, value = next(iter(PRESETS["no-replies"].items()))
    other = 0.25 if value != 0.25 else 0.5
    assert get_profile("default", {"preset": "no-replies", key: other}) == get_profile(
        "default", {**PRESETS["no-replies"], key: other})
    preset = {"preset": "no-replies"}
    assert get_profile("default", {**preset, key: other}) != get_profile("default", preset)


def _config_classes():
    import ast
    import inspect

    import lib.config as C

    tree = ast.parse(inspect.getsource(C))
    return C, [node for node in tree.body if isinstance(node, ast.ClassDef)]


def test_every_config_field_has_a_docstring_and_every_dataclass_validates():
    import ast
    import dataclasses

    C, classes = _config_classes()
    assert len(classes) >= 15
    for node in classes:
        body = node.body
        documented = lambda i: (i + 1 < len(body) and isinstance(body[i + 1], ast.Expr)
                                and isinstance(getattr(body[i + 1].value, "value", None), str))
        missing = [f.target.id for i, f in enumerate(body) if isinstance(f, ast.AnnAssign) and not documented(i)]
        assert not missing, f"{node.name}: fields without a docstring: {missing}"
        cls = getattr(C, node.name)
        assert dataclasses.is_dataclass(cls) and "__post_init__" in vars(cls), f"{node.name} does not validate itself"


def test_every_config_dataclass_lives_in_the_config_module():
    import ast
    from pathlib import Path

    lib = Path(__file__).parents[1] / "lib"
    elsewhere = [f"{p.relative_to(lib)}:{node.name}" for p in lib.glob("**/*.py") if p.name != "config.py"
                 for node in ast.parse(p.read_text()).body
                 if isinstance(node, ast.ClassDef) and node.name.endswith(("Config", "Setup"))]
    assert not elsewhere, f"config dataclasses outside lib/config.py: {elsewhere}"


@pytest.mark.parametrize("cls, kwargs, message", [
    ("ModelConfig", {"hidden_size": 30, "num_heads": 4}, "multiple of model.num_heads"),
    ("SamplingConfig", {"temperature": 0.0}, "sampling.temperature must be > 0"),
    ("WorldCheckConfig", {"k": 0}, "world_check.k must be ≥ 1"),
    ("BestOfNConfig", {"n_prompts": 0}, "bon.n_prompts must be ≥ 1"),
    ("ProbeConfig", {"l2": -1.0}, "probe.l2 must be ≥ 0"),
    ("TLDRConfig", {"sft_path": ""}, "tldr.sft_path is a path or None"),
    ("GoldConfig", {"mode": "int8"}, "unknown gold.mode 'int8'"),
    ("RLSetup", {"betas": (0.1, -0.1)}, "rl.betas must be ≥ 0"),
    ("RMPoolConfig", {"dropouts": (0.0, 1.0)}, "rm.dropouts must lie in [0, 1)"),
    ("LMTrainConfig", {"checkpoint_steps": (0,)}, "checkpoint_steps must be ≥ 1"),
    ("WorldConfig", {"source": "reddit"}, "unknown world.source 'reddit'"),
])
def test_a_bad_config_value_is_one_clear_error(cls, kwargs, message):
    import lib.config as C

    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(C, cls)(**kwargs)
