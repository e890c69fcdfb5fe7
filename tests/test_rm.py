from dataclasses import replace

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model

from lib.cache import ArtifactCache
from lib.merge import weight_average
from lib.models.lora import lora_merged_state_dict
from lib.pipeline import Pipeline
from lib.rm.pool import RewardModels
from lib.rm.rm import (
    PairSet,
    Sequences,
    accuracy,
    batch_loss,
    bt_loss,
    data_order_rng,
    last_token_scores,
    left_pad,
    pack_groups,
    score_pairs,
    score_sequences,
    score_texts,
    sequence_hidden,
    sequence_scores,
    train_reward_model,
)
from lib.rm.scoring import correct
from lib.world.data import prompts_of

FAST = {"pretrain.steps": 3, "sft.steps": 4, "sft.checkpoint_steps": (3,),
        "world.n_pretrain_posts": 200, "world.n_sft_train": 100, "rm.epochs": 0.4}


@pytest.fixture(scope="module")
def rms(tmp_path_factory):
    pl = Pipeline("smoke", FAST, cache=ArtifactCache(tmp_path_factory.mktemp("cache")))
    return RewardModels(pl)


def test_missing_baklava_checkpoint_is_a_clear_error(rms):
    with pytest.raises(ValueError, match="SFT keeps no checkpoint at step 2"):
        rms.build_model(rms.member(0).__class__(init_checkpoint=2))


def test_pairs_are_grouped_by_prompt_and_each_summary_encoded_once(rms):
    ds = rms.pl.comparisons["validation"]
    pairs = PairSet(rms.pl.tokenizer, ds, 160)
    assert len(pairs.groups) == len(set(ds["post_id"]))
    distinct = {(p, s) for p, s0, s1 in zip(ds["post_id"], ds["summary_0"], ds["summary_1"]) for s in (s0, s1)}
    assert len(pairs.ids) == len(distinct)
    for row in (0, len(ds) - 1):
        a, b = pairs.seq[row]
        assert a in pairs.groups[pairs.group[row]] and b in pairs.groups[pairs.group[row]]
    ch, rej = pairs.chosen_rejected([0])
    assert (ch[0], rej[0]) == tuple(pairs.seq[0][[ds[0]["choice"], 1 - ds[0]["choice"]]])


def test_score_texts_equals_scoring_each_sequence_alone(rms):
    model = rms.build_model(rms.member(0)).eval()
    pool = rms.pl.sample_pool("sft", 3, 4)
    prompts = [p for p in prompts_of(pool["posts"]) for _ in range(4)]
    texts = [s for row in pool["samples"] for s in row]
    seqs = Sequences(rms.pl.tokenizer, prompts, texts, 160)
    alone = score_sequences(model, [seqs.ids[i] for i in seqs.index], seqs.pad_id)
    assert np.allclose(score_texts(model, rms.pl.tokenizer, prompts, texts, 160), alone, atol=1e-4)


def test_bt_loss_by_hand():
    loss = bt_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]))
    expected = -(np.log(1 / (1 + np.exp(-2.0))) + np.log(0.5)) / 2
    assert loss.item() == pytest.approx(expected)


def test_pool_shares_one_head_and_varies_the_knobs(rms):
    pool = rms.pool()
    heads = [rms.build_model(cfg).score.weight.detach() for cfg in pool]
    assert all(torch.equal(h, heads[0]) for h in heads)  # bit-identical shared head
    assert pool[0].lr == pool[1].lr and pool[0].seed != pool[1].seed  # data order only
    assert pool[2].lr != pool[0].lr and pool[3].init_checkpoint != pool[0].init_checkpoint


def test_rm_training_is_cached_and_keeps_checkpoints(rms):
    cfg = rms.member(0)
    builds = rms.pl.cache.builds
    first = rms.state(cfg)
    assert rms.pl.cache.builds > builds
    builds = rms.pl.cache.builds
    assert all(torch.equal(first[k], v) for k, v in rms.state(cfg).items())
    assert rms.pl.cache.builds == builds  # the second call read the cache
    mid = rms.state(cfg, checkpoint=cfg.steps // 2)
    assert any(not torch.equal(first[k], mid[k]) for k in first)


def test_ens_is_the_mean_of_scores_and_wa_of_one_model_is_itself(rms):
    es = rms.pairs.eval_sets(0.0)["ID val"]
    a, b = rms.state(rms.member(0)), rms.state(rms.member(1))
    sa, sb = rms.scorer.scores(a, es), rms.scorer.scores(b, es)
    assert np.allclose(rms.scorer.scores(weight_average([a, a]), es), sa, atol=1e-5)
    ens = (sa + sb) / 2
    assert accuracy(ens, es.labels) == pytest.approx(
        np.mean(np.where(es.labels == 1, ens[1] >= ens[0], ens[0] >= ens[1])))
    assert correct(ens, es).mean() == pytest.approx(accuracy(ens, es.labels))


def test_scores_are_memoized_on_the_exact_weights(rms, monkeypatch):
    import lib.rm.scoring

    ds = rms.pairs.eval_sets(0.0)["ID val"]
    a, b = rms.state(rms.member(0)), rms.state(rms.member(1))
    calls = []
    real = lib.rm.scoring.sequence_scores
    monkeypatch.setattr(lib.rm.scoring, "sequence_scores", lambda *args, **kw: calls.append(1) or real(*args, **kw))
    fresh = RewardModels(rms.pl)
    ab = fresh.scorer.scores(weight_average([a, b]), ds)
    ba = fresh.scorer.scores(weight_average([b, a]), ds)  # another dict, the same weights
    assert len(calls) == 1 and np.array_equal(ab, ba)
    ba[0, 0] += 1  # callers get a copy, never the memo itself
    assert not np.array_equal(fresh.scorer.scores(weight_average([a, b]), ds), ba)
    nudged = dict(a)
    key = next(k for k, v in a.items() if v.is_floating_point())
    nudged[key] = a[key].clone()
    nudged[key].view(-1)[0] += 1e-3
    fresh.scorer.scores(nudged, ds)
    fresh.scorer.scores(a, ds)
    assert len(calls) == 3  # any changed weight is a new model


def test_sequence_hidden_is_the_eos_state_of_each_sequence_alone(rms):
    """The probe's features: the final hidden state at the EOS of each summary, as when the
    sequence is encoded alone."""
    model = rms.build_model(rms.member(0)).eval()
    pairs = PairSet(rms.pl.tokenizer, rms.pl.comparisons["validation"].select(range(12)), 160)
    h, ids = sequence_hidden(model, pairs, batch_size=2)
    with torch.no_grad():
        alone = model.model(**left_pad([pairs.ids[i] for i in ids], pairs.pad_id)).last_hidden_state[:, -1]
    assert sorted(ids) == list(range(len(pairs.ids))) and torch.allclose(h, alone, atol=1e-4)


def test_pack_groups_layout_by_hand():
    packed = pack_groups([[[5, 6, 7, 8], [5, 6, 3], [5, 6, 9, 9]], [[5, 9], [5, 9]]], pad_id=0)
    # group 0: prefix [5, 6], tails [7, 8], [3], [9, 9]; group 1: identical sequences keep one token each
    assert packed["input_ids"].tolist() == [[5, 6, 7, 8, 3, 9, 9], [0, 0, 0, 0, 5, 9, 9]]
    assert packed["position_ids"].tolist() == [[0, 1, 2, 3, 2, 2, 3], [0, 0, 0, 0, 0, 1, 1]]
    assert packed["ends"].tolist() == [[0, 3], [0, 4], [0, 6], [1, 5], [1, 6]]
    seen = packed["attention_mask"][0, 0] == 0  # what each position attends to
    assert seen[6].tolist() == [True, True, False, False, False, True, True]  # tail 3: prefix and itself
    assert seen[4].tolist() == [True, True, False, False, True, False, False]
    assert seen[3].tolist() == [True, True, True, True, False, False, False]


@pytest.mark.parametrize("mode", ["full", "lora", "qlora"])
def test_packed_groups_score_like_separate_sequences(rms, mode):
    """Encoding a prompt once for all its summaries gives the rewards (and the BT loss gradients) of
    scoring every sequence separately."""
    cfg = rms.member(0).__class__(mode=mode, dropout=0.0)
    model = rms.build_model(cfg)
    if mode == "lora":  # non-zero B so the adapters change the output
        for name, param in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.05)
    pairs = PairSet(rms.pl.tokenizer, rms.pl.comparisons["validation"].select(range(24)), 160)
    separate = score_sequences(model, pairs.ids, pairs.pad_id)
    assert np.allclose(score_pairs(model, pairs, batch_size=2), separate[pairs.seq].T, atol=1e-4)
    # the training path: the loss over the pairs of some prompts, packed, and unpacked
    groups = [0, 1]
    rows = np.concatenate([pairs.pairs_of_group[g] for g in groups])
    ch, rej = pairs.chosen_rejected(rows)
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    r_sep = last_token_scores(model, left_pad([pairs.ids[k] for k in list(ch) + list(rej)], pairs.pad_id))
    grads_sep = torch.autograd.grad(bt_loss(r_sep[:len(ch)], r_sep[len(ch):]), params)
    loss, _, n_pairs = batch_loss(model, pairs, groups)
    assert n_pairs == len(rows)
    assert torch.allclose(loss, bt_loss(r_sep[:len(ch)], r_sep[len(ch):]), atol=1e-5)
    # train mode and eval mode compute the same rewards (no dropout; one NF4 kernel)
    assert np.allclose(r_sep.detach().numpy(), separate[np.concatenate([ch, rej])], atol=1e-4)
    grads_packed = torch.autograd.grad(loss, params)
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-3) for a, b in zip(grads_sep, grads_packed))


def test_qlora_rm_step_lowers_the_loss_on_a_fixed_batch(rms):
    cfg = rms.member(0).__class__(mode="qlora", lr=1e-2, steps=1)
    model = rms.build_model(cfg)
    assert "Linear4bit" in {type(m).__name__ for m in model.modules()}
    pairs = PairSet(rms.pl.tokenizer, rms.pl.comparisons["train"].select(range(8)), 160)
    ch, rej = (list(x) for x in pairs.chosen_rejected(range(8)))
    batch = left_pad([pairs.ids[k] for k in ch + rej], pairs.pad_id)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-2)
    model.train()
    r = last_token_scores(model, batch)
    before = bt_loss(r[:8], r[8:])
    before.backward()
    opt.step()
    with torch.no_grad():
        r = last_token_scores(model, batch)
    assert bt_loss(r[:8], r[8:]) < before


def _two_lora_runs(rms):
    base = rms.build_model(rms.member(0).__class__(mode="full"))
    outs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = get_peft_model(rms.build_model(rms.member(0).__class__(mode="full")),
                               LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                          init_lora_weights=False))
        outs.append(model)
    return base, outs


def test_lora_average_uses_the_weight_updates(rms):
    base, (m1, m2) = _two_lora_runs(rms)
    s1, s2 = lora_merged_state_dict(m1), lora_merged_state_dict(m2)
    merged1 = m1.merge_and_unload().state_dict()
    assert all(torch.allclose(s1[k], merged1[k], atol=1e-6) for k in s1)  # = W + B·A·scale
    avg = weight_average([s1, s2])
    w0 = base.state_dict()
    key = "model.layers.0.self_attn.q_proj.weight"
    d1, d2 = s1[key] - w0[key], s2[key] - w0[key]
    assert torch.allclose(avg[key], w0[key] + (d1 + d2) / 2, atol=1e-6)  # mean of the ΔW


def test_peft_cat_combination_matches_merged_delta_average(rms):
    torch.manual_seed(0)
    model = get_peft_model(rms.build_model(rms.member(0).__class__(mode="full")),
                           LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                      init_lora_weights=False), adapter_name="a")
    model.add_adapter("b", LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                      init_lora_weights=False))
    states = []
    for name in ("a", "b"):
        model.set_adapter(name)
        states.append(lora_merged_state_dict(model))
    model.add_weighted_adapter(["a", "b"], [0.5, 0.5], "avg", combination_type="cat")
    model.set_adapter("avg")
    cat = lora_merged_state_dict(model)
    avg = weight_average(states)
    featurizer = [k for k in cat if k.startswith("model.")]
    assert featurizer and all(torch.allclose(cat[k], avg[k], atol=1e-6) for k in featurizer)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_data_order_is_independent_of_the_label_corruption(seed):
    """An RM whose seed equals the world seed must not replay the corruption's permutation: the
    first pairs it sees hold flipped labels at the corruption rate, not all flipped."""
    from lib.world.world import corrupt_labels

    n, fraction = 8000, 0.25
    _, flipped = corrupt_labels([0] * n, fraction, seed=seed)
    first = data_order_rng(seed).permutation(n)[:1280]  # the default pool's 80 steps × 16 pairs
    assert abs(np.asarray(flipped)[first].mean() - fraction) < 0.05


def test_gradient_checkpointing_trains_the_same_rm(tmp_path):
    """A memory knob, not a modelling one: same weights, and not part of any cache key."""
    fast = {"pretrain.steps": 2, "sft.steps": 2, "sft.checkpoint_steps": (1,), "rm.epochs": 0.4,
            "rm.mode": "lora", "rm.ema_mu": 1.0, "world.n_pretrain_posts": 100, "world.n_sft_train": 60}
    states = []
    for gc in (False, True):
        rms = RewardModels(Pipeline("smoke", {**fast, "gradient_checkpointing": gc},
                                    cache=ArtifactCache(tmp_path / str(gc))))
        cfg = rms.pool(0.0)[0]
        model = rms.build_model(cfg)
        assert model.get_base_model().is_gradient_checkpointing == gc
        states.append(rms.state(cfg))
    assert states[0].keys() == states[1].keys()
    assert all(torch.allclose(states[0][k], states[1][k], atol=1e-6) for k in states[0])
    assert rms.rm_key(cfg) == RewardModels(Pipeline("smoke", fast)).rm_key(cfg)


def test_the_held_out_curve_starts_at_the_probed_head(rms):
    cfg = rms.member(1)
    steps, hits = rms.curve(cfg)
    assert steps[0] == 0 and steps[-1] == cfg.steps and list(steps) == sorted(set(steps))
    assert set(rms.curve_steps(cfg)) <= set(steps)
    curve = rms.pairs.pairset("curve")
    probe = correct(sequence_scores(rms.scorer.model_of(rms.initial_state(cfg)), curve)[curve.seq].T, curve.choice)
    assert np.array_equal(hits[0], probe)
    assert rms.history(cfg)["eval"] == pytest.approx(hits.mean(1))


def test_curve_is_dense_during_the_warmup(tmp_path):
    from lib.config import RMConfig
    from lib.profiles import get_profile

    cfg = RMConfig(steps=250, warmup=0.3)
    dense = RewardModels(Pipeline("default", {"rm.eval_every_warmup": 10}, cache=ArtifactCache(tmp_path)))
    assert dense.curve_steps(cfg) == [10, 20, 30, 40, 50, 60, 70, 100, 200]
    rms = RewardModels(Pipeline("default", cache=ArtifactCache(tmp_path)))  # builds nothing
    assert rms.curve_steps(cfg) == [25, 50, 75, 100, 200]
    assert rms.curve_steps(replace(cfg, steps=248)) == [25, 50, 100, 200]  # warmup 74 (+ step 248, the end)
    assert (get_profile("default").rm.eval_every, get_profile("default").rm.eval_every_warmup) == (100, 25)
    assert not any(tmp_path.iterdir())  # a pool's configs and steps build no stage (no world, no SFT)


def test_seeded_pools_differ_by_seed_alone(rms):
    a, b = rms.pool(0.0, 0), rms.pool(0.0, 1)
    assert [c.seed for c in a] != [c.seed for c in b] and len({c.seed for c in a + b}) == len(a + b)
    assert [(c.lr, c.dropout, c.init_checkpoint) for c in a] == [(c.lr, c.dropout, c.init_checkpoint) for c in b]


def test_the_world_version_is_in_every_key(rms, monkeypatch):
    from lib.world import world

    keys = (rms.pl.cache.key("comparisons", rms.pl.comparisons_key), rms.pl.cache.key("rm", rms.rm_key(rms.member(0))))
    monkeypatch.setattr(world, "VERSION", world.VERSION + 1)
    fresh = RewardModels(Pipeline("smoke", FAST, cache=rms.pl.cache))
    cfg = rms.member(0)
    assert rms.pl.cache.key("comparisons", fresh.pl.comparisons_key) != keys[0]
    assert rms.pl.cache.key("rm", fresh.rm_key(cfg)) != keys[1]


def test_a_member_is_scored_once_and_read_back_from_the_cache(rms, monkeypatch):
    """A pool member's scores on a pair set are a stage of their own: the first reader scores its
    final weights, every later process reads them back."""
    import lib.rm.pool
    import lib.rm.scoring

    cfg, ood = rms.member(1), rms.pairs.eval_sets(0.0)["OOD"]
    direct = score_pairs(rms.scorer.model_of(rms.state(cfg)), rms.pairs.pairset("test_ood"))
    for member in rms.pool(0.0):
        rms.artifact(member)  # trained before the count starts
    calls = []
    real = lib.rm.pool.sequence_scores
    for module in (lib.rm.pool, lib.rm.scoring):  # a member's own stage, or the scorer's direct path
        monkeypatch.setattr(module, "sequence_scores", lambda *args, **kw: calls.append(1) or real(*args, **kw))
    first = RewardModels(rms.pl)
    got = first.scorer.scores(first.state(cfg), ood)
    assert len(calls) == 1
    np.testing.assert_allclose(got, direct, rtol=1e-5, atol=1e-6)
    again = RewardModels(rms.pl)
    assert np.array_equal(again.scorer.scores(again.state(cfg), ood), got) and len(calls) == 1
    before = len(calls)
    assert again.ranking(0.0) == rms.ranking(0.0)
    assert len(calls) - before <= len(rms.pool(0.0))  # each member scored at most once on its split
    ranked = len(calls)
    assert RewardModels(rms.pl).ranking(0.0) == rms.ranking(0.0) and len(calls) == ranked  # read back
    checkpoint = again.state(cfg, checkpoint=cfg.checkpoint_steps[0])  # not a member's final weights
    again.scorer.scores(checkpoint, ood)
    assert len(calls) == ranked + 1


def test_an_rm_with_an_ema_keeps_the_moving_average_of_its_trajectory(rms):
    """The raw trajectory does not depend on the EMA; the EMA run's curve, checkpoint and final
    weights are θ_ema ← (1−μ)·θ_ema + μ·θ_t over it, from the probed init."""
    mu, cfg = 0.3, replace(rms.member(1), steps=4, warmup=0.0, checkpoint_steps=(2,), ema_mu=1.0)
    train = rms.pairs.pairset("train-0.0")

    def snapshot(m):
        return {k: v.clone() for k, v in m.state_dict().items()}

    raw = []
    model = rms.build_model(replace(cfg, checkpoint_steps=(1, 2, 3, 4)))
    init = snapshot(model)
    train_reward_model(model, train, replace(cfg, checkpoint_steps=(1, 2, 3, 4)),
                       on_checkpoint=lambda s, m: raw.append(snapshot(m)))
    expected = [init]
    for theta in raw:
        expected.append({k: (1 - mu) * expected[-1][k] + mu * theta[k] for k in init})
    seen, kept = [], {}
    model = rms.build_model(cfg)
    history = train_reward_model(
        model, train, replace(cfg, ema_mu=mu), eval_steps=(2,),
        eval_fn=lambda m: seen.append(snapshot(m)) or [0.0],
        on_checkpoint=lambda s, m: kept.update(snapshot(m)))
    assert history["eval_step"] == [0, 2, 4]
    for got, want in zip(seen + [kept, dict(model.state_dict())], [expected[i] for i in (0, 2, 4, 2, 4)]):
        assert all(torch.allclose(got[k], want[k], atol=1e-6) for k in want)
    assert any(not torch.allclose(expected[4][k], raw[-1][k]) for k in init)  # the EMA is not θ_T


def test_corrupt_pools_train_on_disjoint_blocks_of_posts_for_their_own_epochs(rms):
    n_posts, epochs = 20, 2.0
    sub = RewardModels(Pipeline("smoke", {**FAST, "rm.corrupt_posts": n_posts, "rm.corrupt_epochs": epochs},
                                cache=rms.pl.cache))
    train = rms.pl.comparisons["train"]
    posts = list(dict.fromkeys(train["post_id"]))
    for pool in range(sub.cfg.n_seeds):
        cfg = sub.member(0, 0.25, pool)
        assert cfg.train_block == pool and sub.member(0, 0.0, pool).train_block == 0
        corrupt = sub.pairs.train_pairs(0.25, cfg.train_block)
        assert list(dict.fromkeys(corrupt["post_id"])) == posts[pool * n_posts:(pool + 1) * n_posts]
        assert sum(corrupt["flipped"]) == round(0.25 * len(corrupt))
        assert sub.scored_splits(cfg)[-1] == f"train-0.25-b{pool}"
        es = sub.pairs.eval_sets(0.25, pool)  # the pool's own swapped pairs; the held-out splits are shared
        assert es["train-corrupt"].pairset == f"train-0.25-b{pool}" and es["OOD"].pairset == "test_ood"
    assert sub.rm_key(sub.member(0, 0.25, 0))["train_posts"] == (0, n_posts)
    assert sub.rm_key(sub.member(0, 0.25, 1))["train_posts"] == (n_posts, 2 * n_posts)
    assert sub.pairs.train_pairs(0.0)["post_id"] == train["post_id"]  # the clean pools keep every post
    bs = sub.cfg.batch_size
    assert sub.member(0, 0.25).steps == round(epochs * n_posts / bs)
    assert sub.member(0, 0.0).steps == rms.member(0, 0.0).steps
    every = RewardModels(Pipeline("smoke", {**FAST, "rm.corrupt_posts": None}, cache=rms.pl.cache))
    assert every.member(0, 0.25, 1).train_block == 0 and every.pairs.train_split(0.25) == "train-0.25"
    # a pool's training pair set: its own block with corrupt labels, every post when clean or unblocked
    assert (sub.pairs.pool_split(0.25, 1), sub.pairs.pool_split(0.0, 1)) == ("train-0.25-b1", "train-0.0")
    assert every.pairs.pool_split(0.25, 1) == "train-0.25"
    assert sub.pairs.train_pairs(0.0)["post_id"] == train["post_id"]
    with pytest.raises(ValueError, match=r"rm.corrupt_posts = 40 for each of rm.n_seeds = 2 corrupt pools "
                                         r"\(disjoint blocks, 80 posts\) asks for more posts"):
        Pipeline("smoke", {**FAST, "rm.corrupt_posts": 40}, cache=rms.pl.cache)


def test_clean_pools_share_the_first_clean_posts_for_their_epochs_and_their_keys_say_so(rms):
    n_posts, epochs = 15, 3.0
    sub = RewardModels(Pipeline("smoke", {**FAST, "rm.clean_posts": n_posts, "rm.epochs": epochs},
                                cache=rms.pl.cache))
    posts = list(dict.fromkeys(rms.pl.comparisons["train"]["post_id"]))
    for pool in range(sub.cfg.n_seeds):  # every clean pool reads the same posts, as WARM's members do
        assert sub.pairs.pool_split(0.0, pool) == "train-0.0-b0"
        assert list(dict.fromkeys(sub.pairs.train_pairs(0.0)["post_id"])) == posts[:n_posts]
    assert sub.rm_key(sub.member(0))["train_posts"] == (0, n_posts) and rms.rm_key(rms.member(0))["train_posts"] is None
    assert sub.member(0).steps == round(epochs * n_posts / sub.cfg.batch_size)
    assert sub.pairs.pool_split(0.25, 1) == rms.pairs.pool_split(0.25, 1)  # the corrupt pools keep their own blocks
    assert sub.pairs.eval_sets(0.0)["train-clean"].rows.size == len(sub.pairs.train_pairs(0.0))


def test_the_ladder_of_diversity_is_warms_for_the_first_four_members():
    from lib.config import RMPoolConfig
    from lib.rm.ladder import member_config, pool_steps

    cfg = RMPoolConfig(lrs=(1e-4, 3e-4), dropouts=(0.0, 0.2), baklava=(None, 50))
    m = [member_config(cfg, i, steps=40, corruption=0.0, pool=1, block=0) for i in range(5)]
    knobs = [(c.lr, c.dropout, c.init_checkpoint) for c in m]
    assert knobs[0] == knobs[1] == (1e-4, 0.0, None) and m[0].seed != m[1].seed  # data order alone
    assert knobs[2] == (3e-4, 0.0, None) and knobs[3] == (3e-4, 0.2, 50)
    assert [c.seed for c in m] == [100, 101, 102, 103, 104] and all(c.checkpoint_steps == (20,) for c in m)
    assert pool_steps(cfg, 100, 0.0) == round(2.0 * 100 / 16) and pool_steps(cfg, 100, 0.25) == round(6.0 * 100 / 16)
