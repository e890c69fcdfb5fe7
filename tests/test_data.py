import math
from pathlib import Path

import pytest
from datasets import Dataset

from lib.world import data as D

FIXTURES = Path(__file__).parent / "fixtures"


def test_real_tldr_comparisons_map_to_our_schema():
    dd = D.load_tldr_comparisons(FIXTURES / "tldr_comparisons")
    for split in D.COMPARISON_SPLITS:
        D.check_schema(dd[split], D.PAIR_FEATURES, split)
    assert len(dd["train"]) == 3 and len(dd["validation"]) == 2 and len(dd["test_ood"]) == 1
    row = dd["train"][1]
    assert row["post_id"] == "t3_1" and row["choice"] == 1 and row["policy_1"] == "ppo_xl"
    assert row["summary_0"] == "Roommate is messy 1"  # stripped as in the paper's preprocessing
    assert math.isnan(row["gold_0"]) and row["flipped"] is False
    assert dd["test_ood"][0]["post"].startswith("A storm")  # CNN/DM articles are the OOD split


def test_real_tldr_sft_maps_to_our_schema():
    dd = D.load_tldr_sft(FIXTURES / "tldr_sft")
    D.check_schema(dd["train"], D.SFT_FEATURES, "train")
    assert dd["train"][0]["summary"] == "summary 0" and dd["validation"].num_rows == 2


def test_wrong_schema_is_a_clear_error():
    bad = Dataset.from_dict({"post": ["x"], "summary_0": ["a"]})
    with pytest.raises(D.SchemaError, match="missing columns"):
        D.check_schema(bad, D.PAIR_FEATURES, "comparisons")
    with pytest.raises(D.SchemaError, match="missing columns"):
        D.comparisons_from_tldr(bad)


def test_missing_local_data_says_what_to_download(tmp_path):
    with pytest.raises(RuntimeError) as err:
        D.load_tldr_comparisons(tmp_path / "nowhere")
    assert "hf download openai/summarize_from_feedback --repo-type dataset" in str(err.value)
    assert "'tldr.comparisons_path'" in str(err.value)
    with pytest.raises(RuntimeError) as err:
        D.load_tldr_sft(tmp_path / "nowhere")
    assert f"hf download {D.TLDR_SFT}" in str(err.value) and "'tldr.sft_path'" in str(err.value)


def test_prompt_format_is_tldr():
    assert D.format_prompt("tifu", "t", "p") == "SUBREDDIT: r/tifu\nTITLE: t\nPOST: p\nTL;DR:"


def test_policy_comparisons_label_every_pair_of_distinct_samples():
    from dataclasses import replace

    from lib.config import WorldConfig
    from lib.world.world import gold_reward, make_posts

    posts = make_posts(3, 2, ("work",), "p")
    rows = D.Dataset.from_dict({"post_id": [p.post_id for p in posts], "subreddit": [p.subreddit for p in posts],
                                "title": [p.title for p in posts], "post": [p.text for p in posts],
                                "summary": ["", ""]})
    facts = [posts[0].key_person + " " + posts[0].key_event + " .", "my boss ate a sock .", "."]
    samples = [[facts[0], facts[1], facts[0], facts[2]], ["a .", "a ."]]  # duplicates are dropped
    sharp = replace(WorldConfig(), label_temperature=1e-6, label_length_bias=0.0)
    ds = D.policy_comparisons(rows, samples, sharp, policy="sft", seed=0)
    assert len(ds) == 3 and set(ds["post_id"]) == {posts[0].post_id}  # C(3, 2); one distinct sample: no pair
    assert all(s0 != s1 for s0, s1 in zip(ds["summary_0"], ds["summary_1"]))
    for r in ds:
        assert r["gold_0"] == gold_reward(posts[0], r["summary_0"]) and r["subreddit"] == posts[0].subreddit
        if r["gold_0"] != r["gold_1"]:  # a near-zero temperature: the label follows gold
            assert r["choice"] == int(r["gold_1"] > r["gold_0"])
    again = D.policy_comparisons(rows, samples, WorldConfig(), policy="sft", seed=0)
    assert again["choice"] == D.policy_comparisons(rows, samples, WorldConfig(), policy="sft", seed=0)["choice"]


def test_pair_table_counts_prompts_and_length_preference():
    ds = D.Dataset.from_dict({"post_id": ["a", "a", "b"], "summary_0": ["x y .", "x .", "x y z ."],
                              "summary_1": ["x .", "x y z .", "x ."], "choice": [0, 1, 1],
                              "gold_0": [1.0, 0.0, 2.0], "gold_1": [0.0, 1.0, 0.0]})
    table = D.pair_table(ds)
    assert table["pairs"] == 3 and table["prompts"] == 2
    assert table["longer preferred"] == pytest.approx(2 / 3)
    assert table["label/gold disagreement"] == pytest.approx(1 / 3)
