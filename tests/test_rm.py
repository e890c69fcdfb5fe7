import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model

from lib.cache import ArtifactCache
from lib.merge import weight_average
from lib.pipeline import Pipeline
from lib.rm import (PairSet, RewardModels, accuracy, bt_loss, data_order_rng, last_token_scores,
                    left_pad, lora_merged_state_dict, pack_pairs, packed_pair_scores, pair_hidden,
                    score_pairs, score_sequences)

FAST = {"pretrain.steps": 3, "sft.steps": 4, "sft.checkpoint_steps": (3,),
        "world.n_pretrain_posts": 200, "world.n_sft_train": 100, "rm.steps": 3}


@pytest.fixture(scope="module")
def rms(tmp_path_factory):
    pl = Pipeline("smoke", FAST, cache=ArtifactCache(tmp_path_factory.mktemp("cache")))
    return RewardModels(pl)


def test_missing_baklava_checkpoint_is_a_clear_error(rms):
    with pytest.raises(ValueError, match="SFT keeps no checkpoint at step 2"):
        rms.build_model(rms.member(0).__class__(init_checkpoint=2))


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
    ds = rms.pl.world.comparisons["validation"].select(range(12))
    a, b = rms.state(rms.member(0)), rms.state(rms.member(1))
    sa, sb = rms.scores(a, "v", ds), rms.scores(b, "v", ds)
    assert np.allclose(rms.scores(weight_average([a, a]), "v", ds), sa, atol=1e-5)
    ens = (sa + sb) / 2
    assert accuracy(ens, np.asarray(ds["choice"])) == pytest.approx(
        np.mean(np.where(np.asarray(ds["choice"]) == 1, ens[1] >= ens[0], ens[0] >= ens[1])))


def test_scores_are_memoized_on_the_exact_weights(rms, monkeypatch):
    import lib.rm

    ds = rms.pl.world.comparisons["validation"].select(range(10))
    a, b = rms.state(rms.member(0)), rms.state(rms.member(1))
    calls = []
    real = lib.rm.score_pairs
    monkeypatch.setattr(lib.rm, "score_pairs", lambda *args, **kw: calls.append(1) or real(*args, **kw))
    fresh = RewardModels(rms.pl)
    ab = fresh.scores(weight_average([a, b]), "v", ds)
    ba = fresh.scores(weight_average([b, a]), "v", ds)  # another dict, the same weights
    assert len(calls) == 1 and np.array_equal(ab, ba)
    ba[0, 0] += 1  # callers get a copy, never the memo itself
    assert not np.array_equal(fresh.scores(weight_average([a, b]), "v", ds), ba)
    nudged = dict(a)
    key = next(k for k, v in a.items() if v.is_floating_point())
    nudged[key] = a[key].clone()
    nudged[key].view(-1)[0] += 1e-3
    fresh.scores(nudged, "v", ds)
    fresh.scores(a, "v", ds)
    assert len(calls) == 3  # any changed weight is a new model


def test_pair_hidden_is_the_eos_state_of_each_sequence_alone(rms):
    """The probe's features: the final hidden state at the EOS of each summary, as when the
    sequence is encoded alone, for the rows asked in the order asked."""
    model = rms.build_model(rms.member(0)).eval()
    pairs = PairSet(rms.pl.tokenizer, rms.pl.world.comparisons["validation"].select(range(12)), 160)
    rows = [7, 2, 11, 0]
    h = pair_hidden(model, pairs, rows, batch_size=3)
    with torch.no_grad():
        alone = model.model(**left_pad([pairs.ids[r] for r in rows] +
                                       [pairs.ids[pairs.n + r] for r in rows], pairs.pad_id))
    expected = alone.last_hidden_state[:, -1].reshape(2, len(rows), -1).transpose(0, 1)
    assert h.shape == expected.shape and torch.allclose(h, expected, atol=1e-4)


def test_pack_pairs_layout_by_hand():
    packed = pack_pairs([[5, 6, 7, 8], [5, 9]], [[5, 6, 3], [5, 9]], pad_id=0)
    # pair 0: prefix [5, 6], tails [7, 8] and [3]; pair 1: identical sequences keep one token each
    assert packed["input_ids"].tolist() == [[5, 6, 7, 8, 3], [0, 0, 5, 9, 9]]
    assert packed["position_ids"].tolist() == [[0, 1, 2, 3, 2], [0, 0, 0, 1, 1]]
    assert packed["ends"].tolist() == [[3, 4], [3, 4]]
    seen = packed["attention_mask"][0, 0] == 0  # what each position attends to
    assert seen[4].tolist() == [True, True, False, False, True]  # tail b: prefix and itself
    assert seen[3].tolist() == [True, True, True, True, False]  # tail a: causal
    assert seen[1].tolist() == [True, True, False, False, False]


@pytest.mark.parametrize("mode", ["full", "lora", "qlora"])
def test_packed_pairs_score_like_separate_sequences(rms, mode):
    """Encoding a pair's prompt once gives the rewards (and the BT loss gradients) of scoring its
    two sequences separately."""
    cfg = rms.member(0).__class__(mode=mode, dropout=0.0)
    model = rms.build_model(cfg)
    if mode == "lora":  # non-zero B so the adapters change the output
        for name, param in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.05)
    pairs = PairSet(rms.pl.tokenizer, rms.pl.world.comparisons["validation"].select(range(24)), 160)
    # eval mode (for qlora: bitsandbytes' float NF4 kernel on every CPU, `exact_4bit_on_cpu`)
    separate = score_sequences(model, pairs.ids, pairs.pad_id).reshape(2, pairs.n)
    assert np.allclose(score_pairs(model, pairs, batch_size=7), separate, atol=1e-4)
    # the training path: same rewards, loss and gradients as the unpacked batch
    ch, rej = pairs.chosen_rejected(range(8))
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    r_sep = last_token_scores(model, left_pad([pairs.ids[k] for k in ch + rej], pairs.pad_id))
    grads_sep = torch.autograd.grad(bt_loss(r_sep[:8], r_sep[8:]), params)
    r = packed_pair_scores(model, pack_pairs([pairs.ids[k] for k in ch], [pairs.ids[k] for k in rej],
                                             pairs.pad_id))
    assert torch.allclose(r.T.reshape(-1), r_sep, atol=1e-4)
    # train mode and eval mode compute the same rewards (no dropout; one NF4 kernel)
    chosen_rejected = np.concatenate([[separate[int(pairs.choice[k]), k] for k in range(8)],
                                      [separate[1 - int(pairs.choice[k]), k] for k in range(8)]])
    assert np.allclose(r_sep.detach().numpy(), chosen_rejected, atol=1e-4)
    grads_packed = torch.autograd.grad(bt_loss(r[:, 0], r[:, 1]), params)
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-3) for a, b in zip(grads_sep, grads_packed))


def test_qlora_rm_step_lowers_the_loss_on_a_fixed_batch(rms):
    cfg = rms.member(0).__class__(mode="qlora", lr=1e-2, steps=1)
    model = rms.build_model(cfg)
    assert "Linear4bit" in {type(m).__name__ for m in model.modules()}
    pairs = PairSet(rms.pl.tokenizer, rms.pl.world.comparisons["train"].select(range(8)), 160)
    ch, rej = pairs.chosen_rejected(range(8))
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
    from lib.world import corrupt_labels

    n, fraction = 8000, 0.25
    _, flipped = corrupt_labels([0] * n, fraction, seed=seed)
    first = data_order_rng(seed).permutation(n)[:1280]  # the default pool's 80 steps × 16 pairs
    assert abs(np.asarray(flipped)[first].mean() - fraction) < 0.05


def test_gradient_checkpointing_trains_the_same_rm(tmp_path):
    """A memory knob, not a modelling one: same weights, and not part of any cache key."""
    from lib.cache import ArtifactCache
    from lib.pipeline import Pipeline
    from lib.rm import RewardModels

    fast = {"pretrain.steps": 2, "sft.steps": 2, "sft.checkpoint_steps": (1,), "rm.steps": 3,
            "rm.mode": "lora", "world.n_pretrain_posts": 100, "world.n_sft_train": 60}
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
