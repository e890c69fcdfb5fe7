"""Fan-out: shards of each wave (RM pools, RL runs, WARP's second iteration) fill one cache; the
notebooks' calls then only read it."""

import pytest

from lib import fanout, plans
from lib.cache import ArtifactCache
from lib.pipeline import Pipeline
from lib.profiles import get_profile
from lib.rl.runs import RLRuns
from lib.rl.warp import merge_iteration
from lib.rm.pool import RewardModels

FAST = {"pretrain.steps": 2, "sft.steps": 2, "sft.checkpoint_steps": (1,), "rm.epochs": 0.3,
        "rm.m": 3, "rm.n_seeds": 1, "world.n_pretrain_posts": 100, "world.n_sft_train": 60}


@pytest.mark.slow
def test_shards_build_every_run_once_and_the_notebooks_read_them(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path))
    root = tmp_path / "smoke"
    monkeypatch.setattr(fanout, "get_profile",
                        lambda name, overrides=None: get_profile(name, {**FAST, **(overrides or {})}))
    assert fanout.main(["prepare", "--profile", "smoke"]) == 0
    built = []
    for i in range(2):
        before = {p.name for p in root.glob("rm-[0-9a-f]*")}
        assert fanout.main(["rms", "--profile", "smoke", "--shard", f"{i}/2"]) == 0
        built.append({p.name for p in root.glob("rm-[0-9a-f]*")} - before)
    assert built[0] and built[1] and not built[0] & built[1]
    # + notebook 01's two random-init controls and notebook 02's pre-training control of each pool
    assert len(built[0] | built[1]) == 2 * FAST["rm.m"] + 2 + FAST["rm.n_seeds"]

    cache = ArtifactCache(root)
    rms = RewardModels(Pipeline("smoke", FAST, cache=cache))
    for c in (0.0, 0.25):
        rms.ranking(c)  # the wave scored every member on the pair sets the notebooks read
        for cfg in rms.pool(c):
            for name, es in rms.pairs.eval_sets(c).items():
                if c or name != "train-clean":  # a clean RM's own training pairs: no notebook reads them
                    rms.scorer.scores(rms.state(cfg), es)
    assert cache.builds == 0 and cache.hits > 0

    # The RL waves: WARP's second iteration needs its first, then every run of lib.plans is built.
    with pytest.raises(SystemExit, match="rl"):
        fanout.main(["warp2", "--profile", "smoke"])
    for wave in ("rl", "warp2"):
        built = []
        for i in range(2):
            before = {p.name for p in root.glob("rl-*")}
            assert fanout.main([wave, "--profile", "smoke", "--shard", f"{i}/2"]) == 0
            built.append({p.name for p in root.glob("rl-*")} - before)
        assert built[0] and built[1] and not built[0] & built[1]
    runs = RLRuns(rms.pl, rms)
    plan = [run for group in plans.rl_with_warm(rms).values() for run in group.values()]
    plan += list(plans.warp_anchors(rms).values())
    plan += plans.warp_iteration(rms, 0, plans.warp_first_runs(rms.pl.profile))
    distinct = {rms.pl.cache.key("rl", runs.key(run)) for run in plan}
    assert len(fanout.rl_jobs(rms.pl)) == len(distinct)  # a run listed twice is built once
    assert all(runs.finished(run) is not None for run in plan)
    read = plans.cached_warp_run(runs, build=False)
    first = merge_iteration([read(0, m, None) for m in range(rms.pl.profile.warp.m)], rms.pl.profile.warp)
    assert all(runs.finished(run, init_key=first["key"]) is not None
               for run in plans.warp_iteration(rms, 1))
    assert len(list(root.glob("rl-*"))) == len(distinct) + rms.pl.profile.warp.m


def test_an_artifact_finished_meanwhile_by_another_process_is_kept(tmp_path):
    cache = ArtifactCache(tmp_path)

    def slow_build(tmp):
        # While this process builds, another one finishes the same artifact.
        ArtifactCache(tmp_path).stage("s", {"k": 1}, lambda t: {"by": "other"})
        return {"by": "me"}

    art = cache.stage("s", {"k": 1}, slow_build)
    assert art.meta["by"] == "other" and cache.load("s", {"k": 1}).meta["by"] == "other"
    assert [p.name for p in tmp_path.iterdir()] == [art.key]


@pytest.mark.parametrize("bad", ["2/2", "1", "a/b", "-1/3"])
def test_a_bad_shard_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="shard"):
        fanout.parse_shard(bad)


def test_a_kill_of_the_runner_cancels_the_jobs_of_the_wave(monkeypatch, tmp_path):
    """submitit's workers ignore SIGTERM: a `kill` of the runner must cancel them, as Ctrl-C does,
    or they go on writing into the cache. The fake jobs never finish; reading their log sends the
    runner a SIGTERM."""
    import os
    import signal

    class Job:
        cancelled = False

        def done(self):
            return False

        def stdout(self):
            os.kill(os.getpid(), signal.SIGTERM)
            return ""

        def cancel(self, check=True):
            self.cancelled = True

    jobs = [Job(), Job()]

    class Executor:
        def __init__(self, **kwargs):
            pass

        def update_parameters(self, **kwargs):
            pass

        def map_array(self, fn, *args):
            return jobs

    monkeypatch.setattr(fanout.submitit, "AutoExecutor", Executor)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stop:
        fanout.submit_waves("smoke", {}, 2, folder=tmp_path, waves=("rms",))
    assert stop.value.code == 128 + signal.SIGTERM
    assert all(job.cancelled for job in jobs)
    assert signal.getsignal(signal.SIGTERM) is before  # the runner's own handling is restored


def test_a_notebook_run_alone_fans_out_the_waves_it_reads():
    from lib.runner import NEEDS, notebooks, waves_for

    assert {p.name[:2] for p in notebooks()} == set(NEEDS)  # every notebook says what it reads
    assert waves_for(["00"]) == ("prepare",)
    assert waves_for(["03", "01"]) == ("prepare", "rms")
    assert waves_for(["05", "02"]) == ("prepare", "rms", "rl", "warp2")  # build order, not the order asked
    assert waves_for(["99"]) == ("prepare", "rms", "rl", "warp2")


def test_shards_are_dealt_in_a_snake_so_slow_members_alternate():
    jobs = list(range(12))
    assert fanout.shard(jobs, 0, 2) == [0, 3, 4, 7, 8, 11] and fanout.shard(jobs, 1, 2) == [1, 2, 5, 6, 9, 10]
    for n in (1, 2, 3, 5):  # every job in exactly one shard
        assert sorted(j for i in range(n) for j in fanout.shard(jobs, i, n)) == jobs
    pools = [(pool, member) for pool in range(6) for member in range(6)]  # the RM wave: 6 pools × 6 members
    assert [sum(m == 3 for _, m in fanout.shard(pools, i, 2)) for i in (0, 1)] == [3, 3]  # round-robin: [0, 6]


def test_a_shard_built_in_process_gives_back_the_callers_thread_count(monkeypatch):
    """Prepare's floats depend on the thread count, so a shard built in-process (a test, a notebook)
    must not leave its count behind: a later in-process prepare would no longer match one built in
    a fresh process (this once broke the SIGKILL-resume test in the full suite)."""
    import torch

    seen = []
    monkeypatch.setattr(fanout, "Pipeline", lambda profile, **kwargs: None)
    monkeypatch.setitem(fanout.JOBS, "rms", lambda pl: [("one run", lambda: seen.append(torch.get_num_threads()))])
    before = torch.get_num_threads()
    other = 1 if before > 1 else 2
    assert fanout.build_shard("smoke", {}, "rms", threads=other) == ["one run"]
    assert seen == [other] and torch.get_num_threads() == before
    fanout.build_shard("smoke", {}, "rms")  # no count asked: the caller's is used
    assert seen == [other, before] and torch.get_num_threads() == before
