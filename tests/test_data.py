import math
from pathlib import Path

import pytest
from datasets import Dataset

from lib import data as D

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
