"""The QLoRA path check that a GPU machine runs (`benchmarks/cuda_check.py`), here on CPU, the
RM-substrate probe behind the tables of docs/reward-models.md (`benchmarks/substrate_probe.py`) and
the RL-regime probe behind docs/rl-regime.md (`benchmarks/hacking_probe.py`)."""

import json

import pytest

from benchmarks import cuda_check, hacking_probe, substrate_probe

TINY = ["--profile", "smoke", "--set", "pretrain.steps=3", "--set", "sft.steps=4",
        "--set", "sft.checkpoint_steps=[3]"]


@pytest.mark.usefixtures("one_thread")
def test_the_qlora_path_check_runs_every_stage_and_records_it(tmp_env):
    tmp_path = tmp_env  # its smoke tokenizer is built in the test's cache, not the repository's
    rows = cuda_check.check("cpu", steps=2, results=tmp_path)
    names = [r["name"] for r in rows]
    for stage in ("RM training", "RL training", "WARP merge", "RL training from merged weights"):
        assert any(n.startswith(f"QLoRA path: {stage}") for n in names), stage
    assert all(r["ours"] > 0 and r["device"].startswith("cpu") for r in rows)
    assert not any("peak memory" in n for n in names)  # measured on CUDA only
    assert {r["name"] for r in json.loads((tmp_path / "benchmarks.json").read_text())} == set(names)


def test_asking_for_cuda_without_a_gpu_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cuda_check.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="no CUDA device"):
        cuda_check.check("cuda", steps=1, results=tmp_path)


@pytest.mark.usefixtures("one_thread")
def test_the_substrate_probe_reports_each_member_against_the_proxy(tmp_env):
    out = tmp_env / "probe.json"
    report = substrate_probe.main([*TINY, "--members", "1,0", "--pool", "4x8",
                                   "--ood-temperatures", "1.3", "--json", str(out)])
    assert json.loads(out.read_text())["members"].keys() == {"1", "0"}
    assert report["pairs"]["train"] > 0 and 0 <= report["pairs"]["label agrees with gold"] <= 1
    for m in report["members"].values():
        assert m["gap to proxy"] == pytest.approx(m["ID"] - report["proxy"]["ID"], abs=1e-3)
        assert list(m["best-of-N"]) == [1, 2, 4, 8]
        assert m["best-of-N"][1] == report["proxy"]["best-of-N"][1]  # N = 1 is the pool's mean gold
    assert set(report["term weights"]) == {"gold", "BoW proxy", "RM 1", "RM 0"}
    assert report["ood by temperature"][1.3]["pairs"] > 0


def test_the_substrate_probe_refuses_a_member_the_pool_does_not_have(tmp_env):
    with pytest.raises(ValueError, match=r"members \[0, 9\]: pool 0 has members 0–3 \(rm.m = 4\)"):
        substrate_probe.main([*TINY, "--members", "0,9"])


@pytest.mark.parametrize("argv, message", [
    (["--set", "rm.rank_on=train"], "unknown rm.rank_on 'train'; valid: validation, test_ood"),
    (["--set", "pairs.n_train_posts=1000000"], "asks for more posts than the world has"),
    (["--set", "rm.lora_r=0"], "rm.lora_r must be ≥ 1"),
    (["--jobs", "0"], "--jobs must be ≥ 1"),
    (["--preset", "nosuch"], "unknown preset 'nosuch'; valid presets: no-replies"),
])
def test_bad_premise_probe_input_is_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as err:
        substrate_probe.main(["--premises", *argv])
    err_text = capsys.readouterr().err
    assert err.value.code == 2 and message in err_text and len(err_text.strip().splitlines()) == 1


@pytest.mark.usefixtures("one_thread")
def test_the_hacking_probe_reports_phi1s_curve_and_the_detectors_verdict(tmp_env):
    rows = hacking_probe.main([*TINY, "--jobs", "1", "--run", "steps=4", "--run", "steps=4,beta=0.5"])
    assert [r["run"] for r in rows] == [{"steps": 4}, {"steps": 4, "beta": 0.5}]
    for row in rows:
        assert row["eval_step"] == [0, 2, 4] and len(row["gold"]) == len(row["proxy"]) == len(row["kl"]) == 3
        assert row["peak step"] in (2, 4) and isinstance(row["hacked"], bool)
        fall, low, high = row["final − peak gold"]
        assert low <= fall <= high and fall <= 0  # final − peak, never above 0
        assert row["hacked"] == (high < 0 and row["proxy rise after peak"] > 0)


@pytest.mark.parametrize("argv, message", [
    (["--run", "nosuch=1"], "nosuch"),
    (["--jobs", "0"], "--jobs must be ≥ 1"),
])
def test_bad_hacking_probe_input_is_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as err:
        hacking_probe.main(argv)
    err_text = capsys.readouterr().err
    assert err.value.code == 2 and message in err_text and len(err_text.strip().splitlines()) == 1
