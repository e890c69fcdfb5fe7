import numpy as np
import pytest
import torch

from lib.cache import ArtifactCache
from lib.pipeline import Pipeline

FAST = {"pretrain.steps": 3, "sft.steps": 2, "world.n_pretrain_posts": 200,
        "world.n_sft_train": 100}


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_two_runs_with_one_seed_are_identical(tmp_path):
    a = Pipeline("smoke", FAST, cache=ArtifactCache(tmp_path / "a"))
    b = Pipeline("smoke", FAST, cache=ArtifactCache(tmp_path / "b"))
    wa, wb = _weights(a.load("sft")), _weights(b.load("sft"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    pa, pb = a.sample_pool("sft", 3, 4), b.sample_pool("sft", 3, 4)
    assert pa["samples"] == pb["samples"] and np.array_equal(pa["gold"], pb["gold"])


def test_reruns_hit_the_cache_and_resume_after_the_last_finished_stage(tmp_path):
    cache = ArtifactCache(tmp_path)
    Pipeline("smoke", FAST, cache=cache).pretrained_artifact()  # a run that stopped after pre-training
    assert cache.builds == 3  # world, tokenizer, pretrain
    resumed = Pipeline("smoke", FAST, cache=cache)
    resumed.sft_artifact()
    assert cache.builds == 4  # only SFT was built; earlier stages were read back
    changed = Pipeline("smoke", {**FAST, "sft.lr": 5e-4}, cache=cache)
    changed.sft_artifact()
    assert cache.builds == 5  # an SFT knob reruns SFT only


def test_sft_checkpoints_are_kept(tmp_path):
    pl = Pipeline("smoke", {**FAST, "sft.checkpoint_steps": (1,)}, cache=ArtifactCache(tmp_path))
    ckpt, final = _weights(pl.load("sft", checkpoint=1)), _weights(pl.load("sft"))
    assert any(not torch.equal(ckpt[k], final[k]) for k in final)
    with pytest.raises(ValueError, match="no checkpoint-7"):
        pl.load("sft", checkpoint=7)
    with pytest.raises(ValueError, match="unknown model stage"):
        pl.load("rm")


def test_the_policy_pairs_are_every_pair_of_distinct_sft_samples(tmp_path):
    """The RMs' comparisons: `pairs.k` SFT samples per post, every pair of distinct ones labelled;
    train and validation on disjoint posts of the training topics, OOD on held-out topics."""
    from lib.world import world as W

    pl = Pipeline("smoke", FAST, cache=ArtifactCache(tmp_path))
    cfg, comparisons = pl.profile.pairs, pl.comparisons
    assert set(comparisons) == {"train", "validation", "test_ood"}
    train, val, ood = (comparisons[s] for s in ("train", "validation", "test_ood"))
    assert len(set(train["post_id"])) <= cfg.n_train_posts
    per_post = {}
    for p, s0, s1 in zip(train["post_id"], train["summary_0"], train["summary_1"]):
        per_post.setdefault(p, set()).update((s0, s1))
    assert all(len(s) <= cfg.k for s in per_post.values())
    assert sum(len(s) * (len(s) - 1) // 2 for s in per_post.values()) == len(train)  # all pairs
    assert not set(train["post_id"]) & set(val["post_id"])
    topics = lambda ds: {W.parse_post(p).topic for p in ds["post"]}
    assert topics(train) <= set(W.ID_TOPICS) and topics(ood) <= set(W.OOD_TOPICS)
    assert set(train["policy_0"]) == {f"sft T={cfg.temperature:g}"}
    assert cfg.ood_policy == "pretrain" and set(ood["policy_0"]) == {f"pretrain T={cfg.ood_temperature:g}"}
    assert pl.comparisons_artifact().meta["pairs"]["train"] == len(train)


def test_the_ood_pairs_are_samples_of_the_policy_named_and_nothing_else_moves(tmp_path):
    """`pairs.ood_policy` picks the model whose samples make the OOD pairs (WARM's D_ood: other
    policies); the SFT policy's train and validation pairs stay the same."""
    cache = ArtifactCache(tmp_path)
    base = Pipeline("smoke", FAST, cache=cache).comparisons
    sft = Pipeline("smoke", {**FAST, "pairs.ood_policy": "sft"}, cache=cache).comparisons
    for split in ("train", "validation"):
        assert base[split]["summary_0"] == sft[split]["summary_0"] and base[split]["choice"] == sft[split]["choice"]
    assert set(sft["test_ood"]["policy_0"]) == {"sft T=0.7"}
    assert base["test_ood"]["post_id"][0] == sft["test_ood"]["post_id"][0]
    assert set(zip(base["test_ood"]["summary_0"], base["test_ood"]["summary_1"])) != \
        set(zip(sft["test_ood"]["summary_0"], sft["test_ood"]["summary_1"]))


def test_shared_stages_and_pools_compute_with_fixed_thread_counts_whoever_builds_them(tmp_path, monkeypatch):
    """CPU floats depend on the thread count in their last bits: pre-training, SFT and the
    comparisons use `PREPARE_THREADS`, a sample pool `RUN_THREADS`, whatever count the caller has
    (a fan-out job, a notebook kernel, a test), and the caller's count comes back afterwards."""
    from lib import pipeline as P
    from lib.config import PREPARE_THREADS, RUN_THREADS

    seen = []

    def spy(fn, name):
        def wrapped(*args, **kwargs):
            seen.append((name, torch.get_num_threads()))
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(P, "train_causal_lm", spy(P.train_causal_lm, "train"))
    monkeypatch.setattr(P, "sample_summaries", spy(P.sample_summaries, "sample"))
    before = torch.get_num_threads()
    caller = 3 if PREPARE_THREADS != 3 and RUN_THREADS != 3 else 4
    torch.set_num_threads(caller)
    try:
        few = {"pairs.n_train_posts": 4, "pairs.n_validation_posts": 2, "pairs.n_ood_posts": 2, "rm.corrupt_posts": 1}
        pl = Pipeline("smoke", {**FAST, **few}, cache=ArtifactCache(tmp_path))
        pl.comparisons_artifact()  # pre-training, SFT, then sampling the pairs
        pl.sample_pool("sft", 2, 2)
        assert torch.get_num_threads() == caller
    finally:
        torch.set_num_threads(before)
    assert seen[:2] == [("train", PREPARE_THREADS)] * 2  # pre-training, SFT
    assert {n for name, n in seen[2:-1]} == {PREPARE_THREADS} and seen[-1] == ("sample", RUN_THREADS)
