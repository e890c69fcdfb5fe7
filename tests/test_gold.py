"""The real-data path of the gpu profile on CPU: TL;DR-format files through the real loaders, and a
control RM (a model of another architecture, built from a config) as the gold reward."""

import json

import numpy as np
import pytest
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from lib.cache import ArtifactCache
from lib.pipeline import Pipeline
from lib.rm.control import ControlRM
from lib.world import data as D

SMALL = {"world.n_pretrain_posts": 200, "world.n_sft_train": 100, "pretrain.steps": 2,
         "sft.steps": 2}


def _write_tldr_files(world: D.WorldData, root):
    """The synthetic world in the TL;DR release formats: SFT jsonl, comparisons JSON lines."""
    sft = root / "sft"
    sft.mkdir()
    for split in D.SFT_SPLITS:
        with open(sft / f"{split}.jsonl", "w") as f:
            for r in world.sft[split]:
                f.write(json.dumps({"id": r["post_id"], "subreddit": r["subreddit"],
                                    "title": r["title"], "post": r["post"],
                                    "summary": " " + r["summary"]}) + "\n")
    comparisons = root / "comparisons"
    comparisons.mkdir()
    with open(comparisons / "batch0.json", "w") as f:
        for split, ds in world.comparisons.items():
            for r in ds:
                news = split == "test_ood"  # the loader's OOD split: CNN/DM articles
                info = {"id": r["post_id"], "title": r["title"],
                        "subreddit": None if news else r["subreddit"],
                        "post": None if news else r["post"], "article": r["post"] if news else None}
                f.write(json.dumps({"info": info, "choice": r["choice"],
                                    "split": "train" if split == "train" else "valid1",
                                    "summaries": [{"text": r["summary_0"], "policy": "a"},
                                                  {"text": r["summary_1"], "policy": "b"}]}) + "\n")
    return sft, comparisons


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """TL;DR-format files and a control-RM base model (GPT-NeoX, the Pythia architecture)."""
    root = tmp_path_factory.mktemp("tldr")
    synthetic = Pipeline("smoke", SMALL, cache=ArtifactCache(root / "synthetic-cache"))
    sft, comparisons = _write_tldr_files(synthetic.world, root)
    tok = synthetic.tokenizer
    base = GPTNeoXForCausalLM(GPTNeoXConfig(
        vocab_size=len(tok), hidden_size=48, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=96, max_position_embeddings=256, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.eos_token_id))
    base.save_pretrained(root / "control-base")
    tok.save_pretrained(root / "control-base")
    return {"root": root, "overrides": {
        **SMALL, "world.source": "tldr", "pairs.source": "dataset", "tldr.sft_path": str(sft),
        "tldr.comparisons_path": str(comparisons), "gold.hub_name": str(root / "control-base"),
        "gold.mode": "lora", "gold.steps": 6, "gold.batch_size": 8, "gold.lr": 1e-3,
        "gold.lora_r": 4, "gold.lora_alpha": 8}}


def test_real_data_go_through_the_loaders(real, tmp_path):
    pl = Pipeline("smoke", real["overrides"], cache=ArtifactCache(tmp_path), gold_rm=ControlRM)
    synthetic = Pipeline("smoke", SMALL, cache=ArtifactCache(real["root"] / "synthetic-cache"))
    assert pl.world.sft["train"]["post"] == synthetic.world.sft["train"]["post"]
    ood = pl.world.comparisons["test_ood"]
    assert len(ood) == len(synthetic.world.comparisons["test_ood"]) and not any(ood["subreddit"])
    assert list(pl.world.comparisons["train"]["choice"]) == \
        list(synthetic.world.comparisons["train"]["choice"])
    assert "tldr" in pl.world_key and "tldr" not in synthetic.world_key


@pytest.mark.parametrize("mode", ["lora", "qlora"])
def test_the_control_rm_is_the_gold_reward(real, tmp_path, mode):
    overrides = {**real["overrides"], "gold.mode": mode}
    pl = Pipeline("smoke", overrides, cache=ArtifactCache(tmp_path), gold_rm=ControlRM)
    pool = pl.sample_pool("sft", 4, 3)
    assert pool["gold"].shape == (4, 3) and np.isfinite(pool["gold"]).all()
    assert pool["gold"].std() > 0
    art = pl.control_rm.artifact()
    history = art.meta["history"]
    assert len(history["loss"]) == 6 and set(art.meta["accuracy"]) == {"validation", "test_ood"}
    assert sum(history["pairs"]) >= 6  # every comparison of each step's prompts
    # Only the adapters and the fresh head are stored; the base is read from gold.hub_name.
    from safetensors.torch import load_file
    stored = load_file(str(art.path / "control_rm.safetensors"))
    assert stored and all("lora_" in k or "score" in k for k in stored)

    # A new pipeline reads the control RM back and scores exactly as the one that trained it.
    prompts = D.prompts_of(pool["posts"])
    flat_prompts = [p for p in prompts for _ in range(3)]
    flat = [s for row in pool["samples"] for s in row]
    again = Pipeline("smoke", overrides, cache=ArtifactCache(tmp_path), gold_rm=ControlRM)
    np.testing.assert_allclose(again.gold(flat_prompts, [""] * len(flat), flat),
                               pool["gold"].ravel(), rtol=0, atol=1e-5)
    assert again.cache.builds == 0
    # A gold reward that changes changes every key that logged it.
    other = Pipeline("smoke", {**overrides, "gold.steps": 7}, cache=ArtifactCache(tmp_path), gold_rm=ControlRM)
    assert other.pool_key("sft", 4, 3) != pl.pool_key("sft", 4, 3)


def test_rm_scores_read_the_last_token_even_when_pad_is_eos():
    from lib.rm.rm import score_sequences

    torch.manual_seed(0)
    cfg = GPTNeoXConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=1, pad_token_id=1)
    from transformers import GPTNeoXForSequenceClassification
    model = GPTNeoXForSequenceClassification(cfg).eval()
    seqs = [[5, 6, 7, 1], [8, 9, 1], [4, 1]]  # each ends with EOS = pad = 1
    batched = score_sequences(model, seqs, pad_id=1)
    with torch.no_grad():
        alone = [model.score(model.gpt_neox(torch.tensor([s])).last_hidden_state[:, -1]).item()
                 for s in seqs]
    np.testing.assert_allclose(batched, alone, atol=1e-5)


def test_real_data_without_a_control_rm_is_a_clear_error(real, tmp_path):
    pl = Pipeline("smoke", {**real["overrides"], "gold.hub_name": None},
                  cache=ArtifactCache(tmp_path))
    with pytest.raises(ValueError, match="gold.hub_name"):
        pl.gold(["p"], ["p"], ["s"])


def test_the_synthetic_world_keeps_its_exact_gold_and_its_cache_keys(real):
    from lib.world.world import gold_reward

    pl = Pipeline("smoke", SMALL, cache=ArtifactCache(real["root"] / "synthetic-cache"))
    assert pl.gold_key is None and "gold" not in pl.pool_key("sft", 4, 3)
    row = pl.world.sft["validation"][0]
    summaries = [row["summary"], "a different summary"]
    assert list(pl.gold(["unused"] * 2, [row["post"]] * 2, summaries)) == \
        [gold_reward(row["post"], s) for s in summaries]


@pytest.mark.slow
def test_every_notebook_runs_on_real_data_with_the_control_rm_as_gold(real, tmp_path, monkeypatch):
    """The gpu profile's path through every chapter, on CPU: TL;DR-format data and a control RM as
    the gold reward (the synthetic world's own checks are skipped, nothing else)."""
    from lib import runner

    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    (tmp_path / "results").mkdir()
    overrides = {**real["overrides"], "sft.steps": 6}  # smoke's SFT, with its Baklava checkpoint
    for nb in runner.notebooks():
        runner.run_notebook(nb, "smoke", tmp_path / "results", overrides=overrides)
    claims = {c["id"]: c for c in json.loads((tmp_path / "results" / "claims.json").read_text())}
    assert {c["notebook"] for c in claims.values()} == {p.name[:2] for p in runner.notebooks()}
    assert "world-label-noise" not in claims and "sft-improves-gold" in claims
    assert list((tmp_path / "cache" / "smoke").glob("gold-*"))  # the control RM was trained
