import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from lib.cache import ArtifactCache, config_hash, state_fingerprint
from lib.config import WorldConfig


def _build(value):
    def build(tmp):
        save_file({"w": torch.full((4,), float(value))}, str(tmp / "weights.safetensors"))
        return {"value": value}
    return build


def test_config_hash_is_stable_and_sensitive():
    assert config_hash({"a": WorldConfig(), "b": (1, 2)}) == config_hash({"b": [1, 2], "a": WorldConfig()})
    assert config_hash(WorldConfig()) != config_hash(WorldConfig(seed=1))


def test_state_fingerprint_sees_every_byte_key_and_dtype():
    state = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2, dtype=torch.bfloat16),
             "step": torch.tensor(3)}
    fp = state_fingerprint(state)
    assert state_fingerprint({k: v.clone() for k, v in reversed(state.items())}) == fp
    nudged = dict(state, a=state["a"].clone())
    nudged["a"][1, 2] = torch.nextafter(nudged["a"][1, 2], torch.tensor(100.0))
    assert state_fingerprint(nudged) != fp
    assert state_fingerprint(dict(state, b=state["b"].float())) != fp
    assert state_fingerprint(dict(state, a=state["a"].reshape(3, 2))) != fp
    assert state_fingerprint({"c" if k == "a" else k: v for k, v in state.items()}) != fp


def test_hit_skips_the_work(tmp_path):
    cache = ArtifactCache(tmp_path)
    calls = []

    def build(tmp):
        calls.append(1)
        return _build(1)(tmp)

    a = cache.stage("s", {"k": 1}, build)
    b = cache.stage("s", {"k": 1}, build)
    assert len(calls) == 1 and cache.hits == 1 and a.path == b.path
    cache.stage("s", {"k": 2}, build)
    assert len(calls) == 2


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "manifest"])
def test_damaged_artifact_is_rebuilt(tmp_path, damage, capsys):
    cache = ArtifactCache(tmp_path)
    art = cache.stage("s", {"k": 1}, _build(3))
    f = art.path / "weights.safetensors"
    data = f.read_bytes()
    if damage == "flip":
        f.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    elif damage == "truncate":
        f.write_bytes(data[: len(data) // 2])
    elif damage == "delete":
        f.unlink()
    else:
        (art.path / "manifest.json").write_text("{not json")
    assert cache.load("s", {"k": 1}) is None
    assert "corrupted" in capsys.readouterr().err  # reported in the terminal
    again = cache.stage("s", {"k": 1}, _build(3))
    assert cache.builds == 2
    assert torch.equal(load_file(str(again.path / "weights.safetensors"))["w"], torch.full((4,), 3.0))


def test_failed_build_leaves_nothing_behind(tmp_path):
    cache = ArtifactCache(tmp_path)

    def boom(tmp):
        (tmp / "half.bin").write_bytes(b"x")
        raise KeyboardInterrupt  # a run interrupted mid-stage

    with pytest.raises(KeyboardInterrupt):
        cache.stage("s", {"k": 1}, boom)
    assert list(tmp_path.iterdir()) == []
    assert cache.load("s", {"k": 1}) is None


def test_meta_records_config(tmp_path):
    art = ArtifactCache(tmp_path).stage("s", {"k": 1}, _build(1))
    meta = json.loads((art.path / "meta.json").read_text())
    assert meta["config"] == {"k": 1} and meta["value"] == 1
