import numpy as np
import pytest

from lib.config import WorldConfig
from lib.world import data as D
from lib.world import world as W

SMALL = WorldConfig(n_pretrain_posts=50, n_sft_train=50, n_sft_validation=20, n_pref_train=3000,
                    n_pref_validation=200, n_pref_ood=200)


@pytest.fixture(scope="module")
def world():
    return D.build_world(SMALL)


def test_same_seed_same_world(world):
    again = D.build_world(SMALL)
    for split in D.COMPARISON_SPLITS:
        assert again.comparisons[split].to_dict() == world.comparisons[split].to_dict()
    assert again.sft["train"].to_dict() == world.sft["train"].to_dict()
    assert again.pretrain["text"] == world.pretrain["text"]


def test_other_seed_other_world(world):
    other = D.build_world(WorldConfig(**{**SMALL.__dict__, "seed": 1}))
    assert other.comparisons["train"]["post"] != world.comparisons["train"]["post"]


def test_schema(world):
    for split in D.COMPARISON_SPLITS:
        D.check_schema(world.comparisons[split], D.PAIR_FEATURES, split)
    D.check_schema(world.sft["train"], D.SFT_FEATURES, "sft")


def test_ood_split_uses_held_out_topics(world):
    ood_subs = set(world.comparisons["test_ood"]["subreddit"])
    train_subs = set(world.comparisons["train"]["subreddit"])
    assert ood_subs == {W.SUBREDDITS[t] for t in W.OOD_TOPICS}
    assert not ood_subs & train_subs


def _post():
    return W.make_post(np.random.default_rng(3), "work", "p")


def test_gold_rewards_the_key_fact():
    post = _post()
    base = f"{post.key_person} ."
    assert W.gold_reward(post, f"{post.key_person} {post.key_event} .") > W.gold_reward(post, base)


def test_gold_penalizes_hallucination():
    post = _post()
    good = f"{post.key_person} {post.key_event} ."
    fake = next(e for e in W.TOPICS["pets"]["events"] if e not in post.facts)
    assert W.gold_reward(post, f"{post.key_person} {post.key_event} and {fake} .") < W.gold_reward(post, good)


def test_gold_penalizes_length_over_budget():
    post = _post()
    good = f"{post.key_person} {post.key_event} ."
    padded = f"honestly {post.key_person} {post.key_event} " + "you know " * 8 + "."
    assert W.n_words(padded) > W.GOLD.length_budget
    b = W.gold_breakdown(post, padded)
    assert b["length"] < 0 and b["gold"] < W.gold_reward(post, good)


def test_gold_penalizes_repetition():
    post = _post()
    good = f"{post.key_person} {post.key_event} ."
    assert W.gold_reward(post, f"{post.key_person} {post.key_event} and {post.key_event} .") < W.gold_reward(post, good)


def test_gold_is_defined_on_any_text_and_parses_post_text():
    post = _post()
    assert W.parse_post(post.text).facts == post.facts
    assert W.parse_post(post.text).key_event == post.key_event
    assert np.isfinite(W.gold_reward(post.text, "\x00 ?? ### zzz"))
    assert W.gold_reward(post.text, "") == W.gold_reward(post, "")
    with pytest.raises(ValueError, match="not a post of the synthetic world"):
        W.parse_post("hello there")


def test_label_noise_like_human_labels(world):
    rate = D.label_gold_disagreement(world.comparisons["train"])
    assert 0.20 <= rate <= 0.35, rate


def test_length_is_a_spurious_feature(world):
    ds = world.comparisons["train"]
    l0 = np.array([W.n_words(s) for s in ds["summary_0"]])
    l1 = np.array([W.n_words(s) for s in ds["summary_1"]])
    c = np.array(ds["choice"])
    differ = l0 != l1
    longer_chosen = np.mean((c[differ] == 1) == (l1[differ] > l0[differ]))
    assert longer_chosen > 0.55  # labels favour length, although gold penalizes it past the budget


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5])
def test_corruption_flips_an_exact_fraction(world, fraction):
    ds = world.comparisons["train"]
    bad = D.with_corrupted_labels(ds, fraction, seed=0)
    flipped = np.array(bad["flipped"])
    assert flipped.sum() == round(fraction * len(ds))
    changed = np.array(bad["choice"]) != np.array(ds["choice"])
    assert np.array_equal(changed, flipped)
    assert D.with_corrupted_labels(ds, fraction, seed=0)["flipped"] == bad["flipped"]


def test_corruption_rejects_bad_fraction():
    with pytest.raises(ValueError, match="corruption fraction"):
        W.corrupt_labels([0, 1], 1.5, 0)


def test_term_weights_recover_a_reward_built_from_the_gold_terms(world):
    from lib.report.analysis import term_weights

    pairs = world.comparisons["validation"]
    terms = np.array([[[W.gold_breakdown(p, s)[k] for k in ("coverage", "hallucination")] + [W.n_words(s)]
                       for p, s in zip(pairs["post"], pairs[col])] for col in ("summary_0", "summary_1")])
    made_up = terms @ np.array([0.5, 0.2, -0.1]) + 3.0  # (2, pairs); a per-summary offset cancels
    gold = np.array([pairs["gold_0"], pairs["gold_1"]])
    rest = gold - terms[..., 0] - terms[..., 1]  # gold's other terms: repetition, length, fluency
    table = term_weights({"made up": made_up, "gold": gold, "rest": rest}, pairs)
    cols = ["coverage", "hallucination", "per word"]
    np.testing.assert_allclose(table.loc["made up", cols], [0.5, 0.2, -0.1], atol=1e-9)
    assert table.loc["made up", "hallucination / coverage"] == pytest.approx(0.4)
    # gold = coverage + hallucination + the rest, and the fit is linear in the reward
    np.testing.assert_allclose(table.loc["gold", cols], table.loc["rest", cols] + [1, 1, 0], atol=1e-9)
    with pytest.raises(ValueError, match=r"rewards of 'bad' are shaped \(3,\), expected \(2, 200\)"):
        term_weights({"bad": np.zeros(3)}, pairs)


def test_the_proxy_scores_both_summaries_of_each_pair_and_ranks_by_them(world):
    from lib.world.proxy import BagOfWordsProxy

    pairs = world.comparisons["validation"]
    proxy = BagOfWordsProxy.fit_pairs(world.comparisons["train"])
    scores = proxy.pair_scores(pairs)
    assert scores.shape == (2, len(pairs))
    np.testing.assert_array_equal(scores[1], proxy.score(pairs["post"], pairs["summary_1"]))
    chosen = np.where(np.asarray(pairs["choice"]) == 1, scores[1], scores[0])
    rejected = np.where(np.asarray(pairs["choice"]) == 1, scores[0], scores[1])
    np.testing.assert_array_equal(proxy.correct(pairs), chosen >= rejected)


def test_reader_replies_name_the_summarys_real_flaws_and_nothing_else():
    rng = np.random.default_rng(0)
    post = W.make_post(rng, "work", "p")
    made_up = next(f for f in W.all_fact_phrases() if f not in post.facts)
    good = f"{post.key_person} {post.key_event} ."
    assert W.reader_reply(rng, post, good, p_generic=0.0) == "no problems , good tl;dr ."
    bad = f"{made_up} and {made_up} ."
    reply = W.reader_reply(rng, post, bad, p_generic=0.0)
    assert reply.startswith("four problems :")  # made up, no key event, no key person, repeated
    assert f"where does {made_up} come from ?" in reply and f"repeats {made_up} ." in reply
    assert f"missing the point : {post.key_person} {post.key_event} ." in reply
    assert W.reader_reply(rng, post, bad, p_generic=1.0) in W.REPLY_GENERIC


def test_replies_in_the_web_are_deterministic_and_carry_no_reward_or_label():
    import re

    cfg = WorldConfig(**{**SMALL.__dict__, "pretrain_reply_fraction": 0.8, "pretrain_reply_generic": 0.25})
    web = D.build_world(cfg).pretrain["text"]
    assert web == D.build_world(cfg).pretrain["text"]  # deterministic under the world's seed
    bare = WorldConfig(**{**SMALL.__dict__, "pretrain_reply_fraction": 0.0})
    assert D.build_world(bare).pretrain["text"] == [t.split(D.EOS)[0] for t in web]  # replies only added
    replies = [t.split(D.EOS, 1)[1] for t in web if D.EOS in t]
    assert 0.6 * len(web) < len(replies) < len(web)
    generic = sum(r.strip() in W.REPLY_GENERIC for r in replies)
    assert 0.1 * len(replies) < generic < 0.4 * len(replies)
    facts = W._fact_regex()
    for reply in replies:  # words about facts: no number but a fact's own, no reward, no label
        assert not re.search(r"\d", facts.sub("", reply))
        assert not re.search(r"\b(reward|score|label|chosen|rejected|prefer\w*|gold)\b", reply)
    with pytest.raises(ValueError, match="world.pretrain_reply_fraction is a fraction"):
        WorldConfig(pretrain_reply_fraction=1.5)
