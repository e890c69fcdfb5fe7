"""End-to-end reliability: a run killed with SIGKILL mid-stage resumes to the same result; files
left by a killed process are detected; missing hub access is one clear message."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lib.cache import ArtifactCache
from lib.pipeline import Pipeline
from lib.plans import Run
from lib.rl import runs as RL
from lib.rm.pool import RewardModels

ROOT = Path(__file__).resolve().parent.parent
FAST = {"pretrain.steps": 2, "sft.steps": 2, "sft.checkpoint_steps": (1,), "rm.epochs": 0.3,
        "world.n_pretrain_posts": 100, "world.n_sft_train": 60, "rl.run.steps": 24,
        "rl.run.eval_every": 2}

RUN_ONE_RL_STAGE = """
import ast, sys
from lib.rl import runs as RL
from lib.cache import ArtifactCache
from lib.pipeline import Pipeline
from lib.plans import Run
from lib.rm.pool import RewardModels
pl = Pipeline("smoke", ast.literal_eval(sys.argv[2]), cache=ArtifactCache(sys.argv[1]))
rms = RewardModels(pl)
RL.RLRuns(pl, rms).run(Run(rms.pool(0.0)[:1], pl.profile.rl.run))
print("finished")
"""


def _rl(cache_dir):
    pl = Pipeline("smoke", FAST, cache=ArtifactCache(cache_dir))
    rms = RewardModels(pl)
    return pl, RL.RLRuns(pl, rms), Run(rms.pool(0.0)[:1], pl.profile.rl.run)


def _saved_step(cache_dir: Path) -> int:
    for state in cache_dir.glob("partial/*/state"):
        try:
            return RL.load_rl_state(state)["step"]
        except Exception:  # being written right now
            return -1
    return -1


@pytest.mark.slow
def test_a_stage_killed_with_sigkill_resumes_to_the_same_result(tmp_path, monkeypatch):
    pl, runner, members = _rl(tmp_path / "a")
    reference = runner.run(members)

    killed = tmp_path / "b"
    proc = subprocess.Popen([sys.executable, "-c", RUN_ONE_RL_STAGE, str(killed), repr(FAST)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 300
    while _saved_step(killed) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL and "finished" not in proc.stdout.read()
    saved = _saved_step(killed)
    assert 2 <= saved < FAST["rl.run.steps"], "the kill should land in the middle of the RL stage"
    assert list(killed.glob(".tmp-rl-*")), "SIGKILL skips the clean-up of the build directory"

    resumed_from = []
    train = RL.train_policy

    def spy(*args, **kwargs):
        resume = kwargs["hooks"].resume
        resumed_from.append(resume["step"] if resume else None)
        return train(*args, **kwargs)

    monkeypatch.setattr(RL, "train_policy", spy)
    pl_b, runner_b, members_b = _rl(killed)
    resumed = runner_b.run(members_b)
    assert resumed_from == [saved]
    assert not list(killed.glob(".tmp-*")) and not list(killed.glob("partial/*"))
    h_ref, h_res = runner.history(reference), runner_b.history(resumed)
    assert h_res["loss"] == h_ref["loss"] and h_res["eval_gold_all"] == h_ref["eval_gold_all"]
    a, b = runner.policy_state(reference), runner_b.policy_state(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_state_torn_by_a_kill_while_saving_is_refused(tmp_path):
    state = {"step": 4, "history": {"loss": [1.0]}, "config": {},
             "policy": {"w": torch.ones(2)}, "optimizer": {}, "anchor": {}}
    RL.save_rl_state(tmp_path, state)
    assert RL.load_rl_state(tmp_path)["step"] == 4
    # Killed after the tensors of step 6 replaced those of step 4, before state.json did.
    newer = tmp_path / "newer"
    RL.save_rl_state(newer, {**state, "step": 6})
    os.replace(newer / "tensors.safetensors", tmp_path / "tensors.safetensors")
    with pytest.raises(RL.StaleRLState, match="step 4 but its tensors are at step 6"):
        RL.load_rl_state(tmp_path)


def test_an_unusable_saved_state_is_discarded_and_the_run_starts_over(tmp_path, capsys):
    pl, runner, members = _rl(tmp_path)
    partial = tmp_path / "partial" / pl.cache.key("rl", runner.key(members))
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "state.json").write_text("{torn")
    art = runner.run(members)
    assert "discarding an unusable saved state" in capsys.readouterr().out
    assert runner.history(art)["eval_step"][-1] == FAST["rl.run.steps"]


def test_build_directories_of_dead_processes_are_removed(tmp_path, capsys):
    from lib import cache as C

    cache = ArtifactCache(tmp_path)
    key = cache.key("s", {"k": 1})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / f".tmp-{key}-{C._HOST}-{dead.pid}-0123abcd"
    running = tmp_path / f".tmp-{key}-{C._HOST}-{os.getpid()}-0123abcd"
    elsewhere = tmp_path / f".tmp-{key}-another-host-{dead.pid}-0123abcd"
    for d in (left, running, elsewhere):
        d.mkdir(parents=True)
    cache.stage("s", {"k": 1}, lambda tmp: (tmp / "x.json").write_text("{}") and None)
    assert not left.exists() and running.exists() and elsewhere.exists()
    assert "left by a killed build" in capsys.readouterr().err  # in the terminal, with the other [cache] lines


def test_missing_hub_access_says_what_to_download(monkeypatch):
    import huggingface_hub.constants

    from lib.models.models import load_model, load_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for load in (load_model, load_tokenizer):
        with pytest.raises(RuntimeError) as err:
            load("EleutherAI/pythia-410m-deduped")
        message = str(err.value)
        assert "hf download EleutherAI/pythia-410m-deduped --local-dir models/pythia-410m-deduped" \
            in message and "model.hub_name" in message
