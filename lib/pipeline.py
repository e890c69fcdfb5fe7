"""The cached stages every notebook builds on: world → tokenizer → pre-training → SFT.

Each stage is keyed by a hash of its own config *and* of the stages before it, so changing a knob
reruns only what depends on it; a killed run resumes from the last finished stage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import datasets
import numpy as np
import transformers
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib.cache import Artifact, ArtifactCache
from lib.config import PREPARE_THREADS, RUN_THREADS, Profile, SamplingConfig, cache_dir
from lib.models.models import load_model, load_tokenizer, save_model, tiny_llama, train_tokenizer
from lib.models.sampling import sample_summaries
from lib.models.train import mean_loss, train_causal_lm
from lib.profiles import get_profile
from lib.seeds import pairs_sampling_seed
from lib.threads import torch_threads
from lib.world import data as D
from lib.world import world as W

datasets.disable_progress_bars()
transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()


class GoldRM(Protocol):
    """A learned gold reward (the control RM, `lib.rm.control.ControlRM`): its cache key, which the
    keys of stages that log gold rewards include, and its scores."""

    key: dict

    def score(self, prompts: Sequence[str], summaries: Sequence[str]) -> np.ndarray: ...


class Pipeline:
    """Stages of one profile, each built once and then read from the artifact cache.

    The gold reward is the synthetic world's exact one, or, where the profile names a control RM
    (`gold.hub_name`), the one `gold_rm(pipeline)` builds: RM training sits a layer above, so the
    caller passes it (`lib.rm.control.ControlRM`; the chapters and the fan-out do)."""

    def __init__(self, profile: str | Profile = "default", overrides: dict[str, Any] | None = None,
                 cache: ArtifactCache | None = None, gold_rm: Callable[[Pipeline], GoldRM] | None = None):
        self.profile = profile if isinstance(profile, Profile) else get_profile(profile, overrides)
        self.cache = cache or ArtifactCache(cache_dir(self.profile))
        if self.profile.gold.hub_name is not None and gold_rm is None:
            raise ValueError(f"profile {self.profile.name!r} names a control RM as its gold reward "
                             f"(gold.hub_name = {self.profile.gold.hub_name!r}): pass "
                             "gold_rm=lib.rm.control.ControlRM")
        self._gold_rm = gold_rm

    # ---- configs that key each stage (parents included) -------------------------------------
    @property
    def world_key(self) -> dict:
        key = {"world": self.profile.world, "version": W.VERSION}
        if self.profile.world.source == "tldr":
            key["tldr"] = self.profile.tldr
        return key

    @property
    def gold_key(self) -> dict | None:
        """What the gold reward depends on: None for the synthetic world's exact gold reward,
        else the control RM's cache key (keys of stages that log gold rewards include it)."""
        return None if self.profile.gold.hub_name is None else self.control_rm.key

    @property
    def tokenizer_key(self) -> dict:
        return {**self.world_key, "vocab_size": self.profile.model.vocab_size,
                "hub": self.profile.model.hub_name}

    @property
    def pretrain_key(self) -> dict:
        return {"tokenizer": self.tokenizer_key, "model": self.profile.model,
                "train": self.profile.pretrain}

    @property
    def sft_key(self) -> dict:
        return {"pretrain": self.pretrain_key, "train": self.profile.sft}

    # ---- stages -------------------------------------------------------------------------------
    def world_artifact(self) -> Artifact:
        def build(tmp: Path) -> dict:
            cfg = self.profile.world
            if cfg.source == "synthetic":
                world = D.build_world(cfg)
            elif cfg.source == "tldr":
                sft = D.load_tldr_sft(self.profile.tldr.sft_path)
                world = D.WorldData(sft["train"].map(lambda r: {"text": D.format_prompt(
                    r["subreddit"], r["title"], r["post"]) + " " + r["summary"]}), sft,
                    D.load_tldr_comparisons(self.profile.tldr.comparisons_path))
            else:
                raise ValueError(f"unknown world source {cfg.source!r}; valid: synthetic, tldr")
            world.save(tmp)
            return {"disagreement": {s: D.label_gold_disagreement(world.comparisons[s])
                                     for s in D.COMPARISON_SPLITS} if cfg.source == "synthetic"
                    else None}
        return self.cache.stage("world", self.world_key, build)

    @cached_property
    def world(self) -> D.WorldData:
        return D.WorldData.load(self.world_artifact().path)

    def tokenizer_artifact(self) -> Artifact:
        def build(tmp: Path) -> dict:
            if self.profile.model.hub_name:
                tok = load_tokenizer(self.profile.model.hub_name)
            else:
                texts = list(self.world.pretrain["text"]) + list(self.world.sft["train"]["summary"])
                tok = train_tokenizer(texts, self.profile.model.vocab_size)
            tok.save_pretrained(str(tmp / "tokenizer"))
            return {"vocab_size": len(tok)}
        return self.cache.stage("tokenizer", self.tokenizer_key, build)

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return load_tokenizer(self.tokenizer_artifact().path / "tokenizer")

    def _val_loss_fn(self, completions: bool):
        val = self.world.sft["validation"]
        prompts = D.prompts_of(val)
        if not completions:  # pre-training documents: prompt and summary as one text
            prompts = [p + " " + s for p, s in zip(prompts, val["summary"])]
        targets = list(val["summary"]) if completions else None
        return lambda model: mean_loss(model, self.tokenizer, prompts, targets,
                                       self.profile.model.max_length)

    def pretrained_artifact(self) -> Artifact:
        def build(tmp: Path) -> dict:
            cfg = self.profile.model
            if cfg.hub_name:
                model = load_model(cfg.hub_name, dtype=cfg.dtype, device=self.profile.device)
                history: dict = {}
            else:
                model = tiny_llama(cfg, self.tokenizer, seed=self.profile.pretrain.seed)
                with torch_threads(PREPARE_THREADS):  # the same floats wherever it is built
                    history = train_causal_lm(model, self.tokenizer, self.world.pretrain["text"], None,
                                              self.profile.pretrain, cfg.max_length, desc="pre-train",
                                              eval_fn=self._val_loss_fn(completions=False))
            save_model(model, tmp / "model")
            return {"history": history, "n_params": sum(p.numel() for p in model.parameters())}
        return self.cache.stage("pretrain", self.pretrain_key, build)

    def sft_artifact(self) -> Artifact:
        def build(tmp: Path) -> dict:
            model = self.load("pretrain")
            sft = self.world.sft["train"]

            def checkpoint(step: int, m: PreTrainedModel) -> None:
                save_model(m, tmp / f"checkpoint-{step}")

            with torch_threads(PREPARE_THREADS):
                history = train_causal_lm(model, self.tokenizer, D.prompts_of(sft), sft["summary"],
                                          self.profile.sft, self.profile.model.max_length, desc="SFT",
                                          on_checkpoint=checkpoint,
                                          eval_fn=self._val_loss_fn(completions=True))
            save_model(model, tmp / "model")
            return {"history": history}
        return self.cache.stage("sft", self.sft_key, build)

    @property
    def comparisons_key(self) -> dict:
        return {"sft": self.sft_key, "pairs": self.profile.pairs,
                "max_new_tokens": self.profile.sampling.max_new_tokens}

    def comparisons_artifact(self) -> Artifact:
        """The policies' comparisons (`pairs.source` "policy"): `pairs.k` samples per post of the
        world's train, validation and OOD comparison posts, every pair of distinct samples labelled
        by the world's annotators. Train and validation posts are sampled from the SFT policy at
        `pairs.temperature`; OOD posts (held-out topics) from `pairs.ood_policy` at
        `pairs.ood_temperature`."""
        cfg = self.profile.pairs

        def build(tmp: Path) -> dict:
            posts = self.world.comparisons
            plan = {"train": (cfg.n_train_posts, "sft", cfg.temperature),
                    "validation": (cfg.n_validation_posts, "sft", cfg.temperature),
                    "test_ood": (cfg.n_ood_posts, cfg.ood_policy, cfg.ood_temperature)}
            out, stats = {}, {}
            for i, (split, (n, stage, temperature)) in enumerate(plan.items()):
                rows = posts[split].select(range(n))
                sampling = SamplingConfig(temperature=temperature, batch_size=self.profile.sampling.batch_size,
                                          max_new_tokens=self.profile.sampling.max_new_tokens,
                                          seed=pairs_sampling_seed(cfg.seed, i))
                with torch_threads(PREPARE_THREADS):
                    samples, stats[split] = sample_summaries(self.load(stage), self.tokenizer, D.prompts_of(rows),
                                                             cfg.k, sampling, desc=f"{split} pairs")
                out[split] = D.policy_comparisons(rows, samples, self.profile.world,
                                                  policy=f"{stage} T={temperature:g}", seed=[cfg.seed, i])
            datasets.DatasetDict(out).save_to_disk(str(tmp / "comparisons"))
            return {"sampling": stats, "pairs": {s: len(ds) for s, ds in out.items()},
                    "disagreement": {s: D.label_gold_disagreement(ds) for s, ds in out.items()}}

        return self.cache.stage("comparisons", self.comparisons_key, build)

    @cached_property
    def comparisons(self) -> datasets.DatasetDict:
        """The preference pairs of every RM: the SFT policy's own (`pairs.source` "policy") or
        the data's (`"dataset"`: the world's writers, or real TL;DR comparisons); train,
        validation and test_ood in the pair schema of `lib.world.data`."""
        if self.profile.pairs.source == "dataset":
            return self.world.comparisons
        return datasets.load_from_disk(str(self.comparisons_artifact().path / "comparisons"))

    def model_path(self, stage: str, checkpoint: int | None = None) -> Path:
        """Directory of the model of `stage` ('pretrain' or 'sft'), or of one of its checkpoints."""
        artifacts = {"pretrain": self.pretrained_artifact, "sft": self.sft_artifact}
        if stage not in artifacts:
            raise ValueError(f"unknown model stage {stage!r}; valid: {', '.join(artifacts)}")
        art = artifacts[stage]()
        path = art.path / ("model" if checkpoint is None else f"checkpoint-{checkpoint}")
        if not path.exists():
            have = sorted(p.name for p in art.path.glob("checkpoint-*"))
            raise ValueError(f"{stage.upper()} keeps no checkpoint at step {checkpoint} (no "
                             f"checkpoint-{checkpoint}; it keeps {have or 'none'}); add the step "
                             f"to {stage}.checkpoint_steps")
        return path

    def load(self, stage: str, checkpoint: int | None = None) -> PreTrainedModel:
        """A fresh copy of the model of `stage` ('pretrain' or 'sft'), or of a checkpoint."""
        model = load_model(self.model_path(stage, checkpoint), dtype=self.profile.model.dtype,
                           device=self.profile.device)
        model.eval()
        return model

    def history(self, stage: str) -> dict:
        art = {"pretrain": self.pretrained_artifact, "sft": self.sft_artifact}[stage]()
        return json.loads((art.path / "meta.json").read_text())["history"]

    def pool_key(self, stage: str, n_prompts: int, k: int) -> dict:
        """The cache key of `sample_pool(stage, n_prompts, k)`."""
        policy_key = {"pretrain": self.pretrain_key, "sft": self.sft_key}[stage]
        key = {"policy": policy_key, "stage": stage, "n_prompts": n_prompts, "k": k,
               "sampling": self.profile.sampling}
        return key if self.gold_key is None else {**key, "gold": self.gold_key}

    @cached_property
    def control_rm(self) -> GoldRM:
        """The control RM that serves as gold reward when `profile.gold.hub_name` is set."""
        if self.profile.gold.hub_name is None:
            raise ValueError("profile.gold.hub_name is None: this profile's gold reward is the "
                             "synthetic world's exact one (lib.world.world.gold_reward)")
        return self._gold_rm(self)

    def gold(self, prompts: list[str], posts: list[str], summaries: list[str]) -> np.ndarray:
        """Gold reward of each summary: the synthetic world's exact reward of (post, summary), or
        the control RM's score of (prompt, summary) when the profile names one (`gold.hub_name`)."""
        if self.gold_key is not None:
            return self.control_rm.score(prompts, summaries)
        if self.profile.world.source != "synthetic":
            raise ValueError("the real TL;DR data have no exact gold reward: set gold.hub_name to "
                             "the base model of a control RM (the gpu profile does)")
        return np.array([W.gold_reward(p, s) for p, s in zip(posts, summaries)])

    def sample_pool(self, stage: str, n_prompts: int, k: int) -> dict:
        """K samples per prompt from the `stage` policy on the first `n_prompts` SFT-validation
        posts, with their gold rewards; cached, so every notebook scores the same samples."""
        key = self.pool_key(stage, n_prompts, k)
        posts = self.world.sft["validation"].select(range(min(n_prompts,
                                                              len(self.world.sft["validation"]))))

        def build(tmp: Path) -> dict:
            with torch_threads(RUN_THREADS):  # the same samples from a notebook run anywhere
                samples, stats = sample_summaries(self.load(stage), self.tokenizer, D.prompts_of(posts),
                                                  k, self.profile.sampling, desc=f"{stage} pool")
            gold = self.gold([p for p in D.prompts_of(posts) for _ in range(k)],
                             [p for p in posts["post"] for _ in range(k)],
                             [s for row in samples for s in row]).reshape(len(samples), k).tolist()
            (tmp / "pool.json").write_text(json.dumps({"samples": samples, "gold": gold}))
            return {"sampling": stats}

        art = self.cache.stage("pool", key, build)
        pool = json.loads((art.path / "pool.json").read_text())
        return {"posts": posts, "samples": pool["samples"],
                "gold": np.asarray(pool["gold"]),
                "stats": art.meta["sampling"], "key": key}
